"""Keras' fixed maps and reshapes, both ways (EfficientNet's entrance and squeeze-and-excitation):
``Rescaling`` and ``Normalization`` <-> ``gn.Rescaling``, ``Reshape`` <-> ``gn.Reshape`` where no value
changes place between Keras' channels-last and glassnet's channels-first order, ``Dropout(noise_shape=)``
<-> ``gn.Dropout(noise_shape=)``."""
import numpy as np

from ..errors import GlassnetError
from ..nn.layers import Dropout, Rescaling, Reshape

KERAS_EPSILON = 1e-7            # keras.backend.epsilon(): Normalization divides by max(sqrt(variance), it)


def _per_channel(value, where, name):
    """A Keras scale/offset (a float, or values along the last axis) -> a float or a list per channel."""
    array = np.asarray(value, dtype=np.float64)
    if array.size == 1:
        return float(array.reshape(()))
    if array.ndim == 0 or any(size != 1 for size in array.shape[:-1]):
        raise GlassnetError(f"{where}: {name} of shape {list(array.shape)} is not one value per channel")
    return [float(v) for v in array.reshape(-1)]


def from_rescaling(config, where):
    return Rescaling(_per_channel(config["scale"], where, "scale"), _per_channel(config["offset"], where, "offset"))


def from_normalization(keras, layer, config, where):
    """``(x - mean) / max(sqrt(variance), 1e-7)`` per channel -> Rescaling(1 / s, -mean / s)."""
    axis = config["axis"]
    if config.get("invert") or tuple(np.atleast_1d(axis)) not in ((-1,), (3,)):
        raise GlassnetError(f"{where}: only axis=-1 (the channels) without invert is supported. "
                            f"Received: axis={axis}, invert={config.get('invert')}")
    mean = np.asarray(keras.ops.convert_to_numpy(layer.mean), dtype=np.float64).reshape(-1)
    spread = np.maximum(np.sqrt(np.asarray(keras.ops.convert_to_numpy(layer.variance), np.float64).reshape(-1)),
                        KERAS_EPSILON)
    return Rescaling([float(v) for v in 1.0 / spread], [float(v) for v in -mean / spread])


def _flat_order(shape):
    """True when one sample of ``shape`` lists its values in the same order channels-last and -first:
    a vector, or an image whose every axis but the channels is 1."""
    return len(shape) == 1 or all(size == 1 for size in shape[1:])


def from_reshape(config, current, where):
    """Keras' target (channels last) -> glassnet's (channels first), where the values keep their order."""
    target = tuple(config["target_shape"])
    glass = (target[-1],) + target[:-1] if len(target) == 3 else target
    if not (_flat_order(current) and _flat_order(glass)):
        raise GlassnetError(f"{where}: a reshape of {current} (glassnet, channels first) to {target} (Keras, "
                            f"channels last) moves values between the two orders; only reshapes that add or "
                            f"remove axes of size 1 around the channels are supported")
    return Reshape(glass)


def from_dropout(config, current):
    """Keras' noise_shape (batch, then channels last; None: the input's size) -> glassnet's (C, H, W)."""
    noise = config.get("noise_shape")
    if noise is None:
        return Dropout(config["rate"])
    sizes = [full if size is None else size for size, full in zip(
        list(noise)[1:], (current[1:] + current[:1]) if len(current) == 3 else current)]
    sizes = sizes[-1:] + sizes[:-1] if len(sizes) == 3 else sizes
    return Dropout(config["rate"], noise_shape=sizes)


def to_keras_layer(L, layer, current, dtype, where):
    """The Keras layer for a Rescaling, Reshape or Dropout, or None for another kind."""
    if isinstance(layer, Rescaling):
        return L.Rescaling(layer.scale, layer.offset, dtype=dtype)
    if isinstance(layer, Reshape):
        out = layer.output_shape(current)
        if not (_flat_order(current) and _flat_order(out)):
            raise GlassnetError(f"{where}: a reshape of {current} to {out} moves values between channels-first "
                                f"and Keras' channels-last order; it has no Keras Reshape")
        return L.Reshape(out[1:] + out[:1] if len(out) == 3 else out, dtype=dtype)
    if isinstance(layer, Dropout):
        if layer.noise_shape is None:
            return L.Dropout(layer.p, dtype=dtype)
        noise = layer.noise_shape[1:] + layer.noise_shape[:1] if len(layer.noise_shape) == 3 else layer.noise_shape
        return L.Dropout(layer.p, noise_shape=(None,) + tuple(noise), dtype=dtype)
    return None
