"""Depthwise convolution (groups = in_channels) written tap by tap, without im2col columns.

Each output channel reads one input channel, so the convolution is, for every kernel tap (u, v), the
strided view of the padded input at that tap times one weight per channel, summed over the taps: a
multiply-add over (N, C, OH, OW) per tap, no Python loop over channels and no kh*kw-times copy of the
input (``glassnet bench --layers`` times it against PyTorch; docs/layers.md has the figures).

On NumPy arrays with one filter per channel (MobileNet's case, ``phase_*`` below) each channel's padded
pixels are first laid out as one flat row per stride phase, every sample after the other, so that a tap
is one contiguous slice of those rows for all the channel's outputs at once: NumPy's per-row cost is paid
once per channel instead of once per image row of every sample (a 14x14 map's rows are 14 values long),
and a stride-2 tap reads contiguous memory instead of every other pixel. The taps run block by block
(``BLOCK_VALUES``) while the block is in the CPU's cache. The forward pass gives the same bits as the
per-tap views.
"""
import numpy as np

from ...backend import add_into, device_of, namespace
from .windows import kernel_offsets, offset_key, offset_view

BLOCK_VALUES = 1 << 18     # grid values per block (1 MiB in float32): few NumPy calls, for the GIL when threads split
                           # the batch (A/B in docs/accuracy-and-speed.md, session 15)
COPY_VALUES = 1 << 19      # input values per block of the phase copies (``_copy_blocks``)


def depthwise_forward(x_padded, weight, multiplier, stride, dilation, out_hw):
    """x_padded (N, C, Hp, Wp), weight (C*m, 1, kh, kw) -> (N, C*m, OH, OW)."""
    xp = namespace(x_padded)
    N, C = x_padded.shape[:2]
    kh, kw = weight.shape[2:]
    taps = xp.reshape(weight, (C, multiplier, kh * kw))
    copies = () if multiplier == 1 else (multiplier,)
    out = xp.zeros((N, C) + copies + tuple(out_hw), dtype=x_padded.dtype, device=device_of(x_padded))
    for k, i, j in kernel_offsets((kh, kw), dilation):
        view = _with_copies_axis(offset_view(x_padded, i, j, stride, out_hw), multiplier)   # (N, C, [1,] OH, OW)
        # y[n, c*m + q] += x_pad[n, c, tap view] * w[c*m + q, tap]
        out += view * _per_channel(taps[:, :, k], multiplier)
    return xp.reshape(out, (N, C * multiplier) + tuple(out_hw))


def _with_copies_axis(view, multiplier):
    """(N, C, OH, OW) -> (N, C, 1, OH, OW) for a channel multiplier above 1 (a view, never a copy)."""
    return view if multiplier == 1 else namespace(view).expand_dims(view, axis=2)


def _per_channel(values, multiplier):
    """(C, m) weights shaped to broadcast over (N, C, [m,] OH, OW)."""
    xp = namespace(values)
    C = values.shape[0]
    return xp.reshape(values, (1, C, 1, 1) if multiplier == 1 else (1, C, multiplier, 1, 1))


def depthwise_weight_grad(x_padded, dy, multiplier, kernel, stride, dilation):
    """dL/dweight (C*m, 1, kh, kw) from the padded input and dy (N, C*m, OH, OW)."""
    xp = namespace(dy)
    N, C = x_padded.shape[:2]
    out_hw = tuple(dy.shape[2:])
    dy5 = dy if multiplier == 1 else xp.reshape(dy, (N, C, multiplier) + out_hw)
    axes = (0, 2, 3) if multiplier == 1 else (0, 3, 4)
    grads = []
    for _, i, j in kernel_offsets(kernel, dilation):
        view = _with_copies_axis(offset_view(x_padded, i, j, stride, out_hw), multiplier)
        # y = sum over taps of x_view * w_tap  =>  dL/dw_tap = sum over n, oh, ow of dy * x_view
        grads.append(xp.reshape(xp.sum(dy5 * view, axis=axes), (C, multiplier)))  # (C, m)
    stacked = xp.stack(grads, axis=2)                                              # (C, m, kh*kw)
    return xp.reshape(stacked, (C * multiplier, 1) + tuple(kernel))


def depthwise_input_grad(dy, weight, multiplier, padded_shape, stride, dilation):
    """dL/dx_padded (N, C, Hp, Wp): each tap's view of the padded input receives dy times its weight."""
    xp = namespace(dy)
    N, C = padded_shape[:2]
    out_hw = tuple(dy.shape[2:])
    kh, kw = weight.shape[2:]
    taps = xp.reshape(weight, (C, multiplier, kh * kw))
    dy5 = dy if multiplier == 1 else xp.reshape(dy, (N, C, multiplier) + out_hw)
    dx_padded = xp.zeros(tuple(padded_shape), dtype=dy.dtype, device=device_of(dy))
    for k, i, j in kernel_offsets((kh, kw), dilation):
        # x_pad[tap view] feeds y with weight w_tap  =>  it receives sum over q of dy[c*m + q] * w[c*m + q, tap]
        part = dy5 * _per_channel(taps[:, :, k], multiplier)
        add_into(dx_padded, offset_key(i, j, stride, out_hw), part if multiplier == 1 else xp.sum(part, axis=2))
    return dx_padded


# -- NumPy, one filter per channel: each channel's pixels as one flat row per phase --------------------------

class DepthwiseRows(tuple):
    """What a depthwise Conv2D keeps for backward on the NumPy path (``phase_rows``): (rows, the grid's
    (Hq, Wq), the input's shape (N, C, H, W), the pads)."""


def phase_rows(x, pads, stride, kernel, dilation):
    """x (N, C, H, W) zero-padded and laid out channel by channel: (sh*sw, C, N*Hq*Wq + tail).

    With stride (sh, sw) the padded image is cut into sh*sw *phases*, phase (p, q) holding the pixels at
    rows p, p + sh, ... and columns q, q + sw, ... (one phase for stride 1): output (oh, ow) reads, at
    tap offset (i, j), pixel (oh*sh + i, ow*sw + j), which is pixel (oh + i // sh, ow + j // sw) of phase
    (i % sh, j % sw). A phase of every sample of channel c is one flat row, sample after sample on a grid
    of Hq x Wq (the padded size over the stride, rounded up): that tap is then, for every output of the
    channel at once, one contiguous slice of that row shifted by (i // sh) * Wq + j // sw. The outputs sit
    at (n, oh, ow) of the same grid; the grid's positions past OH or OW are computed too and dropped (they
    read the next row or sample; ``tail`` zeros end the row for the last one).
    """
    N, C, H, W = x.shape
    (sh, sw), (kh, kw), (dh, dw) = stride, kernel, dilation
    top, bottom, left, right = pads
    Hq, Wq = -(-(H + top + bottom) // sh), -(-(W + left + right) // sw)
    tail = ((kh - 1) * dh // sh) * Wq + (kw - 1) * dw // sw
    rows = np.zeros((sh * sw, C, N * Hq * Wq + tail), dtype=x.dtype)
    kept = DepthwiseRows((rows, (Hq, Wq), (N, C, H, W), tuple(pads)))
    _move_phases(x, kept, rows, stride, into_rows=True)
    return kept


def _move_phases(image, kept, rows, stride, into_rows):
    """Every pixel of ``image`` (N, C, H, W) copied to its place in ``rows`` (sh*sw, C, N*Hq*Wq + tail),
    laid out as ``kept``'s (``into_rows``), or from there back into ``image``; a few channels at a time."""
    (Hq, Wq), (N, C, _, _), pads = kept[1], kept[2], kept[3]
    (sh, sw) = stride
    grid = rows[:, :, :N * Hq * Wq].reshape(sh, sw, C, N, Hq, Wq)
    places = _phase_places(image.shape, pads, stride)
    for channels in _copy_blocks(image.shape):
        block = image[:, channels].transpose(1, 0, 2, 3)                      # (channels, N, H, W) view
        for p, q, pixels, place in places:
            if into_rows:
                grid[p, q, channels][place] = block[pixels]
            else:
                block[pixels] = grid[p, q, channels][place]


def _copy_blocks(shape):
    """Channel slices of an image batch (N, C, H, W) of about COPY_VALUES values each: the phases are copied
    a few channels at a time (the (N, C) -> (C, N) reorder then writes near what it just read: a stride-2
    layer's phases, (64, 96, 28, 28), 11.2 -> 6.4 ms; stride 1 unchanged)."""
    N, C, H, W = shape
    step = max(1, COPY_VALUES // max(N * H * W, 1))
    return [slice(start, min(start + step, C)) for start in range(0, C, step)]


def _phase_places(shape, pads, stride):
    """[(p, q, pixels, places)]: the pixels of an image (N, C, H, W) in phase (p, q) (``pixels``, a key of
    its (C, N, H, W) transpose) and where they lie on that phase's (C, N, Hq, Wq) grid (``places``)."""
    H, W = shape[2:]
    (sh, sw), (top, _, left, _) = stride, pads
    found = []
    for p in range(sh):
        for q in range(sw):
            # pixel row h is padded row h + top, which lies in phase (h + top) % sh at phase row (h + top) // sh
            h0, w0 = (p - top) % sh, (q - left) % sw
            r0, c0 = (h0 + top) // sh, (w0 + left) // sw
            count_h, count_w = len(range(h0, H, sh)), len(range(w0, W, sw))
            found.append((p, q, (slice(None), slice(None), slice(h0, None, sh), slice(w0, None, sw)),
                          (slice(None), slice(None), slice(r0, r0 + count_h), slice(c0, c0 + count_w))))
    return found


def _phase_taps(kernel, stride, dilation, Wq):
    """[(k, phase, shift)]: the row and the shift each kernel tap reads (``phase_rows``), in tap order."""
    (sh, sw) = stride
    return [(k, (i % sh) * sw + j % sw, (i // sh) * Wq + j // sw) for k, i, j in kernel_offsets(kernel, dilation)]


def _blocks(channels, length):
    """(channel slice, grid slice) pieces of about BLOCK_VALUES values: whole rows of several channels, or
    pieces of one channel's row when a row alone is longer."""
    if length >= BLOCK_VALUES:
        return [(slice(c, c + 1), slice(start, min(start + BLOCK_VALUES, length)))
                for c in range(channels) for start in range(0, length, BLOCK_VALUES)]
    step = BLOCK_VALUES // length
    return [(slice(start, min(start + step, channels)), slice(0, length)) for start in range(0, channels, step)]


def phase_forward(kept, weight, kernel, stride, dilation, out_hw):
    """The depthwise convolution (multiplier 1) of ``phase_rows``' rows: -> (N, C, OH, OW).

    Block by block (a few channels' rows, about BLOCK_VALUES values, summed while in the CPU's cache), each
    tap one multiply of a shifted slice by the channel's weight and one add: the same products summed in
    the same (tap) order as ``depthwise_forward``'s other path, so the same bits.
    """
    rows, (Hq, Wq), (N, C, _, _), _ = kept
    OH, OW = out_hw
    length = N * Hq * Wq
    taps, tap_weights = _phase_taps(kernel, stride, dilation, Wq), weight.reshape(C, -1)
    grid = np.empty((C, length), dtype=rows.dtype)
    for channels, span in _blocks(C, length):
        total = grid[channels, span]
        product = np.empty_like(total)
        first, end = span.start, span.stop
        for k, phase, shift in taps:
            # y[c, position] = sum over taps of x_phase[c, position + shift] * w[c, tap], in tap order
            source, w = rows[phase, channels, first + shift:end + shift], tap_weights[channels, k:k + 1]
            if k == 0:
                np.multiply(source, w, out=total)
            else:
                np.multiply(source, w, out=product)
                total += product
    return np.ascontiguousarray(grid.reshape(C, N, Hq, Wq)[:, :, :OH, :OW].transpose(1, 0, 2, 3))


def dy_on_grid(kept, dy):
    """dy (N, C, OH, OW) placed on the (C, N*Hq*Wq) grid of ``phase_rows``, 0 at the positions dropped
    (what both gradients below read)."""
    N, C, OH, OW = dy.shape
    Hq, Wq = kept[1]
    grid = np.zeros((C, N, Hq, Wq), dtype=dy.dtype)
    grid[:, :, :OH, :OW] = dy.transpose(1, 0, 2, 3)
    return grid.reshape(C, N * Hq * Wq)


def phase_weight_grad(kept, dy_grid, kernel, stride, dilation):
    """dL/dweight (C, 1, kh, kw) from ``phase_rows``' rows and ``dy_on_grid``'s dy (C, N*Hq*Wq)."""
    rows, grid_hw, (_, C, _, _), _ = kept
    length = dy_grid.shape[1]
    grads = np.empty((C, kernel[0] * kernel[1]), dtype=dy_grid.dtype)
    for k, phase, shift in _phase_taps(kernel, stride, dilation, grid_hw[1]):
        # y = sum over taps of x_view * w_tap  =>  dL/dw_tap = sum over samples and positions of dy * x_view
        # (the dropped positions hold dy = 0)
        grads[:, k] = np.vecdot(dy_grid, rows[phase, :, shift:shift + length])    # one dot per channel
    return grads.reshape((C, 1) + tuple(kernel))


def phase_input_grad(kept, dy_grid, weight, kernel, stride, dilation):
    """dL/dx (N, C, H, W) of ``phase_rows``' input from ``dy_on_grid``'s dy: each tap's shifted slice of
    the rows receives dy times the tap's weight (tap after tap: the same sums in the same order as the
    other path when a block holds whole rows), then the phases are put back in place."""
    rows_shape, (_, Wq), (N, C, H, W) = kept[0].shape, kept[1], kept[2]
    length = dy_grid.shape[1]
    taps, tap_weights = _phase_taps(kernel, stride, dilation, Wq), weight.reshape(C, -1)
    drows = np.zeros(rows_shape, dtype=dy_grid.dtype)
    for channels, span in _blocks(C, length):
        product = np.empty_like(dy_grid[channels, span])
        first, end = span.start, span.stop
        for k, phase, shift in taps:
            # x_phase[c, position + shift] feeds y[c, position] with weight w[c, tap]  =>  it receives dy * w
            np.multiply(dy_grid[channels, span], tap_weights[channels, k:k + 1], out=product)
            target = drows[phase, channels, first + shift:end + shift]
            target += product
    dx = np.empty((N, C, H, W), dtype=dy_grid.dtype)
    _move_phases(dx, kept, drows, stride, into_rows=False)
    return dx
