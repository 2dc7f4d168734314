"""Layers that move pixels without weights: padding, upsampling and the shuffles of ShuffleNet and
super-resolution nets. Each backward sends every output cell's gradient back to the cell it was
copied (or interpolated) from; written against the Array API."""
import math

import numpy as np

from ...backend import device_of, float_dtype, namespace
from ...errors import GlassnetError
from ...validation import as_float_array, as_gradient, check_batch, int_pair, positive_int
from .base import Layer
from .windows import crop_padding, pad_images

PAD_MODES = ("constant", "reflect", "replicate")
UPSAMPLE_MODES = ("nearest", "bilinear")


def four_pads(padding, owner):
    """An int, (ph, pw) or (top, bottom, left, right) -> (top, bottom, left, right)."""
    if isinstance(padding, (list, tuple)) and len(padding) == 4:
        return tuple(int_pair(p, "padding", owner, minimum=0)[0] for p in padding)
    ph, pw = int_pair(padding, "padding", owner, minimum=0)
    return (ph, ph, pw, pw)


def source_rows(size, before, after, mode):
    """For each of the ``before + size + after`` padded positions, the input position it copies.

    >>> source_rows(4, 2, 1, "reflect"), source_rows(4, 2, 1, "replicate")
    ([2, 1, 0, 1, 2, 3, 2], [0, 0, 0, 1, 2, 3, 3])
    """
    positions = range(-before, size + after)
    if mode == "replicate":
        return [min(max(p, 0), size - 1) for p in positions]
    return [-p if p < 0 else 2 * (size - 1) - p if p >= size else p for p in positions]   # reflect, edge once


class _Shaping(Layer):
    """Shared plumbing: a 4-D input checked, its shape cached for backward."""

    def __init__(self, dtype=np.float64):
        super().__init__(dtype)
        self._cache = None

    def check_input_shape(self, input_shape):
        self._expect_sample(input_shape, "(C, H, W)", 3)

    def _input(self, x):
        x = as_float_array(x, type(self).__name__, self.dtype)
        check_batch(x, type(self).__name__, "(N, C, H, W)")
        return x

    def _upstream(self, dy):
        self._require_cache(self._cache)
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, self._cache[0][:1] + self.output_shape(self._cache[0][1:]))
        return dy


class Pad2D(_Shaping):
    """Pad the spatial axes, as PyTorch's ``ZeroPad2d`` / ``ConstantPad2d`` / ``ReflectionPad2d`` /
    ``ReplicationPad2d``.

    padding : int, (ph, pw) or (top, bottom, left, right) (note: PyTorch's ``F.pad`` lists left, right,
        top, bottom)
    mode : "constant" (``value``), "reflect" (mirror without repeating the edge; each pad smaller than
        the input) or "replicate" (the edge repeated)

    Input (N, C, H, W) -> (N, C, H + top + bottom, W + left + right).
    """

    def __init__(self, padding, mode="constant", value=0.0, dtype=np.float64):
        super().__init__(dtype)
        if mode not in PAD_MODES:
            raise GlassnetError(f"Pad2D: mode must be one of {', '.join(PAD_MODES)}. Received: {mode!r}")
        self.pads = four_pads(padding, "Pad2D")
        self.padding = list(self.pads)
        self.mode = mode
        self.value = float(value)

    def get_config(self):
        return {"padding": list(self.pads), "mode": self.mode, "value": self.value}

    def output_shape(self, input_shape):
        C, H, W = input_shape
        top, bottom, left, right = self.pads
        self._check_reflect(H, W)
        return (C, H + top + bottom, W + left + right)

    def _check_reflect(self, H, W):
        top, bottom, left, right = self.pads
        if self.mode == "reflect" and (max(top, bottom) >= H or max(left, right) >= W):
            raise GlassnetError(f"Pad2D: reflect padding must be smaller than the input. Received: padding "
                                f"{self.pads} for H, W = ({H}, {W})")

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)."""
        x = self._input(x)
        self.output_shape(tuple(x.shape[1:]))
        self._cache = (tuple(x.shape),)
        if self.mode == "constant":
            return pad_images(x, self.pads, self.value)
        xp = namespace(x)
        top, bottom, left, right = self.pads
        H, W = x.shape[2:]
        rows = xp.asarray(source_rows(H, top, bottom, self.mode), device=device_of(x))
        columns = xp.asarray(source_rows(W, left, right, self.mode), device=device_of(x))
        return xp.take(xp.take(x, rows, axis=2), columns, axis=3)

    def backward(self, dy):
        """dy: padded shape -> dL/dx: (N, C, H, W)."""
        dy = self._upstream(dy)
        if self.mode == "constant":
            return crop_padding(dy, self.pads)           # y = x inside, a constant outside
        top, bottom, left, right = self.pads
        H, W = self._cache[0][2:]
        # each padded cell is a copy of one input cell: its gradient is added onto that cell
        folded = fold(dy, 3, source_rows(W, left, right, self.mode), left, W)
        return fold(folded, 2, source_rows(H, top, bottom, self.mode), top, H)


def fold(grad, axis, sources, before, size):
    """Sum the gradient of every padded position along ``axis`` onto its source: grad has
    ``len(sources)`` positions there, the result ``size``. Loops over the pads only."""
    xp = namespace(grad)
    key = [slice(None)] * 4

    def at(index):
        key[axis] = slice(index, index + 1)
        return tuple(key)

    key[axis] = slice(before, before + size)
    result = xp.asarray(grad[tuple(key)], copy=True)
    for position, source in enumerate(sources):
        if not before <= position < before + size:
            result[at(source)] += grad[at(position)]
    return result


class Upsample2D(_Shaping):
    """Upsample H and W by integer factors, as PyTorch's ``nn.Upsample(scale_factor=...)``.

    mode "nearest": each pixel repeated ``scale`` times along each axis. mode "bilinear": output pixel
    o reads input position ``(o + 1/2) / scale - 1/2`` (clamped at 0), or ``o (H - 1) / (OH - 1)``
    with ``align_corners=True``, interpolated between its two neighbours on each axis.

    Input (N, C, H, W) -> (N, C, H * sh, W * sw). Bilinear is written as two interpolation matrices,
    ``y = A_h x A_w^T``, and its backward as their transposes, ``dx = A_h^T dy A_w``.
    """

    def __init__(self, scale_factor=2, mode="nearest", align_corners=False, dtype=np.float64):
        super().__init__(dtype)
        if mode not in UPSAMPLE_MODES:
            raise GlassnetError(f"Upsample2D: mode must be 'nearest' or 'bilinear'. Received: {mode!r}")
        self.scale_factor = int_pair(scale_factor, "scale_factor", "Upsample2D")
        self.mode = mode
        self.align_corners = bool(align_corners)
        if self.align_corners and mode == "nearest":
            raise GlassnetError("Upsample2D: align_corners applies to mode='bilinear' only (as in PyTorch)")

    def get_config(self):
        return {"scale_factor": list(self.scale_factor), "mode": self.mode, "align_corners": self.align_corners}

    def output_shape(self, input_shape):
        C, H, W = input_shape
        sh, sw = self.scale_factor
        return (C, H * sh, W * sw)

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, H*sh, W*sw)."""
        x = self._input(x)
        xp = namespace(x)
        N, C, H, W = x.shape
        sh, sw = self.scale_factor
        self._cache = (tuple(x.shape),)
        if self.mode == "nearest":
            repeated = xp.broadcast_to(xp.reshape(x, (N, C, H, 1, W, 1)), (N, C, H, sh, W, sw))
            return xp.reshape(repeated, (N, C, H * sh, W * sw))
        rows, columns = self._matrices(H, W, x)
        return rows @ (x @ xp.matrix_transpose(columns))

    def backward(self, dy):
        """dy: (N, C, H*sh, W*sw) -> dL/dx: (N, C, H, W)."""
        dy = self._upstream(dy)
        xp = namespace(dy)
        N, C, H, W = self._cache[0]
        sh, sw = self.scale_factor
        if self.mode == "nearest":
            # every copy of a pixel sends its gradient back to it
            return xp.sum(xp.reshape(dy, (N, C, H, sh, W, sw)), axis=(3, 5))
        rows, columns = self._matrices(H, W, dy)
        # y = A_h x A_w^T  =>  dx = A_h^T dy A_w
        return xp.matrix_transpose(rows) @ (dy @ columns)

    def _matrices(self, H, W, like):
        xp = namespace(like)
        return tuple(xp.asarray(interpolation_matrix(size, scale, self.align_corners),
                                dtype=float_dtype(xp, self.dtype), device=device_of(like))
                     for size, scale in ((H, self.scale_factor[0]), (W, self.scale_factor[1])))


def interpolation_matrix(size, scale, align_corners):
    """A (size * scale, size) matrix: row o holds the two weights of output o's linear interpolation.

    >>> interpolation_matrix(2, 2, False)
    array([[1.  , 0.  ],
           [0.75, 0.25],
           [0.25, 0.75],
           [0.  , 1.  ]])
    """
    out = size * scale
    matrix = np.zeros((out, size))
    for o in range(out):
        if align_corners:
            source = o * (size - 1) / (out - 1) if out > 1 else 0.0
        else:
            source = max((o + 0.5) / scale - 0.5, 0.0)
        low = min(int(math.floor(source)), size - 1)
        high = min(low + 1, size - 1)
        weight = source - low
        matrix[o, low] += 1.0 - weight
        matrix[o, high] += weight
    return matrix


class PixelShuffle(_Shaping):
    """Rearrange (N, C r^2, H, W) into (N, C, H r, W r) (sub-pixel convolution), as PyTorch:
    ``y[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]``."""

    def __init__(self, upscale_factor, dtype=np.float64):
        super().__init__(dtype)
        self.upscale_factor = positive_int(upscale_factor, "upscale_factor", "PixelShuffle")

    def get_config(self):
        return {"upscale_factor": self.upscale_factor}

    def check_input_shape(self, input_shape):
        super().check_input_shape(input_shape)
        self._check_channels(input_shape[0])

    def _check_channels(self, C):
        r = self.upscale_factor
        if C % (r * r):
            raise GlassnetError(f"PixelShuffle: the channels ({C}) must be divisible by upscale_factor^2 = {r * r}")

    def output_shape(self, input_shape):
        C, H, W = input_shape
        r = self.upscale_factor
        return (C // (r * r), H * r, W * r)

    def forward(self, x):
        x = self._input(x)
        self._check_channels(x.shape[1])
        xp = namespace(x)
        N, C, H, W = x.shape
        r = self.upscale_factor
        self._cache = (tuple(x.shape),)
        blocks = xp.permute_dims(xp.reshape(x, (N, C // (r * r), r, r, H, W)), (0, 1, 4, 2, 5, 3))
        return xp.reshape(blocks, (N, C // (r * r), H * r, W * r))

    def backward(self, dy):
        dy = self._upstream(dy)
        xp = namespace(dy)
        N, C, H, W = self._cache[0]
        r = self.upscale_factor
        # a permutation: its gradient is the inverse permutation
        blocks = xp.permute_dims(xp.reshape(dy, (N, C // (r * r), H, r, W, r)), (0, 1, 3, 5, 2, 4))
        return xp.reshape(blocks, (N, C, H, W))


class ChannelShuffle(_Shaping):
    """ShuffleNet's channel shuffle: channels seen as (groups, C / groups), transposed, flattened, so
    that the next grouped convolution mixes every group. ``y[:, j*G + g] = x[:, g*(C/G) + j]``."""

    def __init__(self, groups, dtype=np.float64):
        super().__init__(dtype)
        self.groups = positive_int(groups, "groups", "ChannelShuffle")

    def get_config(self):
        return {"groups": self.groups}

    def check_input_shape(self, input_shape):
        super().check_input_shape(input_shape)
        self._check_channels(input_shape[0])

    def _check_channels(self, C):
        if C % self.groups:
            raise GlassnetError(f"ChannelShuffle: the channels ({C}) must be divisible by groups ({self.groups})")

    def forward(self, x):
        x = self._input(x)
        self._check_channels(x.shape[1])
        self._cache = (tuple(x.shape),)
        return _swap_channel_blocks(x, self.groups)

    def backward(self, dy):
        dy = self._upstream(dy)
        # the inverse permutation: the same swap with the two block sizes exchanged
        return _swap_channel_blocks(dy, dy.shape[1] // self.groups)


def _swap_channel_blocks(x, groups):
    """(N, C, H, W) seen as (N, groups, C/groups, H, W), the two channel axes swapped, flattened back."""
    xp = namespace(x)
    N, C, H, W = x.shape
    swapped = xp.permute_dims(xp.reshape(x, (N, groups, C // groups, H, W)), (0, 2, 1, 3, 4))
    return xp.reshape(swapped, (N, C, H, W))
