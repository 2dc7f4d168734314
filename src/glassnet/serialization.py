"""Model files: one ``.npz`` holding a JSON header and the weights, never a pickle.

Members:
- ``__glassnet__``: UTF-8 JSON as uint8 bytes: ``{"format": "glassnet-model", "version": 1,
  "dtype": ..., "layers": [{"type": "Conv2D", "config": {...}}, ...], "metadata": {...}}``
- ``<index>.<key>``: every parameter and buffer (``0.weight``, ``1.running_mean``, ...).

Layer types are looked up in an allow-list (``LAYER_TYPES``), never imported by name;
arrays are read with ``allow_pickle=False``. Saving writes a temporary file in the same
folder and moves it into place, so an interrupted save never damages an existing file.
"""
import json
import zipfile
from pathlib import Path

import numpy as np

from . import layers as layer_module
from .files import atomic_write
from .errors import GlassnetError
from .sequential import Sequential

FORMAT, VERSION = "glassnet-model", 1
HEADER = "__glassnet__"
LAYER_TYPES = {name: getattr(layer_module, name) for name in (
    "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Dense", "Dropout", "BatchNorm2D",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Softmax")}
MAX_HEADER_BYTES = 1 << 20
MAX_FILE_BYTES = 2 << 30


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


def save(model, path):
    """Write ``model`` (architecture, weights, buffers, metadata) to ``path`` atomically."""
    if not isinstance(model, Sequential):
        raise GlassnetError(f"save: expected a Sequential model. Received: {type(model).__name__}")
    header = {
        "format": FORMAT, "version": VERSION, "dtype": model.dtype.name,
        "layers": [{"type": type(layer).__name__, "config": layer.get_config()} for layer in model.layers],
        "metadata": _json_ready(model.metadata),
    }
    for entry in header["layers"]:
        if entry["type"] not in LAYER_TYPES:
            raise GlassnetError(f"save: layer type {entry['type']} is not one glassnet can load back")
    arrays = {HEADER: np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    for index, layer in enumerate(model.layers):
        for store in (layer.params, layer.buffers):
            for key, value in store.items():
                arrays[f"{index}.{key}"] = value
    path = Path(path)
    with atomic_write(path) as out:
        np.savez(out, **arrays)
    return path


def load(path):
    """Read a model written by ``save``; any damaged or foreign file raises GlassnetError."""
    path = Path(path)
    if not path.is_file():
        raise GlassnetError(f"{path}: no such model file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise GlassnetError(f"{path}: file of {path.stat().st_size:,} bytes exceeds the model-file limit")
    if not zipfile.is_zipfile(path):
        raise GlassnetError(f"{path}: not a glassnet model file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if HEADER + ".npy" not in archive.zip.namelist():
                raise GlassnetError(f"{path}: not a glassnet model file (no {HEADER} header)")
            info = archive.zip.getinfo(HEADER + ".npy")
            if info.file_size > MAX_HEADER_BYTES:
                raise GlassnetError(f"{path}: header of {info.file_size:,} bytes exceeds {MAX_HEADER_BYTES:,}")
            header = _parse_header(archive[HEADER], path)
            model = _build(header, path)
            _fill_arrays(model, archive, path)
    except GlassnetError:
        raise
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise GlassnetError(f"{path}: damaged model file ({error.__class__.__name__}: {error})") from None
    return model


def _parse_header(raw, path):
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise GlassnetError(f"{path}: damaged header")
    header = json.loads(raw.tobytes().decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise GlassnetError(f"{path}: not a glassnet model file")
    if header.get("version") != VERSION:
        raise GlassnetError(f"{path}: model format version {header.get('version')!r}, this glassnet reads "
                            f"version {VERSION}")
    if not isinstance(header.get("layers"), list) or not header["layers"]:
        raise GlassnetError(f"{path}: header lists no layers")
    return header


def _build(header, path):
    layers = []
    for index, entry in enumerate(header["layers"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
            raise GlassnetError(f"{path}: layer {index} is malformed")
        kind = entry.get("type")
        if kind not in LAYER_TYPES:
            raise GlassnetError(f"{path}: layer {index} has type {kind!r}, which is not a glassnet layer")
        try:
            layers.append(LAYER_TYPES[kind](**entry.get("config", {}), dtype=header.get("dtype", "float64")))
        except TypeError as error:
            raise GlassnetError(f"{path}: layer {index} ({kind}) has a bad config: {error}") from None
    model = Sequential(layers)
    metadata = header.get("metadata", {})
    model.metadata = metadata if isinstance(metadata, dict) else {}
    return model


def _fill_arrays(model, archive, path):
    expected = set()
    for index, layer in enumerate(model.layers):
        for store in (layer.params, layer.buffers):
            for key, current in store.items():
                name = f"{index}.{key}"
                expected.add(name)
                if name + ".npy" not in archive.zip.namelist():
                    raise GlassnetError(f"{path}: missing array {name}")
                value = archive[name]
                if value.shape != current.shape or value.dtype != current.dtype:
                    raise GlassnetError(f"{path}: array {name} has shape {value.shape} {value.dtype}, "
                                        f"expected {current.shape} {current.dtype}")
                if not np.all(np.isfinite(value)):
                    raise GlassnetError(f"{path}: array {name} holds NaN or Inf values")
                store[key] = value.copy()
    extra = {name[:-4] for name in archive.zip.namelist()} - expected - {HEADER}
    if extra:
        raise GlassnetError(f"{path}: unexpected arrays {sorted(extra)}")
