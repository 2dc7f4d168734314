"""Merges: the layers where branches of a graph meet. Each takes a list of arrays and, backward, gives
one gradient per input.

- ``Add``: ``y = a + b + ...`` (ResNet's shortcut); every input receives ``dy`` itself.
- ``Multiply``: ``y = a * b * ...`` (gates, squeeze-and-excitation); input k receives ``dy`` times the
  product of the others.
- ``Concatenate(axis=1)``: the inputs side by side along ``axis`` (Inception, DenseNet; axis 1 is the
  channels of NCHW); input k receives its own slice of ``dy``.

Add and Multiply broadcast as NumPy, PyTorch and Keras do, over inputs with the same number of axes:
on each axis the sizes are equal or 1 (squeeze-and-excitation multiplies (N, C, H, W) by (N, C, 1, 1));
an input that was broadcast receives its gradient summed over the axes it was stretched along. The batch
sizes must be equal. Concatenate's inputs agree on every axis but ``axis``. A graph that breaks this fails
when it is built, naming the shapes.
"""
import numpy as np

from ...backend import namespace
from ...errors import GlassnetError
from ...validation import as_float_array, as_gradient
from .base import Layer

MAX_MERGE_INPUTS = 1024


class _Merge(Layer):
    """Shared plumbing: a list of same-shaped float arrays in, one array out."""

    merges = True

    def __init__(self, dtype=np.float64):
        super().__init__(dtype)
        self._cache = None

    def _inputs(self, xs):
        name = type(self).__name__
        if not isinstance(xs, (list, tuple)) or not 2 <= len(xs) <= MAX_MERGE_INPUTS:
            raise GlassnetError(f"{name}: expected a list of 2 to {MAX_MERGE_INPUTS} arrays. "
                                f"Received: {type(xs).__name__}")
        arrays = [as_float_array(x, name, self.dtype, name=f"input {k}") for k, x in enumerate(xs)]
        self._check_shapes([tuple(a.shape) for a in arrays], batch=True)
        return arrays

    def check_input_shape(self, shapes):
        self._check_shapes([tuple(s) for s in shapes], batch=False)

    def _check_shapes(self, shapes, batch):
        self._broadcast(shapes, batch)

    def _broadcast(self, shapes, batch):
        """The shape the inputs broadcast to (sizes equal or 1 on each axis; batch sizes equal)."""
        what = "batches" if batch else "one sample's shapes"
        if any(len(shape) != len(shapes[0]) for shape in shapes) or (
                batch and any(shape[0] != shapes[0][0] for shape in shapes)):
            raise GlassnetError(f"{type(self).__name__}: inputs must have the same number of axes"
                                f"{' and batch size' if batch else ''}. Received {what}: "
                                f"{', '.join(map(str, shapes))}")
        out = tuple(max(sizes) for sizes in zip(*shapes))
        if any(size not in (1, target) for shape in shapes for size, target in zip(shape, out)):
            raise GlassnetError(f"{type(self).__name__}: inputs must have equal sizes, or 1, on each axis "
                                f"(as NumPy broadcasts). Received {what}: {', '.join(map(str, shapes))}")
        return out

    def output_shape(self, input_shapes):
        return self._broadcast([tuple(s) for s in input_shapes], batch=False)

    @staticmethod
    def _unbroadcast(grad, shape):
        """``grad`` summed over the axes where ``shape`` has 1 and ``grad`` does not (keeping them)."""
        axes = tuple(a for a, (size, full) in enumerate(zip(shape, grad.shape)) if size == 1 and full != 1)
        return namespace(grad).sum(grad, axis=axes, keepdims=True) if axes else grad

    def backward_parameters(self, dy):
        self.backward(dy)


class Add(_Merge):
    """``y = x_0 + x_1 + ...`` element by element, broadcast. Inputs (N, ...) -> output (N, ...)."""

    def forward(self, xs):
        arrays = self._inputs(xs)
        out = arrays[0] + arrays[1]
        for array in arrays[2:]:
            fits = all(size in (1, full) for size, full in zip(array.shape, out.shape))
            if fits:
                out += array                          # in place into the fresh sum: no third array
            else:
                out = out + array                     # a later input is the larger one
        self._cache = [tuple(a.shape) for a in arrays]
        return out

    def backward(self, dy):
        """dy: (N, ...) -> [dL/dx_k for each input]: ``dy`` itself (not copies), summed where x_k was broadcast."""
        self._require_cache(self._cache)
        shapes = self._cache
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, self._broadcast(shapes, batch=True))
        # y = sum_k x_k  =>  dy/dx_k = 1  =>  dL/dx_k = dy (summed over the axes x_k was stretched along)
        return [self._unbroadcast(dy, shape) for shape in shapes]


class Multiply(_Merge):
    """``y = x_0 * x_1 * ...`` element by element, broadcast. Inputs (N, ...) -> output (N, ...):
    squeeze-and-excitation multiplies (N, C, H, W) by (N, C, 1, 1)."""

    def forward(self, xs):
        arrays = self._inputs(xs)
        self._cache = arrays
        out = arrays[0] * arrays[1]
        for array in arrays[2:]:
            out = out * array
        return out

    def backward(self, dy):
        """dy: (N, ...) -> [dL/dx_k]: ``dy`` times the product of the others, summed where x_k was broadcast."""
        self._require_cache(self._cache)
        arrays = self._cache
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, self._broadcast([tuple(a.shape) for a in arrays], batch=True))
        # y = prod_j x_j  =>  dL/dx_k = dy * prod_{j != k} x_j (products of the others, never a division),
        # summed over the axes x_k was stretched along
        grads = []
        for k in range(len(arrays)):
            grad = dy
            for j, array in enumerate(arrays):
                if j != k:
                    grad = grad * array
            grads.append(self._unbroadcast(grad, tuple(arrays[k].shape)))
        return grads


class Concatenate(_Merge):
    """The inputs joined along ``axis`` (default 1: the channels of (N, C, H, W)).

    Inputs (N, C_k, H, W) -> output (N, sum_k C_k, H, W) for axis 1; every other axis must agree.
    ``axis`` counts the batch axis, as NumPy and PyTorch do; negative values count from the end;
    the batch axis itself (0) cannot be joined.
    """

    def __init__(self, axis=1, dtype=np.float64):
        super().__init__(dtype)
        if not isinstance(axis, int) or isinstance(axis, bool) or axis == 0:
            raise GlassnetError(f"Concatenate: axis must be a non-zero int (0 is the batch axis). Received: {axis!r}")
        self.axis = axis

    def get_config(self):
        return {"axis": self.axis}

    def _sample_axis(self, ndim):
        """The axis within one sample (batch axis removed) for samples of ``ndim`` axes."""
        axis = self.axis - 1 if self.axis > 0 else self.axis + ndim
        if not 0 <= axis < ndim:
            raise GlassnetError(f"Concatenate: axis={self.axis} is outside samples of {ndim} axes (plus the batch)")
        return axis

    def _check_shapes(self, shapes, batch):
        if any(len(shape) != len(shapes[0]) for shape in shapes):
            raise GlassnetError(f"Concatenate: inputs must have the same number of axes. "
                                f"Received: {', '.join(map(str, shapes))}")
        axis = self._sample_axis(len(shapes[0]) - batch) + batch
        drop = lambda shape: shape[:axis] + shape[axis + 1:]  # noqa: E731
        if any(drop(shape) != drop(shapes[0]) for shape in shapes):
            raise GlassnetError(f"Concatenate: inputs must agree on every axis but axis {self.axis}. "
                                f"Received: {', '.join(map(str, shapes))}")

    def output_shape(self, input_shapes):
        shapes = [tuple(s) for s in input_shapes]
        axis = self._sample_axis(len(shapes[0]))
        joined = sum(shape[axis] for shape in shapes)
        return shapes[0][:axis] + (joined,) + shapes[0][axis + 1:]

    def forward(self, xs):
        arrays = self._inputs(xs)
        axis = self._sample_axis(arrays[0].ndim - 1) + 1
        self._cache = (axis, [a.shape[axis] for a in arrays], tuple(arrays[0].shape))
        return namespace(*arrays).concat(arrays, axis=axis)

    def backward(self, dy):
        """dy: the output's gradient -> [dL/dx_k]: input k's slice of ``dy`` along ``axis``."""
        self._require_cache(self._cache)
        axis, sizes, first_shape = self._cache
        dy = as_gradient(dy, self.dtype)
        expected = first_shape[:axis] + (sum(sizes),) + first_shape[axis + 1:]
        self._check_grad_shape(dy, expected)
        # y = [x_0, x_1, ...] along axis  =>  dL/dx_k = dy[..., start_k:start_k + size_k, ...]
        grads, start = [], 0
        for size in sizes:
            key = (slice(None),) * axis + (slice(start, start + size), Ellipsis)
            grads.append(dy[key])
            start += size
        return grads
