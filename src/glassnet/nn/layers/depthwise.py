"""Depthwise convolution (groups = in_channels) written tap by tap, without im2col columns.

Each output channel reads one input channel, so the convolution is, for every kernel tap (u, v), the
strided view of the padded input at that tap times one weight per channel, summed over the taps: a
multiply-add over (N, C, OH, OW) per tap, no Python loop over channels and no kh*kw-times copy of the
input (``glassnet bench --layers`` times it against PyTorch; docs/layers.md has the figures).

On NumPy arrays with one filter per channel (MobileNet's case) the taps run over *blocks* of about
``BLOCK_VALUES`` output values (whole (sample, channel) maps, ``blocked_*`` below): all the taps of one
block are summed while it is in the CPU's cache, rather than each tap streaming the whole batch through
memory. The same products are summed in the same order (the forward pass gives the same bits).
"""
import numpy as np

from ...backend import NUMPY, add_into, device_of, namespace
from .windows import kernel_offsets, offset_key, offset_view

BLOCK_VALUES = 1 << 15     # output values per block: 128 KiB in float32 (A/B figures in issue 28's note)


def depthwise_forward(x_padded, weight, multiplier, stride, dilation, out_hw):
    """x_padded (N, C, Hp, Wp), weight (C*m, 1, kh, kw) -> (N, C*m, OH, OW)."""
    xp = namespace(x_padded)
    N, C = x_padded.shape[:2]
    kh, kw = weight.shape[2:]
    if xp is NUMPY and multiplier == 1:
        return blocked_forward(x_padded, weight, stride, dilation, out_hw)
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
    if xp is NUMPY and multiplier == 1:
        return blocked_weight_grad(x_padded, dy, kernel, stride, dilation)
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
    if xp is NUMPY and multiplier == 1:
        return blocked_input_grad(dy, weight, padded_shape, stride, dilation)
    taps = xp.reshape(weight, (C, multiplier, kh * kw))
    dy5 = dy if multiplier == 1 else xp.reshape(dy, (N, C, multiplier) + out_hw)
    dx_padded = xp.zeros(tuple(padded_shape), dtype=dy.dtype, device=device_of(dy))
    for k, i, j in kernel_offsets((kh, kw), dilation):
        # x_pad[tap view] feeds y with weight w_tap  =>  it receives sum over q of dy[c*m + q] * w[c*m + q, tap]
        part = dy5 * _per_channel(taps[:, :, k], multiplier)
        add_into(dx_padded, offset_key(i, j, stride, out_hw), part if multiplier == 1 else xp.sum(part, axis=2))
    return dx_padded


# -- NumPy, one filter per channel: the taps block by block -------------------------------------------------

def _blocks(maps, map_values):
    """Slices of ``maps`` (sample, channel) maps of ``map_values`` values each, about BLOCK_VALUES per slice."""
    step = max(1, BLOCK_VALUES // max(map_values, 1))
    return [slice(start, min(start + step, maps)) for start in range(0, maps, step)]


def _map_view(maps, i, j, stride, out_hw):
    """The pixel each window reads at tap offset (i, j), on (maps, Hp, Wp) -> (maps, OH, OW)."""
    (sh, sw), (OH, OW) = stride, out_hw
    return maps[:, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]


def _tap_weights(weight, samples):
    """(C, 1, kh, kw) -> (samples * C, kh * kw, 1, 1): map n*C + c's weight for each tap, ready to broadcast."""
    C = weight.shape[0]
    return np.tile(weight.reshape(C, -1), (samples, 1))[:, :, None, None]


def blocked_forward(x_padded, weight, stride, dilation, out_hw):
    """``depthwise_forward`` for NumPy and multiplier 1: (N, C, Hp, Wp) -> (N, C, OH, OW)."""
    N, C, Hp, Wp = x_padded.shape
    OH, OW = out_hw
    maps = np.ascontiguousarray(x_padded).reshape(N * C, Hp, Wp)
    taps, tap_weights = kernel_offsets(weight.shape[2:], dilation), _tap_weights(weight, N)
    if tuple(stride) == (1, 1):
        return _flat_forward(maps, taps, tap_weights, out_hw).reshape(N, C, OH, OW)
    out = np.empty((N * C, OH, OW), dtype=x_padded.dtype)
    for block in _blocks(N * C, OH * OW):
        total, product = out[block], np.empty_like(out[block])
        for k, i, j in taps:
            # y[map] = sum over taps of x_pad[map, tap view] * w[channel, tap], summed in tap order
            view, w = _map_view(maps[block], i, j, stride, out_hw), tap_weights[block, k]
            if k == 0:
                np.multiply(view, w, out=total)
            else:
                np.multiply(view, w, out=product)
                total += product
    return out.reshape(N, C, OH, OW)


def _flat_forward(maps, taps, tap_weights, out_hw):
    """Stride 1: each map read as one flat row of Hp*Wp pixels, where tap (i, j) is the shift i*Wp + j.

    Output (oh, ow) sits at oh*Wp + ow of a flat (OH, Wp) grid: the Wp - OW columns past OW are computed
    too (from the next row's pixels) and dropped, so every product runs over one long contiguous slice
    instead of OH rows of OW pixels (14 for a 14x14 map), which is where NumPy's per-row cost went.
    The same products are summed in the same order. (maps, Hp, Wp) -> (maps, OH, OW).
    """
    count, Hp, Wp = maps.shape
    OH, OW = out_hw
    flat, length = maps.reshape(count, Hp * Wp), (OH - 1) * Wp + OW                  # the last output + 1
    grid = np.empty((count, OH * Wp), dtype=maps.dtype)
    for block in _blocks(count, OH * Wp):
        total, product = grid[block, :length], np.empty((grid[block].shape[0], length), dtype=maps.dtype)
        for k, i, j in taps:
            shift, w = i * Wp + j, tap_weights[block, k, :, 0]                       # w: (maps, 1)
            if k == 0:
                np.multiply(flat[block, shift:shift + length], w, out=total)
            else:
                np.multiply(flat[block, shift:shift + length], w, out=product)
                total += product
    return np.ascontiguousarray(grid.reshape(count, OH, Wp)[:, :, :OW])


def blocked_weight_grad(x_padded, dy, kernel, stride, dilation):
    """``depthwise_weight_grad`` for NumPy and multiplier 1: dL/dweight (C, 1, kh, kw)."""
    N, C, Hp, Wp = x_padded.shape
    OH, OW = dy.shape[2:]
    maps = np.ascontiguousarray(x_padded).reshape(N * C, Hp, Wp)
    dy_maps = np.ascontiguousarray(dy).reshape(N * C, OH, OW)
    taps = kernel_offsets(kernel, dilation)
    per_map = np.empty((N * C, len(taps)), dtype=dy.dtype)
    for block in _blocks(N * C, OH * OW):
        product = np.empty_like(dy_maps[block])
        for k, i, j in taps:
            # y = sum over taps of x_view * w_tap  =>  dL/dw_tap = sum over samples and pixels of dy * x_view
            np.multiply(dy_maps[block], _map_view(maps[block], i, j, stride, (OH, OW)), out=product)
            per_map[block, k] = product.reshape(product.shape[0], -1).sum(axis=1)
    return per_map.reshape(N, C, len(taps)).sum(axis=0).reshape((C, 1) + tuple(kernel))


def blocked_input_grad(dy, weight, padded_shape, stride, dilation):
    """``depthwise_input_grad`` for NumPy and multiplier 1: dL/dx_padded (N, C, Hp, Wp)."""
    N, C, Hp, Wp = padded_shape
    OH, OW = dy.shape[2:]
    dy_maps = np.ascontiguousarray(dy).reshape(N * C, OH, OW)
    taps, tap_weights = kernel_offsets(weight.shape[2:], dilation), _tap_weights(weight, N)
    dx = np.zeros((N * C, Hp, Wp), dtype=dy.dtype)
    if tuple(stride) == (1, 1):
        return _flat_input_grad(dy_maps, taps, tap_weights, dx).reshape(N, C, Hp, Wp)
    for block in _blocks(N * C, Hp * Wp):
        product = np.empty_like(dy_maps[block])
        for k, i, j in taps:
            # x_pad[tap view] feeds y with weight w_tap  =>  it receives dy * w_tap
            np.multiply(dy_maps[block], tap_weights[block, k], out=product)
            _map_view(dx[block], i, j, stride, (OH, OW))[...] += product
    return dx.reshape(N, C, Hp, Wp)


def _flat_input_grad(dy_maps, taps, tap_weights, dx):
    """Stride 1, as ``_flat_forward``: dy laid on the flat (OH, Wp) grid (0 in the columns past OW), and
    each tap's product added onto one shifted slice of the flat padded gradient. dx: (maps, Hp, Wp) zeros."""
    count, Hp, Wp = dx.shape
    OH, OW = dy_maps.shape[1:]
    grid = np.zeros((count, OH, Wp), dtype=dy_maps.dtype)
    grid[:, :, :OW] = dy_maps
    grid, flat, length = grid.reshape(count, OH * Wp), dx.reshape(count, Hp * Wp), (OH - 1) * Wp + OW
    for block in _blocks(count, Hp * Wp):
        product = np.empty((grid[block].shape[0], length), dtype=dy_maps.dtype)
        for k, i, j in taps:
            # x_pad[tap view] feeds y with weight w_tap  =>  it receives dy * w_tap (0 from the dropped columns)
            shift = i * Wp + j
            np.multiply(grid[block, :length], tap_weights[block, k, :, 0], out=product)
            flat[block, shift:shift + length] += product
    return dx
