"""ONNX forms of the layers of real architectures (transposed convolution, LRN, the modern activations,
padding, upsampling, shuffles): an exporter and an importer for each, used by ``onnx_format``.

An exporter returns ``(op, attributes, arrays)`` for one ONNX node, or ``(build, None, None)`` where
``build(helper, inputs, output, label, shape)`` returns (nodes, initializer arrays by name) for a layer
written as several nodes (a channel shuffle is a Reshape, a Transpose and a Reshape). An importer
takes ``(reader, node, shape, used)`` and returns (glassnet layers, the node's output name).
"""
import math

import numpy as np

from ..errors import GlassnetError
from ..nn.layers import (ELU, GELU, LRN, SELU, ChannelShuffle, ConvTranspose2D, Hardsigmoid, Hardswish, LogSoftmax,
                         Pad2D, PixelShuffle, PReLU, ReLU6, Rescaling, Reshape, SiLU, Softplus, Softsign,
                         Upsample2D)
from ..nn.layers.modern_activations import SELU_ALPHA, SELU_SCALE

GELU_OPSET = 20                           # ONNX's Gelu op (approximate "none" or "tanh") arrived in opset 20


# -- export -------------------------------------------------------------------------------------------------------
def _conv_transpose(layer):
    ph, pw = layer.padding
    arrays = {"weight": layer.params["weight"]}
    if layer.use_bias:
        arrays["bias"] = layer.params["bias"]
    return "ConvTranspose", dict(kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                                 pads=[ph, pw, ph, pw], output_padding=list(layer.output_padding),
                                 dilations=list(layer.dilation), group=layer.groups), arrays


def _lrn(layer):
    if layer.size % 2 == 0:
        raise GlassnetError(f"export_onnx: LRN(size={layer.size}): ONNX centres an even window one channel later "
                            "than PyTorch and glassnet; only odd sizes are written")
    return "LRN", dict(size=layer.size, alpha=layer.alpha, beta=layer.beta, bias=layer.k), {}


def _softplus(layer):
    if layer.beta == 1.0:
        return "Softplus", {}, {}

    def build(helper, inputs, output, label, shape):       # softplus(beta x) / beta
        beta = np.array(layer.beta)
        nodes = [helper.make_node("Mul", [inputs[0], f"{label}.beta"], [f"{output}_scaled"], name=f"{label}.scale"),
                 helper.make_node("Softplus", [f"{output}_scaled"], [f"{output}_soft"], name=label),
                 helper.make_node("Div", [f"{output}_soft", f"{label}.beta"], [output], name=f"{label}.unscale")]
        return nodes, {f"{label}.beta": beta}
    return build, None, None


def _pad(layer):
    top, bottom, left, right = layer.pads
    mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[layer.mode]
    arrays = {"pads": np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64)}
    if layer.mode == "constant":
        arrays["value"] = np.array(layer.value)
    return "Pad", dict(mode=mode), arrays


def _upsample(layer):
    sh, sw = layer.scale_factor
    if layer.mode == "nearest":
        attributes = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    else:
        transform = "align_corners" if layer.align_corners else "pytorch_half_pixel"
        attributes = dict(mode="linear", coordinate_transformation_mode=transform)
    arrays = {"roi": np.zeros(0, dtype=np.float32), "scales": np.array([1, 1, sh, sw], dtype=np.float32)}
    return "Resize", attributes, arrays


def _channel_shuffle(layer):
    def build(helper, inputs, output, label, shape):
        C, H, W = shape
        g = layer.groups
        nodes = [helper.make_node("Reshape", [inputs[0], f"{label}.split"], [f"{output}_split"], name=f"{label}.split"),
                 helper.make_node("Transpose", [f"{output}_split"], [f"{output}_swapped"], perm=[0, 2, 1, 3, 4],
                                  name=f"{label}.swap"),
                 helper.make_node("Reshape", [f"{output}_swapped", f"{label}.join"], [output], name=f"{label}.join")]
        return nodes, {f"{label}.split": np.array([0, g, C // g, H, W], dtype=np.int64),
                       f"{label}.join": np.array([0, C, H, W], dtype=np.int64)}
    return build, None, None


def _prelu(layer):
    weight = layer.params["weight"]
    return "PRelu", {}, {"weight": weight.reshape(-1, 1, 1) if layer.num_parameters > 1 else weight}


EXPORTERS = {
    ConvTranspose2D: _conv_transpose, LRN: _lrn, Softplus: _softplus, Pad2D: _pad, Upsample2D: _upsample,
    ChannelShuffle: _channel_shuffle, PReLU: _prelu,
    ReLU6: lambda layer: ("Clip", {}, {"min": np.array(0.0), "max": np.array(6.0)}),
    ELU: lambda layer: ("Elu", dict(alpha=layer.alpha), {}),
    SELU: lambda layer: ("Selu", dict(alpha=SELU_ALPHA, gamma=SELU_SCALE), {}),
    Softsign: lambda layer: ("Softsign", {}, {}),
    SiLU: lambda layer: (_silu, None, None),
    GELU: lambda layer: ("Gelu", dict(approximate=layer.approximate), {}),
    Hardsigmoid: lambda layer: ("HardSigmoid", dict(alpha=1 / 6, beta=0.5), {}),
    Hardswish: lambda layer: ("HardSwish", {}, {}),
    LogSoftmax: lambda layer: ("LogSoftmax", dict(axis=1), {}),
    PixelShuffle: lambda layer: ("DepthToSpace", dict(blocksize=layer.upscale_factor, mode="CRD"), {}),
    Reshape: lambda layer: ("Reshape", {}, {"shape": np.array((0,) + layer.shape, dtype=np.int64)}),  # 0: N
    Rescaling: lambda layer: (_rescaling(layer), None, None),
}


def _rescaling(layer):
    """x * scale + offset as a Mul and an Add with constants ((1, C, 1, 1) per channel)."""
    def build(helper, inputs, output, label, shape):
        def shaped(value):
            return np.array(value).reshape((1, len(value)) + (1,) * (len(shape) - 1)) if isinstance(value, list) \
                else np.array(value)
        nodes = [helper.make_node("Mul", [inputs[0], f"{label}.scale"], [f"{output}_scaled"], name=f"{label}.scale"),
                 helper.make_node("Add", [f"{output}_scaled", f"{label}.offset"], [output], name=label)]
        return nodes, {f"{label}.scale": shaped(layer.scale), f"{label}.offset": shaped(layer.offset)}
    return build


def _silu(helper, inputs, output, label, shape):
    """x * sigmoid(x), as PyTorch's exporter writes SiLU."""
    return [helper.make_node("Sigmoid", [inputs[0]], [f"{output}_gate"], name=f"{label}.gate"),
            helper.make_node("Mul", [inputs[0], f"{output}_gate"], [output], name=label)], {}


# -- import -------------------------------------------------------------------------------------------------------
def _where(reader, node):
    return f"{reader.source}: node {node.name or '?'!r} ({node.op_type})"


def _import_conv_transpose(reader, node, shape, used):
    weight, bias = reader.weight(node, 1), reader.weight(node, 2)
    group = reader.attribute(node, "group", "int", 1, low=1)
    if weight is None or weight.ndim != 4 or weight.shape[0] != shape[0]:
        raise GlassnetError(f"{_where(reader, node)}: expected a weight ({shape[0]}, out/group, kh, kw). Received: "
                            f"{None if weight is None else list(weight.shape)}")
    if reader.attribute(node, "auto_pad", "string", "NOTSET") != "NOTSET" or any(
            a.name == "output_shape" for a in node.attribute):
        raise GlassnetError(f"{_where(reader, node)}: auto_pad and output_shape are not supported; give pads "
                            "and output_padding")
    kernel = tuple(reader.attribute(node, "kernel_shape", "ints", list(weight.shape[2:]), size=2, low=1))
    stride = tuple(reader.attribute(node, "strides", "ints", [1, 1], size=2, low=1))
    dilation = tuple(reader.attribute(node, "dilations", "ints", [1, 1], size=2, low=1))
    extra = tuple(reader.attribute(node, "output_padding", "ints", [0, 0], size=2, low=0))
    top, left, bottom, right = reader.attribute(node, "pads", "ints", [0, 0, 0, 0], size=4, low=0)
    if (top, left) != (bottom, right) or kernel != weight.shape[2:]:
        raise GlassnetError(f"{_where(reader, node)}: pads {[top, left, bottom, right]} must be even and "
                            f"kernel_shape {list(kernel)} fit the weight {list(weight.shape)}")
    try:
        layer = ConvTranspose2D(weight.shape[0], weight.shape[1] * group, kernel, stride, (top, left), extra, group,
                                bias is not None, dilation, dtype=reader.dtype)
    except GlassnetError as error:
        raise GlassnetError(f"{_where(reader, node)}: {error}") from None
    layer.params["weight"] = weight.astype(reader.dtype)
    if bias is not None:
        if bias.size != layer.out_channels:
            raise GlassnetError(f"{_where(reader, node)}: a bias of {bias.size} values for {layer.out_channels} "
                                "output channels")
        layer.params["bias"] = bias.reshape(-1).astype(reader.dtype)
    return [layer], node.output[0]


def _import_lrn(reader, node, shape, used):
    size = reader.attribute(node, "size", "int", low=1)
    if size % 2 == 0:
        raise GlassnetError(f"{_where(reader, node)}: size={size}: ONNX's even window is centred one channel later "
                            "than PyTorch's; only odd sizes are supported")
    return [LRN(size, reader.attribute(node, "alpha", "float", 1e-4), reader.attribute(node, "beta", "float", 0.75),
                reader.attribute(node, "bias", "float", 1.0), dtype=reader.dtype)], node.output[0]


def _import_selu(reader, node, shape, used):
    alpha = reader.attribute(node, "alpha", "float", SELU_ALPHA)
    gamma = reader.attribute(node, "gamma", "float", SELU_SCALE)
    if not (math.isclose(alpha, SELU_ALPHA, rel_tol=1e-6) and math.isclose(gamma, SELU_SCALE, rel_tol=1e-6)):
        raise GlassnetError(f"{_where(reader, node)}: only SELU's own alpha and gamma are supported. Received: "
                            f"alpha={alpha}, gamma={gamma}")
    return [SELU(dtype=reader.dtype)], node.output[0]


def _import_prelu(reader, node, shape, used):
    slope = reader.weight(node, 1)
    if slope is None:
        raise GlassnetError(f"{_where(reader, node)}: the slope must be a stored weight")
    C = shape[0]
    if slope.size == 1:
        layer = PReLU(1, dtype=reader.dtype)
    elif slope.size == C and slope.shape in ((C,), (C, 1, 1), (1, C, 1, 1)) and len(shape) in (1, 3):
        layer = PReLU(C, dtype=reader.dtype)
    else:
        raise GlassnetError(f"{_where(reader, node)}: a slope of shape {list(slope.shape)}: one shared value or one "
                            f"per channel ({C}) is supported")
    layer.params["weight"] = slope.reshape(-1).astype(reader.dtype)
    return [layer], node.output[0]


def _import_clip(reader, node, shape, used):
    low = reader.weight(node, 1) if len(node.input) > 1 else None
    high = reader.weight(node, 2) if len(node.input) > 2 else None
    low = reader.attribute(node, "min", "float", None) if low is None else float(np.asarray(low))
    high = reader.attribute(node, "max", "float", None) if high is None else float(np.asarray(high))
    if (low, high) != (0.0, 6.0):
        raise GlassnetError(f"{_where(reader, node)}: only Clip(0, 6) (ReLU6) is supported. Received: "
                            f"min={low}, max={high}")
    return [ReLU6(dtype=reader.dtype)], node.output[0]


def _import_hard_sigmoid(reader, node, shape, used):
    alpha, beta = reader.attribute(node, "alpha", "float", 0.2), reader.attribute(node, "beta", "float", 0.5)
    if not (math.isclose(alpha, 1 / 6, rel_tol=1e-6) and beta == 0.5):
        raise GlassnetError(f"{_where(reader, node)}: only PyTorch's hardsigmoid (alpha=1/6, beta=0.5) is supported. "
                            f"Received: alpha={alpha}, beta={beta}")
    return [Hardsigmoid(dtype=reader.dtype)], node.output[0]


def _import_gelu(reader, node, shape, used):
    approximate = reader.attribute(node, "approximate", "string", "none")
    if approximate not in ("none", "tanh"):
        raise GlassnetError(f"{_where(reader, node)}: approximate={approximate!r} is not a GELU form")
    return [GELU(approximate, dtype=reader.dtype)], node.output[0]


def _import_log_softmax(reader, node, shape, used):
    if reader.attribute(node, "axis", "int", -1) % (len(shape) + 1) != 1:
        raise GlassnetError(f"{_where(reader, node)}: only a log-softmax over axis 1 is supported")
    return [LogSoftmax(dtype=reader.dtype)], node.output[0]


def _import_resize(reader, node, shape, used):
    """Resize (opset 11+) or Upsample (7-9) by whole scale factors: nearest (asymmetric, floor) or linear
    (half-pixel or align_corners), as PyTorch exports ``nn.Upsample``."""
    if len(shape) != 3:
        raise GlassnetError(f"{_where(reader, node)}: expects (N, C, H, W) image data")
    scales = None
    if node.op_type == "Upsample":
        scales = reader.weight(node, 1) if len(node.input) > 1 else reader.attribute(node, "scales", "ints", None)
    else:
        scales = reader.weight(node, 2) if len(node.input) > 2 and node.input[2] else None
        sizes = reader.weight(node, 3) if len(node.input) > 3 and node.input[3] else None
        if scales is None and sizes is not None:
            sizes = np.asarray(sizes, dtype=np.float64).reshape(-1)
            scales = sizes / np.array((sizes[0], shape[0]) + tuple(shape[1:]), dtype=np.float64) if sizes.size == 4 \
                else None
            if scales is not None:
                scales[0] = 1.0
    scales = None if scales is None else np.asarray(scales, dtype=np.float64).reshape(-1)
    if scales is None or scales.size != 4 or tuple(scales[:2]) != (1.0, 1.0) or np.any(scales[2:] != np.round(
            scales[2:])) or np.any(scales[2:] < 1):
        raise GlassnetError(f"{_where(reader, node)}: only whole scale factors of H and W are supported. Received: "
                            f"{None if scales is None else scales.tolist()}")
    mode = reader.attribute(node, "mode", "string", "nearest")
    transform = reader.attribute(node, "coordinate_transformation_mode", "string", "half_pixel")
    factors = (int(scales[2]), int(scales[3]))
    if mode == "nearest":
        nearest = reader.attribute(node, "nearest_mode", "string", "round_prefer_floor")
        if node.op_type == "Resize" and (transform != "asymmetric" or nearest != "floor"):
            raise GlassnetError(f"{_where(reader, node)}: nearest resizing is supported as PyTorch writes it "
                                f"(asymmetric, floor). Received: {transform}, {nearest}")
        return [Upsample2D(factors, "nearest", dtype=reader.dtype)], node.output[0]
    if mode in ("linear", "bilinear") and transform in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        return [Upsample2D(factors, "bilinear", transform == "align_corners", dtype=reader.dtype)], node.output[0]
    raise GlassnetError(f"{_where(reader, node)}: mode {mode!r} with {transform!r} coordinates is not supported")


def _import_depth_to_space(reader, node, shape, used):
    mode = reader.attribute(node, "mode", "string", "DCR")
    if mode != "CRD":
        raise GlassnetError(f"{_where(reader, node)}: only mode CRD (PixelShuffle's order) is supported. "
                            f"Received: {mode}")
    return [PixelShuffle(reader.attribute(node, "blocksize", "int", low=1), dtype=reader.dtype)], node.output[0]


def _plain(kind, **attributes):
    def build(reader, node, shape, used):
        values = {key: reader.attribute(node, name, "float", default) for key, (name, default) in attributes.items()}
        return [kind(**values, dtype=reader.dtype)], node.output[0]
    return build


IMPORTERS = {
    "ConvTranspose": _import_conv_transpose, "LRN": _import_lrn, "Selu": _import_selu, "PRelu": _import_prelu,
    "Clip": _import_clip, "HardSigmoid": _import_hard_sigmoid, "Gelu": _import_gelu,
    "LogSoftmax": _import_log_softmax, "Resize": _import_resize, "Upsample": _import_resize,
    "DepthToSpace": _import_depth_to_space,
    "Elu": _plain(ELU, alpha=("alpha", 1.0)), "Softplus": _plain(Softplus), "Softsign": _plain(Softsign),
    "HardSwish": _plain(Hardswish),
}
