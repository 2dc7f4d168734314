"""Loss functions. Each ``forward(pred, target)`` returns the batch mean as a float and
``backward()`` returns dL/dpred with pred's shape and dtype, in pred's array library.

Targets are checked on the host (NumPy) and then moved next to the prediction.
"""
import math

import numpy as np

from ..backend import beside, namespace, numpy_dtype, to_numpy
from ..errors import GlassnetError, ShapeError
from .layers.activations import log_softmax, softmax
from ..validation import as_float_array, foreign_array, probability

# PyTorch's BCELoss clamps each log term at -100 so that p = 0 or 1 gives a finite loss.
LOG_FLOOR = -100.0


class Loss:
    """Base class: remembers what ``backward`` needs from the last ``forward``."""

    def __init__(self):
        self._cache = None

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def forward(self, pred, target):
        """The batch mean loss as a Python float (see ``forward_value``)."""
        return float(self.forward_value(pred, target))

    def forward_value(self, pred, target):
        """The batch mean loss as a 0-d array in pred's library, without waiting for the device."""
        raise NotImplementedError

    def get_config(self):
        return {}

    def _pred(self, pred):
        if foreign_array(pred):
            xp = namespace(pred)
            dtype = numpy_dtype(pred.dtype) if xp.isdtype(pred.dtype, "real floating") else np.float64
        else:
            pred = np.asarray(pred)
            dtype = pred.dtype if pred.dtype.kind == "f" else np.float64
        pred = as_float_array(pred, type(self).__name__, dtype, name="prediction")
        if pred.ndim == 0 or math.prod(pred.shape) == 0:
            raise ShapeError(f"{type(self).__name__}: expected a non-empty batch of predictions, "
                             f"received shape {tuple(pred.shape)}")
        return pred

    def _same_shape_target(self, pred, target):
        target = np.asarray(to_numpy(target))
        pred_shape = tuple(pred.shape)
        if target.dtype.kind not in "fiub":
            raise GlassnetError(f"{type(self).__name__}: target must be numeric. Received: dtype={target.dtype}")
        if target.shape != pred_shape:
            hint = ""
            if target.size == math.prod(pred_shape):
                hint = f" (reshape it with target.reshape{pred_shape})"
            raise ShapeError(f"{type(self).__name__}: expected target of shape {pred_shape} (same as the "
                             f"prediction), received shape {target.shape}{hint}")
        return beside(pred, _finite_target(type(self).__name__, target.astype(numpy_dtype(pred.dtype))))

    def backward(self):
        if self._cache is None:
            raise GlassnetError(f"{type(self).__name__}: backward called before forward")
        return self._grad()


class MSE(Loss):
    """Mean squared error over all elements: ``L = mean((pred - target)^2)`` (Keras, PyTorch)."""

    def forward_value(self, pred, target):
        pred = self._pred(pred)
        diff = pred - self._same_shape_target(pred, target)
        self._cache = diff
        return namespace(diff).mean(diff * diff)

    def _grad(self):
        diff = self._cache
        return (2.0 / math.prod(diff.shape)) * diff  # dL/dpred = 2 (pred - target) / n


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on probabilities, mean over all elements, natural log:
    ``L = -mean(t * log(p) + (1 - t) * log(1 - p))``; each log is clamped at -100 as in PyTorch.
    """

    def forward_value(self, pred, target):
        p = self._pred(pred)
        xp = namespace(p)
        if bool(xp.any(xp.logical_not(xp.logical_and(p >= 0, p <= 1)))):            # also catches NaN
            host = to_numpy(p)
            raise GlassnetError("BinaryCrossEntropy: predictions must be probabilities in [0, 1] "
                                f"(apply Sigmoid first). Received values in [{np.nanmin(host)}, {np.nanmax(host)}]"
                                + (" and NaN" if np.isnan(host).any() else ""))
        t = self._same_shape_target(p, target)
        with np.errstate(divide="ignore"):
            log_p = xp.maximum(xp.log(p), LOG_FLOOR)
            log_1mp = xp.maximum(xp.log1p(-p), LOG_FLOOR)
        self._cache = (p, t)
        return -xp.mean(t * log_p + (1 - t) * log_1mp)

    def _grad(self):
        p, t = self._cache
        # dL/dp = (p - t) / (p (1 - p)) / n; the denominator floored at 1e-12 as in PyTorch
        return (p - t) / namespace(p).maximum(p * (1 - p), 1e-12) / math.prod(p.shape)


def class_targets(owner, target, n, num_classes, dtype):
    """Integer labels (N,) or class probabilities (N, K) as an (N, K) NumPy probability array of ``dtype``."""
    target = np.asarray(to_numpy(target))
    if target.ndim == 1:
        if target.shape[0] != n:
            raise ShapeError(f"{owner}: expected {n} labels, received shape {target.shape}")
        if target.dtype.kind == "f" and np.all(np.isfinite(target)) and np.all(target == np.round(target)):
            target = target.astype(np.int64)
        if target.dtype.kind not in "iu":
            raise GlassnetError(f"{owner}: 1-D targets must be integer class labels. Received: dtype={target.dtype}")
        if target.min() < 0 or target.max() >= num_classes:
            raise GlassnetError(f"{owner}: labels must be in [0, {num_classes - 1}]. "
                                f"Received labels in [{target.min()}, {target.max()}]")
        one_hot = np.zeros((n, num_classes), dtype=dtype)
        one_hot[np.arange(n), target] = 1
        return one_hot
    if target.shape != (n, num_classes):
        raise ShapeError(f"{owner}: expected integer labels of shape ({n},) or one-hot/probability targets of "
                         f"shape ({n}, {num_classes}), received shape {target.shape}")
    if target.dtype.kind not in "fiub":
        raise GlassnetError(f"{owner}: target must be numeric. Received: dtype={target.dtype}")
    return _finite_target(owner, target.astype(dtype))


def _finite_target(owner, target):
    if not np.all(np.isfinite(target)):
        raise GlassnetError(f"{owner}: target contains NaN or Inf values")
    return target


def _class_scores(owner, pred):
    if pred.ndim != 2:
        raise ShapeError(f"{owner}: expected predictions of shape (N, num_classes), received shape {tuple(pred.shape)}"
                         + (" (add a Flatten layer before the last Dense)" if pred.ndim > 2 else ""))
    return pred.shape


class CrossEntropy(Loss):
    """Categorical cross-entropy on probabilities (e.g. after ``Softmax``), mean over the batch:
    ``L = -mean_n sum_k t_nk log(p_nk)``. Targets: integer labels (N,) or one-hot (N, K).
    Prefer ``SoftmaxCrossEntropy`` on logits: it is exact where this one can underflow.
    """

    def forward_value(self, pred, target):
        p = self._pred(pred)
        n, k = _class_scores("CrossEntropy", p)
        xp = namespace(p)
        if bool(xp.any(xp.logical_not(p >= 0))):                                      # also catches NaN
            raise GlassnetError("CrossEntropy: predictions must be probabilities >= 0 (apply Softmax first, "
                                "or use SoftmaxCrossEntropy on logits)")
        t = beside(p, class_targets("CrossEntropy", target, n, k, numpy_dtype(p.dtype)))
        tiny = xp.finfo(p.dtype).smallest_normal
        self._cache = (xp.maximum(p, tiny), t)
        return -xp.sum(t * xp.log(self._cache[0])) / n

    def _grad(self):
        p, t = self._cache
        return -t / p / p.shape[0]  # dL/dp = -t / p / N


class SoftmaxCrossEntropy(Loss):
    """Softmax followed by cross-entropy, fused, on logits; mean over the batch.

    ``L = -mean_n sum_k t_nk log_softmax(z)_nk`` with a max-shifted log-sum-exp (exact for
    logits of +-1000). Closed-form gradient: ``dL/dz = (softmax(z) - t) / N``.
    Targets: integer labels (N,) or one-hot / probability rows (N, K). ``label_smoothing`` e in [0, 1)
    mixes each target row with the uniform distribution, as ``torch.nn.CrossEntropyLoss``:
    ``t = (1 - e) t + e / K`` (so the loss and gradient above hold with the smoothed t).

    Examples
    --------
    >>> loss = gn.SoftmaxCrossEntropy()
    >>> round(loss.forward(np.zeros((1, 4)), np.array([2])), 12)   # uniform over 4 classes: ln 4
    1.38629436112
    >>> loss.backward()                                             # (softmax - one-hot) / N
    array([[ 0.25,  0.25, -0.75,  0.25]])
    """

    def __init__(self, label_smoothing=0.0):
        super().__init__()
        value = probability(label_smoothing, "label_smoothing", "SoftmaxCrossEntropy")
        self.label_smoothing = value

    def get_config(self):
        return {"label_smoothing": self.label_smoothing} if self.label_smoothing else {}

    def forward_value(self, pred, target):
        z = self._pred(pred)
        n, k = _class_scores("SoftmaxCrossEntropy", z)
        targets = class_targets("SoftmaxCrossEntropy", target, n, k, numpy_dtype(z.dtype))
        if self.label_smoothing:
            targets = (1 - self.label_smoothing) * targets + self.label_smoothing / k
        t = beside(z, targets)
        log_p = log_softmax(z, axis=1)
        self._cache = (z, t)
        return -namespace(z).sum(t * log_p) / n

    def _grad(self):
        z, t = self._cache
        return (softmax(z, axis=1) - t) / z.shape[0]
