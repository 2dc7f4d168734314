"""A stack of layers applied in order, with backpropagation in reverse order."""
import math
import weakref

import numpy as np

from ..archive import json_ready
from ..backend import all_finite, device_of, namespace, same_place, to_namespace, to_numpy
from ..errors import GlassnetError
from ..nn.layers import LAYER_TYPES, Layer
from ..training import loop as training
from ..training.heap import keep_freed_memory
from ..training.replicas import BatchSplit, parts_for
from ..validation import as_float_array, resolve_dtype
from .summary import summary_html, summary_text


class Sequential:
    """Layers applied one after the other.

    Parameters
    ----------
    layers : list of Layer
    dtype : None (keep each layer's dtype, float64 by default) or float32 / float64
        to convert every layer.

    Examples
    --------
    >>> model = gn.Sequential([gn.Dense(4, 8, rng=0), gn.ReLU(), gn.Dense(8, 3, rng=1)])
    >>> model(np.ones((2, 4))).shape
    (2, 3)
    """

    def __init__(self, layers, dtype=None):
        layers = list(layers)
        if not layers:
            raise GlassnetError("Sequential: needs at least one layer. Received: layers=[]")
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise GlassnetError(f"Sequential: item {index} is not a glassnet layer. Received: {layer!r}")
        if len({id(layer) for layer in layers}) != len(layers):
            raise GlassnetError("Sequential: the same layer object appears twice; create a new layer instead")
        self.layers = layers
        # what predict needs beyond the weights: input shape, preprocessing, class names, loss
        self.metadata = {}
        self._optimizers = []     # weak references to optimizers on this model: model.to(...) moves their state
        self._split = None        # the last forward pass, when it ran in parts (replicas.py)
        if dtype is not None:
            self.astype(dtype)
        self.training = True

    # -- passes -------------------------------------------------------------------
    def forward(self, x):
        """x: the first layer's input (e.g. (N, C, H, W)) -> the last layer's output.

        NaN or Inf in ``x`` is refused here, once, rather than propagated silently.
        """
        x = as_float_array(x, f"Sequential (layer 0: {type(self.layers[0]).__name__})", self.dtype)
        reference = self._first_parameter()
        if reference is not None:
            same_place(x, reference, "input", "Sequential")
        if not all_finite(namespace(x), x):
            host = to_numpy(x)
            raise GlassnetError(f"Sequential: the input holds NaN or Inf values "
                                f"({int(np.sum(~np.isfinite(host)))} of {math.prod(host.shape)})")
        self._split = None
        keep_freed_memory()                       # once per process: see heap.py
        parts = parts_for(self.layers, x)
        if parts > 1:                             # both cores: see replicas.py
            self._split = BatchSplit(self.layers, x, parts)
            return self._split.output
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dy, input_grad=True):
        """dy: dL/d(output) -> dL/dx; fills every layer's ``grads`` on the way down.

        With ``input_grad=False`` (training) the first layer skips dL/dx and None is returned.
        """
        if self._split is not None:               # the last forward ran in parts
            split, self._split = self._split, None
            return split.backward(dy, input_grad)
        for layer in reversed(self.layers[1:]):
            dy = layer.backward(dy)
        if input_grad:
            return self.layers[0].backward(dy)
        self.layers[0].backward_parameters(dy)
        return None

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
        dtype = resolve_dtype(dtype, "Sequential")
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
        """Yield ``(name, layer, key)`` for every trainable array, e.g. ``("0.weight", conv, "weight")``.

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
        [{"type": "Conv2D", "config": {...}}, ...], "metadata": {...}}``."""
        layers = [{"type": type(layer).__name__, "config": layer.get_config()} for layer in self.layers]
        for entry in layers:
            if entry["type"] not in LAYER_TYPES:
                raise GlassnetError(f"save: layer type {entry['type']} is not one glassnet can load back")
        return {"dtype": self.dtype.name, "layers": layers, "metadata": json_ready(self.metadata)}

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
        """Each layer's output shape without the batch axis, from ``input_shape`` (default: the one in
        ``metadata``); a list of None when neither is known."""
        shape = input_shape if input_shape is not None else self.metadata.get("input_shape")
        if not shape:
            return [None] * len(self.layers)
        shapes, shape = [], tuple(shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
            shapes.append(shape)
        return shapes

    # -- training and inference (see glassnet.training.loop) -------------------------------------
    def fit(self, x, y, **kwargs):
        """Train on (x, y); see ``glassnet.training.loop.fit`` for the arguments. Returns the history."""
        return training.fit(self, x, y, **kwargs)

    def evaluate(self, x, y, **kwargs):
        """(mean loss, accuracy) on (x, y) in evaluation mode."""
        return training.evaluate(self, x, y, **kwargs)

    def predict(self, x, batch_size=256):
        """Outputs for x in evaluation mode: (N, ...) -> (N, outputs)."""
        return training.predict(self, x, batch_size)

    def predict_proba(self, x):
        """Class probabilities (softmax of logits unless the model ends in Softmax/Sigmoid)."""
        return training.probabilities(self, x)

    def summary(self, input_shape=None, print_fn=print):
        """Print the layer table (layer, output shape, parameter count, total)."""
        print_fn(summary_text(self, input_shape))

    def _repr_html_(self):
        """The summary table, for notebooks."""
        return summary_html(self)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def __repr__(self):
        inner = ",\n".join(f"    {layer!r}" for layer in self.layers)
        return f"Sequential([\n{inner}\n])"
