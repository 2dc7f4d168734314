"""2-D convolution (cross-correlation, as in PyTorch and Keras)."""
import threading

import numpy as np

from .. import init
from ...backend import NUMPY, contiguous, namespace, numpy_dtype, same_place
from ...errors import GlassnetError
from ...validation import as_float_array, as_gradient, check_batch, int_pair, make_rng, positive_int
from .base import Layer
from .conv_blocks import blocked_backward, blocked_forward
from .depthwise import (DepthwiseRows, depthwise_forward, depthwise_input_grad, depthwise_weight_grad, dy_on_grid,
                        phase_forward, phase_input_grad, phase_rows, phase_weight_grad)
from .pointwise import pointwise_forward, pointwise_input_grad, pointwise_weight_grad, strided_input
from .windows import (col2im, col2im_by_sample, col2im_same_width, crop_padding, im2col, im2col_by_sample,
                      im2col_same_width, output_size, pad_images, span)
from .winograd import flipped_weights, winograd_forward, winograd_weights


def resolve_padding(padding, kernel, stride, owner, dilation=(1, 1)):
    """Turn ``padding`` (int, pair, "valid" or "same") into (top, bottom, left, right).

    "same" keeps H and W for stride 1: the kernel's span ``dilation * (k - 1)`` in all, and for an
    odd total the extra row/column at the bottom/right, as in PyTorch.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0, 0, 0)
        if mode == "same":
            if stride != (1, 1):
                raise GlassnetError(
                    f"{owner}: padding='same' needs stride 1 (as in PyTorch). Received: stride={stride}"
                )
            total_h, total_w = (d * (k - 1) for k, d in zip(kernel, dilation))
            return (total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2)
        raise GlassnetError(
            f"{owner}: padding must be an int, a pair, 'valid' or 'same'. Received: padding={padding!r}"
        )
    ph, pw = int_pair(padding, "padding", owner, minimum=0)
    return (ph, ph, pw, pw)


def padding_argument(pads, kernel, stride, dilation=(1, 1)):
    """(top, bottom, left, right) -> the ``padding`` argument that gives it: (ph, pw) when even, "same"
    when it is stride 1's "same" (the extra row/column at the bottom/right), else None."""
    top, bottom, left, right = pads
    if top == bottom and left == right:
        return (top, left)
    same = resolve_padding("same", tuple(kernel), (1, 1), "Conv2D", tuple(dilation))
    if tuple(stride) == (1, 1) and tuple(pads) == same:
        return "same"
    return None


def channel_groups(in_channels, out_channels, groups, owner):
    """Check that ``groups`` divides both channel counts (as PyTorch); returns groups as an int."""
    groups = positive_int(groups, "groups", owner)
    if in_channels % groups or out_channels % groups:
        raise GlassnetError(f"{owner}: in_channels ({in_channels}) and out_channels ({out_channels}) must both "
                            f"be divisible by groups. Received: groups={groups}")
    return groups


def grouped_matmul(a, b, groups):
    """``a @ b`` per channel group: a (G*A, K), b (G*K, P) -> (G*A, P); block g of a times block g of b.

    One GEMM for groups=1; a batched matmul over the G groups otherwise (no Python loop over groups).
    """
    if groups == 1:
        return a @ b
    xp = namespace(a)
    rows, inner = a.shape
    a_blocks, b_blocks = xp.reshape(a, (groups, rows // groups, inner)), xp.reshape(b, (groups, inner, b.shape[1]))
    if inner <= BROADCAST_INNER:
        # a depthwise backward's W^T @ dy has inner size 1 (an outer product per channel): a broadcast
        # multiply is 4x faster than NumPy's batched matmul there (measured: (96, 9, 1) @ (96, 1, 12544))
        product = a_blocks[:, :, 0:1] * b_blocks[:, 0:1, :]
        for k in range(1, inner):
            product = product + a_blocks[:, :, k:k + 1] * b_blocks[:, k:k + 1, :]
    else:
        product = a_blocks @ b_blocks
    return xp.reshape(product, (rows, b.shape[1]))


BROADCAST_INNER = 2       # grouped products with at most this inner size are written as broadcast multiplies


def grouped_transpose(a, groups):
    """The transpose of each group's block: (G*A, K) -> (G*K, A)."""
    xp = namespace(a)
    if groups == 1:
        return xp.matrix_transpose(a)
    rows, inner = a.shape
    blocks = xp.matrix_transpose(xp.reshape(a, (groups, rows // groups, inner)))
    return xp.reshape(blocks, (groups * inner, rows // groups))


class Conv2D(Layer):
    """2-D convolution over a batch of images, grouped and dilated as PyTorch's ``nn.Conv2d``.

    ``y[n, f, i, j] = bias[f] + sum_{c, u, v} weight[f, c, u, v] * x_pad[n, g*Cg + c, i*sh + u*dh, j*sw + v*dw]``
    with ``g = f // (F / groups)`` the group of output channel f and ``Cg = C / groups`` channels per
    group: each group of F/groups filters reads only its own C/groups input channels. ``groups = C``
    is a depthwise convolution (F = C times a channel multiplier).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (kh, kw)
    stride : int or (sh, sw), default 1
    padding : int, (ph, pw), "valid" or "same", default 0
        Zero padding. "same" (stride 1 only) keeps the spatial size.
    dilation : int or (dh, dw), default 1
        Spacing between kernel taps: a kernel spans ``dh * (kh - 1) + 1`` rows.
    groups : int, default 1
        Divides in_channels and out_channels.
    bias : bool, default True
    weight_init : "torch" (default, PyTorch's kaiming_uniform(a=sqrt(5))), "he" or "glorot"
    rng : np.random.Generator, int seed or None
    dtype : float64 (default) or float32

    Shapes
    ------
    Input (N, in_channels, H, W); output (N, out_channels, OH, OW) with
    ``OH = floor((H + pad_top + pad_bottom - dh * (kh - 1) - 1) / sh) + 1`` and likewise OW.
    weight (out_channels, in_channels / groups, kh, kw); bias (out_channels,).

    Examples
    --------
    >>> conv = Conv2D(1, 8, kernel_size=3, padding="same", rng=0)
    >>> conv(np.zeros((2, 1, 28, 28))).shape
    (2, 8, 28, 28)
    >>> Conv2D(8, 16, 3, groups=8, dilation=2, rng=0).params["weight"].shape   # depthwise, multiplier 2
    (16, 1, 3, 3)
    """

    fresh_output = True       # forward returns a new array, never a view of its input (Graph.infer)
    takes_batch_norm = True   # Graph.infer may run it with the BatchNorm2D after it (conv_norm.py)
    pools_with_max = True     # runs with a max pool after it in one step (conv_pool.py, Graph.infer)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, weight_init="torch", rng=None, dtype=np.float64):
        super().__init__(dtype)
        name = "Conv2D"
        self.in_channels = positive_int(in_channels, "in_channels", name)
        self.out_channels = positive_int(out_channels, "out_channels", name)
        self.kernel_size = int_pair(kernel_size, "kernel_size", name)
        self.stride = int_pair(stride, "stride", name)
        self.dilation = int_pair(dilation, "dilation", name)
        self.groups = channel_groups(self.in_channels, self.out_channels, groups, name)
        self.padding = padding if isinstance(padding, str) else int_pair(padding, "padding", name, minimum=0)
        self.pads = resolve_padding(padding, self.kernel_size, self.stride, name, self.dilation)
        self.use_bias = bool(bias)
        self.weight_init = weight_init
        kh, kw = self.kernel_size
        group_channels = self.in_channels // self.groups
        shape = (self.out_channels, group_channels, kh, kw)
        fan_in, fan_out = group_channels * kh * kw, self.out_channels // self.groups * kh * kw
        generator = make_rng(rng, name)
        self.params["weight"] = init.initial_weight(weight_init, shape, fan_in, fan_out, generator, self.dtype, name)
        if self.use_bias:
            self.params["bias"] = init.initial_bias(weight_init, (self.out_channels,), fan_in, generator, self.dtype)
        self._cache = None

    def get_config(self):
        config = {
            "in_channels": self.in_channels, "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size), "stride": list(self.stride),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
        }
        if self.dilation != (1, 1):
            config["dilation"] = list(self.dilation)
        if self.groups != 1:
            config["groups"] = self.groups
        config["bias"] = self.use_bias
        return config

    def check_input_shape(self, input_shape):
        self._expect_sample(input_shape, f"({self.in_channels}, H, W)", 3, self.in_channels)

    def output_shape(self, input_shape):
        _, H, W = input_shape
        OH, OW = self._spatial_output(H, W)
        return (self.out_channels, OH, OW)

    def _spatial_output(self, H, W):
        (kh, kw), (sh, sw), (top, bottom, left, right) = self.kernel_size, self.stride, self.pads
        (dh, dw) = self.dilation
        if H + top + bottom < span(kh, dh) or W + left + right < span(kw, dw):
            spread = "" if self.dilation == (1, 1) else \
                f" with dilation={self.dilation} (spans {span(kh, dh)}x{span(kw, dw)})"
            raise GlassnetError(
                f"Conv2D: kernel_size={self.kernel_size}{spread} is larger than the padded "
                f"input ({H + top + bottom}, {W + left + right}) (input H, W = ({H}, {W}), padding={self.padding!r})"
            )
        return output_size(H, kh, sh, top, bottom, dh), output_size(W, kw, sw, left, right, dw)

    def forward(self, x):
        """x: (N, C, H, W) -> (N, F, OH, OW)."""
        x = self.checked_input(x)
        N = x.shape[0]
        OH, OW = self._spatial_output(*x.shape[2:])
        F = self.out_channels
        xp = namespace(x)
        weight = self.params["weight"]
        if self.pointwise:
            x_read = strided_input(x, self.stride)                                  # (N, C, OH, OW)
            out = self._add_bias(pointwise_forward(x_read, weight))
            self._cache = (x_read, tuple(x.shape), (N, OH, OW))
            return out
        if DEPTHWISE_ROWS and self.depthwise and xp is NUMPY and F == self.groups:
            # one filter per channel: each channel's pixels as flat rows (depthwise.py)
            kept = phase_rows(x, self.pads, self.stride, self.kernel_size, self.dilation)
            out = phase_forward(kept, weight, self.kernel_size, self.stride, self.dilation, (OH, OW))
            self._cache = (kept, self._padded_shape(x), (N, OH, OW))
            return self._add_bias(out)
        route = "depthwise" if self.depthwise else self._route(xp, x, (OH, OW))   # (x's N, C and dtype: the
        # padded input's); the columns as flat shifts of x need no padded copy
        x_padded = None if route == "columns" and self._flat_columns(x, (OH, OW)) else pad_images(x, self.pads)
        if route == "depthwise":
            out = depthwise_forward(x_padded, weight, F // self.groups, self.stride, self.dilation, (OH, OW))
            if self.use_bias:
                out = out + xp.reshape(self.params["bias"], (1, F, 1, 1))
            self._cache = (x_padded, tuple(x_padded.shape), (N, OH, OW))
            return out
        if route == "winograd":
            # F(2x2, 3x3): 16 products per 2x2 outputs instead of 36 (winograd.py)
            out = self._add_bias(winograd_forward(x_padded, winograd_weights(weight), (OH, OW), BLOCKED_COLUMN_BYTES))
            self._cache = (WinogradInput((x_padded,)), tuple(x_padded.shape), (N, OH, OW))
            return out
        if route == "by_sample":
            # a few column rows (a first layer): one product per sample, already in (N, F, OH*OW) order; the
            # bias rides in it (a row of ones under the columns, the bias a last column of the weights): no
            # pass over the output to add it, and its gradient comes out of the weight gradient's product
            cols = im2col_by_sample(x_padded, self.kernel_size, self.stride, (OH, OW), self.dilation,
                                    ones=self.use_bias)                             # (N, C*kh*kw [+ 1], OH*OW)
            out = np.matmul(self._weight_rows_with_bias(), cols)                    # (N, F, OH*OW)
            self._cache = (SampleColumns((cols,)), tuple(x_padded.shape), (N, OH, OW))
            return np.reshape(out, (N, F, OH, OW))
        if route == "blocked":
            # columns too large to make at once: made and multiplied block by block (conv_blocks.py)
            multiply = None if self.groups == 1 else (lambda w, c: grouped_matmul(w, c, self.groups))
            out = self._add_bias(blocked_forward(x_padded, xp.reshape(weight, (F, -1)), multiply, self.kernel_size,
                                                 self.stride, self.dilation, (OH, OW), BLOCKED_COLUMN_BYTES))
            self._cache = (BlockedInput((x_padded,)), tuple(x_padded.shape), (N, OH, OW))
            return out
        cols = self.columns(x, x_padded, (OH, OW))                                       # (C*kh*kw, N*OH*OW)
        out = grouped_matmul(xp.reshape(weight, (F, -1)), cols, self.groups)   # (F, N*OH*OW): one GEMM per group
        if self.use_bias:
            out += xp.reshape(self.params["bias"], (F, 1))
        # backward needs the columns again; kept, they cost kh*kw times the input's memory, so only the
        # (padded) input is kept and the columns are made again there (see COLUMN_MEMORY)
        keep = COLUMN_MEMORY == "keep" or (COLUMN_MEMORY == "auto" and cols_bytes(cols) <= KEPT_COLUMN_BYTES)
        if not keep and x_padded is None:
            x_padded = pad_images(x, self.pads)
        self._cache = (cols if keep else x_padded, self._padded_shape(x), (N, OH, OW))
        return contiguous(xp, xp.permute_dims(xp.reshape(out, (F, N, OH, OW)), (1, 0, 2, 3)))  # (N, F, OH, OW)

    def columns(self, x, x_padded, out_hw):
        """im2col's columns (C*kh*kw, N*OH*OW) of x; NumPy with stride 1 and an output as wide as the
        input: as flat shifts of x itself (``im2col_same_width``, the same values; lenet's second
        convolution b32 0.72 -> 0.28 ms)."""
        if self._flat_columns(x, out_hw):
            return im2col_same_width(x, self.kernel_size, self.pads, out_hw, self.dilation)
        return im2col(x_padded, self.kernel_size, self.stride, out_hw, self.dilation)

    def _flat_columns(self, array, out_hw, width=None):
        """Whether im2col and col2im run as flat shifts (windows.flat_shifts): NumPy ``array``, stride 1, and
        OW = W (W: ``width``, else the array's, an input (N, C, H, W))."""
        return (namespace(array) is NUMPY and self.stride == (1, 1)
                and out_hw[1] == (array.shape[3] if width is None else width))

    def _padded_shape(self, x):
        """The shape of x (N, C, H, W) once padded: (N, C, H + top + bottom, W + left + right)."""
        top, bottom, left, right = self.pads
        return (x.shape[0], x.shape[1], x.shape[2] + top + bottom, x.shape[3] + left + right)

    def checked_input(self, x):
        """x as an array of this layer's dtype, checked to be (N, C, H, W) where the weights are."""
        x = as_float_array(x, "Conv2D", self.dtype)
        check_batch(x, "Conv2D", f"(N, {self.in_channels}, H, W)", channels_axis=1, channels=self.in_channels)
        same_place(x, self.params["weight"], "input", "Conv2D")
        return x

    @property
    def pointwise(self):
        """Whether this is a 1x1 convolution without groups or padding, run as a product per sample
        (``pointwise.py``) when POINTWISE_PRODUCTS is on."""
        return (POINTWISE_PRODUCTS and self.kernel_size == (1, 1) and self.groups == 1
                and not any(self.pads))

    def _weight_rows_with_bias(self):
        """The weights as rows (F, C/groups*kh*kw), the bias beside them as a last column when the layer
        has one: (F, C/groups*kh*kw + 1), for columns with a row of ones under them."""
        rows = np.reshape(self.params["weight"], (self.out_channels, -1))
        if not self.use_bias:
            return rows
        return np.concatenate([rows, np.reshape(self.params["bias"], (self.out_channels, 1))], axis=1)

    def _add_bias(self, out):
        """out (N, F, OH, OW), a new array: the bias added in place (when the layer has one)."""
        if self.use_bias:
            out += namespace(out).reshape(self.params["bias"], (1, self.out_channels, 1, 1))
        return out

    @property
    def winograd(self):
        """Whether this is a 3x3 stride-1 convolution without groups or dilation, which Winograd's F(2x2,
        3x3) can run (``winograd.py``, NumPy arrays, when WINOGRAD is on and ``winograd_pays``)."""
        return (WINOGRAD and self.kernel_size == (3, 3) and self.stride == (1, 1) and self.dilation == (1, 1)
                and self.groups == 1)

    def _route(self, xp, x_padded, out_hw):
        """How ``forward`` runs a convolution that is neither pointwise nor depthwise: "winograd",
        "by_sample", "blocked" or "columns" (one im2col, one product per group)."""
        N, (OH, OW) = x_padded.shape[0], out_hw
        if xp is NUMPY and self.winograd and winograd_pays(self.in_channels, self.out_channels, N, OH, OW):
            return "winograd"
        if self._by_sample(xp, x_padded, N * OH * OW):
            return "by_sample"
        if xp is NUMPY and COLUMN_MEMORY != "keep" and self._column_bytes(x_padded, N * OH * OW) > BLOCKED_COLUMN_BYTES:
            return "blocked"
        return "columns"

    def _by_sample(self, xp, x_padded, positions):
        """Whether to run through columns sample by sample (``im2col_by_sample``): NumPy, no groups, at most
        SAMPLE_COLUMN_ROWS rows of columns (C*kh*kw), and columns that fit in KEPT_COLUMN_BYTES."""
        kh, kw = self.kernel_size
        return (xp is NUMPY and self.groups == 1 and COLUMN_MEMORY == "auto"
                and x_padded.shape[1] * kh * kw <= SAMPLE_COLUMN_ROWS
                and self._column_bytes(x_padded, positions) <= KEPT_COLUMN_BYTES)

    def _column_bytes(self, x_padded, positions):
        """The size of im2col's columns for ``positions`` output positions (N*OH*OW)."""
        kh, kw = self.kernel_size
        return x_padded.shape[1] * kh * kw * positions * numpy_dtype(x_padded.dtype).itemsize

    @property
    def depthwise(self):
        """Whether this is a depthwise convolution (one input channel per group), run tap by tap
        (``depthwise.py``) when DEPTHWISE_TAPS is on."""
        return DEPTHWISE_TAPS and self.groups == self.in_channels and self.groups > 1

    def _columns(self):
        """The columns of the last forward pass: kept (2-D), or made again from the kept padded input (4-D)."""
        kept, _, (N, OH, OW) = self._cache
        if isinstance(kept, WinogradInput):          # (the padded input,): the columns made from it
            kept = kept[0]
        return im2col(kept, self.kernel_size, self.stride, (OH, OW), self.dilation) if kept.ndim == 4 else kept

    def backward(self, dy):
        """dy: (N, F, OH, OW) -> dL/dx: (N, C, H, W); fills grads["weight"], grads["bias"]."""
        marked = self._marked_backward()
        if marked is not None:
            return marked(dy, input_grad=True)
        dy_rows = self._parameter_grads(dy)
        _, padded_shape, (N, OH, OW) = self._cache
        if self.pointwise:
            return pointwise_input_grad(dy_rows, self.params["weight"], padded_shape, self.stride)
        if self.depthwise:
            dx_padded = depthwise_input_grad(dy_rows, self.params["weight"], self.out_channels // self.groups,
                                             padded_shape, self.stride, self.dilation)
            return crop_padding(dx_padded, self.pads)
        xp = namespace(dy_rows)
        # out_g = W_g @ cols_g + b  =>  dcols_g = W_g^T @ dy_g; each column entry flows back to the pixel
        # it was read from
        weight_rows = xp.reshape(self.params["weight"], (self.out_channels, -1))
        dcols = grouped_matmul(grouped_transpose(weight_rows, self.groups), dy_rows, self.groups)  # (C*kh*kw, N*OH*OW)
        top, bottom, left, right = self.pads
        input_shape = (N, self.in_channels, padded_shape[2] - top - bottom, padded_shape[3] - left - right)
        if self._flat_columns(dcols, (OH, OW), input_shape[3]):
            # each tap one flat shift (windows.py): lenet's second convolution b32 col2im 0.98 -> 0.53 ms
            return col2im_same_width(dcols, input_shape, self.kernel_size, self.pads, (OH, OW), self.dilation)
        dx_padded = col2im(dcols, padded_shape, self.kernel_size, self.stride, (OH, OW), self.dilation)
        return crop_padding(dx_padded, self.pads)

    def backward_parameters(self, dy):
        """Like ``backward`` without dL/dx (the first layer's input needs no gradient)."""
        marked = self._marked_backward()
        if marked is not None:
            marked(dy, input_grad=False)
        else:
            self._parameter_grads(dy)

    def _marked_backward(self):
        """The backward of the path the last forward took when it left a marker (a Winograd, block-by-block
        or sample-by-sample forward), else None: ``method(dy, input_grad)``."""
        kept = None if self._cache is None else self._cache[0]
        paths = {WinogradInput: self._winograd_backward, BlockedInput: self._blocked_backward,
                 SampleColumns: self._by_sample_backward, DepthwiseRows: self._depthwise_rows_backward}
        return paths.get(type(kept))

    def _depthwise_rows_backward(self, dy, input_grad):
        """Backward after ``phase_rows`` (NumPy, one filter per channel): dL/dx (N, C, H, W) or None."""
        kept, _, (N, OH, OW) = self._cache
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, (N, self.out_channels, OH, OW))
        dy_grid = dy_on_grid(kept, dy)                                          # (C, N*Hq*Wq)
        self.grads["weight"] = phase_weight_grad(kept, dy_grid, self.kernel_size, self.stride, self.dilation)
        if self.use_bias:
            self.grads["bias"] = np.sum(dy, axis=(0, 2, 3))
        if not input_grad:
            return None
        return phase_input_grad(kept, dy_grid, self.params["weight"], self.kernel_size, self.stride, self.dilation)

    def _blocked_backward(self, dy, input_grad):
        """Backward after a forward made block by block (conv_blocks.py): the columns block by block again."""
        (x_padded,), _, (N, OH, OW) = self._cache
        F, Cg, kh, kw = self.params["weight"].shape
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, (N, F, OH, OW))
        weight_rows = np.reshape(self.params["weight"], (F, -1))
        weight_grad, dx_padded = blocked_backward(
            x_padded, dy, weight_rows, lambda d, c, samples: columns_weight_grad(d, c, samples, self.groups),
            lambda w, d: grouped_matmul(grouped_transpose(w, self.groups), d, self.groups), self.kernel_size,
            self.stride, self.dilation, BLOCKED_COLUMN_BYTES, input_grad)
        self.grads["weight"] = np.reshape(weight_grad, (F, Cg, kh, kw))
        if self.use_bias:
            self.grads["bias"] = np.sum(dy, axis=(0, 2, 3))
        return crop_padding(dx_padded, self.pads) if input_grad else None

    def _by_sample_backward(self, dy, input_grad):
        """Backward after a forward through columns sample by sample."""
        (cols,), padded_shape, (N, OH, OW) = self._cache
        weight = self.params["weight"]
        F, C, kh, kw = weight.shape
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, (N, F, OH, OW))
        dy_rows = np.reshape(dy, (N, F, OH * OW))
        # y[n] = [W b] @ [cols[n]; 1]  =>  [dW db] = sum over n of dy[n] @ [cols[n]; 1]^T (db: the sum of dy)
        both = np.sum(np.matmul(dy_rows, np.transpose(cols, (0, 2, 1))), axis=0)    # (F, C*kh*kw [+ 1])
        self.grads["weight"] = np.ascontiguousarray(np.reshape(both[:, :C * kh * kw], (F, C, kh, kw)))
        if self.use_bias:
            self.grads["bias"] = both[:, -1].copy()
        if not input_grad:
            return None
        # dcols[n] = W^T @ dy[n], each entry back onto the pixel it was read from
        dcols = np.matmul(np.reshape(weight, (F, -1)).T, dy_rows)                     # (N, C*kh*kw, OH*OW)
        dx_padded = col2im_by_sample(dcols, padded_shape, self.kernel_size, self.stride, (OH, OW), self.dilation)
        return crop_padding(dx_padded, self.pads)

    def _winograd_backward(self, dy, input_grad):
        """Backward after a Winograd forward: the weight gradient through columns (in blocks when large),
        dL/dx by Winograd again (a 3x3 stride-1 correlation of dy)."""
        (x_padded,), padded_shape, (N, OH, OW) = self._cache
        dy = as_gradient(dy, self.dtype)
        if self._column_bytes(x_padded, N * OH * OW) > BLOCKED_COLUMN_BYTES:
            self._blocked_backward(dy, input_grad=False)
        else:
            self._parameter_grads(dy)
        if not input_grad:
            return None
        weight = self.params["weight"]
        # y = x_pad correlated with W  =>  dx_pad = (dy padded by 2) correlated with W turned 180 degrees
        # (input and output channels swapped); only the rows and columns of x itself are made
        H, W = padded_shape[2] - self.pads[0] - self.pads[1], padded_shape[3] - self.pads[2] - self.pads[3]
        return winograd_forward(full_correlation_input(dy, self.pads), winograd_weights(flipped_weights(weight)),
                                (H, W), BLOCKED_COLUMN_BYTES)

    def _parameter_grads(self, dy):
        """Fill grads from dy (N, F, OH, OW); returns dy as rows (F, N*OH*OW)."""
        self._require_cache(self._cache)
        _, _, (N, OH, OW) = self._cache
        F, Cg, kh, kw = self.params["weight"].shape
        dy = as_gradient(dy, self.dtype)
        self._check_grad_shape(dy, (N, F, OH, OW))
        xp = namespace(dy)
        if self.pointwise:                           # returns dy itself (N, F, OH, OW) for backward
            self.grads["weight"] = pointwise_weight_grad(self._cache[0], dy)
            if self.use_bias:
                self.grads["bias"] = xp.sum(dy, axis=(0, 2, 3))
            return dy
        if self.depthwise:                           # returns dy itself (N, F, OH, OW) for backward
            self.grads["weight"] = depthwise_weight_grad(self._cache[0], dy, F // self.groups, self.kernel_size,
                                                         self.stride, self.dilation)
            if self.use_bias:
                self.grads["bias"] = xp.sum(dy, axis=(0, 2, 3))
            return dy
        cols = self._columns()
        dy_rows = xp.reshape(xp.permute_dims(dy, (1, 0, 2, 3)), (F, N * OH * OW))    # (F, N*OH*OW) copy
        # out_g = W_g @ cols_g + b  =>  dW_g = dy_g @ cols_g^T,  db = sum of dy over samples and positions
        weight_grad = columns_weight_grad(dy_rows, cols, N, self.groups)
        self.grads["weight"] = xp.reshape(weight_grad, (F, Cg, kh, kw))
        if self.use_bias:
            self.grads["bias"] = xp.sum(dy_rows, axis=1)
        return dy_rows


def columns_weight_grad(dy_rows, cols, samples, groups):
    """dW (F, C/groups*kh*kw) = dy_g @ cols_g^T per group, from dy_rows (F, P) and cols (C*kh*kw, P), P over
    ``samples`` samples (one GEMM in pieces for groups=1, see ``weight_gradient``; batched over groups)."""
    if groups == 1:
        return weight_gradient(dy_rows, cols, samples)
    xp = namespace(dy_rows)
    F, K = dy_rows.shape[0], cols.shape[0]
    return xp.reshape(xp.reshape(dy_rows, (groups, F // groups, -1))
                      @ xp.matrix_transpose(xp.reshape(cols, (groups, K // groups, -1))), (F, K // groups))


def winograd_pays(in_channels, out_channels, samples, out_h, out_w):
    """Whether Winograd beats columns for this layer and batch: at least WINOGRAD_MIN_CHANNELS channels
    on both sides and ``min(channels) * tiles`` at least WINOGRAD_MIN_WORK (2x2 output tiles over the batch),
    or WINOGRAD_MIN_WORK_ONE_THREAD inside a part of a batch split (``replicas.py``: the BLAS on one thread,
    where the products Winograd saves weigh more against its transforms).

    Its transforms cost memory passes in proportion to C + K, the products it saves C * K, and its 16
    products are small when the tiles are few; the rule follows issue 28's per-layer A/B (float32, ms,
    Winograd / columns, forward and backward): VGG-16's 128@112, 256@56 and 512@28 at batch 8 0.69-0.87
    and 0.76-0.95; 64@224 1.25 / 1.12; ResNet-50's 256@14 and 512@7 at batch 8 1.15 / 1.03-1.24, at batch 1
    1.04-2.5.

    >>> winograd_pays(512, 512, 8, 28, 28), winograd_pays(512, 512, 8, 7, 7), winograd_pays(64, 64, 8, 224, 224)
    (True, False, False)
    """
    tiles = samples * ((out_h + 1) // 2) * ((out_w + 1) // 2)
    channels = min(in_channels, out_channels)
    least = WINOGRAD_MIN_WORK_ONE_THREAD if getattr(BATCH_PART, "one_thread", False) else WINOGRAD_MIN_WORK
    return channels >= WINOGRAD_MIN_CHANNELS and channels * tiles >= least


class BlockedInput(tuple):
    """What a forward made block by block keeps (conv_blocks.py): (the padded input,)."""


class SampleColumns(tuple):
    """What a forward through columns sample by sample keeps: (the columns (N, C*kh*kw, OH*OW),)."""


class WinogradInput(tuple):
    """What a Winograd forward keeps (winograd.py): (the padded input,)."""


def full_correlation_input(dy, pads):
    """dy (N, F, OH, OW) padded by 2 - pad on each side (cropped where a pad passes 2): correlated with a
    3x3 stride-1 layer's turned kernels it gives dL/dx at the input's own size (N, C, H, W)."""
    top, bottom, left, right = pads
    OH, OW = dy.shape[2:]
    inside = dy[:, :, max(0, top - 2):OH - max(0, bottom - 2), max(0, left - 2):OW - max(0, right - 2)]
    return pad_images(inside, tuple(max(0, 2 - p) for p in pads))


# What forward keeps for backward. The columns cost kh*kw times the input's memory; making them again in
# backward costs time. "keep": always the columns; "input": always the padded input (columns made again);
# "auto": the columns while they fit in KEPT_COLUMN_BYTES, else the input. Measured here (2-core AMD EPYC,
# float32, ms per training step, keep / input / auto): simple b100 10.6 / 11.0 / 10.1, lenet b64 17.5 / 21.1 /
# 17.8, resnet_mini b64 121 / 158 / 141; peak memory of resnet_mini's step 194 / 106 / 119 MB (PyTorch: 138).
COLUMN_MEMORY = "auto"
DEPTHWISE_TAPS = True     # depthwise convolutions tap by tap (depthwise.py) rather than through columns
DEPTHWISE_ROWS = True     # ... and on NumPy with one filter per channel, over each channel's phase rows
POINTWISE_PRODUCTS = True  # 1x1 convolutions as a product per sample (pointwise.py) rather than through columns
KEPT_COLUMN_BYTES = 8 << 20
SAMPLE_COLUMN_ROWS = 32   # convolutions with at most this many rows of columns (C*kh*kw) run sample by sample
WINOGRAD = True           # 3x3 stride-1 convolutions between many channels by Winograd's F(2x2, 3x3) (winograd.py)
WINOGRAD_MIN_CHANNELS = 128   # see winograd_pays
WINOGRAD_MIN_WORK = 200_000
WINOGRAD_MIN_WORK_ONE_THREAD = 50_000   # one thread, float32, ms Winograd / columns: 128@28 b4 0.76, 256@14 b4
                                        # 0.91, 256@28 b1 0.76, 128@28 b1 0.88; 512@7 b4 1.39, 256@14 b1 1.30
BATCH_PART = threading.local()          # .one_thread: this thread runs parts of a batch split (replicas.py)
# columns beyond this are made block by block (conv_blocks.py); under glibc's largest mmap threshold (32 MiB),
# so that each block's arrays come from memory the heap keeps (heap.py). Measured (vgg16 b8 inference, ms,
# interleaved, median of 5): budget 8 MiB 2,678, 16 MiB 2,836, 30 MiB 2,511, no blocks 4,974.
BLOCKED_COLUMN_BYTES = 30 << 20


def cols_bytes(cols):
    return int(cols.shape[0]) * int(cols.shape[1]) * numpy_dtype(cols.dtype).itemsize
PIECE_COLUMNS = 1200   # about this many columns per piece of the weight gradient's product (see weight_gradient)


def samples_per_piece(samples, positions):
    """The largest divisor of ``samples`` whose columns (samples x positions) stay within PIECE_COLUMNS (>= 1).

    >>> samples_per_piece(64, 196), samples_per_piece(100, 576), samples_per_piece(7, 196)
    (4, 2, 1)
    """
    fits = max(1, PIECE_COLUMNS // positions)
    return max(s for s in range(1, min(fits, samples) + 1) if samples % s == 0)


def weight_gradient(dy_rows, cols, samples):
    """dW = dy_rows @ cols^T, (F, P) x (K, P) -> (F, K), P = samples * positions, summed over pieces.

    The product's inner dimension P runs over every position of every sample: long and thin. OpenBLAS
    computes it 1.3-3x slower in one call than as a sum of products over pieces of a few samples
    (about a thousand columns each, which stay in cache), most for small K (a first layer's C*kh*kw
    is 9 or 25): measured here (float32, ms) (16 x 50176) x (9 x 50176): 0.59 in one product, 0.19
    in pieces; (30 x 57600) x (25 x 57600): 2.1 and 1.1. The sum only reorders additions.
    """
    xp = namespace(dy_rows)
    (F, P), K = dy_rows.shape, cols.shape[0]
    pieces = samples // samples_per_piece(samples, P // samples)
    cols_pieces = xp.permute_dims(xp.reshape(cols, (K, pieces, P // pieces)), (1, 0, 2))     # (pieces, K, P/pieces)
    dy_pieces = xp.permute_dims(xp.reshape(dy_rows, (F, pieces, P // pieces)), (1, 2, 0))    # (pieces, P/pieces, F)
    return xp.matrix_transpose(xp.sum(cols_pieces @ dy_pieces, axis=0))                      # (F, K)
