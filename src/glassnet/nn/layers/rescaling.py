"""Fixed maps of the input: a scale and shift that is not learned (Keras' ``Rescaling`` and
``Normalization`` at a model's entrance), and a reshape of each sample (squeeze-and-excitation's
(N, C) -> (N, C, 1, 1))."""
import math

import numpy as np

from ...backend import beside, namespace
from ...errors import GlassnetError
from ...validation import as_float_array, as_gradient, check_nonempty
from .base import Layer


def _values(value, name):
    """A float, or a list of floats (one per channel), checked finite."""
    many = isinstance(value, (list, tuple, np.ndarray))
    values = np.asarray(value, dtype=np.float64).reshape(-1) if many else None
    try:
        values = values if many else np.asarray([float(value)])
    except (TypeError, ValueError):
        raise GlassnetError(f"Rescaling: {name} must be a float or a list of floats (one per channel). "
                            f"Received: {value!r}") from None
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise GlassnetError(f"Rescaling: {name} must be finite and not empty. Received: {value!r}")
    return [float(v) for v in values] if many else float(values[0])


class Rescaling(Layer):
    """``y = x * scale + offset`` with ``scale`` and ``offset`` fixed (saved with the model, never trained).

    Each is a float, or a list of C floats, one per channel (axis 1 of (N, C, ...)). Keras' ``Rescaling``
    is this layer; Keras' ``Normalization(mean, variance)`` is ``Rescaling(1 / s, -mean / s)`` with
    ``s = max(sqrt(variance), 1e-7)``. Shapes: input (N, C, ...) -> the same.

    >>> gn.Rescaling(1 / 255)(np.array([[0.0, 255.0]]))
    array([[0., 1.]])
    """

    def __init__(self, scale=1.0, offset=0.0, dtype=np.float64):
        super().__init__(dtype)
        self.scale, self.offset = _values(scale, "scale"), _values(offset, "offset")
        sizes = {len(v) for v in (self.scale, self.offset) if isinstance(v, list)}
        if len(sizes) > 1:
            raise GlassnetError(f"Rescaling: scale and offset give different numbers of channels. "
                                f"Received: {len(self.scale)} and {len(self.offset)}")
        self.channels = sizes.pop() if sizes else None
        self._input_shape = None

    def get_config(self):
        return {"scale": self.scale, "offset": self.offset}

    def check_input_shape(self, input_shape):
        if self.channels is not None:
            self._expect_sample(input_shape, f"({self.channels}, ...)", max(1, len(input_shape)), self.channels)

    def _shaped(self, value, x):
        """``value`` as an array beside ``x`` that broadcasts over it: (1, C, 1, ...) or a single value."""
        shape = (1, len(value)) + (1,) * (x.ndim - 2) if isinstance(value, list) else ()
        return beside(x, np.asarray(value, dtype=self.dtype).reshape(shape))

    def forward(self, x):
        x = as_float_array(x, "Rescaling", self.dtype)
        check_nonempty(x, "Rescaling", 2 if self.channels else 1, f"(N, {self.channels or 'C'}, ...)")
        if self.channels is not None and x.shape[1] != self.channels:
            raise GlassnetError(f"Rescaling: expected {self.channels} channels on axis 1 (a scale and offset "
                                f"each). Received: input of shape {tuple(x.shape)}")
        self._input_shape = tuple(x.shape)
        return x * self._shaped(self.scale, x) + self._shaped(self.offset, x)

    def backward(self, dy):
        """dy: input shape -> dL/dx."""
        self._require_cache(self._input_shape)
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, self._input_shape)
        # y = scale * x + offset  =>  dL/dx = scale * dy
        return dy * self._shaped(self.scale, dy)


class Reshape(Layer):
    """Each sample reshaped to ``shape`` in C order (as ``x.view(N, *shape)`` in PyTorch); one entry may
    be -1 (worked out from the others). Shapes: input (N, ...) -> (N, *shape), the same number of values.

    >>> gn.Reshape((3, 1, 1))(np.ones((2, 3))).shape       # squeeze-and-excitation's gate, for Multiply
    (2, 3, 1, 1)
    """

    def __init__(self, shape, dtype=np.float64):
        super().__init__(dtype)
        entries = list(shape) if isinstance(shape, (list, tuple)) else None
        if not entries or any(isinstance(e, bool) or not isinstance(e, (int, np.integer)) or (e < 1 and e != -1)
                              for e in entries) or entries.count(-1) > 1:
            raise GlassnetError(f"Reshape: shape must be a non-empty list of positive ints, at most one of them "
                                f"-1. Received: {shape!r}")
        self.shape = tuple(int(e) for e in entries)
        self._input_shape = None

    def get_config(self):
        return {"shape": list(self.shape)}

    def output_shape(self, input_shape):
        size = math.prod(input_shape)
        known = math.prod(e for e in self.shape if e != -1)
        if (-1 in self.shape and size % known) or (-1 not in self.shape and known != size):
            raise GlassnetError(f"Reshape: one sample of shape {tuple(input_shape)} ({size} values) cannot "
                                f"become {self.shape}")
        return tuple(size // known if e == -1 else e for e in self.shape)

    def check_input_shape(self, input_shape):
        self.output_shape(input_shape)

    def forward(self, x):
        x = as_float_array(x, "Reshape", self.dtype)
        check_nonempty(x, "Reshape", 1, "(N, ...)")
        self._input_shape = tuple(x.shape)
        out = self.output_shape(self._input_shape[1:])
        return namespace(x).reshape(x, (x.shape[0],) + out)

    def backward(self, dy):
        """dy: (N, *shape) -> (N, input's shape): the same values, back in the input's shape."""
        self._require_cache(self._input_shape)
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, self._input_shape[:1] + self.output_shape(self._input_shape[1:]))
        # y = x rearranged, value for value  =>  dL/dx = dy arranged back
        return namespace(dy).reshape(dy, self._input_shape)
