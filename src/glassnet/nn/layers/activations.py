"""Element-wise activations and softmax. Each works on any input shape, in any Array API namespace."""
import numpy as np

from ...backend import NUMPY, namespace
from ...validation import as_float_array, as_gradient, check_nonempty, non_negative_number
from .base import Layer


class _Activation(Layer):
    """Shared plumbing: check the input, cache what the derivative needs."""

    def __init__(self, dtype=np.float64):
        super().__init__(dtype)
        self._cache = None

    min_ndim, expected_shape = 1, "(N, ...)"

    def forward(self, x):
        x = as_float_array(x, type(self).__name__, self.dtype)
        check_nonempty(x, type(self).__name__, self.min_ndim, self.expected_shape)
        y, self._cache = self._apply(x)
        return y

    def backward(self, dy):
        self._require_cache(self._cache)
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, self._cache.shape)
        return self._input_grad(dy, self._cache)

    # y never decreases as x grows: then the activation commutes with a max pool, max(f(a), f(b)) =
    # f(max(a, b)), and inference may run it after the pool (Graph.infer)
    monotone = False
    takes_in_place = True     # infer(x, in_place=True) may overwrite x (Graph.infer)

    def infer(self, x, in_place=False):
        """The activation of x without what backward needs; ``in_place``: x may be overwritten (NumPy;
        Graph.infer passes it for a max pool's fresh output)."""
        x = as_float_array(x, type(self).__name__, self.dtype)
        check_nonempty(x, type(self).__name__, self.min_ndim, self.expected_shape)
        self._cache = None
        return self._value(x, in_place and namespace(x) is NUMPY)

    def _value(self, x, in_place):
        return self._apply(x)[0]


def rectified(x, out=None):
    """max(x, 0) of a NumPy array (into ``out`` when given), as ``np.clip(x, 0, inf)``: the same values as
    ``np.maximum(x, 0)`` (NaN stays NaN; -0.0 stays -0.0, as in PyTorch's relu) at 3-4 times its speed:
    NumPy 2.4's maximum has no SIMD loop for a scalar operand (1.8M float32 values: 0.69 -> 0.19 ms)."""
    return np.clip(x, 0.0, np.inf, out=out)


class ReLU(_Activation):
    """``y = max(x, 0)``; the derivative at 0 is taken as 0 (as PyTorch)."""

    def _apply(self, x):
        positive = x > 0
        return rectified(x) if namespace(x) is NUMPY else namespace(x).maximum(x, 0.0), positive

    monotone = True
    cache_read_after_backward = True      # fit's dead-unit figures read positive_mask after the step
    applied_by_max_pool = True            # Graph.forward may run it inside the max pool it feeds

    def _value(self, x, in_place):
        if namespace(x) is not NUMPY:
            return namespace(x).maximum(x, 0.0)
        return rectified(x, out=x if in_place else None)

    def pass_to_max_pool(self, x):
        """The forward of a ReLU that the max pool reading it applies (``MaxPool2D.forward_rectified``):
        x (N, C, H, W) passed on as it is, and kept for ``positive_mask``; backward then passes dL/dy on."""
        self._cache = PreActivation((x,))
        return x

    def backward(self, dy):
        if isinstance(self._cache, PreActivation):
            return dy               # the max pool that applied this ReLU returned dL/dx, relu' included
        return super().backward(dy)

    def _input_grad(self, dy, positive):
        # dy/dx = 1 where x > 0, else 0: a multiply by the mask as 0/1 (much faster in NumPy than ``where``)
        return dy * namespace(dy).astype(positive, dy.dtype)

    def positive_mask(self):
        """Where the latest forward's input was > 0 (bool, input shape)."""
        self._require_cache(self._cache)
        return positive_mask(self._cache)


class PreActivation(tuple):
    """What a ReLU applied by a max pool keeps: (its input,), read only by ``positive_mask``."""


class PartCaches(list):
    """The ReLU caches of a batch split's parts, in batch order (``replicas.BatchSplit``)."""


def positive_mask(cache):
    """A ReLU's cache (its mask, a PreActivation, or PartCaches) -> where its input was > 0 (bool)."""
    if isinstance(cache, PreActivation):
        return cache[0] > 0
    if isinstance(cache, PartCaches):
        return np.concatenate([positive_mask(part) for part in cache])
    return cache


class LeakyReLU(_Activation):
    """``y = x`` for x > 0, ``alpha * x`` otherwise (derivative alpha at 0, as PyTorch)."""

    def __init__(self, alpha=0.01, dtype=np.float64):
        super().__init__(dtype)
        self.alpha = non_negative_number(alpha, "alpha", "LeakyReLU")

    def get_config(self):
        return {"alpha": self.alpha}

    monotone = True           # alpha >= 0

    def _apply(self, x):
        return namespace(x).where(x > 0, x, x * self.alpha), x

    def _input_grad(self, dy, x):
        return namespace(dy).where(x > 0, dy, dy * self.alpha)  # dy/dx = 1 or alpha


class Sigmoid(_Activation):
    """``y = 1 / (1 + exp(-x))``, computed without overflow for large |x|."""

    def _apply(self, x):
        y = sigmoid(x)
        return y, y

    def _input_grad(self, dy, y):
        return dy * y * (1.0 - y)  # dy/dx = s (1 - s)


class Tanh(_Activation):
    """``y = tanh(x)``."""

    def _apply(self, x):
        y = namespace(x).tanh(x)
        return y, y

    def _input_grad(self, dy, y):
        return dy * (1.0 - y * y)  # dy/dx = 1 - tanh^2


class Identity(_Activation):
    """``y = x`` (the 'linear' activation)."""

    def _apply(self, x):
        return x, x

    def _input_grad(self, dy, x):
        return dy


class Softmax(_Activation):
    """Softmax over axis 1 (classes of (N, K), or channels of (N, C, H, W), as PyTorch's dim=1).

    ``y_k = exp(x_k - max_j x_j) / sum_j exp(x_j - max_j x_j)``; stable for logits of +-1000.
    """

    min_ndim, expected_shape = 2, "(N, K, ...)"

    def _apply(self, x):
        y = softmax(x, axis=1)
        return y, y

    def _input_grad(self, dy, y):
        # dy_k/dx_j = y_k (delta_kj - y_j)  =>  dx = y * (dy - sum_k dy_k y_k)
        return y * (dy - namespace(dy).sum(dy * y, axis=1, keepdims=True))


def sigmoid(x):
    """``1 / (1 + exp(-x))`` without overflow for large |x|."""
    xp = namespace(x)
    small = xp.exp(-xp.abs(x))                          # in (0, 1]: never overflows
    # x >= 0: 1 / (1 + e^-x);  x < 0: e^x / (1 + e^x), the same function written without overflow
    return xp.where(x >= 0, 1.0 / (1.0 + small), small / (1.0 + small))


def softmax(x, axis=1):
    """Numerically stable softmax of ``x`` along ``axis``."""
    xp = namespace(x)
    exp = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return exp / xp.sum(exp, axis=axis, keepdims=True)


def log_softmax(x, axis=1):
    """Numerically stable log-softmax of ``x`` along ``axis``."""
    xp = namespace(x)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
