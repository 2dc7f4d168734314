"""Max and average pooling over the spatial axes of NCHW batches."""
import numpy as np

from ...backend import NUMPY, add_into, device_of, namespace
from ...errors import GlassnetError
from ...validation import as_float_array, as_gradient, check_batch, int_pair
from .base import Layer
from .windows import crop_padding, kernel_offsets, offset_key, offset_view, output_size, pad_images


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

    def check_input_shape(self, input_shape):
        self._expect_sample(input_shape, "(C, H, W)", 3)

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

    Examples
    --------
    >>> MaxPool2D(2)(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, OH, OW)."""
        x = self._input(x)
        xp = namespace(x)
        out_hw = self._spatial_output(*x.shape[2:])
        x_padded = pad_images(x, self.pads, value=-float("inf"))
        offsets = kernel_offsets(self.kernel_size)
        out = xp.asarray(offset_view(x_padded, 0, 0, self.stride, out_hw), copy=True)  # (N, C, OH, OW)
        for _, i, j in offsets[1:]:
            if xp is NUMPY:
                np.maximum(out, offset_view(x_padded, i, j, self.stride, out_hw), out=out)   # in place, no temporary
            else:
                out = xp.maximum(out, offset_view(x_padded, i, j, self.stride, out_hw))
        self._cache = (x_padded, out, out_hw)
        return out

    def backward(self, dy):
        """dy: (N, C, OH, OW) -> dL/dx: (N, C, H, W).

        The winner of each window is found again here, offset by offset in row-major
        order: the first offset equal to the window's maximum takes the gradient.
        """
        self._require_cache(self._cache)
        x_padded, out, out_hw = self._cache
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, out.shape)
        if namespace(dy) is NUMPY:
            return crop_padding(self._numpy_backward(dy), self.pads)
        xp = namespace(dy)
        dx_padded = xp.zeros(x_padded.shape, dtype=dy.dtype, device=device_of(dy))
        taken = xp.zeros(out.shape, dtype=xp.bool, device=device_of(dy))        # window already routed
        for _, i, j in kernel_offsets(self.kernel_size):
            wins = xp.logical_and(offset_view(x_padded, i, j, self.stride, out_hw) == out, xp.logical_not(taken))
            taken = xp.logical_or(taken, wins)
            # d max / d x = 1 at the window's first maximum, 0 elsewhere; overlapping windows add up
            add_into(dx_padded, offset_key(i, j, self.stride, out_hw), xp.where(wins, dy, 0.0))
        return crop_padding(dx_padded, self.pads)

    def _numpy_backward(self, dy):
        """``backward``'s routing with NumPy's ``out=`` arguments: no temporary per kernel offset."""
        x_padded, out, out_hw = self._cache
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        windows_overlap = sh < kh or sw < kw
        dx_padded = np.zeros(x_padded.shape, dtype=self.dtype)
        offsets = kernel_offsets(self.kernel_size)
        taken = None                                                           # window already routed
        for k, i, j in offsets:
            wins = offset_view(x_padded, i, j, self.stride, out_hw) == out
            if taken is not None:
                np.greater(wins, taken, out=wins)                              # wins and not taken
                if k < len(offsets) - 1:
                    taken |= wins
            else:
                taken = wins.copy()
            target = offset_view(dx_padded, i, j, self.stride, out_hw)
            if windows_overlap:
                target += dy * wins
            else:
                np.multiply(dy, wins, out=target)
        return dx_padded


class AvgPool2D(_Pool2D):
    """Average pooling. Zero padding counts in the average (PyTorch's count_include_pad=True).

    Examples
    --------
    >>> AvgPool2D(2)(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, OH, OW)."""
        x = self._input(x)
        xp = namespace(x)
        out_hw = self._spatial_output(*x.shape[2:])
        x_padded = pad_images(x, self.pads)
        kh, kw = self.kernel_size
        total = xp.zeros(tuple(x.shape[:2]) + out_hw, dtype=x.dtype, device=device_of(x))
        for _, i, j in kernel_offsets(self.kernel_size):
            total += offset_view(x_padded, i, j, self.stride, out_hw)
        self._cache = (tuple(x_padded.shape), out_hw)
        return total / (kh * kw)

    def backward(self, dy):
        """dy: (N, C, OH, OW) -> dL/dx: (N, C, H, W)."""
        self._require_cache(self._cache)
        padded_shape, out_hw = self._cache
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, padded_shape[:2] + out_hw)
        xp = namespace(dy)
        kh, kw = self.kernel_size
        # d mean / d x = 1 / (kh * kw) for every pixel of the window; overlapping windows add up
        share = dy / (kh * kw)
        dx_padded = xp.zeros(padded_shape, dtype=dy.dtype, device=device_of(dy))
        for _, i, j in kernel_offsets(self.kernel_size):
            add_into(dx_padded, offset_key(i, j, self.stride, out_hw), share)
        return crop_padding(dx_padded, self.pads)


class _GlobalPool2D(Layer):
    """Shared plumbing of the global poolings: (N, C, H, W) -> (N, C), one number per channel."""

    def __init__(self, dtype=np.float64):
        super().__init__(dtype)
        self._cache = None

    def check_input_shape(self, input_shape):
        self._expect_sample(input_shape, "(C, H, W)", 3)

    def output_shape(self, input_shape):
        return (input_shape[0],)

    def _input(self, x):
        x = as_float_array(x, type(self).__name__, self.dtype)
        check_batch(x, type(self).__name__, "(N, C, H, W)")
        return x


class GlobalAvgPool2D(_GlobalPool2D):
    """The mean of each channel over H and W: ``y[n, c] = mean_{h, w} x[n, c, h, w]`` (ResNet's head;
    PyTorch's ``AdaptiveAvgPool2d(1)`` followed by a flatten). Input (N, C, H, W), output (N, C)."""

    def forward(self, x):
        x = self._input(x)
        self._cache = tuple(x.shape)
        return namespace(x).mean(x, axis=(2, 3))

    def backward(self, dy):
        """dy: (N, C) -> dL/dx: (N, C, H, W)."""
        self._require_cache(self._cache)
        N, C, H, W = self._cache
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, (N, C))
        xp = namespace(dy)
        # y = sum_hw x / (H W)  =>  dL/dx[n, c, h, w] = dy[n, c] / (H W) at every h, w
        share = xp.reshape(dy / (H * W), (N, C, 1, 1))
        return xp.zeros((N, C, H, W), dtype=dy.dtype, device=device_of(dy)) + share


class GlobalMaxPool2D(_GlobalPool2D):
    """The maximum of each channel over H and W (PyTorch's ``AdaptiveMaxPool2d(1)`` then a flatten).
    Input (N, C, H, W), output (N, C). The gradient goes to the first maximum in row-major order."""

    def forward(self, x):
        x = self._input(x)
        xp = namespace(x)
        N, C, H, W = x.shape
        flat = xp.reshape(x, (N, C, H * W))
        self._cache = (tuple(x.shape), xp.argmax(flat, axis=2))      # (N, C) positions of the first maximum
        return xp.max(flat, axis=2)

    def backward(self, dy):
        """dy: (N, C) -> dL/dx: (N, C, H, W), nonzero only at each channel's winning position."""
        self._require_cache(self._cache)
        (N, C, H, W), winner = self._cache
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, (N, C))
        xp = namespace(dy)
        # y = x[argmax]  =>  dL/dx = dy at the argmax, 0 elsewhere
        positions = xp.arange(H * W, device=device_of(dy))
        wins = xp.astype(xp.reshape(positions, (1, 1, H * W)) == xp.reshape(winner, (N, C, 1)), dy.dtype)
        return xp.reshape(wins * xp.reshape(dy, (N, C, 1)), (N, C, H, W))
