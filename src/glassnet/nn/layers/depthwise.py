"""Depthwise convolution (groups = in_channels) written tap by tap, without im2col columns.

Each output channel reads one input channel, so the convolution is, for every kernel tap (u, v), the
strided view of the padded input at that tap times one weight per channel, summed over the taps: a
multiply-add over (N, C, OH, OW) per tap, no Python loop over channels and no kh*kw-times copy of the
input (``glassnet bench --layers`` times it against PyTorch; docs/layers.md has the figures).
"""
from ...backend import add_into, device_of, namespace
from .windows import kernel_offsets, offset_key, offset_view


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
