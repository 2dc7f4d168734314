"""Local response normalisation across channels (AlexNet, GoogLeNet), as PyTorch's ``nn.LocalResponseNorm``."""
import numpy as np

from ...backend import device_of, namespace
from ...validation import as_float_array, as_gradient, check_batch, non_negative_number, positive_int
from .base import Layer


def channel_window_sum(values, before, after):
    """``out[:, c] = sum of values[:, c - before .. c + after]`` (channels outside count as 0).
    values (N, C, H, W); loops over the window's offsets, never over channels."""
    xp = namespace(values)
    N, C, H, W = values.shape
    zeros = xp.zeros((N, before + after + C, H, W), dtype=values.dtype, device=device_of(values))
    zeros[:, before:before + C, ...] = values
    total = xp.asarray(zeros[:, 0:C, ...], copy=True)
    for offset in range(1, before + after + 1):
        total += zeros[:, offset:offset + C, ...]
    return total


class LRN(Layer):
    """``y[:, c] = x[:, c] / (k + alpha / size * sum_{c' in window(c)} x[:, c']^2) ^ beta``, the window
    running from ``c - size // 2`` to ``c + (size - 1) // 2`` (channels past the ends count as 0).

    Shapes: input (N, C, H, W) -> the same.
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0, dtype=np.float64):
        super().__init__(dtype)
        self.size = positive_int(size, "size", "LRN")
        self.alpha = non_negative_number(alpha, "alpha", "LRN")
        self.beta = non_negative_number(beta, "beta", "LRN")
        self.k = non_negative_number(k, "k", "LRN")
        self._cache = None

    def get_config(self):
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}

    def check_input_shape(self, input_shape):
        self._expect_sample(input_shape, "(C, H, W)", 3)

    def window(self, channel, channels):
        """The channels (first, last) that normalise ``channel``, clipped to 0 .. channels - 1."""
        return max(channel - self.size // 2, 0), min(channel + (self.size - 1) // 2, channels - 1)

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, H, W)."""
        x = as_float_array(x, "LRN", self.dtype)
        check_batch(x, "LRN", "(N, C, H, W)")
        denominator = self.k + (self.alpha / self.size) * channel_window_sum(x * x, self.size // 2,
                                                                             (self.size - 1) // 2)
        scale = denominator ** (-self.beta)
        self._cache = (x, denominator, scale)
        return x * scale

    def backward(self, dy):
        """dy: (N, C, H, W) -> dL/dx."""
        self._require_cache(self._cache)
        x, denominator, scale = self._cache
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, x.shape)
        # y_c = x_c d_c^-b, d_c = k + a/n sum_{window(c)} x^2  =>
        # dx_j = dy_j d_j^-b - (2 a b / n) x_j sum_{c: j in window(c)} dy_c x_c d_c^(-b-1)
        # (c runs over j - (size-1)//2 .. j + size//2: the window turned around)
        through_denominator = dy * x * scale / denominator
        reach = channel_window_sum(through_denominator, (self.size - 1) // 2, self.size // 2)
        return dy * scale - (2.0 * self.alpha * self.beta / self.size) * x * reach
