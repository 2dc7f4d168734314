"""Model files: the architecture as JSON plus the weights, in a checked archive (``archive.py``).

Members:
- ``__glassnet__``: UTF-8 JSON ``{"format": "glassnet-model", "version": 1, "dtype": ...,
  "layers": [{"type": "Conv2D", "config": {...}}, ...], "metadata": {...}}``; a graph model adds
  ``"graph": {"inputs": [[C, H, W], ...], "nodes": [[layer index, [value ids]], ...], "outputs": [...]}``
  (``glassnet.models.graph``: a node reads model inputs and earlier nodes only, so every reference is
  checked in one pass and no file can describe a cycle);
- ``<index>.<key>``: every parameter and buffer (``0.weight``, ``1.running_mean``, ...).

Layer types are looked up in an allow-list (``glassnet.nn.layers.LAYER_TYPES``), never imported by name;
before any layer is built, the parameters its config declares must fit in the file, so
a config cannot make glassnet allocate more than the file holds. Saving is atomic.
"""
import numpy as np

from ..archive import ArchiveReader, refuse_non_finite, write_archive
from ..errors import GlassnetError
from ..models.graph import MAX_MODEL_INPUTS, Graph
from ..models.model import Model
from ..models.sequential import Sequential
from ..nn.symbolic import MAX_INPUT_DIMS
from ..nn.layers import LAYER_TYPES
from ..training.checkpoint import read_checkpoint

FORMAT, VERSION = "glassnet-model", 1


def save(model, path):
    """Write ``model`` (architecture, weights, buffers, metadata) to ``path`` atomically."""
    if not isinstance(model, Model):
        raise GlassnetError(f"save: expected a glassnet Sequential or Model. Received: {type(model).__name__}")
    header = {"format": FORMAT, "version": VERSION, **model.get_config()}
    arrays = model.state_arrays()
    refuse_non_finite(arrays, "save")
    return write_archive(path, header, arrays)


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
        model = build_model(header, archive)
        model.load_state_arrays(archive.arrays_like(model.state_arrays()))
    return model


def load_checkpoint(path):
    """Read a checkpoint written by ``fit(checkpoint=...)`` with the model it holds built anew and filled
    (``.model``); falls back to ``<path>.prev`` as ``fit`` does (see ``glassnet.training.checkpoint``)."""
    checkpoint = read_checkpoint(path, build_model)
    checkpoint.model.load_state_arrays(checkpoint.weights)
    return checkpoint


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
    groups = max(1, integer("groups", 1))
    if kind == "Conv2D":
        return integer("out_channels") * (integer("in_channels") // groups * integer("kernel_size") + 1)
    if kind == "ConvTranspose2D":
        return integer("in_channels") * integer("out_channels") // groups * integer("kernel_size") \
            + integer("out_channels")
    if kind == "PReLU":
        return integer("num_parameters", 1)
    if kind == "Dense":
        return integer("out_features") * (integer("in_features") + 1)
    if kind == "BatchNorm2D":
        return 4 * integer("num_features")
    return 0


def build_model(description, archive):
    """A new model (weights as initialised) for ``description`` (a ``get_config()`` dict) read from
    ``archive``; every layer type and size is checked before anything is built."""
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
    model = Sequential(layers) if "graph" not in description else _graph_model(description["graph"], layers, path)
    metadata = description.get("metadata", {})
    model.metadata = metadata if isinstance(metadata, dict) else {}
    return model


MAX_SAMPLE_VALUES = 2 ** 31


def _graph_model(graph, layers, path):
    """The Model of a header's ``graph`` entry over ``layers``; every count, reference and shape checked."""
    if not isinstance(graph, dict) or set(graph) != {"inputs", "nodes", "outputs"}:
        raise GlassnetError(f"{path}: the graph entry must be an object with inputs, nodes and outputs")
    shapes = graph["inputs"]
    if not isinstance(shapes, list) or not 1 <= len(shapes) <= MAX_MODEL_INPUTS:
        raise GlassnetError(f"{path}: the graph must have 1 to {MAX_MODEL_INPUTS} input shapes")
    for index, shape in enumerate(shapes):
        if (not isinstance(shape, list) or not 1 <= len(shape) <= MAX_INPUT_DIMS
                or not all(type(d) is int and 1 <= d <= MAX_SAMPLE_VALUES for d in shape)
                or np.prod(shape, dtype=np.float64) > MAX_SAMPLE_VALUES):
            raise GlassnetError(f"{path}: graph input {index} has a bad shape: {shape!r:.80}")
    try:
        return Model.from_graph(Graph(layers, graph["nodes"], len(shapes), graph["outputs"]), shapes)
    except GlassnetError as error:
        raise GlassnetError(f"{path}: {error}") from None
