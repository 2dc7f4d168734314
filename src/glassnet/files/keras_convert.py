"""Keras 3 models <-> glassnet models, weights copied, channels-last handled: ``keras.Sequential`` <->
``Sequential``, a functional ``keras.Model`` <-> a graph ``Model``.

The layout changes, all in one place:
- Keras keeps images (N, H, W, C) and glassnet (N, C, H, W): the converted model takes NCHW
  inputs (``x.transpose(0, 3, 1, 2)``).
- Conv2D kernels: Keras (kh, kw, in, out) -> glassnet (out, in, kh, kw).
- Flatten: Keras lays (H, W, C) out row by row with channels fastest, glassnet (C, H, W) as
  PyTorch, so the rows of the Dense layer after a Flatten are permuted.
- ``activation=`` inside Conv2D / Dense becomes a separate glassnet activation layer.
- BatchNormalization's momentum is Keras' decay (0.99) against glassnet's update rate (0.01).
Keras runs on any of its backends (the tests use PyTorch's, so no TensorFlow is needed).
"""
import numpy as np

from ..errors import GlassnetError
from ..nn.layers import (ELU, GELU, SELU, Add, AvgPool2D, BatchNorm2D, Concatenate, Conv2D, ConvTranspose2D, Dense,
                         Dropout, Flatten, GlobalAvgPool2D, GlobalMaxPool2D, Hardsigmoid, Hardswish, Identity,
                         LeakyReLU, LogSoftmax, MaxPool2D, Multiply, Pad2D, ReLU, ReLU6, Sigmoid, SiLU, Softmax,
                         Softplus, Softsign, Tanh, Upsample2D)
from ..nn.layers.conv import padding_argument
from ..nn.layers.rescaling import Rescaling, Reshape
from .keras_fixed import from_dropout, from_normalization, from_rescaling, from_reshape, to_keras_layer
from ..nn.symbolic import Input
from ..models.model import Model
from ..models.sequential import Sequential

ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "softmax": Softmax, "linear": None, "relu6": ReLU6,
               "swish": SiLU, "silu": SiLU, "gelu": GELU, "elu": ELU, "selu": SELU, "softplus": Softplus,
               "softsign": Softsign, "hard_sigmoid": Hardsigmoid, "hard_swish": Hardswish, "hard_silu": Hardswish,
               "log_softmax": LogSoftmax}
TO_ACTIVATION = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh", Softmax: "softmax", Identity: "linear",
                 ReLU6: "relu6", SiLU: "silu", SELU: "selu", Softsign: "softsign", Hardsigmoid: "hard_sigmoid",
                 Hardswish: "hard_silu", LogSoftmax: "log_softmax"}
CONVOLUTIONS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "AveragePooling2D", "MaxPooling2D")


def _keras():
    try:
        import keras
    except ImportError:
        raise GlassnetError("converting to or from Keras needs Keras 3: pip install keras (and one backend, "
                            "e.g. torch with KERAS_BACKEND=torch)") from None
    return keras


def from_keras(model):
    """A glassnet model (taking NCHW inputs) from a built Keras 3 model: a ``Sequential`` from a
    ``keras.Sequential``, a graph ``Model`` from a functional ``keras.Model`` (``keras.applications``
    ResNet50, DenseNet121, your own: Add, Concatenate, Multiply, global poolings; a layer called twice
    becomes a shared layer)."""
    keras = _keras()
    if not isinstance(model, keras.Model):
        raise GlassnetError(f"from_keras: expected a keras.Sequential or a functional keras.Model. "
                            f"Received: {type(model).__name__}")
    if not isinstance(model, keras.Sequential):
        return _from_functional(keras, model)
    glass_shape = _glass_shape(model.input_shape)
    state, layers, groups = _Tensor(None, glass_shape), [], []
    for layer in model.layers:
        new = _convert(layer, state)
        layers += new
        groups.append(len(new))
    if state.pending_pad is not None:                                       # a ZeroPadding2D at the end
        layers.append(Pad2D(state.pending_pad))
        groups[-1] += 1
    result = Sequential(layers, dtype=_dtype(model))
    result.metadata["input_shape"] = list(glass_shape)
    # how many glassnet layers each Keras layer became (gn.compare lines them up with this)
    result.metadata["converted_from"] = {"format": "keras", "layers_per_layer": groups}
    return result.eval()


class _Tensor:
    """What the converter knows about one Keras tensor: the glassnet symbolic value it became (None
    along a Sequential), its glassnet shape, and what waits for the next layer (the (C, H, W) of a
    Flatten for the next Dense's rows; a ZeroPadding2D for the next convolution or pooling)."""

    def __init__(self, symbolic, shape, pending_flatten=None, pending_pad=None):
        self.symbolic, self.current = symbolic, tuple(shape)
        self.pending_flatten, self.pending_pad = pending_flatten, pending_pad

    def copy(self):
        twin = _Tensor(self.symbolic, self.current, self.pending_flatten, self.pending_pad)
        twin.nonnegative = self.nonnegative
        return twin


def _glass_shape(input_shape):
    shape = tuple(input_shape[1:])                                          # (H, W, C) or (features,)
    if None in shape:
        raise GlassnetError(f"from_keras: the model's input shape must be fixed. Received: {input_shape}")
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape


def _dtype(model):
    return np.float64 if any(w.dtype == np.float64 for w in model.get_weights()) else np.float32


def _convert(layer, state):
    """The glassnet layers for one Keras layer applied to ``state`` (a _Tensor, updated in place)."""
    kind = type(layer).__name__
    where = f"from_keras: layer {layer.name!r} ({kind})"
    config = layer.get_config()
    if config.get("data_format", "channels_last") != "channels_last":
        raise GlassnetError(f"{where}: only data_format='channels_last' is supported")
    current, new, before = state.current, [], []
    if state.pending_pad is not None and (kind not in CONVOLUTIONS or config.get("padding") != "valid"):
        before = [Pad2D(state.pending_pad)]                                  # no layer takes it in: a Pad2D
        current, state.pending_pad = before[0].output_shape(current), None
    if kind == "ZeroPadding2D":
        (top, bottom), (left, right) = config["padding"]
        if state.pending_pad is not None:
            before, current = [Pad2D(state.pending_pad)], Pad2D(state.pending_pad).output_shape(current)
        state.pending_pad = (top, bottom, left, right)                      # taken by the next layer, if it can
        state.current = current
        return before
    padded, state.pending_pad = state.pending_pad, None
    if padded is not None and padded[0::2] == padded[1::2]:
        padded = (padded[0], padded[2])                                       # even: a padding argument
    if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
        new = _convolution(layer, kind, config, current, padded, where)
    elif kind == "Dense":
        weights = layer.get_weights()
        kernel = weights[0]                                                 # (in, out), as glassnet
        if state.pending_flatten is not None:                               # rows in (H, W, C) order -> (C, H, W)
            C, H, W = state.pending_flatten
            kernel = kernel.reshape(H, W, C, -1).transpose(2, 0, 1, 3).reshape(C * H * W, -1)
            state.pending_flatten = None
        dense = Dense(kernel.shape[0], kernel.shape[1], bias=config["use_bias"])
        dense.params["weight"] = np.ascontiguousarray(kernel)
        if config["use_bias"]:
            dense.params["bias"] = weights[1].copy()
        new = [dense] + _activation(config.get("activation"), where)
    elif kind in ("MaxPooling2D", "AveragePooling2D"):
        pool = tuple(config["pool_size"])
        strides = tuple(config["strides"] or pool)
        same = _same_pads(pool, strides, current) if config["padding"] == "same" else (0, 0, 0, 0)
        if any(same):
            # Keras leaves padded cells out: -inf for a maximum, uncounted for an average
            before += [Pad2D(padded)] if padded is not None else []
            current = before[-1].output_shape(current) if padded is not None else current
            same = _same_pads(pool, strides, current)
            new = [MaxPool2D(pool, strides, same) if kind == "MaxPooling2D" else
                   AvgPool2D(pool, strides, same, count_include_pad=False)]
        elif padded is not None and (kind == "AveragePooling2D" or state.nonnegative) and len(padded) == 2:
            new = [(MaxPool2D if kind == "MaxPooling2D" else AvgPool2D)(pool, strides, padded)]
        else:                                       # zeros that take part in the maximum: padded first
            before += [Pad2D(padded)] if padded is not None else []
            new = [(MaxPool2D if kind == "MaxPooling2D" else AvgPool2D)(pool, strides)]
            if padded is not None:
                current = before[-1].output_shape(current)
    elif kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        if config.get("keepdims"):
            raise GlassnetError(f"{where}: keepdims=True is not supported")
        new = [GlobalAvgPool2D() if kind == "GlobalAveragePooling2D" else GlobalMaxPool2D()]
    elif kind == "Flatten":
        new = [Flatten()]
        state.pending_flatten = current if len(current) == 3 else None
    elif kind == "Activation":
        new = _activation(config["activation"], where)
    elif kind == "ReLU":
        slope, ceiling = config.get("negative_slope", 0.0), config.get("max_value")
        if config.get("threshold", 0) != 0 or (ceiling is not None and (ceiling != 6 or slope)):
            raise GlassnetError(f"{where}: threshold, and max_value other than 6, are not supported")
        new = [ReLU6() if ceiling == 6 else LeakyReLU(slope) if slope else ReLU()]
    elif kind == "Conv2DTranspose":
        new = _transposed(layer, config, current, padded, where)
    elif kind == "UpSampling2D":
        interpolation = config.get("interpolation", "nearest")
        if interpolation not in ("nearest", "bilinear"):
            raise GlassnetError(f"{where}: interpolation {interpolation!r} is not supported")
        new = [Upsample2D(tuple(config["size"]), interpolation)]
    elif kind == "LeakyReLU":
        new = [LeakyReLU(config["negative_slope"])]
    elif kind == "Softmax":
        new = [Softmax()]
    elif kind == "Dropout":
        new = [from_dropout(config, current)]
    elif kind == "Rescaling":
        new = [from_rescaling(config, where)]
    elif kind == "Normalization":
        new = [from_normalization(_keras(), layer, config, where)]
    elif kind == "Reshape":
        new = [from_reshape(config, current, where)]
    elif kind == "BatchNormalization":
        if config["axis"] not in (-1, 3, [3], [-1]):
            raise GlassnetError(f"{where}: only axis=-1 is supported")
        weights = list(layer.get_weights())
        channels = weights[-1].shape[0]
        gamma = weights.pop(0) if config["scale"] else np.ones(channels, weights[-1].dtype)     # scale=False: 1
        beta = weights.pop(0) if config["center"] else np.zeros(channels, weights[-1].dtype)   # center=False: 0
        mean, var = weights
        norm = BatchNorm2D(gamma.shape[0], eps=config["epsilon"], momentum=1 - config["momentum"])
        norm.params["weight"], norm.params["bias"] = gamma.copy(), beta.copy()
        norm.buffers["running_mean"], norm.buffers["running_var"] = mean.copy(), var.copy()
        new = [norm]
    elif kind == "Identity":
        new = [Identity()]
    else:
        raise GlassnetError(f"{where} has no glassnet equivalent")
    new = before + new
    for glass_layer in new:                                                 # from the input's shape, pads included
        state.current = glass_layer.output_shape(state.current)
    if new:
        state.nonnegative = type(new[-1]) is ReLU
    return new


_Tensor.nonnegative = False          # the tensor is a ReLU's output (zero padding then equals -inf padding)

MERGES = {"Add": Add, "Multiply": Multiply, "Concatenate": Concatenate}


def _from_functional(keras, model):
    """Walk a functional model back from its output (Keras' history of each tensor: the layer and the
    call that made it), converting each call once; a layer called twice is converted once and shared."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise GlassnetError(f"from_keras: one input and one output are supported; {model.name} has "
                            f"{len(model.inputs)} and {len(model.outputs)}")
    glass_shape = _glass_shape(model.inputs[0].shape)
    x = Input(glass_shape)
    tensors = {id(model.inputs[0]): _Tensor(x, glass_shape)}
    converted = {}                                                          # Keras layer id -> glassnet layers
    order, seen, stack = [], set(), [(model.outputs[0], False)]
    while stack:                                 # the calls in an order where inputs come first
        tensor, expanded = stack.pop()
        if id(tensor) in tensors or (id(tensor) in seen and not expanded):
            continue
        layer, node_index, _ = tensor._keras_history
        call = layer._inbound_nodes[node_index]
        if expanded:
            order.append((tensor, layer, call))
            tensors[id(tensor)] = None
            continue
        if not call.input_tensors:
            raise GlassnetError(f"from_keras: {model.name} reads an input other than its own ({layer.name})")
        seen.add(id(tensor))
        stack.append((tensor, True))
        stack.extend((t, False) for t in reversed(call.input_tensors))
    for tensor, layer, call in order:
        inputs = [tensors[id(t)] for t in call.input_tensors]
        kind = type(layer).__name__
        where = f"from_keras: layer {layer.name!r} ({kind})"
        if kind in MERGES:
            inputs = [_padding_done(t) for t in inputs]
            if any(t.pending_flatten is not None for t in inputs):
                raise GlassnetError(f"{where}: joins a flattened tensor, which is not supported")
            if kind == "Concatenate":
                axis = layer.get_config()["axis"]
                rank = len(inputs[0].current) + 1
                axis = axis % rank
                merge = Concatenate(axis={3: 1, 1: 2, 2: 3}[axis] if rank == 4 else axis)
            else:
                merge = MERGES[kind]()
            symbolic = merge([t.symbolic for t in inputs])
            tensors[id(tensor)] = _Tensor(symbolic, symbolic.shape)
            continue
        if len(inputs) != 1:
            raise GlassnetError(f"{where}: takes {len(inputs)} inputs; glassnet merges with Add, Multiply and "
                                f"Concatenate")
        state = inputs[0].copy()
        if id(layer) not in converted:
            converted[id(layer)] = (_convert(layer, state), state)
            new = converted[id(layer)][0]
        else:                                                               # called again: the same layers
            new = converted[id(layer)][0]
            _convert_shape_only(new, state)
        for glass_layer in new:
            state.symbolic = glass_layer(state.symbolic)
        tensors[id(tensor)] = state
    result = _padding_done(tensors[id(model.outputs[0])])
    glass = Model(x, result.symbolic, dtype=_dtype(model))
    glass.metadata["converted_from"] = {"format": "keras", "model": model.name}
    return glass.eval()


def _padding_done(tensor):
    """``tensor`` with a ZeroPadding2D no layer took in applied as a Pad2D (a copy; the original is read
    by other layers too)."""
    if tensor.pending_pad is None:
        return tensor
    twin = tensor.copy()
    pad = Pad2D(twin.pending_pad)
    twin.symbolic, twin.current, twin.pending_pad = pad(twin.symbolic), pad.output_shape(twin.current), None
    return twin


def _convert_shape_only(layers, state):
    for glass_layer in layers:
        state.current = glass_layer.output_shape(state.current)
    state.pending_pad = None


def _convolution(layer, kind, config, current, padded, where):
    """Conv2D (groups, dilation), DepthwiseConv2D and SeparableConv2D (a depthwise then a 1x1 Conv2D)."""
    weights = layer.get_weights()
    kernel_size, strides = tuple(config["kernel_size"]), tuple(config["strides"])
    dilation = tuple(config.get("dilation_rate", (1, 1)))
    padding = padded if padded is not None else _padding(config["padding"], kernel_size, strides, current, where,
                                                         dilation=dilation)
    before = []
    if isinstance(padding, tuple) and len(padding) == 4:                   # uneven: a Pad2D in front
        before, padding = [Pad2D(padding)], 0
    channels = current[0]
    if kind == "Conv2D":
        kernel = weights[0]                                                 # (kh, kw, in / groups, out)
        conv = Conv2D(channels, kernel.shape[3], kernel_size, strides, padding, dilation, config.get("groups", 1),
                      bias=config["use_bias"])
        conv.params["weight"] = kernel.transpose(3, 2, 0, 1).copy()          # -> (out, in / groups, kh, kw)
        convs = [conv]
    else:
        depth = weights[0]                                                  # (kh, kw, in, multiplier)
        multiplier = depth.shape[3]
        bias_here = kind == "DepthwiseConv2D" and config["use_bias"]
        conv = Conv2D(channels, channels * multiplier, kernel_size, strides, padding, dilation, groups=channels,
                      bias=bias_here)
        # Keras' depthwise output channel c * multiplier + m reads input channel c: glassnet's grouping
        conv.params["weight"] = depth.reshape(depth.shape[0], depth.shape[1], -1).transpose(2, 0, 1)[:, None].copy()
        convs = [conv]
        if kind == "SeparableConv2D":
            point = weights[1]                                              # (1, 1, in * multiplier, out)
            pointwise = Conv2D(channels * multiplier, point.shape[3], 1, bias=config["use_bias"])
            pointwise.params["weight"] = point.transpose(3, 2, 0, 1).copy()
            convs.append(pointwise)
    if config["use_bias"]:
        convs[-1].params["bias"] = weights[-1].copy()
    return before + convs + _activation(config.get("activation"), where)


def _transposed(layer, config, current, padded, where):
    """Conv2DTranspose: 'valid' (kernel >= stride) or 'same' with an even overlap, as PyTorch's padding."""
    if padded is not None:
        raise GlassnetError(f"{where}: a ZeroPadding2D before a transposed convolution is not supported")
    weights = layer.get_weights()
    kernel = weights[0]                                                     # (kh, kw, out, in)
    kernel_size, strides = tuple(config["kernel_size"]), tuple(config["strides"])
    if tuple(config.get("dilation_rate", (1, 1))) != (1, 1) or config.get("output_padding") is not None:
        raise GlassnetError(f"{where}: dilation_rate and output_padding are not supported")
    pads, extras = [], []
    for k, s in zip(kernel_size, strides):
        overlap = k - s
        if config["padding"] == "valid" and overlap >= 0:
            pads.append(0)
            extras.append(0)
        elif config["padding"] == "same" and overlap >= 0 and overlap % 2 == 0:
            pads.append(overlap // 2)
            extras.append(0)
        else:
            raise GlassnetError(f"{where}: padding={config['padding']!r} with kernel {kernel_size} and strides "
                                f"{strides} has no glassnet equivalent here")
    conv = ConvTranspose2D(kernel.shape[3], kernel.shape[2], kernel_size, strides, tuple(pads), tuple(extras),
                           bias=config["use_bias"])
    conv.params["weight"] = kernel.transpose(3, 2, 0, 1).copy()              # -> (in, out, kh, kw)
    if config["use_bias"]:
        conv.params["bias"] = weights[1].copy()
    return [conv] + _activation(config.get("activation"), where)


def _activation(name, where):
    if isinstance(name, str) and name.startswith("leaky_relu"):
        return [LeakyReLU(0.2)]                                             # keras.activations.leaky_relu's slope
    if name not in ACTIVATIONS:
        raise GlassnetError(f"{where}: activation {name!r} has no glassnet equivalent")
    kind = ACTIVATIONS[name]
    return [] if kind is None else [kind()]


def _padding(mode, kernel, strides, current, where, dilation=(1, 1)):
    """Keras 'valid' / 'same' for an input of glassnet shape ``current`` -> a glassnet padding argument, or
    (top, bottom, left, right) when it is uneven in a way no padding argument expresses."""
    if mode == "valid":
        return 0
    pads = _same_pads(kernel, strides, current, dilation)
    padding = padding_argument(pads, kernel, strides, dilation)
    return padding if padding is not None else pads


def _same_pads(kernel, strides, current, dilation=(1, 1)):
    """TensorFlow's SAME rule: (top, bottom, left, right), the odd one out at the bottom/right."""
    pads = []
    for size, k, s, d in ((current[1], kernel[0], strides[0], dilation[0]),
                          (current[2], kernel[1], strides[1], dilation[1])):
        total = max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def to_keras(model):
    """A Keras 3 model taking NHWC inputs, computing what ``model`` computes (same weights): a
    ``keras.Sequential`` for a chain, a functional ``keras.Model`` for a graph (a shared layer is one
    Keras layer called once per node)."""
    keras = _keras()
    shapes = model.input_shapes or ([tuple(model.metadata["input_shape"])] if model.metadata.get("input_shape")
                                    else None)
    if not shapes:
        raise GlassnetError("to_keras: the model does not record its input shape; set model.metadata['input_shape']")
    if len(shapes) != 1 or len(model.graph.outputs) != 1:
        raise GlassnetError("to_keras: one input and one output are supported")
    shape = tuple(shapes[0])
    dtype = "float64" if model.dtype == np.float64 else "float32"
    keras_input = keras.Input(shape=(shape[1], shape[2], shape[0]) if len(shape) == 3 else shape, dtype=dtype)
    made, weights = {}, []                          # glassnet layer index -> its Keras layers (made once)
    values = [(keras_input, shape, None)]           # per value: Keras tensor, glassnet shape, Flatten's (C, H, W)
    for k, (index, sources) in enumerate(model.graph.nodes):
        layer = model.layers[index]
        where = f"to_keras: layer {index} ({type(layer).__name__})"
        inputs = [values[s] for s in sources]
        if layer.merges:
            if any(flat is not None for _, _, flat in inputs):
                raise GlassnetError(f"{where}: joins flattened images, whose Keras order differs")
            if index not in made:
                made[index] = [(_keras_merge(keras.layers, layer, len(inputs[0][1]) + 1, dtype), None)]
            tensor = made[index][0][0]([t for t, _, _ in inputs])
            values.append((tensor, layer.output_shape([s for _, s, _ in inputs]), None))
            continue
        tensor, current, flattened_from = inputs[0]
        producer = model.layers[model.graph.nodes[sources[0] - 1][0]] if sources[0] >= 1 else None
        if index not in made:
            made[index], _ = _keras_layers(keras.layers, layer, current, flattened_from, dtype, where,
                                           nonnegative=type(producer) is ReLU)
            weights += made[index]
        flattened_from = current if isinstance(layer, Flatten) and len(current) == 3 else (
            None if isinstance(layer, Dense) else flattened_from)
        for keras_layer, _ in made[index]:
            tensor = keras_layer(tensor)
        values.append((tensor, layer.output_shape(current), flattened_from))
    output = values[model.graph.outputs[0]][0]
    if model.is_chain:
        result = keras.Sequential([keras_input] + [layer for k in range(len(model.layers)) for layer, _ in made[k]])
    else:
        result = keras.Model(keras_input, output)
    for keras_layer, values in weights:
        if values is not None:
            keras_layer.set_weights([np.asarray(v, dtype=dtype) for v in values])
    return result


def _keras_convolution(L, layer, current, dtype):
    """Conv2D (groups, dilation) or, for groups = in_channels, DepthwiseConv2D; uneven pads as a ZeroPadding2D."""
    new, mode = [], "same" if layer.padding == "same" else "valid"
    top, bottom, left, right = layer.pads
    if mode == "valid" and any(layer.pads):
        new.append((L.ZeroPadding2D(((top, bottom), (left, right)), dtype=dtype), None))
    weight = layer.params["weight"]                                        # (out, in / groups, kh, kw)
    values = [layer.params["bias"]] if layer.use_bias else []
    if layer.groups == layer.in_channels and layer.groups > 1:
        multiplier = layer.out_channels // layer.in_channels
        conv = L.DepthwiseConv2D(layer.kernel_size, layer.stride, padding=mode, depth_multiplier=multiplier,
                                 dilation_rate=layer.dilation, use_bias=layer.use_bias, dtype=dtype)
        kh, kw = layer.kernel_size                                         # -> (kh, kw, in, multiplier)
        kernel = weight.reshape(layer.in_channels, multiplier, kh, kw).transpose(2, 3, 0, 1)
    else:
        conv = L.Conv2D(layer.out_channels, layer.kernel_size, layer.stride, padding=mode,
                        dilation_rate=layer.dilation, groups=layer.groups, use_bias=layer.use_bias, dtype=dtype)
        kernel = weight.transpose(2, 3, 1, 0)                              # -> (kh, kw, in / groups, out)
    new.append((conv, [kernel] + values))
    return new


def _keras_pool(L, layer, current, dtype, where, nonnegative):
    """Pooling: Keras' 'same' where the pads are its own (padded cells left out, as count_include_pad=False
    and -inf do), else zero padding first where zeros counting is what glassnet does."""
    pool = L.MaxPooling2D if isinstance(layer, MaxPool2D) else L.AveragePooling2D
    if layer.ceil_mode or layer.dilation != (1, 1):
        raise GlassnetError(f"{where}: ceil_mode and dilation have no Keras equivalent")
    if not any(layer.pads):
        return [(pool(layer.kernel_size, layer.stride, dtype=dtype), None)]
    excluded = isinstance(layer, MaxPool2D) or not layer.count_include_pad
    if excluded and layer.pads == _same_pads(layer.kernel_size, layer.stride, current):
        return [(pool(layer.kernel_size, layer.stride, padding="same", dtype=dtype), None)]
    if isinstance(layer, MaxPool2D) and not nonnegative:
        raise GlassnetError(f"{where}: padded max pooling has no Keras equivalent (except after a ReLU, or "
                            f"Keras' own 'same' pads)")
    if not excluded or isinstance(layer, MaxPool2D):
        top, bottom, left, right = layer.pads
        return [(L.ZeroPadding2D(((top, bottom), (left, right)), dtype=dtype), None),     # zeros count
                (pool(layer.kernel_size, layer.stride, dtype=dtype), None)]
    raise GlassnetError(f"{where}: average pooling that leaves out pads other than Keras' 'same' has no Keras "
                        "equivalent")


def _keras_transposed(L, layer, dtype, where):
    """ConvTranspose2D -> Conv2DTranspose: 'valid' for padding 0, 'same' for an even overlap cut in half."""
    if layer.groups != 1 or layer.dilation != (1, 1) or any(layer.output_padding):
        raise GlassnetError(f"{where}: groups, dilation and output_padding have no Keras equivalent here")
    overlaps = [k - s for k, s in zip(layer.kernel_size, layer.stride)]
    if all(p == 0 for p in layer.padding) and min(overlaps) >= 0:
        mode = "valid"
    elif all(o >= 0 and o % 2 == 0 and p == o // 2 for o, p in zip(overlaps, layer.padding)):
        mode = "same"
    else:
        raise GlassnetError(f"{where}: padding {layer.padding} with kernel {layer.kernel_size} and stride "
                            f"{layer.stride} has no Keras equivalent")
    conv = L.Conv2DTranspose(layer.out_channels, layer.kernel_size, layer.stride, padding=mode,
                             use_bias=layer.use_bias, dtype=dtype)
    values = [layer.params["weight"].transpose(2, 3, 1, 0)]                 # (in, out, kh, kw) -> (kh, kw, out, in)
    return [(conv, values + ([layer.params["bias"]] if layer.use_bias else []))]


def _keras_merge(L, layer, rank, dtype):
    if isinstance(layer, Concatenate):
        axis = layer.axis % rank
        return L.Concatenate(axis={1: 3, 2: 1, 3: 2}[axis] if rank == 4 else axis, dtype=dtype)
    return (L.Add if isinstance(layer, Add) else L.Multiply)(dtype=dtype)


def _keras_layers(L, layer, current, flattened_from, dtype, where, nonnegative=False):
    """[(Keras layer, its weights or None)] for one glassnet layer whose input has glassnet shape ``current``
    (``nonnegative``: the input is a ReLU's output, so zero padding before a max pooling changes nothing)."""
    kind, new = type(layer), []
    if kind is Conv2D:
        new = _keras_convolution(L, layer, current, dtype)
    elif kind is Dense:
        kernel = layer.params["weight"]
        if flattened_from is not None:                                       # rows (C, H, W) -> Keras' (H, W, C)
            C, H, W = flattened_from
            kernel = kernel.reshape(C, H, W, -1).transpose(1, 2, 0, 3).reshape(C * H * W, -1)
        values = [kernel] + ([layer.params["bias"]] if layer.use_bias else [])
        new.append((L.Dense(layer.out_features, use_bias=layer.use_bias, dtype=dtype), values))
    elif kind in (MaxPool2D, AvgPool2D):
        new = _keras_pool(L, layer, current, dtype, where, nonnegative)
    elif kind is Pad2D:
        if layer.mode != "constant" or layer.value != 0.0:
            raise GlassnetError(f"{where}: only zero padding has a Keras layer (ZeroPadding2D)")
        top, bottom, left, right = layer.pads
        new.append((L.ZeroPadding2D(((top, bottom), (left, right)), dtype=dtype), None))
    elif kind is ReLU6:
        new.append((L.ReLU(max_value=6.0, dtype=dtype), None))
    elif kind is ELU:
        new.append((L.ELU(alpha=layer.alpha, dtype=dtype), None))
    elif kind is GELU and layer.approximate == "none":
        new.append((L.Activation("gelu", dtype=dtype), None))
    elif kind is Softplus and layer.beta == 1.0:
        new.append((L.Activation("softplus", dtype=dtype), None))
    elif kind is Upsample2D and not layer.align_corners:
        new.append((L.UpSampling2D(layer.scale_factor, interpolation=layer.mode, dtype=dtype), None))
    elif kind is ConvTranspose2D:
        new = _keras_transposed(L, layer, dtype, where)
    elif kind is Flatten:
        new.append((L.Flatten(dtype=dtype), None))
    elif kind is GlobalAvgPool2D:
        new.append((L.GlobalAveragePooling2D(dtype=dtype), None))
    elif kind is GlobalMaxPool2D:
        new.append((L.GlobalMaxPooling2D(dtype=dtype), None))
    elif kind is LeakyReLU:
        new.append((L.LeakyReLU(negative_slope=layer.alpha, dtype=dtype), None))
    elif kind in (Dropout, Rescaling, Reshape):
        new.append((to_keras_layer(L, layer, current, dtype, where), None))
    elif kind is BatchNorm2D:
        values = [layer.params["weight"], layer.params["bias"], layer.buffers["running_mean"],
                  layer.buffers["running_var"]]
        new.append((L.BatchNormalization(epsilon=layer.eps, momentum=1 - layer.momentum, dtype=dtype), values))
    elif kind in TO_ACTIVATION:
        new.append((L.Activation(TO_ACTIVATION[kind], dtype=dtype), None))
    else:
        raise GlassnetError(f"{where} has no Keras equivalent here")
    return new, layer.output_shape(current)
