"""Max and average pooling over the spatial axes of NCHW batches."""
import numpy as np

from ...backend import NUMPY, add_into, device_of, float_dtype, namespace
from ...errors import GlassnetError
from ...validation import as_float_array, as_gradient, check_batch, int_pair
from .activations import rectified
from .base import Layer
from .windows import crop_padding, kernel_offsets, offset_key, offset_view, output_size, pad_images, span


def pool_padding(padding, owner):
    """``padding`` as (top, bottom, left, right): an int, (ph, pw), or four numbers (asymmetric pads,
    as Caffe-era ONNX files write them)."""
    if isinstance(padding, (list, tuple)) and len(padding) == 4:
        pads = tuple(int_pair(p, "padding", owner, minimum=0)[0] for p in padding)
        return pads
    ph, pw = int_pair(padding, "padding", owner, minimum=0)
    return (ph, ph, pw, pw)


def ceil_output_size(size, kernel, stride, pad_before, pad_after, dilation=1):
    """Window positions with ceil_mode (PyTorch's rule): a partial last window counts, unless it
    would start in the padding after the input.

    >>> ceil_output_size(6, 3, 2, 0, 0), output_size(6, 3, 2, 0, 0), ceil_output_size(5, 2, 2, 1, 1)
    (3, 2, 3)
    """
    out = -(-(size + pad_before + pad_after - span(kernel, dilation)) // stride) + 1
    if (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


class _Pool2D(Layer):
    """Shared arguments and shape logic of MaxPool2D and AvgPool2D.

    Shapes: input (N, C, H, W) -> output (N, C, OH, OW) with
    ``OH = floor((H + top + bottom - dh * (kh - 1) - 1) / sh) + 1`` and likewise OW; with ceil_mode
    the floor is a ceiling (a partial last window counts), except that no window may start in the
    bottom/right padding (PyTorch's rule).
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, dilation=1, dtype=np.float64):
        super().__init__(dtype)
        name = type(self).__name__
        self.kernel_size = int_pair(kernel_size, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else int_pair(stride, "stride", name)
        self.dilation = int_pair(dilation, "dilation", name)
        self.pads = pool_padding(padding, name)
        top, bottom, left, right = self.pads
        self.padding = (top, left) if (top, left) == (bottom, right) else self.pads
        self.ceil_mode = bool(ceil_mode)
        spans = [span(k, d) for k, d in zip(self.kernel_size, self.dilation)]
        if 2 * max(top, bottom) > spans[0] or 2 * max(left, right) > spans[1]:
            raise GlassnetError(
                f"{name}: padding must be at most half the kernel size (as in PyTorch). "
                f"Received: padding={padding!r} with kernel_size={kernel_size!r}"
            )
        self._cache = None

    def get_config(self):
        config = {"kernel_size": list(self.kernel_size), "stride": list(self.stride),
                  "padding": list(self.padding)}
        if self.ceil_mode:
            config["ceil_mode"] = True
        return config

    def check_input_shape(self, input_shape):
        self._expect_sample(input_shape, "(C, H, W)", 3)

    def output_shape(self, input_shape):
        C, H, W = input_shape
        return (C,) + self._spatial_output(H, W)

    def _spatial_output(self, H, W):
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        top, bottom, left, right = self.pads
        if H + top + bottom < span(kh, dh) or W + left + right < span(kw, dw):
            raise GlassnetError(
                f"{type(self).__name__}: kernel_size={self.kernel_size} is larger than the padded "
                f"input ({H + top + bottom}, {W + left + right}) (input H, W = ({H}, {W}))"
            )
        size = ceil_output_size if self.ceil_mode else output_size
        return size(H, kh, sh, top, bottom, dh), size(W, kw, sw, left, right, dw)

    def _window_pads(self, H, W, out_hw):
        """The pads that make every window whole: self.pads plus, with ceil_mode, what the partial
        last windows reach past the bottom/right padding."""
        top, bottom, left, right = self.pads
        reach = [(o - 1) * s + span(k, d) for o, s, k, d in zip(out_hw, self.stride, self.kernel_size, self.dilation)]
        return (top, max(bottom, reach[0] - H - top), left, max(right, reach[1] - W - left))

    def _taps(self):
        return kernel_offsets(self.kernel_size, self.dilation)

    def _input(self, x):
        x = as_float_array(x, type(self).__name__, self.dtype)
        check_batch(x, type(self).__name__, "(N, C, H, W)")
        return x


class MaxPool2D(_Pool2D):
    """Max pooling, as PyTorch's ``nn.MaxPool2d``. Padding is with -inf, so padded cells never win.

    ``y[n, c, i, j] = max_{u, v} x_pad[n, c, i*sh + u*dh, j*sw + v*dw]``. Arguments: kernel_size, stride
    (default kernel_size), padding (int, pair, or (top, bottom, left, right)), dilation, ceil_mode.

    Gradient routing follows PyTorch: each window sends its upstream gradient to
    the first position (row-major) holding the window's maximum; with overlapping
    windows one input pixel collects the gradients of every window it wins.

    Examples
    --------
    >>> MaxPool2D(2)(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, dtype=np.float64):
        super().__init__(kernel_size, stride, padding, ceil_mode, dilation, dtype)
        self._rectified = False      # the last forward applied a ReLU after the maximum (forward_rectified)

    def get_config(self):
        config = super().get_config()
        if self.dilation != (1, 1):
            config["dilation"] = list(self.dilation)
        return config

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, OH, OW)."""
        self._rectified = False
        x_padded, out_hw, pads = self._padded_input(x)
        xp = namespace(x_padded)
        taps = self._taps()
        if xp is NUMPY and TAP_COPIES and self.training and not self._windows_overlap():
            return self._forward_by_tap_copies(x_padded, taps, out_hw, pads)
        out = self._maximum_over_views(x_padded, out_hw)
        self._cache = (x_padded, out, out_hw, pads)
        return out

    def forward_rectified(self, x):
        """``forward(relu(x))`` computed as ``relu(forward(x))`` (NumPy), for a ReLU whose one reader is this
        pool (``Graph.forward``): the same numbers, the ReLU's passes on a quarter of the values behind a
        2x2 pool. x: (N, C, H, W), the ReLU's input -> (N, C, OH, OW).

        Exact, gradients included: where a window's maximum m is > 0, relu(x) peaks at the same taps as
        x, so the first of them takes the gradient, and relu' = 1 there; where m <= 0, relu(x) is 0 over
        the whole window and relu' = 0 at every tap, so the window sends nothing back. ``backward`` then
        returns dL/dx itself (the ReLU's derivative included); the ReLU passes it on.
        """
        out = self.forward(x)
        rectified(out, out=out)              # out is the cached maximum: backward compares the taps to it
        self._rectified = True
        return out

    takes_maximum = True      # a monotone activation before it may run after it (Graph.infer)

    def infer(self, x):
        """The pooled x without what backward needs, always a new array (never a view of x)."""
        x_padded, out_hw, _ = self._padded_input(x)
        self._cache, self._rectified = None, False
        return self._maximum_over_views(x_padded, out_hw)

    def _padded_input(self, x):
        """(x checked and padded with -inf, (OH, OW), the pads (top, bottom, left, right))."""
        x = self._input(x)
        out_hw = self._spatial_output(*x.shape[2:])
        pads = self._window_pads(*x.shape[2:], out_hw)
        return pad_images(x, pads, value=-float("inf")), out_hw, pads

    def _maximum_over_views(self, x_padded, out_hw):
        """Each window's maximum: (N, C, Hp, Wp) -> (N, C, OH, OW), a new array.

        A window's maximum is the maximum over its columns of the maximum over its rows, so the kernel's
        rows are taken first (strided views of whole rows, (N, C, OH, Wp)) and then its columns:
        (kh - 1) + (kw - 1) passes instead of kh * kw - 1, over contiguous rows in the first.
        """
        xp = namespace(x_padded)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        OH, OW = out_hw
        band = _running_maximum(xp, [x_padded[:, :, u * dh:u * dh + sh * (OH - 1) + 1:sh, :] for u in range(kh)])
        return _running_maximum(xp, [band[..., v * dw:v * dw + sw * (OW - 1) + 1:sw] for v in range(kw)], new=True)

    def backward(self, dy):
        """dy: (N, C, OH, OW) -> dL/dx: (N, C, H, W).

        The winner of each window is found again here, tap by tap in row-major
        order: the first tap equal to the window's maximum takes the gradient.
        """
        self._require_cache(self._cache)
        x_padded, out, out_hw, pads = self._cache
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, out.shape)
        if isinstance(x_padded, TapCopies):
            return crop_padding(self._backward_from_tap_copies(dy), pads)
        if namespace(dy) is NUMPY:
            return crop_padding(self._numpy_backward(dy), pads)
        xp = namespace(dy)
        dx_padded = xp.zeros(x_padded.shape, dtype=dy.dtype, device=device_of(dy))
        taken = self._routed_from_the_start(out)                               # window already routed
        if taken is None:
            taken = xp.zeros(out.shape, dtype=xp.bool, device=device_of(dy))
        for _, i, j in self._taps():
            wins = xp.logical_and(offset_view(x_padded, i, j, self.stride, out_hw) == out, xp.logical_not(taken))
            taken = xp.logical_or(taken, wins)
            # d max / d x = 1 at the window's first maximum, 0 elsewhere; overlapping windows add up
            add_into(dx_padded, offset_key(i, j, self.stride, out_hw), xp.where(wins, dy, 0.0))
        return crop_padding(dx_padded, pads)

    def _windows_overlap(self):
        return any(s < span(k, d) for s, k, d in zip(self.stride, self.kernel_size, self.dilation))

    def _forward_by_tap_copies(self, x_padded, taps, out_hw, pads):
        """Forward for NumPy when windows do not overlap: each tap's strided view copied once into a
        contiguous (taps, N, C, OH, OW) array, kept for backward, whose maximum over the taps is the output.

        The copies hold no more values than the input, and backward then compares and multiplies contiguous
        arrays instead of strided views. In training only: the copies cost inference more than the in-place
        maximum over the views (A/B in issue 28's note: training 0.86-0.96, inference 1.00-1.04).
        """
        N, C = x_padded.shape[:2]
        copies = np.empty((len(taps), N, C) + tuple(out_hw), dtype=x_padded.dtype)
        for k, i, j in taps:
            copies[k] = offset_view(x_padded, i, j, self.stride, out_hw)
        out = copies[0].copy()
        for k in range(1, len(taps)):
            np.maximum(out, copies[k], out=out)
        self._cache = (TapCopies((copies, tuple(x_padded.shape))), out, out_hw, pads)
        return out

    def _backward_from_tap_copies(self, dy):
        """Backward after ``_forward_by_tap_copies``: the first tap (row-major) equal to its window's maximum
        takes the window's gradient; windows do not overlap, so each pixel gets at most one."""
        kept, out, out_hw, _ = self._cache
        copies, padded_shape = kept
        # the taps tile the padded input when each window is whole (no dilation gaps), the next one starts
        # where it ends, and the last one ends at the edge: then every pixel is written below
        tiled = self.dilation == (1, 1) and all(o * s == size and s == k for o, s, size, k in zip(
            out_hw, self.stride, padded_shape[2:], self.kernel_size))
        dx_padded = (np.empty if tiled else np.zeros)(padded_shape, dtype=self.dtype)
        wins, taken = np.empty(out.shape, dtype=bool), self._routed_from_the_start(out)   # windows already routed
        for k, i, j in self._taps():
            np.equal(copies[k], out, out=wins)
            if taken is None:
                taken = wins.copy()
            else:
                np.greater(wins, taken, out=wins)                          # wins and not taken
                taken |= wins
            # d max / d x = 1 at the window's first maximum, 0 elsewhere
            np.multiply(dy, wins, out=offset_view(dx_padded, i, j, self.stride, out_hw))
        return dx_padded

    def _routed_from_the_start(self, out):
        """None, or after a ReLU applied here (``forward_rectified``) the windows whose maximum is <= 0:
        relu' = 0 there, so they count as routed before any tap and every tap of theirs gets 0."""
        return out <= 0 if self._rectified else None

    def _numpy_backward(self, dy):
        """``backward``'s routing with NumPy's ``out=`` arguments: no temporary per kernel tap."""
        x_padded, out, out_hw, _ = self._cache
        (sh, sw) = self.stride
        windows_overlap = self._windows_overlap()
        dx_padded = np.zeros(x_padded.shape, dtype=self.dtype)
        taps = self._taps()
        taken = self._routed_from_the_start(out)                               # window already routed
        for k, i, j in taps:
            wins = offset_view(x_padded, i, j, self.stride, out_hw) == out
            if taken is not None:
                np.greater(wins, taken, out=wins)                              # wins and not taken
                if k < len(taps) - 1:
                    taken |= wins
            else:
                taken = wins.copy()
            target = offset_view(dx_padded, i, j, self.stride, out_hw)
            if windows_overlap:
                target += dy * wins
            else:
                np.multiply(dy, wins, out=target)
        return dx_padded


class TapCopies(tuple):
    """What MaxPool2D's forward keeps when it copied each tap's view: (copies (taps, N, C, OH, OW), the
    padded input's shape)."""


TAP_COPIES = True        # MaxPool2D without overlapping windows copies each tap's view (NumPy)


class AvgPool2D(_Pool2D):
    """Average pooling, as PyTorch's ``nn.AvgPool2d``.

    ``y[n, c, i, j] = sum_{u, v} x_pad[n, c, i*sh + u, j*sw + v] / count[i, j]``: with
    count_include_pad=True (the default) the count takes in the zero padding but not what
    ceil_mode's partial windows reach past it; with False only the input's own pixels count.
    Padding: int, pair, or (top, bottom, left, right).

    Examples
    --------
    >>> AvgPool2D(2)(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 dtype=np.float64):
        super().__init__(kernel_size, stride, padding, ceil_mode, 1, dtype)
        self.count_include_pad = bool(count_include_pad)

    def get_config(self):
        config = super().get_config()
        if not self.count_include_pad:
            config["count_include_pad"] = False
        return config

    def _counts(self, H, W, out_hw, xp, device):
        """count[i, j] (OH, OW): the pixels each window averages (a product of one count per axis)."""
        top, bottom, left, right = self.pads
        per_axis = []
        for size, before, after, out, k, s in zip((H, W), (top, left), (bottom, right), out_hw,
                                                 self.kernel_size, self.stride):
            starts = [o * s - before for o in range(out)]
            if self.count_include_pad:
                counts = [min(start + k, size + after) - start for start in starts]
            else:
                counts = [min(start + k, size) - max(start, 0) for start in starts]
            per_axis.append(counts)
        rows, columns = (xp.asarray(counts, dtype=float_dtype(xp, self.dtype), device=device)
                         for counts in per_axis)
        return xp.reshape(rows, (-1, 1)) * xp.reshape(columns, (1, -1))

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, OH, OW)."""
        x = self._input(x)
        xp = namespace(x)
        H, W = x.shape[2:]
        out_hw = self._spatial_output(H, W)
        pads = self._window_pads(H, W, out_hw)
        x_padded = pad_images(x, pads)
        total = xp.zeros(tuple(x.shape[:2]) + out_hw, dtype=x.dtype, device=device_of(x))
        for _, i, j in self._taps():
            total += offset_view(x_padded, i, j, self.stride, out_hw)
        counts = self._counts(H, W, out_hw, xp, device_of(x))
        self._cache = (tuple(x_padded.shape), out_hw, pads, counts)
        return total / counts

    def backward(self, dy):
        """dy: (N, C, OH, OW) -> dL/dx: (N, C, H, W)."""
        self._require_cache(self._cache)
        padded_shape, out_hw, pads, counts = self._cache
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, padded_shape[:2] + out_hw)
        xp = namespace(dy)
        # d mean / d x = 1 / count for every pixel of the window; overlapping windows add up
        share = dy / counts
        dx_padded = xp.zeros(padded_shape, dtype=dy.dtype, device=device_of(dy))
        for _, i, j in self._taps():
            add_into(dx_padded, offset_key(i, j, self.stride, out_hw), share)
        return crop_padding(dx_padded, pads)


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


def _running_maximum(xp, views, new=False):
    """The elementwise maximum of ``views`` (in place into the first result on NumPy); the one view itself
    when there is one, unless ``new`` asks for a new array."""
    if len(views) == 1:
        return xp.asarray(views[0], copy=True) if new else views[0]
    out = xp.maximum(views[0], views[1])
    for view in views[2:]:
        if xp is NUMPY:
            np.maximum(out, view, out=out)
        else:
            out = xp.maximum(out, view)
    return out
