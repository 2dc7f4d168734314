"""ONNX files: ``export_onnx(model, path)`` and ``import_onnx(path)``.

Export writes one node per glassnet layer (opset 17), in the model's dtype, with a dynamic batch
dimension and the model's metadata (preprocessing record, class names) as the JSON metadata
property ``glassnet.metadata``. Import reads a chain of the ops in ``IMPORTERS`` (the layouts
PyTorch's and Keras' exporters produce) into a ``Sequential`` for a chain, a graph ``Model`` where
values branch and meet (residual Add, Concat, Mul).

An ONNX file is untrusted input: its size is checked before parsing, external weights are read
only from files inside the model's own folder (no absolute paths, no '..'), only the standard
op domain is accepted, every tensor's declared size is checked before it is read, and the nodes
must lead from the input to the output in order (no cycles, nothing left over). Anything else is a
``GlassnetError`` naming the node and op.
"""
import copy
import json
import math
from pathlib import Path

import numpy as np

from ..errors import GlassnetError
from ..archive import json_ready
from ..atomic import atomic_write
from ..nn.layers import (Add, AvgPool2D, BatchNorm2D, Concatenate, Conv2D, Dense, Dropout, Flatten,
                         GlobalAvgPool2D, GlobalMaxPool2D, Identity, LeakyReLU, MaxPool2D, Multiply, ReLU, Sigmoid,
                         Softmax, Tanh)
from ..nn.layers import GELU, ChannelShuffle, Pad2D, Reshape
from ..nn.layers.conv import padding_argument, resolve_padding
from . import onnx_layers
from .onnx_gelu import fuse_gelu
from .onnx_layers import GELU_OPSET
from ..models.model import Model
from ..models.sequential import Sequential
from ..nn.symbolic import Input

OPSET = 17
MAX_FILE_BYTES = 2 * 1024 ** 3         # protobuf's own limit for one serialized message; weights beyond it
                                        # live in external data files beside the model (read with checks below)
MAX_TENSOR_ELEMENTS = 2 ** 28           # 1 GiB of float32: VGG-16's first Dense (25088 x 4096) fits
MAX_EXTERNAL_BYTES = 16 * 1024 ** 3     # all external data of one model together
METADATA_KEY = "glassnet.metadata"
FOLDABLE = {"ConstantOfShape", "Concat", "Reshape", "Slice", "Transpose", "Cast", "Gather", "Unsqueeze",
            "Squeeze", "Identity", "Add", "Sub", "Mul", "Div", "Sqrt", "Shape"}
FOLD_LIMIT = 4096
# ops whose cost is one pass over their input (Keras' exporter reshapes and transposes weights in the graph):
# folded up to the size of any stored tensor
LINEAR_FOLDS = {"Shape", "Reshape", "Transpose", "Cast", "Identity", "Squeeze", "Unsqueeze"}
REQUIRED = object()                    # marks an attribute without a default (ONNX's required attributes)
EXTERNAL_DTYPES = {1: np.dtype("<f4"), 11: np.dtype("<f8"), 6: np.dtype("<i4"), 7: np.dtype("<i8")}


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise GlassnetError("ONNX export and import need onnx: pip install 'glassnet[onnx]'") from None
    return onnx, helper, numpy_helper


# -- export ------------------------------------------------------------------------------------------

def export_onnx(model, path, input_shape=None):
    """Write ``model`` (a Sequential or a graph Model) as an ONNX file at ``path`` (atomically); returns the path.

    ``input_shape`` (one sample's shape, e.g. ``(1, 28, 28)``) is needed for a Sequential that does not
    record one (``model.metadata["input_shape"]``, set by ``fit`` and by the presets); a graph model
    knows its input shapes from ``gn.Input``.
    """
    onnx, helper, numpy_helper = _onnx()
    shapes = _export_input_shapes(model, input_shape)
    element = onnx.TensorProto.DOUBLE if model.dtype == np.float64 else onnx.TensorProto.FLOAT
    graph = model.graph
    values = _value_shapes(model, shapes)
    first = graph.input_count
    names = ["input"] if first == 1 else [f"input{i}" for i in range(first)]
    names += [f"layer{k}" for k in range(len(graph.nodes))]
    nodes, weights, written = [], [], set()
    for k, (index, sources) in enumerate(graph.nodes):
        layer = graph.layers[index]
        exporter = EXPORTERS.get(type(layer))
        if exporter is None:
            raise GlassnetError(f"export_onnx: layer {index} ({type(layer).__name__}) has no ONNX form here")
        op, attributes, arrays = exporter(layer)
        label = f"{k}.{type(layer).__name__}"
        if callable(op):                                              # a layer written as several nodes
            more, constants = op(helper, [names[s] for s in sources], names[first + k], label, values[sources[0]])
            nodes += more
            weights += [numpy_helper.from_array(_stored(value, model.dtype), name) for name, value in constants.items()
                        if name not in {w.name for w in weights}]
            continue
        weight_names = [f"{index}.{key}" for key in arrays]
        if index not in written:                                      # a shared layer's weights are stored once
            written.add(index)
            weights += [numpy_helper.from_array(_stored(value, model.dtype), name)
                        for name, value in zip(weight_names, arrays.values())]
        inputs = [names[s] for s in sources] + weight_names
        if op in ("GlobalAveragePool", "GlobalMaxPool"):             # (N, C, 1, 1), then glassnet's (N, C)
            nodes.append(helper.make_node(op, inputs, [names[first + k] + "_pooled"], name=label))
            nodes.append(helper.make_node("Flatten", [names[first + k] + "_pooled"], [names[first + k]], axis=1,
                                          name=label + ".flatten"))
            continue
        if op in ("Add", "Mul") and len(inputs) > 2:                 # ONNX's Add and Mul take two inputs
            op = "Sum" if op == "Add" else op
            if op == "Mul":
                partial = inputs[0]
                for j, other in enumerate(inputs[1:-1]):
                    nodes.append(helper.make_node("Mul", [partial, other], [f"{names[first + k]}_{j}"],
                                                  name=f"{label}.{j}"))
                    partial = f"{names[first + k]}_{j}"
                inputs = [partial, inputs[-1]]
        nodes.append(helper.make_node(op, inputs, [names[first + k]], name=label, **attributes))
    declare = lambda name, shape: helper.make_tensor_value_info(name, element, ["N"] + list(shape))  # noqa: E731
    onnx_graph = helper.make_graph(nodes, "glassnet", [declare(names[i], shapes[i]) for i in range(first)],
                                   [declare(names[v], values[v]) for v in graph.outputs], weights)
    opset = GELU_OPSET if any(isinstance(layer, GELU) for layer in graph.layers) else OPSET
    proto = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="glassnet")
    helper.set_model_props(proto, {METADATA_KEY: json.dumps(json_ready(model.metadata))})
    onnx.checker.check_model(proto)
    with atomic_write(path) as out:
        out.write(proto.SerializeToString())
    return Path(path)


def _stored(value, dtype):
    """An initializer's array: weights in the model's float type; integer arrays (Pad amounts, Reshape
    targets) and Resize's float32 scales as they are."""
    value = np.asarray(value)
    if np.issubdtype(value.dtype, np.integer) or value.dtype == np.float32:
        return value
    return value.astype(dtype)


def _export_input_shapes(model, input_shape):
    if input_shape is not None:
        shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise GlassnetError(f"export_onnx: input_shape must be one sample's shape, positive ints without the "
                                f"batch axis, e.g. (1, 28, 28). Received: {input_shape!r}")
        if model.graph.input_count != 1:
            raise GlassnetError("export_onnx: input_shape is for one-input models; this one knows its inputs")
        return [shape]
    if model.input_shapes is not None:
        return model.input_shapes
    recorded = model.metadata.get("input_shape")
    if not recorded:
        raise GlassnetError("export_onnx: the model does not record its input shape; pass "
                            "export_onnx(model, path, input_shape=(C, H, W)) (or (features,))")
    return [tuple(recorded)]


def _value_shapes(model, shapes):
    try:
        return model.graph.value_shapes(shapes)
    except GlassnetError as error:
        raise GlassnetError(f"export_onnx: the model cannot take inputs of shape {shapes}: {error}") from None


def _conv(layer):
    top, bottom, left, right = layer.pads
    arrays = {"weight": layer.params["weight"]}
    if layer.use_bias:
        arrays["bias"] = layer.params["bias"]
    return "Conv", dict(kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                        pads=[top, left, bottom, right], dilations=list(layer.dilation), group=layer.groups), arrays


def _pool(op):
    def export(layer):
        top, bottom, left, right = layer.pads
        attributes = dict(kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                          pads=[top, left, bottom, right], ceil_mode=int(layer.ceil_mode))
        if op == "AveragePool":
            attributes["count_include_pad"] = int(layer.count_include_pad)
        else:
            attributes["dilations"] = list(layer.dilation)
        return op, attributes, {}
    return export


def _dense(layer):
    arrays = {"weight": layer.params["weight"]}                    # Gemm: y = x @ W + b with W (in, out)
    if layer.use_bias:
        arrays["bias"] = layer.params["bias"]
    return "Gemm", {}, arrays


def _batchnorm(layer):
    return "BatchNormalization", dict(epsilon=layer.eps), {
        "weight": layer.params["weight"], "bias": layer.params["bias"],
        "running_mean": layer.buffers["running_mean"], "running_var": layer.buffers["running_var"]}


EXPORTERS = {
    Conv2D: _conv, MaxPool2D: _pool("MaxPool"), AvgPool2D: _pool("AveragePool"), Dense: _dense,
    BatchNorm2D: _batchnorm,
    Flatten: lambda layer: ("Flatten", dict(axis=1), {}),
    ReLU: lambda layer: ("Relu", {}, {}),
    LeakyReLU: lambda layer: ("LeakyRelu", dict(alpha=float(layer.alpha)), {}),
    Sigmoid: lambda layer: ("Sigmoid", {}, {}),
    Tanh: lambda layer: ("Tanh", {}, {}),
    Softmax: lambda layer: ("Softmax", dict(axis=1), {}),
    Identity: lambda layer: ("Identity", {}, {}),
    Dropout: lambda layer: ("Identity", {}, {}),                   # inference form
    Add: lambda layer: ("Add", {}, {}),
    Multiply: lambda layer: ("Mul", {}, {}),
    Concatenate: lambda layer: ("Concat", dict(axis=layer.axis), {}),
    GlobalAvgPool2D: lambda layer: ("GlobalAveragePool", {}, {}),
    GlobalMaxPool2D: lambda layer: ("GlobalMaxPool", {}, {}),
    **onnx_layers.EXPORTERS,
}


# -- import ------------------------------------------------------------------------------------------

def import_onnx(path):
    """A glassnet ``Sequential`` from an ONNX file holding one chain of supported ops."""
    onnx, helper, numpy_helper = _onnx()
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise GlassnetError(f"{path}: no such file") from None
    if size > MAX_FILE_BYTES:
        raise GlassnetError(f"{path}: {size:,} bytes exceeds the limit of {MAX_FILE_BYTES:,} bytes for ONNX files")
    try:
        proto = onnx.load_model_from_string(path.read_bytes())
    except Exception as error:      # protobuf raises its own DecodeError and others for damaged bytes
        raise GlassnetError(f"{path}: not a readable ONNX file ({type(error).__name__})") from None
    reader = _GraphReader(proto, str(path), helper, numpy_helper, folder=path.resolve().parent)
    model = reader.model()
    metadata = {prop.key: prop.value for prop in proto.metadata_props}.get(METADATA_KEY)
    if metadata:
        try:
            saved = json.loads(metadata)
        except ValueError:
            raise GlassnetError(f"{path}: its glassnet metadata is not valid JSON") from None
        if isinstance(saved, dict):
            model.metadata.update({k: v for k, v in saved.items() if k in ("preprocessing", "class_names", "loss",
                                                                          "dataset", "task")})
    model.metadata["input_shape"] = list(reader.input_shape)
    return model.eval()


class _GraphReader:
    """Walks an ONNX graph from its input along one chain of nodes, building glassnet layers."""

    def __init__(self, proto, source, helper, numpy_helper, folder):
        self.source, self.helper, self.numpy_helper, self.folder = source, helper, numpy_helper, folder
        self.external_bytes = 0
        graph = proto.graph
        for opset in proto.opset_import:
            if opset.domain not in ("", "ai.onnx"):
                raise GlassnetError(f"{source}: custom op domain {opset.domain!r} is not supported")
        self.constants = {}
        for tensor in graph.initializer:
            self.constants[tensor.name] = self._array(tensor)
        self.nodes = []
        for node in graph.node:
            if node.domain not in ("", "ai.onnx"):
                raise GlassnetError(f"{source}: node {node.name or node.op_type!r} uses the custom domain "
                                    f"{node.domain!r}, which is not supported")
            if node.op_type == "Constant":
                value = next((a for a in node.attribute if a.name == "value"), None)
                if value is None:
                    raise GlassnetError(f"{source}: Constant node {node.name!r} holds no tensor value")
                self.constants[node.output[0]] = self._array(value.t)
            else:
                self.nodes.append(node)
        self._fold_constants(proto)
        fuse_gelu(self.nodes, self.constants, helper)                   # GELU written out -> one Gelu node
        inputs = [i for i in graph.input if i.name not in self.constants]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise GlassnetError(f"{source}: expected one input and one output, found {len(inputs)} and "
                                f"{len(graph.output)}")
        dims = inputs[0].type.tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") else None for d in dims][1:]
        if not shape or any(v is None or v <= 0 for v in shape):
            raise GlassnetError(f"{source}: the input's sizes after the batch axis must be fixed numbers. "
                                f"Received: {[d.dim_param or d.dim_value for d in dims]}")
        self.input_name, self.output_name = inputs[0].name, graph.output[0].name
        self.input_shape, self.input_layout = tuple(shape), "NCHW"
        if len(shape) == 3 and self._first_transpose() == [0, 3, 1, 2]:    # channels-last input (Keras)
            self.input_shape, self.input_layout = (shape[2], shape[0], shape[1]), "NHWC"
        elem = inputs[0].type.tensor_type.elem_type
        self.dtype = np.float64 if elem == 11 else np.float32          # 11: DOUBLE, 1: FLOAT

    def _fold_constants(self, proto):
        """Evaluate small shape computations made only of constants (Keras' exporter builds its Pad
        amounts this way) with ONNX's reference implementation; only ops in FOLDABLE, small tensors."""
        from onnx.reference import ReferenceEvaluator
        changed = True
        while changed:
            changed = False
            for node in list(self.nodes):
                names = [i for i in node.input if i]
                if node.op_type not in FOLDABLE or not all(i in self.constants for i in names):
                    continue
                limit = MAX_TENSOR_ELEMENTS if node.op_type in LINEAR_FOLDS else FOLD_LIMIT
                if any(np.asarray(self.constants[i]).size > limit for i in names):
                    raise GlassnetError(f"{_where(self, node)}: a constant computation on more than {limit:,} "
                                        "values is not supported")
                try:
                    graph = self.helper.make_graph(
                        [node], "fold", [], [self.helper.make_empty_tensor_value_info(o) for o in node.output],
                        [self.numpy_helper.from_array(np.asarray(self.constants[i]), i) for i in names])
                    tiny = self.helper.make_model(graph, opset_imports=list(proto.opset_import))
                    values = ReferenceEvaluator(tiny).run(None, {})
                except Exception as error:
                    raise GlassnetError(f"{_where(self, node)}: cannot evaluate its constant inputs "
                                        f"({type(error).__name__})") from None
                self.constants.update(zip(node.output, (np.asarray(v) for v in values)))
                self.nodes.remove(node)
                changed = True

    def _first_transpose(self):
        """The perm of the first Transpose on the input, past Casts, Pads and arithmetic with constants (Keras
        pads its images before the first convolution, and scales them in its Rescaling and Normalization
        layers); None if another op comes first."""
        name = self.input_name
        for _ in range(len(self.nodes)):
            node = next((n for n in self.nodes if n.input and n.input[0] == name and n.op_type != "Shape"), None)
            scaling = node is not None and node.op_type in ("Add", "Sub", "Mul", "Div") and len(node.input) == 2 \
                and node.input[1] in self.constants
            if node is None or (node.op_type not in ("Cast", "Transpose", "Pad") and not scaling) \
                    or len(node.output) != 1:
                return None
            if node.op_type == "Transpose":
                return self.attribute(node, "perm", "ints", None)
            name = node.output[0]
        return None

    def _array(self, tensor):
        count = math.prod(int(d) for d in tensor.dims)              # Python ints: exact, never overflows
        if any(d < 0 for d in tensor.dims) or count > MAX_TENSOR_ELEMENTS:
            raise GlassnetError(f"{self.source}: tensor {tensor.name!r} declares {list(tensor.dims)} "
                                f"({count:,} values), over the limit of {MAX_TENSOR_ELEMENTS:,}")
        if tensor.data_location == 1 or tensor.external_data:          # EXTERNAL: stored in a side file
            return self._external(tensor, count)
        try:
            array = self.numpy_helper.to_array(tensor)
        except Exception as error:
            raise GlassnetError(f"{self.source}: tensor {tensor.name!r} is damaged ({type(error).__name__}: "
                                f"{error})") from None
        if array.size != count:
            raise GlassnetError(f"{self.source}: tensor {tensor.name!r} holds {array.size} values, its shape "
                                f"{list(tensor.dims)} says {count}")
        return array

    def _external(self, tensor, count):
        """A tensor stored in a file beside the model: only inside the model's own folder, only the
        bytes its shape needs (ONNX's external-data path traversal, CVE-2024-27318/27319, closed)."""
        entries = {entry.key: entry.value for entry in tensor.external_data}
        location = entries.get("location", "")
        where = f"{self.source}: tensor {tensor.name!r} refers to external data {location!r}"
        dtype = EXTERNAL_DTYPES.get(tensor.data_type)
        if dtype is None:
            raise GlassnetError(f"{where} of an unsupported element type {tensor.data_type}")
        relative = Path(location)
        if not location or relative.is_absolute() or ".." in relative.parts:
            raise GlassnetError(f"{where}: external data must be a file inside the model's own folder")
        target = (self.folder / relative).resolve()
        if self.folder not in target.parents or not target.is_file():
            raise GlassnetError(f"{where}: not a file inside the model's own folder {self.folder}")
        try:
            offset, length = int(entries.get("offset", 0)), int(entries.get("length", count * dtype.itemsize))
        except ValueError:
            raise GlassnetError(f"{where}: offset and length must be whole numbers") from None
        if offset < 0 or length != count * dtype.itemsize or offset + length > target.stat().st_size:
            raise GlassnetError(f"{where}: {length} bytes at offset {offset} do not match its shape "
                                f"{list(tensor.dims)} or lie outside the file")
        self.external_bytes += length
        if self.external_bytes > MAX_EXTERNAL_BYTES:
            raise GlassnetError(f"{where}: the model's external data exceed {MAX_EXTERNAL_BYTES:,} bytes")
        with open(target, "rb") as handle:
            handle.seek(offset)
            data = handle.read(length)
        return np.frombuffer(data, dtype=dtype).reshape(tuple(tensor.dims)).copy()

    def model(self):
        """Read the graph's nodes in their (topological) order, one ``_Flow`` per data value.

        Along a chain, as exporters write them: same-type Casts are skipped; Transposes switch the
        layout between NHWC and NCHW (Keras' exporter wraps each op in them); a constant Add becomes the
        bias of the layer before it; a flatten done in NHWC order permutes the next Dense's rows. Where
        values meet (Add, Sum, Mul of two data values; Concat) a merge layer joins them; a value read by
        several nodes is read by each as it is. A chain becomes a Sequential, anything else a Model.
        """
        x = Input(self.input_shape)
        flows = {self.input_name: _Flow(x, self.input_shape, self.input_layout)}
        readers = {}
        for node in self.nodes:
            if node.op_type != "Shape":
                for name in node.input:
                    readers[name] = readers.get(name, 0) + 1
        readers[self.output_name] = readers.get(self.output_name, 0) + 1
        used = set()
        for node in self.nodes:
            try:
                self._read(node, flows, readers, used)
            except GlassnetError:
                raise
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:   # a malformed node
                raise GlassnetError(f"{_where(self, node)}: malformed ({type(error).__name__}: {error})") from None
        return self._finish(x, flows, readers, used)

    def _read(self, node, flows, readers, used):
        """One node: a merge, a step on its input's flow, or (no data input) a shape computation."""
        if len(node.output) != 1 or not node.output[0]:
            raise GlassnetError(f"{_where(self, node)}: expected one output. Received: {list(node.output)}")
        data = [name for name in node.input if name in flows]
        if not data:                         # a shape computation, read by a Reshape or Pad (shape_value)
            return
        used.add(id(node))
        if node.op_type == "Shape":
            return
        if node.output[0] in flows:
            raise GlassnetError(f"{_where(self, node)}: writes {node.output[0]!r} a second time (a cycle)")
        if len(data) > 1 or node.op_type in ("Concat", "Sum"):
            flows[node.output[0]] = self._merge(node, [flows[name] for name in data], data)
            return
        if node.input[0] != data[0]:
            raise GlassnetError(f"{_where(self, node)}: expects its data as the first input")
        flow = flows[data[0]]
        if readers.get(data[0], 0) > 1:      # read by several nodes: each starts from the same layers
            self._flush(flow, node)
            flow = flow.branch()
        self._step(flow, node, used)
        flows[node.output[0]] = flow

    def _finish(self, x, flows, readers, used):
        """The Model from the input ``x`` to the output's flow, once every node is read and checked."""
        if self.output_name not in flows:
            raise GlassnetError(f"{self.source}: the output {self.output_name!r} is not computed from the input "
                                f"(a cycle, or nodes out of order)")
        leftover = [n for n in self.nodes if id(n) not in used]
        if leftover:
            raise GlassnetError(f"{self.source}: nodes outside the graph from input to output are not supported: "
                                f"{', '.join(n.op_type for n in leftover[:5])}")
        unread = [name for name in flows if name != self.output_name and readers.get(name, 0) == 0]
        if unread:
            raise GlassnetError(f"{self.source}: the value {unread[0]!r} is computed but read by nothing")
        y = self._flush(flows[self.output_name], None)
        if y is x:
            raise GlassnetError(f"{self.source}: the graph holds no layer")
        try:
            model = Model(x, y, dtype=self.dtype)
        except GlassnetError as error:
            raise GlassnetError(f"{self.source}: {error}") from None
        return Sequential(model.layers, dtype=self.dtype) if model.is_chain else model

    def _merge(self, node, flows, names):
        """Add / Sum / Mul of data values, or Concat, as a glassnet merge of the flows' outputs."""
        op = node.op_type
        kinds = {"Add": Add, "Sum": Add, "Mul": Multiply, "Concat": Concatenate}
        if op not in kinds or len(names) != len([i for i in node.input if i]):
            raise GlassnetError(f"{_where(self, node)}: joins data values; glassnet joins them with Add, Sum, Mul "
                                f"and Concat of data values only")
        if len(flows) < 2:                                        # a Concat or Sum of one value: itself
            raise GlassnetError(f"{_where(self, node)}: a {op} of a single value is not supported")
        layouts = {flow.layout for flow in flows}
        if len(layouts) != 1 or any(flow.pooled for flow in flows):
            raise GlassnetError(f"{_where(self, node)}: its inputs are in different layouts or unflattened pools")
        layout = layouts.pop()
        heads = [self._flush(flow, node) for flow in flows]
        if op == "Concat":
            axis = self.attribute(node, "axis", "int", 1)
            ndim = len(heads[0].shape) + 1
            axis = axis + ndim if axis < 0 else axis
            if layout == "NHWC" and ndim == 4:                   # channels last in the file, first in glassnet
                axis = {3: 1, 1: 2, 2: 3}.get(axis, 0)
            layer = Concatenate(axis=axis if axis > 0 else 1, dtype=self.dtype) if axis > 0 else None
            if layer is None:
                raise GlassnetError(f"{_where(self, node)}: a concatenation along the batch axis is not supported")
        else:
            layer = kinds[op](dtype=self.dtype)
        try:
            out = layer(heads)
        except GlassnetError as error:
            raise GlassnetError(f"{_where(self, node)}: {error}") from None
        return _Flow(out, out.shape, layout)

    def _flush(self, flow, node):
        """Call the flow's pending layers on its symbolic value; returns the result (the flow now holds it)."""
        if flow.affine is not None:
            flow.pending.append(_affine_layer(self, flow.affine))
            flow.affine = None
        if flow.pending_pad is not None:                                # no Conv or pool took it in
            flow.pending.append(Pad2D(flow.pending_pad, dtype=self.dtype))
            flow.pending_pad = None
        if flow.pooled and node is None:
            raise GlassnetError(f"{self.source}: the output of a global pooling must be flattened to (N, C)")
        for layer in flow.pending:
            try:
                flow.head = layer(flow.head)
            except GlassnetError as error:
                raise GlassnetError(f"{self.source}: {error}") from None
        flow.pending = []
        return flow.head

    def _step(self, flow, node, used):
        """One node on a chain: update ``flow`` (its pending layers, shape, layout) in place."""
        op = node.op_type
        arithmetic = op in ("Sub", "Mul", "Div") or (op == "Add" and not flow.after_weights)
        if flow.affine is not None and not arithmetic and op not in ("Cast", "Transpose"):
            flow.pending.append(_affine_layer(self, flow.affine))      # the run of arithmetic has ended
            flow.affine = None
        if arithmetic:
            flow.affine = _affine_step(self, node, flow.affine, flow.shape, flow.layout)
            flow.after_weights = False
            return
        flow.after_weights = flow.after_weights and op in ("Cast", "Transpose")
        if op == "Cast":
            if reader_type(self.attribute(node, "to", "int")) != self.dtype:
                raise GlassnetError(f"{_where(self, node)}: only casts to the model's own float type are supported")
            return
        if flow.shuffle is not None or (op == "Reshape" and len(flow.shape) == 3 and flow.layout == "NCHW"
                                        and self._reshape_rank(node, flow.shape, used) == 5):
            self._shuffle_step(flow, node, used)
            return
        if op == "Transpose":
            perm = self.attribute(node, "perm", "ints", [])
            if len(flow.shape) == 3 and flow.layout == "NHWC" and perm == [0, 3, 1, 2]:
                flow.layout = "NCHW"
            elif len(flow.shape) == 3 and flow.layout == "NCHW" and perm == [0, 2, 3, 1]:
                flow.layout = "NHWC"
            else:
                raise GlassnetError(f"{_where(self, node)}: only NHWC <-> NCHW transposes are supported. "
                                    f"Received: perm={perm}")
            return
        if op == "Add":                                                 # right after a Conv or MatMul
            flow.pending[-1:] = [_with_bias(self, node, flow.pending[-1] if flow.pending else None, flow.layout)]
            return
        if op == "Pad":
            pads, mode, value = _read_pads(self, node, flow.shape, flow.layout, used)
            if flow.pending_pad is not None:
                flow.pending.append(Pad2D(flow.pending_pad, dtype=self.dtype))
                flow.pending_pad = None
            if mode == "constant" and value == 0.0:
                flow.pending_pad = pads                            # for the next Conv or pool, if one takes it
            else:
                if flow.layout != "NCHW":
                    raise GlassnetError(f"{_where(self, node)}: only zero padding of channels-last data is supported")
                flow.pending.append(Pad2D(pads, mode, value, dtype=self.dtype))
                flow.shape = flow.pending[-1].output_shape(flow.shape)
            return
        if flow.pending_pad is not None and op not in ("Conv", "AveragePool") and not (
                op == "MaxPool" and flow.nonnegative):            # zeros never win a max over a ReLU's output
            layer = Pad2D(flow.pending_pad, dtype=self.dtype)
            flow.pending.append(layer)
            flow.shape, flow.pending_pad = layer.output_shape(flow.shape), None
        if op in ("ReduceMean", "ReduceMax") and len(flow.shape) == 3 and not flow.pooled:
            new, _ = _import_reduce(self, node, flow.shape, used, flow.layout)
            flow.shape, flow.layout, flow.nonnegative = new[0].output_shape(flow.shape), "NCHW", False
            flow.pending.append(new[0])
            flow.pooled, flow.after_weights = self.attribute(node, "keepdims", "int", 1) == 1, False
            return
        if flow.pooled and op not in ("Flatten", "Reshape") and flow.layout == "NCHW":
            (channels,) = flow.shape                   # (N, C, 1, 1) read as an image (squeeze-and-excitation)
            flow.pending.append(Reshape((channels, 1, 1), dtype=self.dtype))
            flow.shape, flow.pooled = (channels, 1, 1), False
        if op in ("Conv", "MaxPool", "AveragePool", "BatchNormalization", "GlobalAveragePool",
                  "GlobalMaxPool", "ReduceMean", "ReduceMax") and (
                flow.layout != "NCHW" or len(flow.shape) != 3 or flow.pooled):
            raise GlassnetError(f"{_where(self, node)}: expects NCHW image data here")
        if flow.pooled:                                                 # (N, C, 1, 1) -> (N, C): nothing to do
            if op not in ("Flatten", "Reshape"):
                raise GlassnetError(f"{_where(self, node)}: after a global pooling glassnet supports only a "
                                    f"Flatten or Reshape to (N, C)")
            _import_flatten(self, node, flow.shape, used)               # checks the target shape
            flow.pooled = False
            return
        if op == "Reshape" and len(flow.shape) == 1 and self._to_image(flow, node, used):
            return
        importer = IMPORTERS.get(op)
        if importer is None:
            raise GlassnetError(f"{self.source}: node {node.name or '?'!r} is a {op}, which glassnet "
                                f"cannot import (supported: {', '.join(sorted(IMPORTERS))})")
        new, _ = importer(self, node, flow.shape, used)
        if flow.pending_pad is not None:
            new, flow.pending_pad = _padded(self, new, flow.pending_pad), None
        if op in ("Flatten", "Reshape") and len(flow.shape) == 3 and flow.layout == "NHWC":
            flow.nhwc_rows, flow.layout = flow.shape, "NCHW"
        if flow.nhwc_rows is not None and isinstance(new[0], Dense):
            C, H, W = flow.nhwc_rows                    # rows in (h, w, c) order -> glassnet's (c, h, w)
            weight = new[0].params["weight"]
            new[0].params["weight"] = weight.reshape(H, W, C, -1).transpose(2, 0, 1, 3).reshape(C * H * W, -1)
            flow.nhwc_rows = None
        for layer in new:
            flow.shape = layer.output_shape(flow.shape)
            flow.pending.append(layer)
        flow.nonnegative = op == "Relu"
        flow.pooled = op in ("GlobalAveragePool", "GlobalMaxPool")
        flow.after_weights = op in ("Conv", "MatMul", "Gemm")

    def _to_image(self, flow, node, used):
        """A Reshape of (N, C) to (N, C, 1, 1) or, channels last, (N, 1, 1, C) (squeeze-and-excitation's
        gate): a glassnet Reshape to (C, 1, 1). False for any other target."""
        (C,) = flow.shape
        target = self.shape_value(node.input[1], flow.shape, used).tolist() if len(node.input) > 1 else []
        if len(target) != 4 or target[0] not in (0, -1) or target[1:] not in ([C, 1, 1], [1, 1, C]):
            return False
        flow.pending.append(Reshape((C, 1, 1), dtype=self.dtype))
        flow.shape, flow.layout = (C, 1, 1), "NCHW" if target[1] == C else "NHWC"
        flow.after_weights = flow.nonnegative = False
        return True

    def _reshape_rank(self, node, shape, used):
        """How many axes a Reshape's target has (0 when it has none)."""
        if len(node.input) < 2:
            return 0
        return len(self.shape_value(node.input[1], shape, used))

    def _shuffle_step(self, flow, node, used):
        """A channel shuffle written out, as exporters write one: Reshape (N, C, H, W) to (N, g, C/g, H, W),
        Transpose perm [0, 2, 1, 3, 4], Reshape back to (N, C, H, W) -> ChannelShuffle(g)."""
        C, H, W = flow.shape
        op = node.op_type
        target = self.shape_value(node.input[1], flow.shape, used).tolist() if op == "Reshape" else None
        if flow.shuffle is None and target is not None and len(target) == 5 and target[3:] == [H, W] \
                and target[1] > 0 and target[1] * max(target[2], 1) == C:
            flow.shuffle = (target[1], "split")
            return
        if flow.shuffle is not None and flow.shuffle[1] == "split" and op == "Transpose" \
                and self.attribute(node, "perm", "ints", []) == [0, 2, 1, 3, 4]:
            flow.shuffle = (flow.shuffle[0], "swapped")
            return
        if flow.shuffle is not None and flow.shuffle[1] == "swapped" and target is not None and len(target) == 4 \
                and target[1:] in ([C, H, W], [-1, H, W]):
            flow.pending.append(ChannelShuffle(flow.shuffle[0], dtype=self.dtype))
            flow.shuffle = None
            return
        raise GlassnetError(f"{_where(self, node)}: a reshape to 5 axes is supported only as a channel shuffle "
                            f"(Reshape to (N, g, C/g, H, W), Transpose [0, 2, 1, 3, 4], Reshape back)")

    def shape_value(self, name, shape, used):
        """The value of a small shape computation feeding a Reshape or a Pad (Shape, Gather, Unsqueeze,
        Squeeze, Concat, Cast, Reshape, Slice, Transpose, ConstantOfShape and integer arithmetic on
        constants and the data's shape), flattened, with the batch size written as 0. ``shape`` is the
        data's shape without the batch axis, in the layout the data has."""
        return np.asarray(self._small_value(name, shape, used, depth=0)).reshape(-1)

    def _is_small(self, name, depth=0):
        """Whether ``name`` is a constant or computed from constants and shapes only (not data)."""
        if name in self.constants:
            return True
        producer = next((n for n in self.nodes if name in n.output), None)
        if producer is None or producer.op_type not in SHAPE_OPS or depth > 64:
            return False
        return producer.op_type == "Shape" or all(self._is_small(i, depth + 1) for i in producer.input if i)

    def _small_value(self, name, shape, used, depth):
        if name in self.constants:
            return np.asarray(self.constants[name])
        producer = next((n for n in self.nodes if name in n.output), None)
        if producer is None or producer.op_type not in SHAPE_OPS or depth > 64:
            raise GlassnetError(f"{self.source}: the target shape {name!r} of a Reshape is not a constant or a "
                                "plain shape computation")
        used.add(id(producer))
        op = producer.op_type
        if op == "Shape" and not self._is_small(producer.input[0]):      # the data's own shape
            return np.array([0] + list(shape), dtype=np.int64)
        if op == "Shape":                                                 # the shape of a small value
            return np.array(self._small_value(producer.input[0], shape, used, depth + 1).shape, dtype=np.int64)
        parts = [self._small_value(i, shape, used, depth + 1) if i else None for i in producer.input]
        if any(part is not None and part.size > FOLD_LIMIT for part in parts):
            raise GlassnetError(f"{_where(self, producer)}: a shape computation on more than {FOLD_LIMIT} values")
        try:
            return _shape_op(self, producer, parts)
        except (ValueError, IndexError, TypeError) as error:
            raise GlassnetError(f"{_where(self, producer)}: cannot evaluate this shape computation "
                                f"({type(error).__name__})") from None

    def attributes(self, node):
        """Node attributes; floats (stored as float32 by ONNX) read back as the shortest decimal
        that float32 denotes, so an epsilon of 1e-5 comes back as 1e-5, not 9.99999974738e-06."""
        values = {}
        for attribute in node.attribute:
            value = self.helper.get_attribute_value(attribute)
            if isinstance(value, float):
                value = float(np.format_float_positional(np.float32(value), unique=True, trim="-"))
            values[attribute.name] = value
        return values

    def attribute(self, node, name, kind, default=REQUIRED, size=None, low=None):
        """Attribute ``name`` of ``node`` as ``kind`` ("int", "ints", "float" or "string"): ``default`` when
        absent; a missing required one, another type, a list of another ``size`` or a value under ``low``
        is a GlassnetError naming the node."""
        found = [a for a in node.attribute if a.name == name]
        if not found:
            if default is REQUIRED:
                raise GlassnetError(f"{_where(self, node)}: the required attribute {name!r} is missing")
            return default
        value = self.attributes(node)[name]
        if kind == "string" and isinstance(value, bytes):
            try:
                value = value.decode("ascii")
            except UnicodeDecodeError:
                value = None
        valid = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
                 "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v),
                 "string": lambda v: isinstance(v, str),
                 "ints": lambda v: isinstance(v, list) and all(isinstance(i, int) for i in v)}[kind]
        if not valid(value) or (size is not None and len(value) != size) or (
                low is not None and any(i < low for i in (value if kind == "ints" else [value]))):
            wanted = f"{size} ints" if size is not None else {"ints": "a list of ints"}.get(kind, f"a {kind}")
            floor = f" of at least {low}" if low is not None else ""
            raise GlassnetError(f"{_where(self, node)}: attribute {name!r} must be {wanted}{floor}. "
                                f"Received: {value!r:.60}")
        return float(value) if kind == "float" else value

    def weight(self, node, position):
        if len(node.input) <= position or not node.input[position]:
            return None
        name = node.input[position]
        if name not in self.constants:
            raise GlassnetError(f"{self.source}: node {node.name or node.op_type!r} takes {name!r}, which is not "
                                "a stored weight")
        return self.constants[name]


SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Reshape", "Slice", "Transpose",
             "ConstantOfShape", "Add", "Sub", "Mul", "Div", "Identity"}


def _shape_op(reader, node, parts):
    """One op of a shape computation on small NumPy arrays (ONNX semantics)."""
    op, first = node.op_type, parts[0]
    if op in ("Cast", "Identity"):
        return first
    if op == "Gather":
        return np.take(first, parts[1].astype(np.int64), axis=reader.attribute(node, "axis", "int", 0))
    if op in ("Unsqueeze", "Squeeze"):
        axes = parts[1] if len(parts) > 1 and parts[1] is not None else reader.attribute(node, "axes", "ints", None)
        if op == "Squeeze":
            return np.squeeze(first, axis=None if axes is None else tuple(int(a) for a in np.ravel(axes)))
        result = first
        for axis in sorted(int(a) % (first.ndim + len(np.ravel(axes))) for a in np.ravel(axes)):
            result = np.expand_dims(result, axis)
        return result
    if op == "Concat":
        return np.concatenate([np.atleast_1d(p) for p in parts if p is not None],
                              axis=reader.attribute(node, "axis", "int", 0))
    if op == "Reshape":
        target = [int(t) for t in np.ravel(parts[1])]
        target = [first.shape[i] if t == 0 and i < first.ndim else t for i, t in enumerate(target)]
        return first.reshape(target)
    if op == "Slice":
        starts, ends = np.ravel(parts[1]), np.ravel(parts[2])
        axes = np.ravel(parts[3]) if len(parts) > 3 and parts[3] is not None else range(len(starts))
        steps = np.ravel(parts[4]) if len(parts) > 4 and parts[4] is not None else [1] * len(starts)
        key = [slice(None)] * first.ndim
        for start, end, axis, step in zip(starts, ends, axes, steps):
            size = first.shape[int(axis)]
            end = max(min(int(end), size), -size - 1) if int(step) > 0 else max(min(int(end), size), -size - 1)
            key[int(axis)] = slice(int(start), None if int(step) < 0 and end < -size else end, int(step))
        return first[tuple(key)]
    if op == "Transpose":
        return np.transpose(first, reader.attribute(node, "perm", "ints", None))
    if op == "ConstantOfShape":
        count = int(np.prod(np.ravel(first))) if first.size else 1
        if count > FOLD_LIMIT or np.any(np.ravel(first) < 0):
            raise GlassnetError(f"{_where(reader, node)}: a ConstantOfShape of {np.ravel(first).tolist()} values")
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        fill = reader.numpy_helper.to_array(value).reshape(-1)[0] if value is not None else np.float32(0)
        return np.full([int(v) for v in np.ravel(first)], fill)
    a, b = first, parts[1]
    if op == "Add":
        return a + b
    if op == "Sub":
        return a - b
    if op == "Mul":
        return a * b
    return np.trunc(a / b).astype(a.dtype) if np.issubdtype(a.dtype, np.integer) else a / b     # Div


class _Flow:
    """The reader's knowledge of one data value: ``head`` (the symbolic value called so far), the layers
    still ``pending`` after it (a following bias Add may rebuild the last one), its ``shape`` and
    ``layout``, and the chain state that waits for the next node (a Pad, a run of arithmetic, NHWC rows
    for the next Dense, a global pooling not yet flattened)."""

    def __init__(self, head, shape, layout):
        self.head, self.pending, self.shape, self.layout = head, [], tuple(shape), layout
        self.nhwc_rows, self.pending_pad, self.affine = None, None, None
        self.after_weights, self.pooled, self.nonnegative = False, False, False
        self.shuffle = None                  # (groups, "split" | "swapped") inside a written-out channel shuffle

    def branch(self):
        twin = copy.copy(self)
        twin.pending = list(self.pending)
        return twin


def _where(reader, node):
    return f"{reader.source}: node {node.name or '?'!r} ({node.op_type})"


def _pads(reader, node, attributes, kernel, stride, dilation=(1, 1)):
    """ONNX pads [top, left, bottom, right] / auto_pad -> a glassnet padding argument, or the four pads
    (top, bottom, left, right) when no padding argument gives them (a Pad2D goes first)."""
    auto = reader.attribute(node, "auto_pad", "string", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if tuple(stride) != (1, 1) or (auto == "SAME_LOWER" and any(k % 2 == 0 for k in kernel)):
            raise GlassnetError(f"{_where(reader, node)}: auto_pad={auto} is supported with stride 1 "
                                "(SAME_LOWER with odd kernels)")
        return "same"
    if auto == "VALID":
        return 0
    top, left, bottom, right = reader.attribute(node, "pads", "ints", [0, 0, 0, 0], size=4, low=0)
    if top == bottom and left == right:
        return (top, left)
    same = resolve_padding("same", tuple(kernel), (1, 1), "Conv2D", tuple(dilation))
    if tuple(stride) == (1, 1) and (top, bottom, left, right) == same:
        return "same"                                  # the extra row/column at the bottom/right
    return (top, bottom, left, right)


def _import_conv(reader, node, shape, used):
    a = reader.attributes(node)
    weight, bias = reader.weight(node, 1), reader.weight(node, 2)
    group = reader.attribute(node, "group", "int", 1, low=1)
    dilation = tuple(reader.attribute(node, "dilations", "ints", [1, 1], size=2, low=1))
    if weight is None or weight.ndim != 4 or weight.shape[1] * group != shape[0]:
        raise GlassnetError(f"{_where(reader, node)}: expected a weight (out, {shape[0]} / group={group}, kh, kw). "
                            f"Received: {None if weight is None else list(weight.shape)}")
    kernel = tuple(reader.attribute(node, "kernel_shape", "ints", list(weight.shape[2:]), size=2, low=1))
    stride = tuple(reader.attribute(node, "strides", "ints", [1, 1], size=2, low=1))
    if kernel != weight.shape[2:] or (bias is not None and bias.size != weight.shape[0]):
        biases = None if bias is None else bias.size
        raise GlassnetError(f"{_where(reader, node)}: kernel_shape {list(kernel)} and bias of {biases} values do not "
                            f"fit the weight {list(weight.shape)}")
    padding, before = _pads(reader, node, a, kernel, stride, dilation), []
    if isinstance(padding, tuple) and len(padding) == 4:           # uneven pads: a Pad2D in front
        before, padding = [Pad2D(padding, dtype=reader.dtype)], 0
    try:
        layer = Conv2D(shape[0], weight.shape[0], kernel, stride, padding, dilation, group, bias=bias is not None,
                       dtype=reader.dtype)
    except GlassnetError as error:
        raise GlassnetError(f"{_where(reader, node)}: {error}") from None
    layer.params["weight"] = weight.astype(reader.dtype)
    if bias is not None:
        layer.params["bias"] = bias.reshape(-1).astype(reader.dtype)
    return before + [layer], node.output[0]


def _import_pool(reader, node, shape, used):
    a = {name: reader.attribute(node, name, "int", 0) for name in ("ceil_mode", "storage_order", "count_include_pad")}
    if a["storage_order"]:
        raise GlassnetError(f"{_where(reader, node)}: storage_order is not supported")
    kernel = tuple(reader.attribute(node, "kernel_shape", "ints", size=2, low=1))
    stride = tuple(reader.attribute(node, "strides", "ints", [1, 1], size=2, low=1))
    dilation = tuple(reader.attribute(node, "dilations", "ints", [1, 1], size=2, low=1))
    if reader.attribute(node, "auto_pad", "string", "NOTSET") != "NOTSET":
        raise GlassnetError(f"{_where(reader, node)}: auto_pad is not supported for pooling; give pads")
    top, left, bottom, right = reader.attribute(node, "pads", "ints", [0, 0, 0, 0], size=4, low=0)
    try:
        if node.op_type == "MaxPool":
            layer = MaxPool2D(kernel, stride, (top, bottom, left, right), dilation, bool(a["ceil_mode"]),
                              dtype=reader.dtype)
        else:
            if dilation != (1, 1):
                raise GlassnetError("dilations are not supported for average pooling")
            layer = AvgPool2D(kernel, stride, (top, bottom, left, right), bool(a["ceil_mode"]),
                              bool(a["count_include_pad"]), dtype=reader.dtype)
    except GlassnetError as error:
        raise GlassnetError(f"{_where(reader, node)}: {error}") from None
    return [layer], node.output[0]


def _import_flatten(reader, node, shape, used):
    if node.op_type == "Flatten" and reader.attribute(node, "axis", "int", 1) != 1:
        raise GlassnetError(f"{_where(reader, node)}: only axis=1 is supported")
    if node.op_type == "Reshape":
        target = reader.shape_value(node.input[1], shape, used) if len(node.input) > 1 else None
        features = int(np.prod(shape))
        # (N, features) spelled [0, -1], [-1, features], [N, -1] or [N, features]; exporters that fixed
        # the batch size write it as N, and glassnet's Flatten takes any batch
        two_dims = target is not None and target.ndim == 1 and len(target) == 2
        batch_ok = two_dims and (target[0] in (0, -1) or target[0] > 0)
        features_ok = two_dims and (target[1] == features or (target[1] == -1 and target[0] != -1))
        if not (batch_ok and features_ok):
            raise GlassnetError(f"{_where(reader, node)}: only a reshape to (N, {features}) is supported. Received: "
                                f"{None if target is None else target.tolist()}")
    return [Flatten(dtype=reader.dtype)], node.output[0]


def _read_pads(reader, node, shape, layout, used):
    """A Pad over H and W -> ((top, bottom, left, right), glassnet mode, value)."""
    mode = reader.attribute(node, "mode", "string", "constant")
    modes = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}
    value = reader.weight(node, 2) if len(node.input) > 2 and node.input[2] else None
    value = 0.0 if value is None else np.asarray(value, dtype=np.float64).reshape(-1)
    pads = [int(v) for v in reader.shape_value(node.input[1], shape, used)] if len(node.input) > 1 else []
    if mode not in modes or len(pads) != 8 or (not isinstance(value, float) and value.size != 1):
        raise GlassnetError(f"{_where(reader, node)}: padding of a 4-D tensor (constant, reflect or edge) is "
                            f"supported. Received: mode={mode!r}, pads={pads}")
    begin, end = pads[:4], pads[4:]
    axes = (2, 3) if layout == "NCHW" else (1, 2)
    others = [a for a in range(4) if a not in axes]
    if any(begin[a] or end[a] for a in others) or min(pads) < 0:
        raise GlassnetError(f"{_where(reader, node)}: only padding of the height and width is supported")
    return (begin[axes[0]], end[axes[0]], begin[axes[1]], end[axes[1]]), modes[mode], float(np.asarray(value).sum())


def _padded(reader, new, extra):
    """The layers ``new`` after a zero Pad of ``extra`` (top, bottom, left, right): the padding merged into a
    lone Conv2D / AvgPool2D / MaxPool2D when one padding argument expresses the sum, else a Pad2D first."""
    layer = new[0]
    mergeable = len(new) == 1 and (isinstance(layer, Conv2D) or (
        isinstance(layer, (AvgPool2D, MaxPool2D)) and not layer.ceil_mode
        and getattr(layer, "count_include_pad", True)))
    if mergeable:
        total = tuple(a + b for a, b in zip(layer.pads, extra))
        if isinstance(layer, Conv2D):
            padding = padding_argument(total, layer.kernel_size, layer.stride, layer.dilation)
        else:
            padding = total
        try:
            if padding is not None:
                return [_rebuilt(layer, padding=padding)]
        except GlassnetError:                                    # e.g. more than half a pooling window
            pass
    return [Pad2D(extra, dtype=layer.dtype)] + list(new)


def _rebuilt(layer, **changes):
    """A new layer of ``layer``'s type and config with ``changes``, holding the same parameters."""
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in layer.get_config().items()}
    rebuilt = type(layer)(**dict(config, **changes))
    rebuilt.params.update(layer.params)
    return rebuilt


def _affine_step(reader, node, affine, shape, layout):
    """Extend the per-channel map y = a * x + b by one Sub / Mul / Div / Add with a constant."""
    constant = next((reader.constants[i] for i in node.input[1:] if i in reader.constants), None)
    if len(shape) != 3 or constant is None or node.input[0] in reader.constants:
        raise GlassnetError(f"{_where(reader, node)}: arithmetic is supported only as a per-channel scale and "
                            "shift of image data by a constant (a BatchNormalization written out)")
    C = shape[0]
    value = np.asarray(constant, dtype=np.float64)
    allowed = {(), (C,), (1,), (1, 1, 1, C) if layout == "NHWC" else (1, C, 1, 1),
               (1, 1, C) if layout == "NHWC" else (C, 1, 1)}
    if value.shape not in allowed:
        raise GlassnetError(f"{_where(reader, node)}: a constant of shape {list(value.shape)} is not per channel "
                            f"for {C} channels ({layout})")
    c = np.broadcast_to(value.reshape(-1) if value.size > 1 else value.reshape(()), (C,))
    a, b = affine if affine is not None else (np.ones(C), np.zeros(C))
    if node.op_type == "Sub":
        return a, b - c
    if node.op_type == "Add":
        return a, b + c
    if node.op_type == "Mul":
        return a * c, b * c
    return a / c, b / c                                                       # Div


def _affine_layer(reader, affine):
    """y = a * x + b per channel as a BatchNorm2D in its inference form: mean 0, variance 1 - eps."""
    a, b = affine
    layer = BatchNorm2D(len(a))
    layer.params["weight"], layer.params["bias"] = a.copy(), b.copy()
    layer.buffers["running_mean"] = np.zeros(len(a))
    layer.buffers["running_var"] = np.full(len(a), 1.0 - layer.eps)           # so sqrt(var + eps) = 1
    return layer


def reader_type(to):
    """ONNX element type number -> NumPy float type (1: float32, 11: float64), else None."""
    return {1: np.float32, 11: np.float64}.get(to)


def _with_bias(reader, node, layer, layout):
    """``layer`` (Conv2D or Dense) rebuilt with the constant of an Add node added to its bias."""
    constant = next((reader.constants[i] for i in node.input if i in reader.constants), None)
    if not isinstance(layer, (Conv2D, Dense)) or constant is None or len(node.input) != 2:
        raise GlassnetError(f"{_where(reader, node)}: an Add is supported only as the bias of the Conv or "
                            "MatMul before it")
    channels = layer.out_channels if isinstance(layer, Conv2D) else layer.out_features
    squeezed = np.asarray(constant).reshape(-1)
    expected = {"NHWC": (1, 1, 1, channels), "NCHW": (1, channels, 1, 1)}[layout] if isinstance(layer, Conv2D) \
        else (1, channels)
    if squeezed.size != channels or constant.ndim not in (1, len(expected)) or (
            constant.ndim == len(expected) and constant.shape != expected):
        raise GlassnetError(f"{_where(reader, node)}: a bias of shape {list(constant.shape)} does not fit "
                            f"{channels} channels")
    rebuilt = _rebuilt(layer, bias=True)
    rebuilt.params["bias"] = (layer.params.get("bias", 0.0) + squeezed).astype(reader.dtype)
    return rebuilt


def _import_gemm(reader, node, shape, used):
    a = {"alpha": reader.attribute(node, "alpha", "float", 1.0), "beta": reader.attribute(node, "beta", "float", 1.0),
         "transA": reader.attribute(node, "transA", "int", 0), "transB": reader.attribute(node, "transB", "int", 0)}
    if a["alpha"] != 1.0 or a["beta"] != 1.0 or a["transA"]:
        raise GlassnetError(f"{_where(reader, node)}: only alpha=1, beta=1, transA=0 are supported")
    weight, bias = reader.weight(node, 1), reader.weight(node, 2)
    if weight is None or weight.ndim != 2:
        raise GlassnetError(f"{_where(reader, node)}: expected a 2-D weight")
    weight = weight.T if a["transB"] else weight                  # glassnet keeps (in, out)
    return [_dense_layer(reader, node, shape, weight, bias)], node.output[0]


def _import_matmul(reader, node, shape, used):
    weight = reader.weight(node, 1)
    if weight is None or weight.ndim != 2:
        raise GlassnetError(f"{_where(reader, node)}: expected MatMul by a stored 2-D weight")
    return [_dense_layer(reader, node, shape, weight, None)], node.output[0]     # its Add becomes the bias


def _dense_layer(reader, node, shape, weight, bias):
    if len(shape) != 1 or weight.shape[0] != shape[0]:
        raise GlassnetError(f"{_where(reader, node)}: a weight {list(weight.shape)} cannot take inputs of shape "
                            f"{list(shape)}")
    layer = Dense(weight.shape[0], weight.shape[1], bias=bias is not None, dtype=reader.dtype)
    layer.params["weight"] = np.ascontiguousarray(weight).astype(reader.dtype)
    if bias is not None:
        layer.params["bias"] = bias.reshape(-1).astype(reader.dtype)
    return layer


def _import_batchnorm(reader, node, shape, used):
    scale, bias, mean, var = (reader.weight(node, i) for i in (1, 2, 3, 4))
    if any(v is None or v.shape != (shape[0],) for v in (scale, bias, mean, var)):
        raise GlassnetError(f"{_where(reader, node)}: expected a scale, bias, mean and variance of shape "
                            f"({shape[0]},) for {shape[0]} channels")
    epsilon = reader.attribute(node, "epsilon", "float", 1e-5)
    if not epsilon > 0:
        raise GlassnetError(f"{_where(reader, node)}: epsilon must be positive. Received: {epsilon}")
    layer = BatchNorm2D(shape[0], eps=epsilon, dtype=reader.dtype)
    layer.params["weight"], layer.params["bias"] = scale.astype(reader.dtype), bias.astype(reader.dtype)
    layer.buffers["running_mean"], layer.buffers["running_var"] = mean.astype(reader.dtype), var.astype(reader.dtype)
    return [layer], node.output[0]


def _import_softmax(reader, node, shape, used):
    axis = reader.attribute(node, "axis", "int", -1)
    if len(shape) != 1 or axis not in (1, -1):
        raise GlassnetError(f"{_where(reader, node)}: only a softmax over the classes of (N, K) is supported")
    return [Softmax(dtype=reader.dtype)], node.output[0]


def _simple(kind):
    def build(reader, node, shape, used):
        if kind is LeakyReLU:
            return [LeakyReLU(reader.attribute(node, "alpha", "float", 0.01), dtype=reader.dtype)], node.output[0]
        return [kind(dtype=reader.dtype)], node.output[0]
    return build


def _import_global_pool(reader, node, shape, used):
    kind = GlobalAvgPool2D if node.op_type == "GlobalAveragePool" else GlobalMaxPool2D
    return [kind(dtype=reader.dtype)], node.output[0]


def _import_reduce(reader, node, shape, used, layout="NCHW"):
    """ReduceMean / ReduceMax over H and W (how the dynamo exporter writes adaptive pooling to 1x1, and
    Keras' exporter its global pooling, on NHWC data)."""
    axes = reader.attribute(node, "axes", "ints", None)
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = reader.shape_value(node.input[1], shape, used)            # opset 18: the axes are an input
    axes = sorted({int(a) % 4 for a in np.asarray(axes).reshape(-1)}) if axes is not None else None
    spatial = [2, 3] if layout == "NCHW" else [1, 2]
    if axes != spatial or reader.attribute(node, "noop_with_empty_axes", "int", 0):
        raise GlassnetError(f"{_where(reader, node)}: only a reduction over the height and width of the image "
                            f"({layout}: axes {spatial}) is supported. Received: axes={axes}")
    kind = GlobalAvgPool2D if node.op_type == "ReduceMean" else GlobalMaxPool2D
    return [kind(dtype=reader.dtype)], node.output[0]


IMPORTERS = {"Conv": _import_conv, "GlobalAveragePool": _import_global_pool, "GlobalMaxPool": _import_global_pool,
             "MaxPool": _import_pool, "AveragePool": _import_pool,
             "Flatten": _import_flatten, "Reshape": _import_flatten, "Gemm": _import_gemm, "MatMul": _import_matmul,
             "BatchNormalization": _import_batchnorm, "Softmax": _import_softmax,
             "Relu": _simple(ReLU), "LeakyRelu": _simple(LeakyReLU), "Sigmoid": _simple(Sigmoid),
             "Tanh": _simple(Tanh), "Identity": _simple(Identity), "Dropout": _simple(Identity),
             **onnx_layers.IMPORTERS}
