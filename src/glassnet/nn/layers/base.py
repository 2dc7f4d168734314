"""The contract every glassnet layer follows.

A layer stores its hyperparameters and creates ``params`` in ``__init__``;
``forward(x)`` caches only what ``backward`` needs; ``backward(dy)`` returns
dL/dx and overwrites ``grads`` under the same keys as ``params``.
"""
import math

import numpy as np

from ...backend import float_dtype, namespace, to_namespace, to_numpy
from ...errors import GlassnetError
from ...validation import resolve_dtype
from ..symbolic import connect, is_symbolic


class Layer:
    """Base class: parameter dicts, train/eval mode, dtype and a config for saving.

    Attributes
    ----------
    params : dict[str, np.ndarray]
        Trainable arrays (``"weight"``, ``"bias"``); empty for layers without any.
    grads : dict[str, np.ndarray]
        dL/d(param) from the latest ``backward``, same keys and shapes as ``params``.
    buffers : dict[str, np.ndarray]
        Non-trainable state that is saved with the model (BatchNorm running statistics).
    training : bool
        True in training mode (Dropout drops, BatchNorm uses batch statistics).
    """

    def __init__(self, dtype=np.float64):
        self.dtype = resolve_dtype(dtype, type(self).__name__)
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self.training = True

    # -- the contract -----------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    merges = False     # True for layers that take a list of inputs (Add, Concatenate, Multiply)

    def infer(self, x):
        """``forward`` keeping nothing for backward (``Model.infer``, inference): the same output; a layer
        may do less work here (an activation makes no mask, a max pool no copies for backward)."""
        y = self.forward(x)
        self.clear_cache()
        return y

    def __call__(self, x):
        """On an array: ``forward(x)``. On a symbolic value (``gn.Input`` and what follows): record this
        layer's call in a graph and return its symbolic output (see ``glassnet.nn.symbolic``)."""
        if is_symbolic(x):
            return connect(self, x)
        if isinstance(x, Layer):
            raise GlassnetError(f"{type(self).__name__}: called on a layer ({type(x).__name__}); call it on an "
                                f"array, or on a symbolic value from gn.Input to build a graph")
        return self.forward(x)

    def backward_parameters(self, dy):
        """Fill ``grads`` from ``dy`` without returning dL/dx.

        Used for the first layer during training, whose input needs no gradient;
        layers with a costly input gradient (Conv2D, Dense) skip computing it.
        """
        self.backward(dy)

    def output_shape(self, input_shape):
        """Shape of one sample's output for one sample's ``input_shape`` (no batch axis)."""
        return tuple(input_shape)

    def check_input_shape(self, input_shape):
        """Raise GlassnetError when one sample of ``input_shape`` is not what this layer takes
        (checked when a graph is built; ``forward`` checks arrays)."""

    def get_config(self):
        """Constructor arguments that rebuild this layer (JSON-serialisable)."""
        return {}

    # -- conveniences -------------------------------------------------------------
    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def astype(self, dtype):
        """Convert parameters, gradients and buffers to ``dtype`` in place; returns self."""
        self.dtype = resolve_dtype(dtype, type(self).__name__)
        for store in (self.params, self.grads, self.buffers):
            for key, value in store.items():
                xp = namespace(value)
                store[key] = xp.astype(value, float_dtype(xp, self.dtype))
        return self

    def to(self, xp, device=None):
        """Move parameters, gradients and buffers into array namespace ``xp`` on ``device``
        (``numpy`` brings them back to the host); returns self. Caches are dropped."""
        for store in (self.params, self.grads, self.buffers):
            for key, value in store.items():
                store[key] = to_namespace(to_numpy(value), xp, device)
        self.clear_cache()
        return self

    def clear_cache(self):
        """Forget what the last forward kept for backward."""
        for name in ("_cache", "_x", "_input_shape", "_scaled_mask"):
            if hasattr(self, name):
                setattr(self, name, None)

    def num_params(self):
        return int(sum(math.prod(p.shape) for p in self.params.values()))

    def _require_cache(self, cached):
        if cached is None:
            raise GlassnetError(f"{type(self).__name__}: backward called before forward")

    def _expect_sample(self, shape, expected, ndim, channels=None):
        """check_input_shape's test: ``ndim`` axes per sample and, when given, ``channels`` on the first."""
        if len(shape) != ndim or (channels is not None and shape[0] != channels):
            raise GlassnetError(f"{type(self).__name__}: expected one sample of shape {expected}. "
                                f"Received: {tuple(shape)}")

    def _check_grad_shape(self, dy, expected_shape):
        if tuple(dy.shape) != tuple(expected_shape):
            raise GlassnetError(
                f"{type(self).__name__}.backward: expected an upstream gradient of shape "
                f"{tuple(expected_shape)}, received shape {tuple(dy.shape)}"
            )

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
