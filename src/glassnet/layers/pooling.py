"""Max and average pooling over the spatial axes of NCHW batches."""
import numpy as np

from ..errors import GlassnetError
from ..validation import as_float_array, check_batch, int_pair
from .base import Layer
from .windows import add_windows_back, crop_padding, output_size, pad_images, windows


class _Pool2D(Layer):
    """Shared arguments and shape logic of MaxPool2D and AvgPool2D.

    Shapes: input (N, C, H, W) -> output (N, C, OH, OW) with
    ``OH = floor((H + 2*ph - kh) / sh) + 1`` and likewise OW (PyTorch, ceil_mode=False).
    """

    def __init__(self, kernel_size, stride=None, padding=0, dtype=np.float64):
        super().__init__(dtype)
        name = type(self).__name__
        self.kernel_size = int_pair(kernel_size, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else int_pair(stride, "stride", name)
        self.padding = int_pair(padding, "padding", name, minimum=0)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if 2 * ph > kh or 2 * pw > kw:
            raise GlassnetError(
                f"{name}: padding must be at most half the kernel size (as in PyTorch). "
                f"Received: padding={padding!r} with kernel_size={kernel_size!r}"
            )
        self._cache = None

    @property
    def pads(self):
        ph, pw = self.padding
        return (ph, ph, pw, pw)

    def get_config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding)}

    def output_shape(self, input_shape):
        C, H, W = input_shape
        return (C,) + self._spatial_output(H, W)

    def _spatial_output(self, H, W):
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if H + 2 * ph < kh or W + 2 * pw < kw:
            raise GlassnetError(
                f"{type(self).__name__}: kernel_size={self.kernel_size} is larger than the padded "
                f"input ({H + 2 * ph}, {W + 2 * pw}) (input H, W = ({H}, {W}))"
            )
        return output_size(H, kh, sh, ph, ph), output_size(W, kw, sw, pw, pw)

    def _input(self, x):
        x = as_float_array(x, type(self).__name__, self.dtype)
        check_batch(x, type(self).__name__, "(N, C, H, W)")
        return x


class MaxPool2D(_Pool2D):
    """Max pooling. Padding is with -inf, so padded cells never win.

    Gradient routing follows PyTorch: each window sends its upstream gradient to
    the first position (row-major) holding the window's maximum; with overlapping
    windows one input pixel collects the gradients of every window it wins.

    Example
    -------
    >>> MaxPool2D(2)(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, OH, OW)."""
        x = self._input(x)
        N, C, H, W = x.shape
        OH, OW = self._spatial_output(H, W)
        kh, kw = self.kernel_size
        x_padded = pad_images(x, self.pads, value=-np.inf)
        patches = windows(x_padded, self.kernel_size, self.stride)  # (N, C, OH, OW, kh, kw)
        flat = patches.reshape(N, C, OH, OW, kh * kw)                                # copy
        winner = flat.argmax(axis=-1)                                                # (N, C, OH, OW), first max
        out = np.take_along_axis(flat, winner[..., None], axis=-1)[..., 0]
        self._cache = (winner, x_padded.shape)
        return out

    def backward(self, dy):
        """dy: (N, C, OH, OW) -> dL/dx: (N, C, H, W)."""
        self._require_cache(self._cache)
        winner, padded_shape = self._cache
        dy = np.asarray(dy, dtype=self.dtype)
        self._check_grad_shape(dy, winner.shape)
        kh, kw = self.kernel_size
        # d max / d x_k = 1 for the winning k, 0 elsewhere
        offsets = np.arange(kh * kw).reshape(kh, kw)                                 # (kh, kw)
        is_winner = winner[..., None, None] == offsets                               # (N, C, OH, OW, kh, kw)
        dpatches = is_winner * dy[..., None, None]
        return crop_padding(add_windows_back(dpatches, padded_shape, self.stride), self.pads)


class AvgPool2D(_Pool2D):
    """Average pooling. Zero padding counts in the average (PyTorch's count_include_pad=True).

    Example
    -------
    >>> AvgPool2D(2)(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, OH, OW)."""
        x = self._input(x)
        N, C, H, W = x.shape
        OH, OW = self._spatial_output(H, W)
        x_padded = pad_images(x, self.pads)
        patches = windows(x_padded, self.kernel_size, self.stride)  # (N, C, OH, OW, kh, kw)
        self._cache = (x_padded.shape, (N, C, OH, OW))
        return patches.mean(axis=(4, 5))

    def backward(self, dy):
        """dy: (N, C, OH, OW) -> dL/dx: (N, C, H, W)."""
        self._require_cache(self._cache)
        padded_shape, out_shape = self._cache
        dy = np.asarray(dy, dtype=self.dtype)
        self._check_grad_shape(dy, out_shape)
        kh, kw = self.kernel_size
        # d mean / d x_k = 1 / (kh * kw) for every k in the window
        share = dy / (kh * kw)
        dpatches = np.broadcast_to(share[..., None, None], out_shape + (kh, kw))
        return crop_padding(add_windows_back(dpatches, padded_shape, self.stride), self.pads)
