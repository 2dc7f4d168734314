"""Argument and input checks shared by layers, losses and optimizers.

Each helper raises ``GlassnetError`` (a ``ValueError``) whose message names the
owner (layer or function), the argument, what was expected and what was received.
"""
import numbers

import numpy as np

from .backend import _compat, float_dtype, namespace
from .errors import GlassnetError, ShapeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def resolve_dtype(dtype, owner):
    """Return ``np.float32`` or ``np.float64`` for ``dtype``; anything else is an error."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in FLOAT_DTYPES:
        raise GlassnetError(
            f"{owner}: dtype must be float32 or float64. Received: dtype={dtype!r}"
        )
    return resolved


def positive_int(value, name, owner):
    """``value`` as an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise GlassnetError(f"{owner}: {name} must be a positive integer. Received: {name}={value!r}")
    return int(value)


def int_pair(value, name, owner, minimum=1):
    """``value`` (an int or a pair of ints, each >= minimum) as a tuple of two ints."""
    pair = (value, value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    ok = (
        isinstance(pair, (tuple, list))
        and len(pair) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= minimum for v in pair)
    )
    if not ok:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise GlassnetError(
            f"{owner}: {name} must be {kind} or a pair of them. Received: {name}={value!r}"
        )
    return int(pair[0]), int(pair[1])


def probability(value, name, owner, allow_one=False):
    """``value`` as a float in [0, 1) (or [0, 1] when ``allow_one``)."""
    upper_ok = (lambda v: v <= 1.0) if allow_one else (lambda v: v < 1.0)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0.0 <= value and upper_ok(value)):
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise GlassnetError(f"{owner}: {name} must be a number in {interval}. Received: {name}={value!r}")
    return float(value)


def non_negative_number(value, name, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise GlassnetError(f"{owner}: {name} must be a finite number >= 0. Received: {name}={value!r}")
    return float(value)


def positive_number(value, name, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise GlassnetError(f"{owner}: {name} must be a finite number > 0. Received: {name}={value!r}")
    return float(value)


def foreign_array(x):
    """True for an array of another Array API library (array-api-strict, PyTorch, CuPy, ...)."""
    if isinstance(x, np.ndarray) or not (hasattr(x, "shape") and hasattr(x, "dtype")):
        return False
    return _compat().is_array_api_obj(x)


def _in_precision(x, dtype):
    """A foreign array ``x`` in its own library with ``dtype``'s precision (a copy only when it differs)."""
    xp = namespace(x)
    wanted = float_dtype(xp, dtype)
    return x if x.dtype == wanted else xp.astype(x, wanted)


def as_float_array(x, owner, dtype, name="input"):
    """``x`` as a floating array of ``dtype``'s precision; integer, bool, complex and object arrays are refused.

    NumPy arrays and anything array-like become NumPy arrays; an array of another Array API
    library stays in its library and on its device. Float inputs of another precision are
    converted (a float64 batch fed to a float32 model becomes float32), never the other way
    round silently.
    """
    if type(x) is np.ndarray and x.dtype == dtype:      # the common case, answered first
        return x
    if foreign_array(x):
        if not namespace(x).isdtype(x.dtype, "real floating"):
            raise GlassnetError(f"{owner}: {name} must be a floating-point array. Received: dtype={x.dtype}")
        return _in_precision(x, dtype)
    array = np.asarray(x)
    if array.dtype.kind != "f":
        raise GlassnetError(
            f"{owner}: {name} must be a floating-point array. Received: dtype={array.dtype}"
            + (" (convert with x.astype(np.float32) after scaling)" if array.dtype.kind in "iub" else "")
        )
    return array.astype(dtype, copy=False)


def as_gradient(dy, dtype):
    """An incoming gradient in ``dtype``'s precision, in its own library (NumPy for array-likes)."""
    if type(dy) is np.ndarray and dy.dtype == dtype:
        return dy
    if foreign_array(dy):
        return _in_precision(dy, dtype)
    return np.asarray(dy, dtype=dtype)


def check_batch(x, owner, expected, channels_axis=None, channels=None, unit="channel(s)"):
    """Check ``x.ndim`` and, when given, the channel count, with a readable message.

    ``expected`` is a human-readable shape such as ``"(N, 3, H, W)"``.
    """
    ndim = expected.count(",") + 1
    if x.ndim != ndim:
        raise ShapeError(
            f"{owner}: expected a {ndim}-dimensional input of shape {expected}, "
            f"received shape {tuple(x.shape)}"
            + (" (add a batch axis with x[None] for a single sample)" if x.ndim == ndim - 1 else "")
        )
    if x.shape[0] == 0:
        raise ShapeError(f"{owner}: received an empty batch, shape {tuple(x.shape)}")
    if channels_axis is not None and x.shape[channels_axis] != channels:
        hint = ""
        if x.shape[-1] == channels:
            hint = " (looks channels-last: use x.transpose(0, 3, 1, 2))"
        raise ShapeError(
            f"{owner}: expected input of shape {expected} with {channels} {unit} "
            f"on axis {channels_axis}, received shape {tuple(x.shape)}{hint}"
        )


def check_nonempty(x, owner, min_ndim, expected):
    """At least ``min_ndim`` axes and no zero-length axis, e.g. for activations and Flatten."""
    if x.ndim < min_ndim or 0 in tuple(x.shape):
        raise ShapeError(f"{owner}: expected a non-empty input of shape {expected}, received shape {tuple(x.shape)}")


def make_rng(rng, owner="glassnet"):
    """A ``np.random.Generator`` from a Generator, an int seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng >= 0):
        return np.random.default_rng(rng)
    raise GlassnetError(
        f"{owner}: rng must be a numpy.random.Generator, a non-negative int seed or None. Received: rng={rng!r}"
    )
