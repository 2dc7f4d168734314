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
from ..nn.layers import (Add, AvgPool2D, BatchNorm2D, Concatenate, Conv2D, Dense, Dropout, Flatten,
                         GlobalAvgPool2D, GlobalMaxPool2D, Identity, LeakyReLU, MaxPool2D, Multiply, ReLU, Sigmoid,
                         Softmax, Tanh)
from ..nn.layers.conv import padding_argument
from ..nn.symbolic import Input
from ..models.model import Model
from ..models.sequential import Sequential

ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "softmax": Softmax, "linear": None}
TO_ACTIVATION = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh", Softmax: "softmax", Identity: "linear"}


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
    current, new = state.current, []
    if state.pending_pad is not None and kind not in ("Conv2D", "AveragePooling2D", "MaxPooling2D"):
        raise GlassnetError(f"{where}: a ZeroPadding2D must be followed by a convolution or pooling here")
    if kind == "ZeroPadding2D":
        (top, bottom), (left, right) = config["padding"]
        if top != bottom or left != right or state.pending_pad is not None:
            raise GlassnetError(f"{where}: only one symmetric zero padding before a layer is supported")
        state.pending_pad = (top, left)                                     # taken by the next layer
        return []
    if state.pending_pad is not None and config.get("padding") != "valid":
        raise GlassnetError(f"{where}: a ZeroPadding2D before padding='same' is not supported")
    padded, state.pending_pad = state.pending_pad, None
    if kind == "Conv2D":
        if config["groups"] != 1 or tuple(config["dilation_rate"]) != (1, 1):
            raise GlassnetError(f"{where}: only groups=1 and dilation_rate=1 are supported")
        kernel = layer.get_weights()[0]                                     # (kh, kw, in, out)
        padding = padded or _padding(config["padding"], tuple(config["kernel_size"]), tuple(config["strides"]),
                                     current, where)
        conv = Conv2D(kernel.shape[2], kernel.shape[3], tuple(config["kernel_size"]), tuple(config["strides"]),
                      padding, bias=config["use_bias"])
        conv.params["weight"] = kernel.transpose(3, 2, 0, 1).copy()          # -> (out, in, kh, kw)
        if config["use_bias"]:
            conv.params["bias"] = layer.get_weights()[1].copy()
        new = [conv] + _activation(config.get("activation"), where)
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
        padding = _padding(config["padding"], pool, strides, current, where)
        if padding not in (0, (0, 0)):
            raise GlassnetError(f"{where}: padding='same' that adds padding is not supported for pooling "
                                "(Keras leaves padded cells out of averages and maxima)")
        if padded and kind == "MaxPooling2D" and not state.nonnegative:
            raise GlassnetError(f"{where}: zero padding before max pooling equals glassnet's padding only on "
                                "values that cannot be negative (after a ReLU)")
        new = [(MaxPool2D if kind == "MaxPooling2D" else AvgPool2D)(pool, strides, padded or 0)]
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
        if config.get("max_value") is not None or config.get("threshold", 0) != 0:
            raise GlassnetError(f"{where}: max_value and threshold are not supported")
        slope = config.get("negative_slope", 0.0)
        new = [LeakyReLU(slope) if slope else ReLU()]
    elif kind == "LeakyReLU":
        new = [LeakyReLU(config["negative_slope"])]
    elif kind == "Softmax":
        new = [Softmax()]
    elif kind == "Dropout":
        new = [Dropout(config["rate"])]
    elif kind == "BatchNormalization":
        if config["axis"] not in (-1, 3, [3], [-1]) or not (config["center"] and config["scale"]):
            raise GlassnetError(f"{where}: only axis=-1 with center=True and scale=True is supported")
        gamma, beta, mean, var = layer.get_weights()
        norm = BatchNorm2D(gamma.shape[0], eps=config["epsilon"], momentum=1 - config["momentum"])
        norm.params["weight"], norm.params["bias"] = gamma.copy(), beta.copy()
        norm.buffers["running_mean"], norm.buffers["running_var"] = mean.copy(), var.copy()
        new = [norm]
    elif kind == "Identity":
        new = [Identity()]
    else:
        raise GlassnetError(f"{where} has no glassnet equivalent")
    for glass_layer in new:
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
            if any(t.pending_pad is not None or t.pending_flatten is not None for t in inputs):
                raise GlassnetError(f"{where}: joins a padded or flattened tensor, which is not supported")
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
    result = tensors[id(model.outputs[0])]
    if result.pending_pad is not None:
        raise GlassnetError("from_keras: the model ends in a ZeroPadding2D, which is not supported")
    glass = Model(x, result.symbolic, dtype=_dtype(model))
    glass.metadata["converted_from"] = {"format": "keras", "model": model.name}
    return glass.eval()


def _convert_shape_only(layers, state):
    for glass_layer in layers:
        state.current = glass_layer.output_shape(state.current)
    state.pending_pad = None


def _activation(name, where):
    if isinstance(name, str) and name.startswith("leaky_relu"):
        return [LeakyReLU(0.2)]                                             # keras.activations.leaky_relu's slope
    if name not in ACTIVATIONS:
        raise GlassnetError(f"{where}: activation {name!r} has no glassnet equivalent")
    kind = ACTIVATIONS[name]
    return [] if kind is None else [kind()]


def _padding(mode, kernel, strides, current, where):
    """Keras 'valid' / 'same' for an input of glassnet shape ``current`` -> a glassnet padding."""
    if mode == "valid":
        return 0
    H, W = current[1], current[2]
    pads = []
    for size, k, s in ((H, kernel[0], strides[0]), (W, kernel[1], strides[1])):
        total = max((-(-size // s) - 1) * s + k - size, 0)                 # TensorFlow's SAME rule
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    padding = padding_argument((top, bottom, left, right), kernel, strides)
    if padding is not None:
        return padding
    raise GlassnetError(f"{where}: padding='same' with stride {strides} pads unevenly here, which glassnet "
                        "cannot express")


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
        top, bottom, left, right = layer.pads
        if (top, bottom, left, right) != (0, 0, 0, 0) and layer.padding != "same":
            if top != bottom or left != right:
                raise GlassnetError(f"{where}: asymmetric padding has no Keras equivalent")
            new.append((L.ZeroPadding2D((top, left), dtype=dtype), None))
        mode = "same" if layer.padding == "same" else "valid"
        conv = L.Conv2D(layer.out_channels, layer.kernel_size, layer.stride, padding=mode,
                        use_bias=layer.use_bias, dtype=dtype)
        values = [layer.params["weight"].transpose(2, 3, 1, 0)]               # (out, in, kh, kw) -> (kh, kw, in, out)
        values += [layer.params["bias"]] if layer.use_bias else []
        new.append((conv, values))
    elif kind is Dense:
        kernel = layer.params["weight"]
        if flattened_from is not None:                                       # rows (C, H, W) -> Keras' (H, W, C)
            C, H, W = flattened_from
            kernel = kernel.reshape(C, H, W, -1).transpose(1, 2, 0, 3).reshape(C * H * W, -1)
        values = [kernel] + ([layer.params["bias"]] if layer.use_bias else [])
        new.append((L.Dense(layer.out_features, use_bias=layer.use_bias, dtype=dtype), values))
    elif kind in (MaxPool2D, AvgPool2D):
        if layer.padding != (0, 0):
            if kind is MaxPool2D and not nonnegative:
                raise GlassnetError(f"{where}: padded max pooling has no Keras equivalent (except after a ReLU)")
            new.append((L.ZeroPadding2D(layer.padding, dtype=dtype), None))   # zeros count, as glassnet's
        pool = L.MaxPooling2D if kind is MaxPool2D else L.AveragePooling2D
        new.append((pool(layer.kernel_size, layer.stride, dtype=dtype), None))
    elif kind is Flatten:
        new.append((L.Flatten(dtype=dtype), None))
    elif kind is GlobalAvgPool2D:
        new.append((L.GlobalAveragePooling2D(dtype=dtype), None))
    elif kind is GlobalMaxPool2D:
        new.append((L.GlobalMaxPooling2D(dtype=dtype), None))
    elif kind is LeakyReLU:
        new.append((L.LeakyReLU(negative_slope=layer.alpha, dtype=dtype), None))
    elif kind is Dropout:
        new.append((L.Dropout(layer.p, dtype=dtype), None))
    elif kind is BatchNorm2D:
        values = [layer.params["weight"], layer.params["bias"], layer.buffers["running_mean"],
                  layer.buffers["running_var"]]
        new.append((L.BatchNormalization(epsilon=layer.eps, momentum=1 - layer.momentum, dtype=dtype), values))
    elif kind in TO_ACTIVATION:
        new.append((L.Activation(TO_ACTIVATION[kind], dtype=dtype), None))
    else:
        raise GlassnetError(f"{where} has no Keras equivalent here")
    return new, layer.output_shape(current)
