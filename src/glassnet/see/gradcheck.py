"""Finite-difference gradient checks a learner can run on their own model."""
import copy

import numpy as np

from ..backend import to_namespace, to_numpy
from ..errors import GlassnetError, GradcheckError
from ..nn.layers.base import Layer
from ..models.model import Model
from ..models.sequential import Sequential


def relative_error(analytic, numeric, floor_fraction=1e-3, atol=1e-6):
    """Worst element-wise ``|a - n| / max(|a|, |n|, floor)``.

    ``floor = max(floor_fraction * max(|a|, |n|) over the array, atol)``: an entry whose
    gradient is (near) zero is judged against the array's scale, or against ``atol``
    when the whole gradient is ~0 (a conv bias before BatchNorm), instead of dividing
    by ~0 where finite-difference round-off dominates.

    >>> round(relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])), 6)   # |2 - 2.2| / 2.2
    0.090909
    """
    if analytic.size == 0:
        return 0.0
    magnitude = np.maximum(np.abs(analytic), np.abs(numeric))
    floor = max(floor_fraction * float(magnitude.max()), atol)
    return float(np.max(np.abs(analytic - numeric) / np.maximum(magnitude, floor)))


def _random_states(model):
    """Snapshot of every layer generator (Dropout), so each forward draws the same masks."""
    return [(layer, copy.deepcopy(layer.rng.bit_generator.state))
            for layer in model.layers if isinstance(getattr(layer, "rng", None), np.random.Generator)]


def gradcheck(model, x, target, loss, eps=1e-5, tol=1e-5, raise_on_failure=True):
    """Compare every analytic gradient with central finite differences in float64.

    The check runs on a float64 copy of ``model`` (the model itself is left untouched),
    in the model's current train/eval mode, with any Dropout masks held fixed.

    Parameters
    ----------
    model : Sequential, Model (a graph) or a single Layer
    x : array, the model input, e.g. (N, C, H, W)
    target : the loss target for ``x``
    loss : a glassnet loss (``MSE()``, ``SoftmaxCrossEntropy()``, ...)
    eps : finite-difference step; ``dL/dp ~ (L(p + eps) - L(p - eps)) / (2 eps)``
    tol : largest relative error accepted (see ``relative_error``)
    raise_on_failure : raise ``GradcheckError`` naming the worst offenders when any error > tol

    Returns
    -------
    dict mapping "input" and every parameter name ("0.weight", "0.bias", ...) to its
    worst relative error.

    Examples
    --------
    >>> model = gn.Sequential([gn.Dense(3, 2, rng=0), gn.Tanh()])
    >>> errors = gn.gradcheck(model, np.ones((2, 3)), np.zeros((2, 2)), gn.MSE())
    >>> sorted(errors)
    ['0.bias', '0.weight', 'input']
    >>> max(errors.values()) < 1e-7
    True
    """
    if isinstance(model, Layer):
        model = Sequential([copy.deepcopy(model)])
    elif isinstance(model, Model):
        model = copy.deepcopy(model)
    else:
        raise GlassnetError(f"gradcheck: expected a Sequential, a Model or a Layer. Received: {type(model).__name__}")
    model.astype(np.float64)
    xp, device = model.place()
    x = to_namespace(np.array(to_numpy(x), dtype=np.float64), xp, device)  # a private copy we perturb
    loss = copy.deepcopy(loss)
    states = _random_states(model)

    def loss_value():
        for layer, state in states:
            layer.rng.bit_generator.state = copy.deepcopy(state)
        return loss.forward(model.forward(x), target)

    loss_value()
    analytic = {"input": model.backward(loss.backward())}
    analytic.update({name: to_numpy(grad).copy() for name, grad in model.gradients().items()})
    arrays = {"input": x}
    arrays.update(model.parameters())

    errors = {}
    for name, array in arrays.items():                # the live arrays, perturbed in place one entry at a time
        numeric = np.zeros(tuple(array.shape))
        for index in np.ndindex(*numeric.shape):
            original = float(array[index])
            array[index] = original + eps
            plus = loss_value()
            array[index] = original - eps
            minus = loss_value()
            array[index] = original
            numeric[index] = (plus - minus) / (2 * eps)
        errors[name] = relative_error(to_numpy(analytic[name]), numeric)

    failing = {name: err for name, err in errors.items() if not err <= tol}
    if failing and raise_on_failure:
        worst = ", ".join(f"{name}: {err:.3g}" for name, err in sorted(failing.items(), key=lambda kv: -kv[1]))
        raise GradcheckError(f"gradcheck: analytic and numeric gradients disagree beyond tol={tol:g}: {worst}")
    return errors
