"""Model files: the architecture as JSON plus the weights, in a checked archive (``archive.py``).

Members:
- ``__glassnet__``: UTF-8 JSON ``{"format": "glassnet-model", "version": 1, "dtype": ...,
  "layers": [{"type": "Conv2D", "config": {...}}, ...], "metadata": {...}}``
- ``<index>.<key>``: every parameter and buffer (``0.weight``, ``1.running_mean``, ...).

Layer types are looked up in an allow-list (``LAYER_TYPES``), never imported by name;
before any layer is built, the parameters its config declares must fit in the file, so
a config cannot make glassnet allocate more than the file holds. Saving is atomic.
"""
import numpy as np

from . import layers as layer_module
from .archive import ArchiveReader, write_archive
from .backend import to_numpy
from .errors import GlassnetError
from . import sequential  # a module reference: sequential -> training -> checkpoint -> here

FORMAT, VERSION = "glassnet-model", 1
LAYER_TYPES = {name: getattr(layer_module, name) for name in (
    "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Dense", "Dropout", "BatchNorm2D",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Softmax")}


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def model_header(model):
    """The JSON description of ``model``: dtype, layers (type + config), metadata."""
    if not isinstance(model, sequential.Sequential):
        raise GlassnetError(f"save: expected a Sequential model. Received: {type(model).__name__}")
    layers = [{"type": type(layer).__name__, "config": layer.get_config()} for layer in model.layers]
    for entry in layers:
        if entry["type"] not in LAYER_TYPES:
            raise GlassnetError(f"save: layer type {entry['type']} is not one glassnet can load back")
    return {"dtype": model.dtype.name, "layers": layers, "metadata": _json_ready(model.metadata)}


def model_arrays(model):
    """name -> array for every parameter and buffer (``"0.weight"``, ...); refuses NaN/Inf."""
    arrays = {}
    for index, layer in enumerate(model.layers):
        for store in (layer.params, layer.buffers):
            for key, value in store.items():
                value = to_numpy(value)                      # the file holds host arrays, whatever the device
                if not np.all(np.isfinite(value)):
                    raise GlassnetError(f"save: {index}.{key} holds NaN or Inf values; refusing to write them")
                arrays[f"{index}.{key}"] = value
    return arrays


def save(model, path):
    """Write ``model`` (architecture, weights, buffers, metadata) to ``path`` atomically."""
    header = {"format": FORMAT, "version": VERSION, **model_header(model)}
    return write_archive(path, header, model_arrays(model))


def load(path):
    """Read a model written by ``save``; any damaged, foreign or hostile file raises GlassnetError.

    >>> model = gn.Sequential([gn.Dense(2, 3, rng=0)])
    >>> gn.save(model, "tiny.glassnet")
    PosixPath('tiny.glassnet')
    >>> np.array_equal(gn.load("tiny.glassnet")[0].params["weight"], model[0].params["weight"])
    True
    >>> gn.load("no-such-file.glassnet")
    Traceback (most recent call last):
      ...
    glassnet.errors.GlassnetError: no-such-file.glassnet: no such model file
    """
    with ArchiveReader(path, "model file") as archive:
        header = archive.header(FORMAT)
        _check_version(header, archive.path)
        model = model_from_archive(header, archive, set())
    return model


def model_from_archive(description, archive, other_members):
    """Build the model ``description`` names and fill it from ``archive``'s arrays.

    ``other_members``: names the caller reads itself (checkpoints); anything else is refused.
    """
    model = _build(description, archive)
    expected = set()
    for index, layer in enumerate(model.layers):
        for store in (layer.params, layer.buffers):
            for key, current in store.items():
                name = f"{index}.{key}"
                expected.add(name)
                store[key] = archive.array(name, current.shape, current.dtype)
    extra = archive.names() - expected - set(other_members)
    if extra:
        raise GlassnetError(f"{archive.path}: unexpected arrays {sorted(extra)[:5]}")
    return model


def _check_version(header, path):
    if header.get("version") != VERSION:
        raise GlassnetError(f"{path}: format version {header.get('version')!r}, this glassnet reads "
                            f"version {VERSION}")


def _declared_size(kind, config, index, path):
    """Number of parameter/buffer values a layer config declares, read without building the layer."""
    def integer(key, default=None):
        value = config.get(key, default)
        if isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value):
            return value[0] * value[1]
        if type(value) is not int or value < 0:
            raise GlassnetError(f"{path}: layer {index} ({kind}) has a bad {key}: {value!r}")
        return value
    if kind == "Conv2D":
        return integer("out_channels") * (integer("in_channels") * integer("kernel_size") + 1)
    if kind == "Dense":
        return integer("out_features") * (integer("in_features") + 1)
    if kind == "BatchNorm2D":
        return 4 * integer("num_features")
    return 0


def _build(description, archive):
    path = archive.path
    layer_list = description.get("layers")
    if not isinstance(layer_list, list) or not layer_list:
        raise GlassnetError(f"{path}: header lists no layers")
    dtype = description.get("dtype", "float64")
    if dtype not in ("float32", "float64"):
        raise GlassnetError(f"{path}: dtype {dtype!r}, expected 'float32' or 'float64'")
    declared = 0
    for index, entry in enumerate(layer_list):
        if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
            raise GlassnetError(f"{path}: layer {index} is malformed")
        kind = entry.get("type")
        if not isinstance(kind, str) or kind not in LAYER_TYPES:
            raise GlassnetError(f"{path}: layer {index} has type {kind!r}, which is not a glassnet layer")
        declared += _declared_size(kind, entry.get("config", {}), index, path)
    if declared * np.dtype(dtype).itemsize > archive.size:
        raise GlassnetError(f"{path}: the layers declare {declared:,} values, more than the file's "
                            f"{archive.size:,} bytes can hold")
    layers = []
    for index, entry in enumerate(layer_list):
        try:
            layers.append(LAYER_TYPES[entry["type"]](**entry.get("config", {}), dtype=dtype))
        except (TypeError, GlassnetError) as error:
            raise GlassnetError(f"{path}: layer {index} ({entry['type']}) has a bad config: {error}") from None
    model = sequential.Sequential(layers)
    metadata = description.get("metadata", {})
    model.metadata = metadata if isinstance(metadata, dict) else {}
    return model
