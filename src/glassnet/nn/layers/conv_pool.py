"""A convolution and the max pool after it in one step, for inference (``Graph.infer``).

The bias is the same number over a pool's window (one per channel) and rounding is monotone, so
max(a + b, c + b) = max(a, c) + b exactly: the bias is added after the pool, to kh*kw times fewer values
behind a pool of kh x kw windows that tile the image (a monotone activation moves there too, as
``Graph.infer`` already does, and a ReLU after the pool comes with it: ``rectify``). Beyond that, each of
the convolution's own ways gains its own step:

- through columns (``Conv2D._route`` "columns": one im2col, one product (F, N*OH*OW)): the product is
  pooled as it lies, (F, N, OH, OW), and only the pooled values are put in (N, F, PH, PW) order, not the
  whole output. The same product as ``forward``'s, so the same bits.
- sample by sample (first layers, a few rows of columns), where the pool's windows tile the image
  (kernel = stride, no padding, no dilation): the output positions are put in the order (a, b, pooled
  row, pooled column), (a, b) the place in the window, so the pool is one maximum over kh*kw contiguous
  slabs (one reduction, not kh*kw - 1 passes), and what the pool drops at the image's edge is never
  computed. The bias rides in the product itself (a row of ones under the columns, the bias a column
  beside the weights), and a ReLU is the reduction's starting value 0: max(0, m) = relu(m). So the
  product is the whole step and the pool one pass: no pass for the bias, none for the ReLU (simple's first
  layer, inference b100: 0.90-0.91 of the time, in-process toggle). The BLAS may sum a dot product's
  terms in another order than ``forward``'s product and bias add: the numbers are ``forward``'s up to the
  last bit or two (float64 differs by ~1e-16 relative where it does; tests/test_infer.py).

Other convolutions (Winograd, blocked, pointwise, depthwise, other array libraries) run by themselves.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from ...backend import NUMPY, namespace
from .activations import rectified
from .conv import grouped_matmul
from .windows import columns_with_ones, pad_images


def conv_then_max_pool(conv, pool, x, rectify=False):
    """pool(conv(x)) for inference, and with ``rectify`` the ReLU after it (max(v, 0)): x (N, C, H, W) ->
    (N, F, PH, PW), a new array; None where this way does not apply (then run the layers one after the
    other)."""
    if namespace(x) is not NUMPY or conv.pointwise or conv.depthwise:
        return None
    x = conv.checked_input(x)
    conv_hw = conv._spatial_output(*x.shape[2:])
    route = conv._route(NUMPY, x, conv_hw)                # (x's N, C and dtype: the padded input's)
    if route == "columns":
        x_padded = None if conv._flat_columns(x, conv_hw) else pad_images(x, conv.pads)
        return _rectified(_through_columns(conv, pool, x, x_padded, conv_hw), rectify)
    x_padded = pad_images(x, conv.pads)
    window = tiling_window(pool, conv_hw)
    if route == "by_sample" and window is not None:
        return _by_window_place(conv, window, x_padded, conv_hw, rectify)
    return None


def _through_columns(conv, pool, x, x_padded, conv_hw):
    """The column way: (F, N*OH*OW) pooled as (F, N, OH, OW), then (N, F, PH, PW) and the bias."""
    N, F = x.shape[0], conv.out_channels
    cols = conv.columns(x, x_padded, conv_hw)                                           # (C*kh*kw, N*OH*OW)
    out = grouped_matmul(np.reshape(conv.params["weight"], (F, -1)), cols, conv.groups)   # (F, N*OH*OW)
    pooled = pool.infer(np.reshape(out, (F, N) + tuple(conv_hw)))                         # (F, N, PH, PW)
    return conv._add_bias(np.ascontiguousarray(np.transpose(pooled, (1, 0, 2, 3))))


def _rectified(out, rectify):
    """out, a new array, with max(v, 0) applied in place when ``rectify``."""
    return rectified(out, out=out) if rectify else out


def _by_window_place(conv, window, x_padded, conv_hw, rectify):
    """The sample-by-sample way, the output positions in pool order, the bias inside the product and the
    ReLU (``rectify``) as the pool's starting value: (N, F, PH, PW)."""
    (ph, pw), N, F = window, x_padded.shape[0], conv.out_channels
    PH, PW = conv_hw[0] // ph, conv_hw[1] // pw
    cols = columns_by_window_place(x_padded, conv.kernel_size, conv.stride, conv.dilation, window, (PH, PW),
                                   ones=conv.use_bias)                          # (N, C*kh*kw [+ 1], ph*pw*PH*PW)
    slabs = np.reshape(np.matmul(conv._weight_rows_with_bias(), cols), (N, F, ph * pw, PH * PW))   # by place
    pooled = np.maximum.reduce(slabs, axis=2, initial=0.0 if rectify else None)
    return np.reshape(pooled, (N, F, PH, PW))


def tiling_window(pool, conv_hw):
    """The pool's (kh, kw) when its windows tile ``conv_hw`` (kernel = stride, no padding or dilation,
    an output of floor(size / kernel): the rows and columns past the last window are dropped), else None."""
    kernel = pool.kernel_size
    if pool.stride != kernel or any(pool.pads) or pool.dilation != (1, 1):
        return None
    pooled = (conv_hw[0] // kernel[0], conv_hw[1] // kernel[1])
    if min(pooled) < 1 or tuple(pool._spatial_output(*conv_hw)) != pooled:
        return None
    return kernel


def columns_by_window_place(x_padded, kernel, stride, dilation, window, pooled_hw, ones=False):
    """im2col_by_sample's columns with the output positions in pool order: (N, C, Hp, Wp) ->
    (N, C*kh*kw, ph*pw*PH*PW), position (a, b, r, c) the output at row r*ph + a, column c*pw + b; with
    ``ones`` a last row of ones under each sample's columns (N, C*kh*kw + 1, ...), for a bias in the product.

    Output (oh, ow) at tap (i, j) reads pixel (oh*sh + i*dh, ow*sw + j*dw), and oh = r*ph + a: the pixel
    at row offset a' = i*dh + a*sh and column offset b' = j*dw + b*sw from the pooled grid's (r*sh*ph,
    c*sw*pw). So the (PH, PW) grid of every offset (a', b') is copied once, in one strided copy, and the
    columns are then one copy of whole contiguous (PH*PW) grids from it: the strided reads touch each
    (a', b') once instead of once per (tap, window place) that reaches it (simple's first layer, batch 50:
    0.43 -> 0.28 ms).
    """
    N, C = x_padded.shape[:2]
    (kh, kw), (sh, sw), (dh, dw), (ph, pw), (PH, PW) = kernel, stride, dilation, window, pooled_hw
    bn, bc, bh, bw = x_padded.strides
    rows, columns = (kh - 1) * dh + (ph - 1) * sh + 1, (kw - 1) * dw + (pw - 1) * sw + 1     # a', b'
    grids = np.empty((N, C, rows, columns, PH, PW), dtype=x_padded.dtype)
    grids[...] = as_strided(x_padded, grids.shape, (bn, bc, bh, bw, bh * sh * ph, bw * sw * pw), writeable=False)
    by_sample, by_channel, by_row, by_column = grids.strides[:4]
    view = as_strided(grids, (N, C, kh, kw, ph, pw, PH * PW),
                      (by_sample, by_channel, by_row * dh, by_column * dw, by_row * sh, by_column * sw, grids.itemsize),
                      writeable=False)
    rows_of_columns, positions = C * kh * kw, ph * pw * PH * PW
    if ones:
        cols = columns_with_ones(N, rows_of_columns, positions, x_padded.dtype)
    else:
        cols = np.empty((N, rows_of_columns, positions), dtype=x_padded.dtype)
    cols[:, :rows_of_columns].reshape(view.shape)[...] = view      # (only splits axes: a view of cols, no copy)
    return cols
