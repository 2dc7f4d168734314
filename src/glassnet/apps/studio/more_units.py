"""Unit details of the layers of real architectures: a grouped or dilated convolution's receptive field
(the input channels its group reads), a transposed convolution's contributions, an LRN unit's window of
channels, pooling with dilation / ceil_mode / uneven pads, padding, upsampling, the shuffles and the
modern activations. Each returns the dict ``views.explain_unit`` returns (``formula``, arrays, ``sum``)."""
import numpy as np

from ...nn.layers import (
    ELU,
    GELU,
    LRN,
    SELU,
    ChannelShuffle,
    ConvTranspose2D,
    Hardsigmoid,
    Hardswish,
    LogSoftmax,
    MaxPool2D,
    Pad2D,
    PixelShuffle,
    PReLU,
    ReLU6,
    Rescaling,
    Reshape,
    SiLU,
    Softplus,
    Softsign,
    Upsample2D,
)
from ...nn.layers.resampling import interpolation_matrix, source_rows
from ...nn.layers.windows import pad_images, span
from .arrays import scalars

UNIT_CHANNELS = 16                # a conv unit's detail shows this many input channels (the largest terms)


def conv_unit(layer, x, out, position):
    """Conv2D, grouped and dilated: output channel f reads only its group's input channels, every
    ``dilation``-th pixel of its (dilated) window."""
    f, i, j = position
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    group_size = layer.in_channels // layer.groups
    group = f // (layer.out_channels // layer.groups)
    first = group * group_size
    padded = pad_images(x[None], layer.pads)[0][first:first + group_size]          # this group's channels
    field = padded[:, i * sh:i * sh + span(kh, dh):dh, j * sw:j * sw + span(kw, dw):dw]   # (Cg, kh, kw)
    kernel = layer.params["weight"][f]                                               # (Cg, kh, kw)
    bias = float(layer.params["bias"][f]) if "bias" in layer.params else 0.0
    products = field * kernel
    total = float(products.sum()) + bias
    top, left = i * sh - layer.pads[0], j * sw - layer.pads[2]
    shown = np.arange(group_size)
    if group_size > UNIT_CHANNELS:             # a wide layer: the input channels that add the most, in order
        shown = np.sort(np.argsort(-np.abs(products.reshape(group_size, -1).sum(axis=1)), kind="stable")[
            :UNIT_CHANNELS])
    rows = f"{top}+{dh}u" if dh > 1 else f"{top}+u"
    columns = f"{left}+{dw}v" if dw > 1 else f"{left}+v"
    channels = f"channel {first}" if group_size == 1 else f"channels {first}-{first + group_size - 1}"
    reads = f"group {group} of {layer.groups}: reads input {channels} only" if layer.groups > 1 else ""
    channel = f"{first}+c" if first else "c"
    return {"formula": f"y[{f}, {i}, {j}] = bias[{f}] + sum over c, u, v of x[{channel}, {rows}, {columns}] * "
                       f"weight[{f}, c, u, v] = {bias:.6g} + {products.sum():.6g} = {total:.8g}",
            "note": reads, "field": scalars(field[shown]), "kernel": scalars(kernel[shown]), "bias": bias,
            "products": scalars(products[shown]), "channels_shown": [int(first + c) for c in shown],
            "channels": int(group_size), "sum": total, "field_origin": [top, left], "group": int(group)}


def conv_transpose_unit(layer, x, out, position):
    """ConvTranspose2D: the input pixels whose spread window covers this output cell, each times the tap."""
    f, i, j = position
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    ph, pw = layer.padding
    out_group = layer.out_channels // layer.groups
    group, within = f // out_group, f % out_group
    group_size = layer.in_channels // layer.groups
    weight = layer.params["weight"]                                          # (C_in, C_out / groups, kh, kw)
    H, W = x.shape[1:]
    terms = []
    for u in range(kh):
        a, rest = divmod(i + ph - u * dh, sh)
        if rest or not 0 <= a < H:
            continue
        for v in range(kw):
            b, rest = divmod(j + pw - v * dw, sw)
            if rest or not 0 <= b < W:
                continue
            channels = range(group * group_size, (group + 1) * group_size)
            value = float(sum(x[c, a, b] * weight[c, within, u, v] for c in channels))
            terms.append({"pixel": [int(a), int(b)], "tap": [u, v], "value": value})
    bias = float(layer.params["bias"][f]) if "bias" in layer.params else 0.0
    total = bias + sum(t["value"] for t in terms)
    listed = " + ".join(f"x[:, {t['pixel'][0]}, {t['pixel'][1]}] . w[:, {within}, {t['tap'][0]}, {t['tap'][1]}]"
                        for t in terms[:6])
    more = f" + {len(terms) - 6} more" if len(terms) > 6 else ""
    return {"formula": f"y[{f}, {i}, {j}] = bias[{f}] + {listed or '0'}{more} = {total:.8g} (each input pixel "
                       f"spreads its channels times the kernel over a window, {sh}x{sw} apart)",
            "note": f"{len(terms)} input pixels reach this cell", "contributions": terms, "sum": total}


def lrn_unit(layer, x, out, position):
    c, i, j = position
    first, last = layer.window(c, x.shape[0])
    values = x[first:last + 1, i, j]
    squares = values * values
    denominator = layer.k + layer.alpha / layer.size * float(squares.sum())
    result = float(x[c, i, j]) / denominator ** layer.beta
    return {"formula": f"y[{c}, {i}, {j}] = x / (k + alpha/size * sum of x^2 over channels {first}-{last})^beta = "
                       f"{x[c, i, j]:.6g} / ({layer.k:g} + {layer.alpha:g}/{layer.size} * {squares.sum():.6g})^"
                       f"{layer.beta:g} = {result:.8g}",
            "note": f"normalised over the window of channels {first}-{last} (size {layer.size})",
            "channel_values": scalars(values), "channel_squares": scalars(squares), "window_channels": [first, last],
            "sum": result}


def pool_unit(layer, x, out, position):
    """MaxPool2D / AvgPool2D with any pads, dilation and ceil_mode: the window and its winner or divisor."""
    c, i, j = position
    (sh, sw), (dh, dw) = layer.stride, layer.dilation
    (kh, kw) = layer.kernel_size
    H, W = x.shape[1:]
    out_hw = out.shape[1:]
    top, bottom, left, right = layer._window_pads(H, W, out_hw)
    maximum = isinstance(layer, MaxPool2D)
    padded = np.pad(x[c], ((top, bottom), (left, right)), constant_values=-np.inf if maximum else 0.0)
    window = padded[i * sh:i * sh + span(kh, dh):dh, j * sw:j * sw + span(kw, dw):dw]
    row, col = i * sh - top, j * sw - left
    if maximum:
        u, v = np.unravel_index(int(np.argmax(window)), window.shape)     # first maximum, as PyTorch routes it
        shown = np.where(np.isfinite(window), window, np.nan)
        return {"formula": f"y[{c}, {i}, {j}] = max of the {kh}x{kw} window = x[{c}, {row + u * dh}, "
                           f"{col + v * dw}] = {window[u, v]:.8g}",
                "window": [[None if np.isnan(v) else float(v) for v in r] for r in shown], "winner": [int(u), int(v)],
                "sum": float(window[u, v]), "field_origin": [row, col]}
    count = float(layer._counts(H, W, out_hw, np, None)[i, j])
    mean = float(window.sum() / count)
    what = "padding counted" if layer.count_include_pad else "only the image's own pixels counted"
    return {"formula": f"y[{c}, {i}, {j}] = (sum of the window) / {count:g} ({what}) = {window.sum():.6g} / "
                       f"{count:g} = {mean:.8g}", "window": scalars(window), "sum": mean, "field_origin": [row, col]}


def moved_unit(layer, x, out, position):
    """Pad2D, Upsample2D, PixelShuffle, ChannelShuffle: where the value came from."""
    c, i, j = position
    if isinstance(layer, Pad2D):
        top, bottom, left, right = layer.pads
        H, W = x.shape[1:]
        inside = top <= i < top + H and left <= j < left + W
        if layer.mode == "constant" and not inside:
            return {"formula": f"y[{c}, {i}, {j}] = {layer.value:g} (padding)", "sum": layer.value}
        a, b = source_rows(H, top, bottom, layer.mode)[i], source_rows(W, left, right, layer.mode)[j]
        how = "" if inside else f" ({layer.mode} padding)"
        return {"formula": f"y[{c}, {i}, {j}] = x[{c}, {a}, {b}]{how} = {x[c, a, b]:.8g}", "source": [c, a, b],
                "sum": float(x[c, a, b])}
    if isinstance(layer, Upsample2D):
        (sh, sw), (H, W) = layer.scale_factor, x.shape[1:]
        if layer.mode == "nearest":
            a, b = i // sh, j // sw
            return {"formula": f"y[{c}, {i}, {j}] = x[{c}, {a}, {b}] (nearest) = {x[c, a, b]:.8g}",
                    "source": [c, a, b], "sum": float(x[c, a, b])}
        rows = interpolation_matrix(H, sh, layer.align_corners)[i]
        columns = interpolation_matrix(W, sw, layer.align_corners)[j]
        terms = [(a, b, rows[a] * columns[b]) for a in np.nonzero(rows)[0] for b in np.nonzero(columns)[0]]
        value = float(sum(w * x[c, a, b] for a, b, w in terms))
        listed = " + ".join(f"{w:.4g} * x[{c}, {a}, {b}]" for a, b, w in terms)
        return {"formula": f"y[{c}, {i}, {j}] = {listed} = {value:.8g} (bilinear)", "sum": value}
    if isinstance(layer, PixelShuffle):
        r = layer.upscale_factor
        source = [c * r * r + (i % r) * r + j % r, i // r, j // r]
    else:
        groups, per_group = layer.groups, x.shape[0] // layer.groups
        source = [(c % groups) * per_group + c // groups, i, j]
    value = float(x[tuple(source)])
    return {"formula": f"y[{c}, {i}, {j}] = x[{', '.join(map(str, source))}] = {value:.8g}", "source": source,
            "sum": value}


ACTIVATION_TEXT = {
    ReLU6: lambda layer: "relu6(x) = min(max(0, x), 6)",
    ELU: lambda layer: f"elu(x) = x if x > 0 else {layer.alpha:g} * (exp(x) - 1)",
    SELU: lambda layer: "selu(x) = 1.0507 * (x if x > 0 else 1.6733 * (exp(x) - 1))",
    Softplus: lambda layer: f"softplus(x) = log(1 + exp({layer.beta:g} x)) / {layer.beta:g}",
    Softsign: lambda layer: "softsign(x) = x / (1 + |x|)",
    SiLU: lambda layer: "silu(x) = x * sigmoid(x)",
    GELU: lambda layer: ("gelu(x) = x * Phi(x), Phi the normal CDF" if layer.approximate == "none" else
                         "gelu(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))"),
    Hardsigmoid: lambda layer: "hardsigmoid(x) = clip(x / 6 + 1/2, 0, 1)",
    Hardswish: lambda layer: "hardswish(x) = x * clip(x + 3, 0, 6) / 6",
}


def activation_unit(layer, x, out, position):
    value, result = float(x[position]), float(out[position])
    where = "[" + ", ".join(map(str, position)) + "]"
    if isinstance(layer, PReLU):
        slope = float(layer.params["weight"][position[0] if layer.num_parameters > 1 else 0])
        text = f"prelu(x) = x if x > 0 else {slope:.6g} * x (learned slope)"
    else:
        text = ACTIVATION_TEXT[type(layer)](layer)
    return {"formula": f"y{where} = {text}; x{where} = {value:.8g} gives {result:.8g}", "input": value,
            "sum": result}


def log_softmax_unit(layer, x, out, position):
    j = position[0]
    column = x[(slice(None),) + tuple(position[1:])]
    shifted = column - column.max()
    total = float(np.exp(shifted).sum())
    result = float(shifted[j] - np.log(total))
    return {"formula": f"y[{j}] = (z[{j}] - max z) - log(sum over k of exp(z[k] - max z)) = {shifted[j]:.6g} - "
                       f"log({total:.6g}) = {result:.8g}", "sum": result}


def fixed_unit(layer, x, out, position):
    """Rescaling: x * scale + offset with this channel's numbers; Reshape: the input position it came from."""
    where = "[" + ", ".join(map(str, position)) + "]"
    if isinstance(layer, Reshape):
        source = [int(p) for p in np.unravel_index(int(np.ravel_multi_index(position, out.shape)), x.shape)]
        value = float(x[tuple(source)])
        return {"formula": f"y{where} = x[{', '.join(map(str, source))}] = {value:.8g} (the same values, "
                           f"{x.shape} read as {out.shape} in C order)", "source": source, "sum": value}
    channel = position[0] if position else 0
    scale = layer.scale[channel] if isinstance(layer.scale, list) else layer.scale
    offset = layer.offset[channel] if isinstance(layer.offset, list) else layer.offset
    value = float(x[tuple(position)])
    result = value * scale + offset
    return {"formula": f"y{where} = x{where} * scale + offset = {value:.6g} * {scale:.6g} + {offset:.6g} = "
                       f"{result:.8g} (fixed: not trained)", "sum": float(result)}


EXPLAINERS = [(ConvTranspose2D, conv_transpose_unit), (LRN, lrn_unit), ((Rescaling, Reshape), fixed_unit),
              ((Pad2D, Upsample2D, PixelShuffle, ChannelShuffle), moved_unit),
              ((PReLU,) + tuple(ACTIVATION_TEXT), activation_unit), (LogSoftmax, log_softmax_unit)]
