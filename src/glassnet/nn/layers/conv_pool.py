"""A first-layer convolution and the max pool after it in one step, for inference (``Graph.infer``).

A max pool whose windows tile the image (kernel = stride, no padding, no dilation) reads each of the
convolution's outputs once, at one place (a, b) of one window. If the convolution's output positions are
put in the order (a, b, pooled row, pooled column), the pool is a running maximum over ph*pw contiguous
slabs instead of strided views, and what the pool drops at the image's edge is never computed.

Two more steps move behind the pool, on ph*pw times fewer values, with the same bits:

- the bias: it is the same number over a window (one per channel), and rounding is monotone, so
  max(a + b, c + b) = max(a, c) + b exactly;
- a monotone activation (ReLU, ReLU6, LeakyReLU), as ``Graph.infer`` already does.

The numbers are forward's up to the last bit or two: the products are the same, but the BLAS may sum a
dot product's terms in another order when the columns sit elsewhere in the matrix (float64 differs by
~1e-16 relative where it does; tests/test_infer.py). The columns are ``im2col_by_sample``'s (one product per sample, already in (N, F, ...) order), so this
runs where the convolution itself runs sample by sample (``Conv2D._by_sample``: a few rows of columns, a
first layer): there the convolution's output is the largest array of the net and the pool reads it whole.
NumPy arrays only (``as_strided``).
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from ...backend import NUMPY, namespace
from .windows import pad_images


def conv_then_max_pool(conv, pool, x):
    """pool(conv(x)) for inference: x (N, C, H, W) -> (N, F, PH, PW), a new array; None where this way
    does not apply (then run the two layers one after the other)."""
    if namespace(x) is not NUMPY or conv.pointwise or conv.depthwise:
        return None
    x = conv.checked_input(x)
    N = x.shape[0]
    OH, OW = conv._spatial_output(*x.shape[2:])
    x_padded = pad_images(x, conv.pads)
    window = tiling_window(pool, (OH, OW))
    if window is None or not conv._by_sample(NUMPY, x_padded, N * OH * OW):
        return None
    (ph, pw), F = window, conv.out_channels
    PH, PW = OH // ph, OW // pw
    cols = columns_by_window_place(x_padded, conv.kernel_size, conv.stride, conv.dilation, window, (PH, PW))
    out = np.matmul(np.reshape(conv.params["weight"], (F, -1)), cols)           # (N, F, ph*pw*PH*PW)
    slabs = np.reshape(out, (N, F, ph * pw, PH * PW))
    pooled = np.maximum(slabs[:, :, 0], slabs[:, :, 1]) if ph * pw > 1 else slabs[:, :, 0].copy()
    for place in range(2, ph * pw):
        np.maximum(pooled, slabs[:, :, place], out=pooled)
    pooled = np.reshape(pooled, (N, F, PH, PW))
    return conv._add_bias(pooled)


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


def columns_by_window_place(x_padded, kernel, stride, dilation, window, pooled_hw):
    """im2col_by_sample's columns with the output positions in pool order: (N, C, Hp, Wp) ->
    (N, C*kh*kw, ph*pw*PH*PW), position (a, b, r, c) the output at row r*ph + a, column c*pw + b.

    One copy of one strided view (N, C, kh, kw, ph, pw, PH, PW) of the padded input: output (oh, ow)
    at tap (i, j) reads pixel (oh*sh + i*dh, ow*sw + j*dw), and oh = r*ph + a.
    """
    N, C = x_padded.shape[:2]
    (kh, kw), (sh, sw), (dh, dw), (ph, pw), (PH, PW) = kernel, stride, dilation, window, pooled_hw
    bn, bc, bh, bw = x_padded.strides
    view = as_strided(x_padded, (N, C, kh, kw, ph, pw, PH, PW),
                      (bn, bc, bh * dh, bw * dw, bh * sh, bw * sw, bh * sh * ph, bw * sw * pw), writeable=False)
    cols = np.empty(view.shape, dtype=x_padded.dtype)
    cols[...] = view
    return np.reshape(cols, (N, C * kh * kw, ph * pw * PH * PW))
