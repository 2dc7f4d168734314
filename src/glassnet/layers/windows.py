"""Sliding windows over NCHW batches: the one place where convolution and pooling
turn images into patches and patch gradients back into images.

All output sizes follow ``out = floor((size + pad_before + pad_after - kernel) / stride) + 1``.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def output_size(size, kernel, stride, pad_before, pad_after):
    """Number of window positions along one axis."""
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


def windows(x_padded, kernel, stride):
    """Read-only view of every window: (N, C, Hp, Wp) -> (N, C, OH, OW, KH, KW). No copy."""
    (kh, kw), (sh, sw) = kernel, stride
    view = sliding_window_view(x_padded, (kh, kw), axis=(2, 3))  # (N, C, Hp-kh+1, Wp-kw+1, kh, kw)
    return view[:, :, ::sh, ::sw]


def add_windows_back(window_grads, padded_shape, stride):
    """Scatter-add per-window gradients back onto the padded image (the adjoint of ``windows``).

    window_grads : (N, C, OH, OW, KH, KW); returns (N, C, Hp, Wp).
    Loops only over the KH x KW kernel offsets; overlapping windows accumulate.
    """
    N, C, OH, OW, KH, KW = window_grads.shape
    sh, sw = stride
    dx_padded = np.zeros(padded_shape, dtype=window_grads.dtype)
    for i in range(KH):
        for j in range(KW):
            # input pixel (i + sh*oh, j + sw*ow) fed kernel offset (i, j) of window (oh, ow)
            dx_padded[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw] += window_grads[:, :, :, :, i, j]
    return dx_padded
