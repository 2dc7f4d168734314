"""Keras 3 ``Sequential`` <-> glassnet ``Sequential``, weights copied, channels-last handled.

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
from ..nn.layers import (AvgPool2D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, Identity, LeakyReLU,
                         MaxPool2D, ReLU, Sigmoid, Softmax, Tanh)
from ..nn.layers.conv import padding_argument
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
    """A glassnet ``Sequential`` (taking NCHW inputs) from a built Keras 3 ``Sequential``."""
    keras = _keras()
    if not isinstance(model, keras.Sequential):
        raise GlassnetError(f"from_keras: expected a keras.Sequential. Received: {type(model).__name__}")
    shape = tuple(model.input_shape[1:])                                   # (H, W, C) or (features,)
    if None in shape:
        raise GlassnetError(f"from_keras: the model's input shape must be fixed. Received: {model.input_shape}")
    glass_shape = (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape
    layers, current, pending_flatten, pending_pad, groups = [], glass_shape, None, None, []
    for layer in model.layers:
        kind = type(layer).__name__
        where = f"from_keras: layer {layer.name!r} ({kind})"
        config = layer.get_config()
        if config.get("data_format", "channels_last") != "channels_last":
            raise GlassnetError(f"{where}: only data_format='channels_last' is supported")
        new = []
        if pending_pad is not None and kind not in ("Conv2D", "AveragePooling2D"):
            raise GlassnetError(f"{where}: a ZeroPadding2D must be followed by Conv2D or AveragePooling2D here")
        if kind == "ZeroPadding2D":
            (top, bottom), (left, right) = config["padding"]
            if top != bottom or left != right:
                raise GlassnetError(f"{where}: only symmetric zero padding is supported")
            pending_pad = (top, left)                                       # taken by the next layer
            groups.append(0)
            continue
        if pending_pad is not None and config.get("padding") != "valid":
            raise GlassnetError(f"{where}: a ZeroPadding2D before padding='same' is not supported")
        padded, pending_pad = pending_pad, None
        if kind == "Conv2D":
            if config["groups"] != 1 or tuple(config["dilation_rate"]) != (1, 1):
                raise GlassnetError(f"{where}: only groups=1 and dilation_rate=1 are supported")
            kernel = layer.get_weights()[0]                                 # (kh, kw, in, out)
            padding = padded or _padding(config["padding"], tuple(config["kernel_size"]), tuple(config["strides"]),
                                         current, where)
            conv = Conv2D(kernel.shape[2], kernel.shape[3], tuple(config["kernel_size"]), tuple(config["strides"]),
                          padding, bias=config["use_bias"])
            conv.params["weight"] = kernel.transpose(3, 2, 0, 1).copy()      # -> (out, in, kh, kw)
            if config["use_bias"]:
                conv.params["bias"] = layer.get_weights()[1].copy()
            new = [conv] + _activation(config.get("activation"), where)
        elif kind == "Dense":
            weights = layer.get_weights()
            kernel = weights[0]                                             # (in, out), as glassnet
            if pending_flatten is not None:                                 # rows in (H, W, C) order -> (C, H, W)
                C, H, W = pending_flatten
                kernel = kernel.reshape(H, W, C, -1).transpose(2, 0, 1, 3).reshape(C * H * W, -1)
                pending_flatten = None
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
            new = [(MaxPool2D if kind == "MaxPooling2D" else AvgPool2D)(pool, strides, padded or 0)]
        elif kind == "Flatten":
            new = [Flatten()]
            pending_flatten = current if len(current) == 3 else None
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
            current = glass_layer.output_shape(current)
            layers.append(glass_layer)
        groups.append(len(new))
    dtype = np.float64 if any(w.dtype == np.float64 for w in model.get_weights()) else np.float32
    result = Sequential(layers, dtype=dtype)
    result.metadata["input_shape"] = list(glass_shape)
    # how many glassnet layers each Keras layer became (gn.compare lines them up with this)
    result.metadata["converted_from"] = {"format": "keras", "layers_per_layer": groups}
    return result.eval()


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
    """A Keras 3 ``Sequential`` taking NHWC inputs, computing what ``model`` computes (same weights)."""
    keras = _keras()
    shape = tuple(model.metadata.get("input_shape") or ())
    if not shape:
        raise GlassnetError("to_keras: the model does not record its input shape; set model.metadata['input_shape']")
    dtype = "float64" if model.dtype == np.float64 else "float32"
    keras_layers = [keras.Input(shape=(shape[1], shape[2], shape[0]) if len(shape) == 3 else shape, dtype=dtype)]
    weights, current, flattened_from = [], shape, None
    L = keras.layers
    for index, layer in enumerate(model.layers):
        where = f"to_keras: layer {index} ({type(layer).__name__})"
        kind = type(layer)
        new, values = [], None
        if kind is Conv2D:
            top, bottom, left, right = layer.pads
            if (top, bottom, left, right) != (0, 0, 0, 0) and layer.padding != "same":
                if top != bottom or left != right:
                    raise GlassnetError(f"{where}: asymmetric padding has no Keras equivalent")
                new.append((L.ZeroPadding2D((top, left), dtype=dtype), None))
            mode = "same" if layer.padding == "same" else "valid"
            conv = L.Conv2D(layer.out_channels, layer.kernel_size, layer.stride, padding=mode,
                            use_bias=layer.use_bias, dtype=dtype)
            values = [layer.params["weight"].transpose(2, 3, 1, 0)]           # (out, in, kh, kw) -> (kh, kw, in, out)
            values += [layer.params["bias"]] if layer.use_bias else []
            new.append((conv, values))
        elif kind is Dense:
            kernel = layer.params["weight"]
            if flattened_from is not None:                                   # rows (C, H, W) -> Keras' (H, W, C)
                C, H, W = flattened_from
                kernel = kernel.reshape(C, H, W, -1).transpose(1, 2, 0, 3).reshape(C * H * W, -1)
                flattened_from = None
            values = [kernel] + ([layer.params["bias"]] if layer.use_bias else [])
            new.append((L.Dense(layer.out_features, use_bias=layer.use_bias, dtype=dtype), values))
        elif kind in (MaxPool2D, AvgPool2D):
            if layer.padding != (0, 0):
                if kind is MaxPool2D:
                    raise GlassnetError(f"{where}: padded max pooling has no Keras equivalent")
                new.append((L.ZeroPadding2D(layer.padding, dtype=dtype), None))   # zeros count, as glassnet's
            pool = L.MaxPooling2D if kind is MaxPool2D else L.AveragePooling2D
            new.append((pool(layer.kernel_size, layer.stride, dtype=dtype), None))
        elif kind is Flatten:
            flattened_from = current if len(current) == 3 else None
            new.append((L.Flatten(dtype=dtype), None))
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
        current = layer.output_shape(current)
        for keras_layer, layer_values in new:
            keras_layers.append(keras_layer)
            weights.append((keras_layer, layer_values))
    result = keras.Sequential(keras_layers)
    for keras_layer, values in weights:
        if values is not None:
            keras_layer.set_weights([np.asarray(v, dtype=dtype) for v in values])
    return result
