"""Sliding windows over NCHW batches: the one place where convolution and pooling
turn images into patches and patch gradients back into images.

All output sizes follow ``out = floor((size + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride) + 1``.

Everything here loops over the KH x KW kernel offsets only. For offset (i, j) the
pixels read by every window form one strided view of the image,
``x[:, :, i::sh, j::sw]`` cut to (OH, OW): copying or adding whole views keeps
NumPy's inner loops long and contiguous, with no Python work per window or sample.
Written against the Array API standard (``xp`` is the arrays' namespace, see ``backend.py``).
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from ...backend import add_into, contiguous, device_of, namespace, pad_spatial


def output_size(size, kernel, stride, pad_before, pad_after, dilation=1):
    """Number of window positions along one axis (a dilated kernel spans ``dilation * (kernel - 1) + 1``).

    >>> output_size(28, 5, 1, 2, 2), output_size(28, 2, 2, 0, 0), output_size(7, 3, 2, 1, 1), output_size(9, 3, 1, 0, 0, 2)
    (28, 14, 4, 5)
    """
    return (size + pad_before + pad_after - span(kernel, dilation)) // stride + 1


def span(kernel, dilation):
    """The pixels a kernel of ``kernel`` taps covers along one axis: ``dilation * (kernel - 1) + 1``."""
    return dilation * (kernel - 1) + 1


def pad_images(x, pads, value=0.0):
    """Pad the two spatial axes of ``x``.

    x : (N, C, H, W); pads : (top, bottom, left, right).
    Returns (N, C, H + top + bottom, W + left + right); ``x`` itself when all pads are 0.
    """
    if not any(pads):
        return x
    return pad_spatial(namespace(x), x, pads, value)


def crop_padding(x_padded, pads):
    """Inverse of ``pad_images``: (N, C, Hp, Wp) -> (N, C, H, W) (a view)."""
    top, bottom, left, right = pads
    Hp, Wp = x_padded.shape[2:]
    return x_padded[:, :, top:Hp - bottom, left:Wp - right]


def kernel_offsets(kernel, dilation=(1, 1)):
    """The kernel taps (k, i, j) in row-major order, k = tap row * KW + tap column, and (i, j) the tap's
    pixel offset in the window (tap row * dilation_h, tap column * dilation_w)."""
    (kh, kw), (dh, dw) = kernel, dilation
    return [(r * kw + c, r * dh, c * dw) for r in range(kh) for c in range(kw)]


def offset_key(i, j, stride, out_hw):
    """The index of the pixel each window reads at kernel offset (i, j), on the last two axes."""
    (sh, sw), (OH, OW) = stride, out_hw
    return (slice(None), slice(None), slice(i, i + sh * (OH - 1) + 1, sh), slice(j, j + sw * (OW - 1) + 1, sw))


def offset_view(x_padded, i, j, stride, out_hw):
    """The pixel each window reads at kernel offset (i, j): (N, C, Hp, Wp) -> (N, C, OH, OW) view."""
    (sh, sw), (OH, OW) = stride, out_hw          # (the key of offset_key, inline: this runs per offset per call)
    return x_padded[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]


def im2col(x_padded, kernel, stride, out_hw, dilation=(1, 1)):
    """Every window as a column: (N, C, Hp, Wp) -> (C*KH*KW, N*OH*OW), one copy.

    Row ``c*KH*KW + r*KW + s`` holds tap (r, s) of channel c of every window of every
    sample, so ``weight.reshape(F, -1) @ cols`` is the whole batch's convolution in one GEMM.
    """
    xp = namespace(x_padded)
    N, C = x_padded.shape[:2]
    (kh, kw), (OH, OW) = kernel, out_hw
    cols = xp.empty((C, kh * kw, N, OH, OW), dtype=x_padded.dtype, device=device_of(x_padded))
    by_channel = xp.permute_dims(x_padded, (1, 0, 2, 3))                       # (C, N, Hp, Wp) view
    for k, i, j in kernel_offsets(kernel, dilation):
        cols[:, k, ...] = offset_view(by_channel, i, j, stride, out_hw)
    return xp.reshape(cols, (C * kh * kw, N * OH * OW))


def col2im(dcols, padded_shape, kernel, stride, out_hw, dilation=(1, 1)):
    """Adjoint of ``im2col``: (C*KH*KW, N*OH*OW) -> (N, C, Hp, Wp).

    Every column entry is added back onto the pixel it was read from; pixels shared
    by overlapping windows accumulate.
    """
    xp = namespace(dcols)
    N, C, Hp, Wp = padded_shape
    (kh, kw), (OH, OW) = kernel, out_hw
    dcols = xp.reshape(dcols, (C, kh * kw, N, OH, OW))
    dx_by_channel = xp.zeros((C, N, Hp, Wp), dtype=dcols.dtype, device=device_of(dcols))
    for k, i, j in kernel_offsets(kernel, dilation):
        add_into(dx_by_channel, offset_key(i, j, stride, out_hw), dcols[:, k, ...])
    return contiguous(xp, xp.permute_dims(dx_by_channel, (1, 0, 2, 3)))          # (N, C, Hp, Wp)


def flat_shifts(input_hw, kernel, pads, out_hw, dilation=(1, 1)):
    """The taps of a stride-1 convolution whose output is as wide as its input (OW = W), as flat shifts:
    [(k, shift, first, end, padding_columns)], output position q in [first, end) of an (OH*OW) block reading
    input pixel q + shift, shift = (i - top) * W + (j - left) for tap offset (i, j).

    A shift by j - left columns carries a row's last (or first) positions across the row's edge into the
    next (or previous) row: exactly the output columns ``padding_columns`` (a slice, or None), whose tap
    reads the left or right padding. With those entries 0, one flat copy or add over a whole (N, OH*OW)
    block is right; positions whose pixel lies above or below the image fall outside [first, end).
    """
    (H, W), (OH, OW) = input_hw, out_hw
    top, _, left, _ = pads
    taps = []
    for k, i, j in kernel_offsets(kernel, dilation):
        column_shift = j - left
        padding_columns = (slice(None, -column_shift) if column_shift < 0 else
                           slice(max(0, OW - column_shift), None) if column_shift > 0 else None)
        shift = (i - top) * W + column_shift
        first = max(0, -shift)
        taps.append((k, shift, first, max(first, min(OH * OW, H * W - shift)), padding_columns))
    return taps


def im2col_same_width(x, kernel, pads, out_hw, dilation=(1, 1)):
    """``im2col(pad_images(x, pads), ...)`` for stride 1 when the output is as wide as the input (OW = W),
    NumPy: (N, C, H, W) -> (C*KH*KW, N*OH*OW), the same values, in one copy of one strided view.

    Each (sample, channel) image is laid as one flat row of H*W pixels between runs of zeros (the padding
    above and below it), so tap (i, j) of output position q reads that row at q + i*W + j from the row's
    start: one view (C, KH, KW, N, OH*OW) with strides (row, W, 1, row, 1) covers every tap. A tap shifted
    sideways carries a row's last (or first) pixels across the image's edge: exactly the output columns
    whose tap reads the left or right padding (``flat_shifts``), set to 0 after the copy, one kernel
    column at a time. (One call per kernel column instead of four per tap: lenet's second convolution at
    batch 32 0.21-0.26 -> 0.17-0.19 ms.)
    """
    N, C, H, W = x.shape
    (kh, kw), (OH, OW), (dh, dw) = kernel, out_hw, dilation
    top, _, left, _ = pads
    before = top * W + left                                  # zeros a row starts with: tap (0, 0) of q = 0
    length = max(before + H * W, OH * OW + (kh - 1) * dh * W + (kw - 1) * dw)    # the last pixel any tap reads + 1
    rows = np.empty((N, C, length), dtype=x.dtype)
    rows[:, :, :before] = 0
    rows[:, :, before + H * W:] = 0
    rows[:, :, before:before + H * W] = x.reshape(N, C, H * W)
    step = x.itemsize
    by_sample, by_channel = rows.strides[:2]
    by_tap = as_strided(rows, (C, kh, kw, N, OH * OW), (by_channel, dh * W * step, dw * step, by_sample, step),
                      writeable=False)
    cols = np.empty((C, kh, kw, N, OH, OW), dtype=x.dtype)
    cols.reshape(C, kh, kw, N, OH * OW)[...] = by_tap
    for k, _, _, _, padding_columns in flat_shifts((H, W), kernel, pads, out_hw, dilation)[:kw]:
        if padding_columns is not None:              # kernel column k, the same for every kernel row
            cols[:, :, k, :, :, padding_columns] = 0
    return cols.reshape(C * kh * kw, N * OH * OW)


def col2im_same_width(dcols, input_shape, kernel, pads, out_hw, dilation=(1, 1)):
    """``crop_padding(col2im(...))`` for stride 1 when the output is as wide as the input (OW = W, as in
    a "same" convolution), NumPy: (C*KH*KW, N*OH*OW) -> dL/dx (N, C, H, W), contiguous. The same sums in
    the same order (bit for bit); **dcols is overwritten** (entries no pixel reads are set to 0).

    The adjoint of ``im2col_same_width``: pixel p collects column entry p - shift of each tap
    (``flat_shifts``), one add over long contiguous rows per tap, straight into dL/dx (no padded buffer to
    crop, no transpose).
    """
    N, C, H, W = input_shape
    (kh, kw), (OH, OW) = kernel, out_hw
    dcols_by_tap = dcols.reshape(C, kh * kw, N, OH, OW)
    dcols = dcols.reshape(C, kh * kw, N, OH * OW)
    dx = np.zeros((N, C, H * W), dtype=dcols.dtype)
    dx_by_channel = dx.transpose(1, 0, 2)                                     # (C, N, H*W) view
    for k, shift, first, end, padding_columns in flat_shifts((H, W), kernel, pads, out_hw, dilation):
        if padding_columns is not None:
            dcols_by_tap[:, k, :, :, padding_columns] = 0
        target = dx_by_channel[:, :, first + shift:end + shift]              # dx[p] += dcols[p - shift]
        np.add(target, dcols[:, k, :, first:end], out=target)
    return dx.reshape(N, C, H, W)


def im2col_by_sample(x_padded, kernel, stride, out_hw, dilation=(1, 1), ones=False):
    """Every window as a column, sample by sample: (N, C, Hp, Wp) -> (N, C*KH*KW, OH*OW), one copy; with
    ``ones`` (NumPy) a last row of ones under each sample's columns: (N, C*KH*KW + 1, OH*OW).

    ``cols[n]`` is sample n's columns (rows as in ``im2col``), so ``weight.reshape(F, -1) @ cols`` (a
    matmul broadcast over the samples) is the convolution already in (N, F, OH*OW) order; with the ones,
    the weights with the bias as a last column give the bias too.
    """
    xp = namespace(x_padded)
    N, C = x_padded.shape[:2]
    (kh, kw), (OH, OW) = kernel, out_hw
    if ones:
        cols = columns_with_ones(N, C * kh * kw, OH * OW, x_padded.dtype)
        _copy_taps(cols[:, :-1].reshape((N, C, kh * kw, OH, OW)), x_padded, kernel, stride, out_hw, dilation)
        return cols                                   # (the reshape only splits axes: a view of cols)
    taps = xp.empty((N, C, kh * kw, OH, OW), dtype=x_padded.dtype, device=device_of(x_padded))
    _copy_taps(taps, x_padded, kernel, stride, out_hw, dilation)
    return xp.reshape(taps, (N, C * kh * kw, OH * OW))


def columns_with_ones(samples, rows, positions, dtype):
    """Room for each sample's columns (``rows`` of ``positions`` values) with a last row of ones under them,
    already written: (samples, rows + 1, positions). With the bias as a last column of the weights, the
    product then adds the bias itself."""
    cols = np.empty((samples, rows + 1, positions), dtype=dtype)
    cols[:, rows] = 1
    return cols


def _copy_taps(taps, x_padded, kernel, stride, out_hw, dilation):
    """taps (N, C, kh*kw, OH, OW)[:, :, k] = what tap k reads of x_padded at every output position."""
    for k, i, j in kernel_offsets(kernel, dilation):
        taps[:, :, k, ...] = offset_view(x_padded, i, j, stride, out_hw)


def col2im_by_sample(dcols, padded_shape, kernel, stride, out_hw, dilation=(1, 1)):
    """Adjoint of ``im2col_by_sample``: (N, C*KH*KW, OH*OW) -> (N, C, Hp, Wp)."""
    xp = namespace(dcols)
    N, C, Hp, Wp = padded_shape
    (kh, kw), (OH, OW) = kernel, out_hw
    dcols = xp.reshape(dcols, (N, C, kh * kw, OH, OW))
    dx = xp.zeros((N, C, Hp, Wp), dtype=dcols.dtype, device=device_of(dcols))
    for k, i, j in kernel_offsets(kernel, dilation):
        add_into(dx, offset_key(i, j, stride, out_hw), dcols[:, :, k, ...])
    return dx
