"""The activations of modern architectures (MobileNet's ReLU6, EfficientNet's SiLU, transformers'
GELU, ...), as PyTorch defines them, derivatives at the kinks included. Each is stable at +-1e4 and in
float32: no exp of a large positive number is ever taken."""
import math

import numpy as np

from ...backend import namespace
from ...errors import GlassnetError
from ...validation import (as_float_array, as_gradient, check_nonempty, non_negative_number, positive_int,
                           positive_number)
from .activations import _Activation, log_softmax, sigmoid
from .base import Layer
from .special import normal_cdf

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class ReLU6(_Activation):
    """``y = min(max(x, 0), 6)`` (MobileNet); derivative 1 on 0 < x < 6, else 0 (as PyTorch)."""

    monotone = True

    def _apply(self, x):
        return namespace(x).clip(x, 0.0, 6.0), x

    def _value(self, x, in_place):
        return np.clip(x, 0.0, 6.0, out=x) if in_place else namespace(x).clip(x, 0.0, 6.0)

    def _input_grad(self, dy, x):
        xp = namespace(dy)
        return dy * xp.astype(xp.logical_and(x > 0, x < 6), dy.dtype)


class ELU(_Activation):
    """``y = x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise; derivative ``alpha * exp(x)`` for x <= 0."""

    def __init__(self, alpha=1.0, dtype=np.float64):
        super().__init__(dtype)
        self.alpha = non_negative_number(alpha, "alpha", "ELU")

    def get_config(self):
        return {"alpha": self.alpha}

    scale, negative_scale = 1.0, 1.0

    def _apply(self, x):
        xp = namespace(x)
        negative = self.alpha * xp.expm1(xp.minimum(x, 0.0))       # exp of at most 0: never overflows
        return self.scale * xp.where(x > 0, x, negative), x

    def _input_grad(self, dy, x):
        xp = namespace(dy)
        slope = xp.where(x > 0, 1.0, self.alpha * xp.exp(xp.minimum(x, 0.0)))   # dy/dx = 1 or alpha e^x
        return dy * (self.scale * slope)


class SELU(ELU):
    """``y = scale * ELU(x, alpha)`` with SELU's fixed alpha = 1.67326... and scale = 1.05070..."""

    scale = SELU_SCALE

    def __init__(self, dtype=np.float64):
        super().__init__(SELU_ALPHA, dtype)

    def get_config(self):
        return {}


class Softplus(_Activation):
    """``y = log(1 + exp(beta * x)) / beta``, and ``y = x`` where ``beta * x > threshold`` (as PyTorch);
    derivative ``sigmoid(beta * x)`` (1 past the threshold)."""

    def __init__(self, beta=1.0, threshold=20.0, dtype=np.float64):
        super().__init__(dtype)
        self.beta = positive_number(beta, "beta", "Softplus")
        self.threshold = float(threshold)

    def get_config(self):
        return {"beta": self.beta, "threshold": self.threshold}

    def _apply(self, x):
        xp = namespace(x)
        z = x * self.beta
        # log(1 + e^z) = max(z, 0) + log(1 + e^-|z|): no overflow for any z
        smooth = (xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))) / self.beta
        return xp.where(z > self.threshold, x, smooth), x

    def _input_grad(self, dy, x):
        z = x * self.beta
        return namespace(dy).where(z > self.threshold, dy, dy * sigmoid(z))


class Softsign(_Activation):
    """``y = x / (1 + |x|)``; derivative ``1 / (1 + |x|)^2``."""

    def _apply(self, x):
        return x / (1.0 + namespace(x).abs(x)), x

    def _input_grad(self, dy, x):
        denominator = 1.0 + namespace(dy).abs(x)
        return dy / (denominator * denominator)


class SiLU(_Activation):
    """``y = x * sigmoid(x)`` (swish, EfficientNet); derivative ``s + x s (1 - s)``."""

    def _apply(self, x):
        return x * sigmoid(x), x

    def _input_grad(self, dy, x):
        s = sigmoid(x)
        return dy * (s * (1.0 + x * (1.0 - s)))


class GELU(_Activation):
    """``y = x * Phi(x)`` with Phi the standard normal CDF (``approximate="none"``), or PyTorch's tanh form
    ``y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (``approximate="tanh"``)."""

    def __init__(self, approximate="none", dtype=np.float64):
        super().__init__(dtype)
        if approximate not in ("none", "tanh"):
            raise GlassnetError(f"GELU: approximate must be 'none' or 'tanh'. Received: {approximate!r}")
        self.approximate = approximate

    def get_config(self):
        return {"approximate": self.approximate}

    def _apply(self, x):
        xp = namespace(x)
        if self.approximate == "tanh":
            return 0.5 * x * (1.0 + xp.tanh(_tanh_inner(x))), x
        return x * normal_cdf(x), x

    def _input_grad(self, dy, x):
        xp = namespace(dy)
        if self.approximate == "tanh":
            inner = _tanh_inner(x)
            t = xp.tanh(inner)
            # d/dx [x/2 (1 + t)] = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), with
            # 1 - t^2 = 4 e / (1 + e)^2, e = exp(-2|u|): exact in the tails, where 1 - t * t cancels
            e = xp.exp(-2.0 * xp.abs(inner))
            inner_slope = math.sqrt(2.0 / math.pi) * (1.0 + 3.0 * 0.044715 * x * x)
            return dy * (0.5 * (1.0 + t) + 0.5 * x * (4.0 * e / ((1.0 + e) * (1.0 + e))) * inner_slope)
        # d/dx [x Phi(x)] = Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi)
        density = xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return dy * (normal_cdf(x) + x * density)


def _tanh_inner(x):
    return math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)


class Hardsigmoid(_Activation):
    """``y = clip(x / 6 + 1/2, 0, 1)``; derivative 1/6 on -3 < x < 3, else 0 (as PyTorch, except that
    PyTorch's backward multiplies by 1/6 rounded to float32 even in float64: 3e-8 relative apart)."""

    def _apply(self, x):
        return namespace(x).clip(x / 6.0 + 0.5, 0.0, 1.0), x

    def _input_grad(self, dy, x):
        xp = namespace(dy)
        return dy * xp.astype(xp.logical_and(x > -3, x < 3), dy.dtype) / 6.0


class Hardswish(_Activation):
    """``y = x * clip(x + 3, 0, 6) / 6`` (MobileNetV3); derivative 0 for x <= -3, ``x/3 + 1/2`` for
    -3 < x < 3, 1 from 3 on (PyTorch's choice at the kinks)."""

    def _apply(self, x):
        return x * namespace(x).clip(x + 3.0, 0.0, 6.0) / 6.0, x

    def _input_grad(self, dy, x):
        xp = namespace(dy)
        slope = xp.where(x <= -3, 0.0, xp.where(x < 3, x / 3.0 + 0.5, 1.0))
        return dy * slope


class LogSoftmax(_Activation):
    """``y = x - log(sum_j exp(x_j))`` over axis 1 (classes, or channels), computed shifted by the max."""

    min_ndim, expected_shape = 2, "(N, K, ...)"

    def _apply(self, x):
        y = log_softmax(x, axis=1)
        return y, y

    def _input_grad(self, dy, y):
        # dy_k/dx_j = delta_kj - softmax_j  =>  dx = dy - softmax * sum_k dy_k
        xp = namespace(dy)
        return dy - xp.exp(y) * xp.sum(dy, axis=1, keepdims=True)


class PReLU(Layer):
    """``y = x`` for x > 0, ``weight * x`` otherwise, with a learned slope: one shared
    (``num_parameters=1``) or one per channel (axis 1, ``num_parameters = C``), as PyTorch's ``nn.PReLU``.

    Shapes: input (N, C, ...) -> same; weight (num_parameters,), initialised to ``init``.
    """

    def __init__(self, num_parameters=1, init=0.25, dtype=np.float64):
        super().__init__(dtype)
        self.num_parameters = positive_int(num_parameters, "num_parameters", "PReLU")
        self.init = float(init)
        self.params["weight"] = np.full((self.num_parameters,), self.init, dtype=self.dtype)
        self._cache = None

    def get_config(self):
        return {"num_parameters": self.num_parameters, "init": self.init}

    def check_input_shape(self, input_shape):
        if self.num_parameters > 1 and (len(input_shape) < 1 or input_shape[0] != self.num_parameters):
            self._expect_sample(input_shape, f"({self.num_parameters}, ...)", max(1, len(input_shape)),
                                self.num_parameters)

    def _slopes(self, x):
        """The weight shaped to broadcast over x: (1, C, 1, ...) or a single value."""
        xp = namespace(x)
        weight = self.params["weight"]
        if self.num_parameters == 1:
            return xp.reshape(weight, (1,) * x.ndim)
        return xp.reshape(weight, (1, self.num_parameters) + (1,) * (x.ndim - 2))

    def forward(self, x):
        x = as_float_array(x, "PReLU", self.dtype)
        if self.num_parameters > 1:
            check_nonempty(x, "PReLU", 2, f"(N, {self.num_parameters}, ...)")
            if x.shape[1] != self.num_parameters:
                raise GlassnetError(f"PReLU: expected {self.num_parameters} channels on axis 1 (one slope each). "
                                    f"Received: input of shape {tuple(x.shape)}")
        else:
            check_nonempty(x, "PReLU", 1, "(N, ...)")
        self._cache = x
        return namespace(x).where(x > 0, x, x * self._slopes(x))

    def backward(self, dy):
        """dy: input shape -> dL/dx; fills grads["weight"] (num_parameters,)."""
        self._require_cache(self._cache)
        x = self._cache
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, x.shape)
        xp = namespace(dy)
        # y = w x where x <= 0  =>  dL/dw = sum of dy * x over those cells (per channel), dL/dx = dy or w dy
        negative_part = xp.where(x > 0, 0.0, dy * x)
        if self.num_parameters == 1:
            self.grads["weight"] = xp.reshape(xp.sum(negative_part), (1,))
        else:
            axes = (0,) + tuple(range(2, x.ndim))
            self.grads["weight"] = xp.sum(negative_part, axis=axes)
        return xp.where(x > 0, dy, dy * self._slopes(x))
