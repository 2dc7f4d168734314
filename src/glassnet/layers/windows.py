"""Sliding windows over NCHW batches: the one place where convolution and pooling
turn images into patches and patch gradients back into images.

All output sizes follow ``out = floor((size + pad_before + pad_after - kernel) / stride) + 1``.

Everything here loops over the KH x KW kernel offsets only. For offset (i, j) the
pixels read by every window form one strided view of the image,
``x[:, :, i::sh, j::sw]`` cut to (OH, OW): copying or adding whole views keeps
NumPy's inner loops long and contiguous, with no Python work per window or sample.
"""
import numpy as np


def output_size(size, kernel, stride, pad_before, pad_after):
    """Number of window positions along one axis.

    >>> output_size(28, 5, 1, 2, 2), output_size(28, 2, 2, 0, 0), output_size(7, 3, 2, 1, 1)
    (28, 14, 4)
    """
    return (size + pad_before + pad_after - kernel) // stride + 1


def pad_images(x, pads, value=0.0):
    """Pad the two spatial axes of ``x``.

    x : (N, C, H, W); pads : (top, bottom, left, right).
    Returns (N, C, H + top + bottom, W + left + right); ``x`` itself when all pads are 0.
    """
    top, bottom, left, right = pads
    if top == bottom == left == right == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def crop_padding(x_padded, pads):
    """Inverse of ``pad_images``: (N, C, Hp, Wp) -> (N, C, H, W) (a view)."""
    top, bottom, left, right = pads
    Hp, Wp = x_padded.shape[2:]
    return x_padded[:, :, top:Hp - bottom, left:Wp - right]


def kernel_offsets(kernel):
    """The kernel offsets (k, i, j) in row-major order: k = i * KW + j."""
    kh, kw = kernel
    return [(i * kw + j, i, j) for i in range(kh) for j in range(kw)]


def offset_view(x_padded, i, j, stride, out_hw):
    """The pixel each window reads at kernel offset (i, j): (N, C, Hp, Wp) -> (N, C, OH, OW) view."""
    (sh, sw), (OH, OW) = stride, out_hw
    return x_padded[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]


def im2col(x_padded, kernel, stride, out_hw):
    """Every window as a column: (N, C, Hp, Wp) -> (C*KH*KW, N*OH*OW), one copy.

    Row ``c*KH*KW + i*KW + j`` holds pixel (i, j) of channel c of every window of every
    sample, so ``weight.reshape(F, -1) @ cols`` is the whole batch's convolution in one GEMM.
    """
    N, C = x_padded.shape[:2]
    (kh, kw), (OH, OW) = kernel, out_hw
    cols = np.empty((C, kh, kw, N, OH, OW), dtype=x_padded.dtype)
    by_channel = x_padded.transpose(1, 0, 2, 3)                                 # (C, N, Hp, Wp) view
    for _, i, j in kernel_offsets(kernel):
        cols[:, i, j] = offset_view(by_channel, i, j, stride, out_hw)
    return cols.reshape(C * kh * kw, N * OH * OW)


def col2im(dcols, padded_shape, kernel, stride, out_hw):
    """Adjoint of ``im2col``: (C*KH*KW, N*OH*OW) -> (N, C, Hp, Wp).

    Every column entry is added back onto the pixel it was read from; pixels shared
    by overlapping windows accumulate.
    """
    N, C, Hp, Wp = padded_shape
    (kh, kw), (OH, OW) = kernel, out_hw
    dcols = dcols.reshape(C, kh, kw, N, OH, OW)
    dx_by_channel = np.zeros((C, N, Hp, Wp), dtype=dcols.dtype)
    for _, i, j in kernel_offsets(kernel):
        offset_view(dx_by_channel, i, j, stride, out_hw)[...] += dcols[:, i, j]
    return np.ascontiguousarray(dx_by_channel.transpose(1, 0, 2, 3))           # (N, C, Hp, Wp)
