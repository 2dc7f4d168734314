"""Fully connected layer and the Flatten that usually precedes it."""
import math

import numpy as np

from .. import init
from ...backend import namespace, same_place
from ...errors import GlassnetError
from ...validation import as_float_array, as_gradient, check_batch, check_nonempty, make_rng, positive_int
from .base import Layer


class Dense(Layer):
    """Fully connected layer: ``y = x @ weight + bias``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    weight_init : "torch" (default), "he" or "glorot"
    rng : np.random.Generator, int seed or None
    dtype : float64 (default) or float32

    Shapes
    ------
    Input (N, in_features); output (N, out_features).
    weight (in_features, out_features); bias (out_features,).

    Examples
    --------
    >>> Dense(4, 2, rng=0)(np.ones((3, 4))).shape
    (3, 2)
    """

    fresh_output = True       # forward returns a new array, never a view of its input (Graph.infer)

    def __init__(self, in_features, out_features, bias=True, weight_init="torch", rng=None, dtype=np.float64):
        super().__init__(dtype)
        self.in_features = positive_int(in_features, "in_features", "Dense")
        self.out_features = positive_int(out_features, "out_features", "Dense")
        self.use_bias = bool(bias)
        self.weight_init = weight_init
        generator = make_rng(rng, "Dense")
        shape = (self.in_features, self.out_features)
        self.params["weight"] = init.initial_weight(
            weight_init, shape, self.in_features, self.out_features, generator, self.dtype, "Dense")
        if self.use_bias:
            self.params["bias"] = init.initial_bias(weight_init, (self.out_features,), self.in_features,
                                                    generator, self.dtype)
        self._x = None

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.use_bias}

    def check_input_shape(self, input_shape):
        self._expect_sample(input_shape, f"({self.in_features},)", 1, self.in_features)

    def output_shape(self, input_shape):
        return (self.out_features,)

    def forward(self, x):
        """x: (N, in_features) -> (N, out_features)."""
        x = as_float_array(x, "Dense", self.dtype)
        check_batch(x, "Dense", f"(N, {self.in_features})", channels_axis=1, channels=self.in_features,
                    unit="feature(s)")
        same_place(x, self.params["weight"], "input", "Dense")
        self._x = x
        out = x @ self.params["weight"]
        if self.use_bias:
            out += self.params["bias"]
        return out

    def backward(self, dy):
        """dy: (N, out_features) -> dL/dx: (N, in_features)."""
        dy = self._parameter_grads(dy)
        return dy @ namespace(dy).matrix_transpose(self.params["weight"])  # y = x W + b  =>  dx = dy W^T

    def backward_parameters(self, dy):
        """Like ``backward`` without dL/dx (the first layer's input needs no gradient)."""
        self._parameter_grads(dy)

    def _parameter_grads(self, dy):
        self._require_cache(self._x)
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, (self._x.shape[0], self.out_features))
        xp = namespace(dy)
        # y = x W + b  =>  dW = x^T dy,  db = sum_n dy
        self.grads["weight"] = xp.matrix_transpose(self._x) @ dy
        if self.use_bias:
            self.grads["bias"] = xp.sum(dy, axis=0)
        return dy


class Flatten(Layer):
    """Flatten every axis after the batch axis, in C, H, W order (as PyTorch).

    Shapes: input (N, d1, d2, ...) -> output (N, d1 * d2 * ...).

    >>> gn.Flatten()(np.arange(8.0).reshape(1, 2, 2, 2))    # channel 0's pixels first, then channel 1's
    array([[0., 1., 2., 3., 4., 5., 6., 7.]])
    """

    def __init__(self, dtype=np.float64):
        super().__init__(dtype)
        self._input_shape = None

    def check_input_shape(self, input_shape):
        if len(input_shape) < 1:
            raise GlassnetError(f"Flatten: expected one sample of shape (C, ...). Received: {tuple(input_shape)}")

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x):
        x = as_float_array(x, "Flatten", self.dtype)
        check_nonempty(x, "Flatten", 2, "(N, C, ...)")
        self._input_shape = tuple(x.shape)
        return namespace(x).reshape(x, (x.shape[0], -1))  # (N, C*H*W)

    def backward(self, dy):
        self._require_cache(self._input_shape)
        dy = as_gradient(dy, self.dtype)
        N = self._input_shape[0]
        self._check_grad_shape(dy, (N, math.prod(self._input_shape[1:])))
        return namespace(dy).reshape(dy, self._input_shape)  # (N, C, H, W)
