"""Gradient clipping, as ``torch.nn.utils``: on the gradients a ``backward`` left in the model's layers,
before the optimizer's step.

>>> model = gn.Sequential([gn.Dense(2, 1, bias=False)])
>>> model[0].grads["weight"] = np.array([[3.0], [4.0]])          # norm 5
>>> round(gn.clip_grad_norm(model, max_norm=1.0), 12)              # returns the norm before clipping
5.0
>>> model[0].grads["weight"].ravel().round(6)                     # scaled by 1 / (5 + 1e-6)
array([0.6, 0.8])
"""
import math

from ..backend import namespace, to_numpy
from ..errors import GlassnetError

CLIP_EPS = 1e-6            # PyTorch's: the scale is max_norm / (total_norm + 1e-6)


def _gradients(model, owner):
    if not hasattr(model, "named_parameters"):
        raise GlassnetError(f"{owner}: expected a glassnet model. Received: {type(model).__name__}")
    found = [(layer, key) for _, layer, key in model.named_parameters() if key in layer.grads]
    if not found:
        raise GlassnetError(f"{owner}: the model holds no gradients; call model.backward first")
    return found


def positive_number(value, name, owner):
    """``value`` as a finite float > 0, else one line naming it."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0 or math.isinf(number):
        raise GlassnetError(f"{owner}: {name} must be a number > 0. Received: {name}={value!r}")
    return number


def gradient_norm(model):
    """The L2 norm of every gradient in ``model`` taken together (a Python float)."""
    total = 0.0
    for layer, key in _gradients(model, "gradient_norm"):
        grad = layer.grads[key]
        total += float(to_numpy(namespace(grad).sum(grad * grad)))
    return math.sqrt(total)


def clip_grad_norm(model, max_norm):
    """Scale every gradient by ``min(1, max_norm / (total_norm + 1e-6))``, as ``clip_grad_norm_`` (which
    multiplies even when the scale is 1); returns the total norm before clipping. A NaN or infinite norm
    is returned and the gradients are left as they are (the divergence check names it)."""
    max_norm = positive_number(max_norm, "max_norm", "clip_grad_norm")
    gradients = _gradients(model, "clip_grad_norm")
    norms = [math.sqrt(float(to_numpy(namespace(layer.grads[key]).sum(layer.grads[key] * layer.grads[key]))))
             for layer, key in gradients]
    total = math.sqrt(sum(n * n for n in norms))          # the norm of the per-parameter norms, as PyTorch
    if not math.isfinite(total):
        return total
    scale = min(max_norm / (total + CLIP_EPS), 1.0)
    for layer, key in gradients:
        layer.grads[key] = layer.grads[key] * scale
    return total


def clip_grad_value(model, clip_value):
    """Clamp every gradient element to ``[-clip_value, clip_value]``, as ``clip_grad_value_``."""
    clip_value = positive_number(clip_value, "clip_value", "clip_grad_value")
    for layer, key in _gradients(model, "clip_grad_value"):
        grad = layer.grads[key]
        layer.grads[key] = namespace(grad).clip(grad, -clip_value, clip_value)
