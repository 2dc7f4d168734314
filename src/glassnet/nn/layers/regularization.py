"""Dropout and batch normalisation: the layers that behave differently in training and evaluation."""
import numpy as np

from ...backend import beside, namespace, same_place
from ...errors import GlassnetError
from ...validation import (as_float_array, as_gradient, check_batch, make_rng, positive_int, positive_number,
                           probability)
from .base import Layer


class Dropout(Layer):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale
    the survivors by ``1 / (1 - p)``; in evaluation, the identity. Any input shape; the
    output has the same shape.

    Parameters
    ----------
    p : float in [0, 1), default 0.5
    rng : np.random.Generator, int seed or None (draws the masks)
    noise_shape : one sample's mask shape, or None (one draw per element). An axis of size 1 shares
        one draw along it: ``(1, 1, 1)`` drops whole samples of (C, H, W) (stochastic depth, Keras'
        ``Dropout(noise_shape=(None, 1, 1, 1))`` in EfficientNet), ``(C, 1, 1)`` whole channels.
    """

    def __init__(self, p=0.5, rng=None, noise_shape=None, dtype=np.float64):
        super().__init__(dtype)
        self.p = probability(p, "p", "Dropout")
        self.rng = make_rng(rng, "Dropout")
        self.noise_shape = None if noise_shape is None else _noise_shape(noise_shape)
        self._scaled_mask = None
        self._input_shape = None
        self.batch_share = None     # data-parallel training: (this rank's first row, global batch size)
        self.drawn_keep = None      # a batch split's part: its rows of the batch's mask (replicas.py)

    def get_config(self):
        return {"p": self.p} if self.noise_shape is None else {"p": self.p, "noise_shape": list(self.noise_shape)}

    def check_input_shape(self, input_shape):
        if self.noise_shape is not None and (len(self.noise_shape) != len(input_shape) or any(
                size not in (1, full) for size, full in zip(self.noise_shape, input_shape))):
            raise GlassnetError(f"Dropout: noise_shape {self.noise_shape} does not fit one sample of shape "
                                f"{tuple(input_shape)} (each size equal, or 1 to share a draw)")

    def forward(self, x):
        x = as_float_array(x, "Dropout", self.dtype)
        if not self.training or self.p == 0.0:
            self._scaled_mask = None
            return x
        shape = tuple(x.shape)
        keep = self.draw_keep(shape) if self.drawn_keep is None else self.drawn_keep
        self.drawn_keep = None                                       # a part's rows serve one forward
        scaled = keep.astype(self.dtype) / self.dtype.type(1.0 - self.p)
        self._scaled_mask, self._input_shape = beside(x, scaled), shape
        return x * self._scaled_mask

    def draw_keep(self, shape):
        """The mask of which elements survive, for an input of ``shape`` (N, ...): (N,) + one sample's shape,
        or + ``noise_shape``; bool, drawn on the host from ``rng`` (a batch split draws the whole batch's
        before its parts run, so they get one pass's mask)."""
        shape = tuple(shape)
        if self.noise_shape is not None:
            self.check_input_shape(shape[1:])
        mask = shape[1:] if self.noise_shape is None else self.noise_shape
        if self.batch_share is None:
            return self.rng.random(shape[:1] + mask) >= self.p
        first, total = self.batch_share                              # the global batch's mask, this rank's rows
        return (self.rng.random((total,) + mask) >= self.p)[first:first + shape[0]]

    def backward(self, dy):
        dy = as_gradient(dy, self.dtype)
        if self._scaled_mask is None:  # evaluation mode or p == 0: identity
            return dy
        self._check_grad_shape(dy, self._input_shape)
        # y = x * mask / (1 - p)  =>  dx = dy * mask / (1 - p)   (the mask broadcast as in forward)
        return dy * self._scaled_mask


def _noise_shape(value):
    sizes = list(value) if isinstance(value, (list, tuple)) else None
    if not sizes or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in sizes):
        raise GlassnetError(f"Dropout: noise_shape must be a list of positive ints (one sample's mask shape). "
                            f"Received: {value!r}")
    return tuple(int(v) for v in sizes)


class BatchNorm2D(Layer):
    """Batch normalisation over (N, H, W) for each channel (PyTorch's BatchNorm2d).

    Training: ``y = weight * (x - mean_B) / sqrt(var_B + eps) + bias`` with the batch's
    mean and biased variance; the running statistics move by ``momentum`` towards the
    batch mean and the *unbiased* batch variance. Evaluation uses the running statistics.

    Parameters
    ----------
    num_features : int (channels C)
    eps : float, default 1e-5
    momentum : float, default 0.1

    Shapes
    ------
    Input (N, C, H, W); output (N, C, H, W). weight, bias, running_mean, running_var: (C,).
    """

    fresh_output = True       # forward returns a new array, never a view of its input (Graph.infer)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float64):
        super().__init__(dtype)
        self.num_features = positive_int(num_features, "num_features", "BatchNorm2D")
        self.eps = positive_number(eps, "eps", "BatchNorm2D")
        self.momentum = probability(momentum, "momentum", "BatchNorm2D", allow_one=True)
        C = self.num_features
        self.params["weight"] = np.ones(C, dtype=self.dtype)
        self.params["bias"] = np.zeros(C, dtype=self.dtype)
        self.buffers["running_mean"] = np.zeros(C, dtype=self.dtype)
        self.buffers["running_var"] = np.ones(C, dtype=self.dtype)
        self._cache = None
        self.group_sum = None       # data-parallel training: sums arrays over all ranks (distributed.py)

    def get_config(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum}

    def check_input_shape(self, input_shape):
        self._expect_sample(input_shape, f"({self.num_features}, H, W)", 3, self.num_features)

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, H, W)."""
        x = as_float_array(x, "BatchNorm2D", self.dtype)
        C = self.num_features
        check_batch(x, "BatchNorm2D", f"(N, {C}, H, W)", channels_axis=1, channels=C)
        same_place(x, self.params["weight"], "input", "BatchNorm2D")
        xp = namespace(x)
        if self.training:
            mean, var, count = self._batch_statistics(x)        # (C,), (C,) biased, values per channel
            unbiased = var * (count / max(count - 1, 1))
            m = self.momentum
            self.buffers["running_mean"] = (1 - m) * self.buffers["running_mean"] + m * mean
            self.buffers["running_var"] = (1 - m) * self.buffers["running_var"] + m * unbiased
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        inv_std = 1.0 / xp.sqrt(var + self.eps)                 # (C,)
        per_channel = lambda values: xp.reshape(values, (C, 1, 1))  # noqa: E731  (C,) -> (C, 1, 1)
        if not self.training:
            # fixed statistics: y = x * scale + shift, two passes over x (PyTorch's CPU evaluation formula);
            # x is kept and x_hat made in backward, where only gradients need it
            scale, shift = self.scale_and_shift()
            self._cache = (x, inv_std, False, mean)
            out = x * per_channel(scale)
            out += per_channel(shift)
            return out
        x_hat = x - per_channel(mean)
        x_hat *= per_channel(inv_std)
        self._cache = (x_hat, inv_std, True, count)
        out = x_hat * per_channel(self.params["weight"])
        out += per_channel(self.params["bias"])
        return out

    def scale_and_shift(self):
        """Evaluation's y = x * scale + shift per channel, from the running statistics: scale = weight /
        sqrt(running_var + eps), shift = bias - running_mean * scale; both (C,)."""
        xp = namespace(self.params["weight"])
        scale = self.params["weight"] * (1.0 / xp.sqrt(self.buffers["running_var"] + self.eps))
        return scale, self.params["bias"] - self.buffers["running_mean"] * scale

    def _batch_statistics(self, x):
        """(mean, biased variance, count) per channel over the batch (over every rank's share of it
        in data-parallel training: sums, then the mean, then the squared deviations' sums)."""
        xp, count = namespace(x), x.shape[0] * x.shape[2] * x.shape[3]
        if self.group_sum is None:
            return xp.mean(x, axis=(0, 2, 3)), xp.var(x, axis=(0, 2, 3)), count
        total, counts = self.group_sum([xp.sum(x, axis=(0, 2, 3)), np.array([count], dtype=np.float64)])
        count = int(counts[0])
        mean = total / count
        deviations = x - xp.reshape(mean, (self.num_features, 1, 1))
        (squares,) = self.group_sum([xp.sum(deviations * deviations, axis=(0, 2, 3))])
        return mean, squares / count, count

    def backward(self, dy):
        """dy: (N, C, H, W) -> dL/dx: (N, C, H, W)."""
        self._require_cache(self._cache)
        kept, inv_std, used_batch_stats, count_or_mean = self._cache
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, kept.shape)
        xp, C = namespace(dy), self.num_features
        # training kept x_hat and the values per channel; evaluation kept x and the running mean
        if used_batch_stats:
            x_hat, count = kept, count_or_mean
        else:
            x_hat = (kept - xp.reshape(count_or_mean, (C, 1, 1))) * xp.reshape(inv_std, (C, 1, 1))
        # y = w * x_hat + b  =>  dw = sum dy * x_hat,  db = sum dy
        self.grads["weight"] = xp.sum(dy * x_hat, axis=(0, 2, 3))
        self.grads["bias"] = xp.sum(dy, axis=(0, 2, 3))
        scale = xp.reshape(self.params["weight"] * inv_std, (C, 1, 1))
        if not used_batch_stats:
            # fixed mean and variance: x_hat is affine in x
            return dy * scale
        # mean and variance depend on x: dx = w/sigma * (dy - mean(dy) - x_hat * mean(dy * x_hat)),
        # the means over the whole batch (every rank's share of it in data-parallel training)
        if self.group_sum is None:
            mean_dy, mean_dy_xhat = xp.mean(dy, axis=(0, 2, 3)), xp.mean(dy * x_hat, axis=(0, 2, 3))
        else:
            sum_dy, sum_dy_xhat = self.group_sum([self.grads["bias"], self.grads["weight"]])
            mean_dy, mean_dy_xhat = sum_dy / count, sum_dy_xhat / count
        return scale * (dy - xp.reshape(mean_dy, (C, 1, 1)) - x_hat * xp.reshape(mean_dy_xhat, (C, 1, 1)))
