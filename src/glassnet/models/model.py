"""``Model``: layers joined into a graph (residual shortcuts, concatenated branches, shared layers).

>>> x = gn.Input((4,))
>>> h = gn.Dense(4, 4, rng=0)(x)
>>> y = gn.Add()([h, x])                         # a shortcut: y = dense(x) + x
>>> model = gn.Model(x, y)
>>> model(np.ones((2, 4))).shape
(2, 4)

Forward, backward and everything built on them (fit, evaluate, predict, trace, gradcheck, save,
checkpoints, ``to(xp)``, the batch split, data-parallel training) run through one engine,
``glassnet.models.graph.Graph``; ``Sequential`` is the chain case of this class.
"""
import math
import weakref

import numpy as np

from ..archive import json_ready
from ..backend import all_finite, device_of, namespace, same_place, to_namespace, to_numpy
from ..errors import GlassnetError
from ..nn.layers import LAYER_TYPES, Layer
from ..nn.symbolic import SymbolicTensor
from ..training import loop as training
from ..training.heap import keep_freed_memory
from ..training.replicas import BatchSplit, parts_for
from ..validation import as_float_array, resolve_dtype
from .graph import Graph, from_symbolic
from .summary import summary_html, summary_text


class Model:
    """A graph of layers from ``inputs`` to ``outputs`` (Keras' functional model).

    ``forward`` takes one array per input (a list when there are several) and returns one per output;
    ``model.layers`` lists each layer once, in the order the nodes first call it.

    Parameters
    ----------
    inputs : a SymbolicTensor from ``gn.Input`` or a list of them
    outputs : the SymbolicTensor(s) to compute, made by calling layers on the inputs
    dtype : None (keep each layer's dtype) or float32 / float64 to convert every layer
    """

    def __init__(self, inputs, outputs, dtype=None):
        inputs, outputs = _symbolic_list(inputs, "inputs"), _symbolic_list(outputs, "outputs")
        layers, nodes, output_ids = from_symbolic(inputs, outputs)
        self._setup(Graph(layers, nodes, len(inputs), output_ids), [v.shape for v in inputs], dtype)

    @classmethod
    def from_graph(cls, graph, input_shapes, dtype=None):
        """A model around an existing ``Graph`` (model files, converters); shapes are checked node by node."""
        model = cls.__new__(cls)
        model._setup(graph, input_shapes, dtype)
        return model

    def _setup(self, graph, input_shapes, dtype):
        for index, layer in enumerate(graph.layers):
            if not isinstance(layer, Layer):
                raise GlassnetError(f"{type(self).__name__}: item {index} is not a glassnet layer. Received: {layer!r}")
        self.graph = graph
        self.layers = graph.layers
        self._input_owners = [self._input_owner(index) for index in range(graph.input_count)]
        self.input_shapes = [tuple(shape) for shape in input_shapes] if input_shapes is not None else None
        if self.input_shapes is not None:
            graph.value_shapes(self.input_shapes)      # every node's shape checked before any data flows
        # what predict needs beyond the weights: input shape, preprocessing, class names, loss
        self.metadata = {"input_shape": list(self.input_shapes[0])} if self.input_shapes else {}
        self._optimizers = []     # weak references to optimizers on this model: model.to(...) moves their state
        self._pass = None         # the last forward pass: its runners, or its BatchSplit (replicas.py)
        if dtype is not None:
            self.astype(dtype)
        self.training = True

    @property
    def is_chain(self):
        return all(sources == (k,) for k, (_, sources) in enumerate(self.graph.nodes)) and len(self.layers) == len(
            self.graph.nodes)

    # -- passes -------------------------------------------------------------------
    def forward(self, x):
        """x: the input batch (e.g. (N, C, H, W)), a list of batches for several inputs -> the output
        (a list for several outputs).

        NaN or Inf in an input is refused here, once, rather than propagated silently.
        """
        return self._run(x, keep=True)

    __call__ = forward

    def infer(self, x):
        """``forward`` keeping nothing for backward (PyTorch's ``no_grad``): each node's cache is let go as
        soon as it has run, so one layer's activations are freed for the next to reuse instead of all of
        them staying alive; the same outputs as ``forward`` (up to rounding where a convolution's
        BatchNorm in evaluation is folded into it or a convolution runs with its max pool: ``Graph.infer``).
        ``predict`` and ``evaluate`` use it; ``backward`` after it is refused (call ``forward`` for
        gradients)."""
        return self._run(x, keep=False)

    def _run(self, x, keep):
        """One forward pass; ``keep``: what backward needs stays in the layers (``forward``) or not (``infer``)."""
        inputs = self._checked_inputs(x)
        self._pass = None
        # what the last forward kept goes before this pass makes its own arrays: what fit read after the
        # last step (a ReLU's mask, or its input when a max pool applied it), or a whole forward's caches
        # when no backward followed it (a batch split's parts never use the layers' own caches, and would
        # hold them to the end of their forward: ResNet-50 b8's training step peaked 60 MiB higher after one)
        for layer in self.layers:
            layer.clear_cache()
        keep_freed_memory()                       # once per process: see heap.py
        if len(inputs) == 1:
            parts = parts_for(self.layers, inputs[0], backward=keep)
            if parts > 1:                         # both cores: see replicas.py
                split = BatchSplit(self.graph, inputs[0], parts, keep)
                self._pass = split if keep else None
                return split.output
        runners = self.graph.runners()
        outputs = self.graph.forward(inputs, runners) if keep else self.graph.infer(inputs, runners)
        self._pass = runners if keep else None
        return outputs[0] if len(outputs) == 1 else outputs

    def backward(self, dy, input_grad=True):
        """dy: dL/d(output) (a list for several outputs) -> dL/dx (a list for several inputs); fills every
        layer's ``grads`` on the way down, summed over the calls of a shared layer.

        With ``input_grad=False`` (training) the nodes that read the input skip dL/dx and None is returned.
        Each layer lets go of what its forward kept as its backward runs (``Graph.backward``), so a forward
        pass allows one backward. The last backward's gradients are let go first (as PyTorch's
        ``zero_grad(set_to_none=True)``): two sets are never held together.
        """
        last = self._pass
        if last is None:
            raise GlassnetError(f"{type(self).__name__}.backward: called before forward (each forward pass "
                                f"allows one backward)")
        for layer in self.layers:
            layer.grads.clear()
        if isinstance(last, BatchSplit):          # the last forward ran in parts: its replicas go with it
            self._pass = None
            return last.backward(dy, input_grad)
        grads = list(dy) if len(self.graph.outputs) > 1 else [dy]
        if len(grads) != len(self.graph.outputs):
            raise GlassnetError(f"{type(self).__name__}.backward: expected {len(self.graph.outputs)} output "
                                f"gradients. Received: {len(grads)}")
        self._pass = None                         # the layers let their caches go on the way down
        input_grads = self.graph.backward(grads, last, input_grad)
        self.graph.gather_shared_gradients(last)
        if input_grads is None:
            return None
        return input_grads[0] if len(input_grads) == 1 else input_grads

    def _checked_inputs(self, x):
        count = self.graph.input_count
        xs = list(x) if count > 1 and isinstance(x, (list, tuple)) else [x]
        if len(xs) != count:
            raise GlassnetError(f"{type(self).__name__}: expected a list of {count} input batches. "
                                f"Received: {type(x).__name__}")
        reference = self._first_parameter()
        checked = []
        for index, batch in enumerate(xs):
            owner = self._input_owners[index]
            batch = as_float_array(batch, owner, self.dtype)
            if self.input_shapes is not None and tuple(batch.shape[1:]) != self.input_shapes[index]:
                raise GlassnetError(f"{owner}: expected a batch of shape (N, "
                                    f"{', '.join(map(str, self.input_shapes[index]))}). Received: {tuple(batch.shape)}")
            if reference is not None:
                same_place(batch, reference, "input", type(self).__name__)
            if not all_finite(namespace(batch), batch):
                host = to_numpy(batch)
                raise GlassnetError(f"{type(self).__name__}: the input holds NaN or Inf values "
                                    f"({int(np.sum(~np.isfinite(host)))} of {math.prod(host.shape)})")
            checked.append(batch)
        return checked

    def _input_owner(self, index):
        """How errors about input ``index`` name it: "Sequential (layer 0: Conv2D)", "Model input 1"."""
        if self.graph.input_count > 1:
            return f"{type(self).__name__} input {index}"
        reader = next(k for k, (_, sources) in enumerate(self.graph.nodes) if index in sources)
        return f"{type(self).__name__} (layer 0: {type(self.layers[self.graph.nodes[reader][0]]).__name__})"

    # -- modes and dtype ------------------------------------------------------------
    def train(self, mode=True):
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self):
        return self.train(False)

    @property
    def dtype(self):
        return self.layers[0].dtype

    def astype(self, dtype):
        """Convert every layer to float32 or float64 in place; returns self."""
        dtype = resolve_dtype(dtype, type(self).__name__)
        for layer in self.layers:
            layer.astype(dtype)
        return self

    # -- where the arrays live ---------------------------------------------------------
    def to(self, xp, device=None):
        """Move every parameter, gradient, buffer and optimizer state into array namespace ``xp``
        (``numpy``, ``array_api_strict``, ``torch``, ``cupy``, ...) on ``device``; returns self.

        ``model.to(numpy)`` brings everything back to the host. Inputs must then live where the
        model lives; ``fit``, ``evaluate`` and ``predict`` move host data there batch by batch.
        """
        for layer in self.layers:
            layer.to(xp, device)
        for optimizer in self.optimizers():
            optimizer.to(xp, device)
        self._pass = None
        return self

    def optimizers(self):
        """The live optimizers created on this model."""
        alive = [ref() for ref in self._optimizers]
        return [optimizer for optimizer in alive if optimizer is not None and optimizer.model is self]

    def register_optimizer(self, optimizer):
        self._optimizers = [ref for ref in self._optimizers if ref() is not None] + [weakref.ref(optimizer)]

    def place(self):
        """(namespace, device) of the parameters: (numpy, "cpu") for a NumPy model or one without any."""
        reference = self._first_parameter()
        if reference is None:
            return np, "cpu"
        return namespace(reference), device_of(reference)

    def _first_parameter(self):
        for layer in self.layers:
            for value in layer.params.values():
                return value
        return None

    # -- parameters -------------------------------------------------------------------
    def named_parameters(self):
        """Yield ``(name, layer, key)`` for every trainable array, e.g. ``("0.weight", conv, "weight")``;
        the number is the layer's index in ``model.layers`` (a shared layer appears once).

        The array is ``layer.params[key]`` and its gradient ``layer.grads[key]``.
        """
        for index, layer in enumerate(self.layers):
            for key in layer.params:
                yield f"{index}.{key}", layer, key

    def parameters(self):
        """Dict ``name -> parameter array`` (the live arrays, not copies)."""
        return {name: layer.params[key] for name, layer, key in self.named_parameters()}

    def gradients(self):
        """Dict ``name -> gradient array`` from the latest backward."""
        return {name: layer.grads[key] for name, layer, key in self.named_parameters() if key in layer.grads}

    def get_config(self):
        """The JSON description model files and checkpoints hold: ``{"dtype": "float64", "layers":
        [{"type": "Conv2D", "config": {...}}, ...], "graph": {...}, "metadata": {...}}`` where ``graph``
        is ``{"inputs": [shapes], "nodes": [[layer index, [value ids]], ...], "outputs": [value ids]}``."""
        layers = [{"type": type(layer).__name__, "config": layer.get_config()} for layer in self.layers]
        for entry in layers:
            if entry["type"] not in LAYER_TYPES:
                raise GlassnetError(f"save: layer type {entry['type']} is not one glassnet can load back")
        config = {"dtype": self.dtype.name, "layers": layers, "metadata": json_ready(self.metadata)}
        config["graph"] = {"inputs": [list(shape) for shape in self.input_shapes or ()],
                           "nodes": [[index, list(sources)] for index, sources in self.graph.nodes],
                           "outputs": list(self.graph.outputs)}
        return config

    def state_arrays(self):
        """Every parameter and buffer by name, as host arrays: ``{"0.weight": ..., "1.running_mean": ...}``
        (a NumPy model's own arrays, not copies; copies from any other array library)."""
        return {f"{index}.{key}": to_numpy(value) for index, layer in enumerate(self.layers)
                for store in (layer.params, layer.buffers) for key, value in store.items()}

    def load_state_arrays(self, arrays):
        """Copy ``arrays`` (named as ``state_arrays`` names them, same shapes) into the parameters and
        buffers, in place, wherever the model lives (references to the arrays stay live)."""
        xp, device = self.place()
        for index, layer in enumerate(self.layers):
            for store in (layer.params, layer.buffers):
                for key in store:
                    store[key][...] = to_namespace(arrays[f"{index}.{key}"], xp, device)

    def num_params(self):
        return sum(layer.num_params() for layer in self.layers)

    def output_shapes(self, input_shape=None):
        """Each node's output shape without the batch axis, from ``input_shape`` (default: the model's
        input shapes, else the one in ``metadata``); a list of None when neither is known."""
        if input_shape is not None:
            shapes = [tuple(input_shape)]
        elif self.input_shapes is not None:
            shapes = self.input_shapes
        elif self.metadata.get("input_shape"):
            shapes = [tuple(self.metadata["input_shape"])]
        else:
            return [None] * len(self.graph.nodes)
        return self.graph.value_shapes(shapes)[self.graph.input_count:]

    def node_inputs(self):
        """For each node, the names of the values it reads: ``"input"`` (``"input 1"``, ...) or the
        reading node's label (``"3: Conv2D"``)."""
        first = self.graph.input_count
        def label(value):  # noqa: E306
            if value < first:
                return "input" if first == 1 else f"input {value}"
            return f"{value - first}: {type(self.layers[self.graph.nodes[value - first][0]]).__name__}"
        return [[label(source) for source in sources] for _, sources in self.graph.nodes]

    # -- training and inference (see glassnet.training.loop) -------------------------------------
    def fit(self, x, y, **kwargs):
        """Train on (x, y); see ``glassnet.training.loop.fit`` for the arguments. Returns the history."""
        self._one_input_one_output("fit")
        return training.fit(self, x, y, **kwargs)

    def evaluate(self, x, y, **kwargs):
        """(mean loss, accuracy) on (x, y) in evaluation mode."""
        self._one_input_one_output("evaluate")
        return training.evaluate(self, x, y, **kwargs)

    def predict(self, x, batch_size=256):
        """Outputs for x in evaluation mode: (N, ...) -> (N, outputs)."""
        self._one_input_one_output("predict")
        return training.predict(self, x, batch_size)

    def predict_proba(self, x):
        """Class probabilities (softmax of logits unless the model ends in Softmax/Sigmoid)."""
        self._one_input_one_output("predict_proba")
        return training.probabilities(self, x)

    def _one_input_one_output(self, what):
        if self.graph.input_count != 1 or len(self.graph.outputs) != 1:
            raise GlassnetError(f"{what}: works on models with one input and one output; this one has "
                                f"{self.graph.input_count} input(s) and {len(self.graph.outputs)} output(s). "
                                f"Call forward and backward with lists instead")

    def summary(self, input_shape=None, print_fn=print):
        """Print the layer table (node, output shape, parameter count, its inputs for a graph; total)."""
        print_fn(summary_text(self, input_shape))

    def _repr_html_(self):
        """The summary table, for notebooks."""
        return summary_html(self)

    def __repr__(self):
        lines = [f"    {k}: {self.layers[index]!r} <- {', '.join(names)}"
                 for k, ((index, _), names) in enumerate(zip(self.graph.nodes, self.node_inputs()))]
        return "Model(\n" + "\n".join(lines) + "\n)"


def _symbolic_list(values, what):
    items = list(values) if isinstance(values, (list, tuple)) else [values]
    if not items or not all(isinstance(v, SymbolicTensor) for v in items):
        raise GlassnetError(f"Model: {what} must be symbolic values from gn.Input and layer calls (or a list of "
                            f"them). Received: {values!r:.100}")
    return items
