"""The engine every model runs on: nodes in one run order, forward through them, backward in reverse.

A ``Graph`` holds

- ``layers``: the distinct layers, in the order of their first use;
- ``nodes``: ``(layer index, input value ids)`` in run order;
- ``input_count`` model inputs, which are values ``0 .. input_count - 1``; node k's output is value
  ``input_count + k``; ``outputs``: the value ids the model returns.

A node may read only model inputs and earlier nodes' outputs, so every graph is acyclic by
construction and checked in one pass. A chain (``Sequential``) is the graph whose node k reads value k.

Forward keeps each value until its last consumer has read it (the layers keep what their backward
needs in their own caches). Backward runs the nodes in reverse; a value read by several nodes
receives the sum of their gradients (autograd's rule), added into one buffer: the first gradient
received is kept as it is (no copy), the second makes a new array with it, later ones are added into
that array. A layer called by several nodes shares its parameters; each extra call runs through a
*replica* (a shallow copy with its own cache and gradients, as in the batch split) and the calls'
gradients are summed into the layer's ``grads``: one optimizer step updates the weights once.
"""
import numpy as np

from ..errors import GlassnetError
from ..nn.layers.conv_norm import conv_then_batch_norm
from ..nn.layers.conv_pool import conv_then_max_pool
from ..training.replicas import replica

MAX_NODES = 10_000
MAX_VALUES_PER_NODE = 1024
MAX_MODEL_INPUTS = 64
MAX_MODEL_OUTPUTS = 64


class Graph:
    """Nodes in run order over distinct layers; see the module docstring. Every reference is checked here."""

    def __init__(self, layers, nodes, input_count, outputs):
        self.layers = list(layers)
        self.input_count = _count(input_count, "inputs", MAX_MODEL_INPUTS)
        if not isinstance(nodes, (list, tuple)) or not 1 <= len(nodes) <= MAX_NODES:
            raise GlassnetError(f"graph: expected 1 to {MAX_NODES} nodes. Received: "
                                f"{len(nodes) if isinstance(nodes, (list, tuple)) else type(nodes).__name__}")
        self.nodes = [self._checked_node(k, node) for k, node in enumerate(nodes)]
        value_count = self.input_count + len(self.nodes)
        if not isinstance(outputs, (list, tuple)) or not 1 <= len(outputs) <= MAX_MODEL_OUTPUTS:
            raise GlassnetError(f"graph: expected 1 to {MAX_MODEL_OUTPUTS} outputs. Received: {outputs!r:.80}")
        self.outputs = [_value_id(v, value_count, "graph output") for v in outputs]
        self.consumers = [0] * value_count           # how many nodes (and model outputs) read each value
        for _, sources in self.nodes:
            for source in sources:
                self.consumers[source] += 1
        for output in self.outputs:
            self.consumers[output] += 1
        self._check_every_part_used()
        self._rectified = None                       # rectified_max_pools(), found when first asked
        self.uses = [[] for _ in self.layers]        # the nodes that call each layer
        for k, (layer_index, _) in enumerate(self.nodes):
            self.uses[layer_index].append(k)

    @classmethod
    def chain(cls, layers):
        """The graph of ``layers`` applied one after the other (node k reads value k)."""
        return cls(layers, [(k, (k,)) for k in range(len(layers))], 1, [len(layers)])

    def _checked_node(self, k, node):
        where = f"graph node {k}"
        if not isinstance(node, (list, tuple)) or len(node) != 2:
            raise GlassnetError(f"{where}: expected [layer index, [input value ids]]. Received: {node!r:.80}")
        layer_index, sources = node
        if not isinstance(layer_index, int) or isinstance(layer_index, bool) or not 0 <= layer_index < len(self.layers):
            raise GlassnetError(f"{where}: layer index must be an int in [0, {len(self.layers)}). "
                                f"Received: {layer_index!r:.40}")
        layer = self.layers[layer_index]
        name = f"{where} ({type(layer).__name__})"
        if not isinstance(sources, (list, tuple)) or not 1 <= len(sources) <= MAX_VALUES_PER_NODE:
            raise GlassnetError(f"{name}: expected 1 to {MAX_VALUES_PER_NODE} input value ids. "
                                f"Received: {sources!r:.80}")
        own = self.input_count + k
        for source in sources:
            if isinstance(source, int) and not isinstance(source, bool) and source == own:
                raise GlassnetError(f"{name}: reads its own output (value {own}); a node may read only model "
                                    f"inputs and earlier nodes")
        sources = tuple(_value_id(source, own, name + " input") for source in sources)
        if getattr(layer, "merges", False) != (len(sources) > 1) or (layer.merges and len(sources) < 2):
            wanted = "2 or more inputs (a merge)" if layer.merges else "exactly 1 input"
            raise GlassnetError(f"{name}: takes {wanted}. Received: {len(sources)} input(s)")
        return layer_index, sources

    def _check_every_part_used(self):
        for index in range(self.input_count):
            if self.consumers[index] == 0:
                raise GlassnetError(f"graph: model input {index} is read by no node")
        for k in range(len(self.nodes)):
            if self.consumers[self.input_count + k] == 0:
                layer = self.layers[self.nodes[k][0]]
                raise GlassnetError(f"graph node {k} ({type(layer).__name__}): its output is read by nothing "
                                    f"(neither a node nor a model output)")
        used = {layer_index for layer_index, _ in self.nodes}
        for index, layer in enumerate(self.layers):
            if index not in used:
                raise GlassnetError(f"graph: layer {index} ({type(layer).__name__}) is called by no node")

    # -- shapes ------------------------------------------------------------------------
    def value_shapes(self, input_shapes):
        """One sample's shape of every value, from the inputs' shapes; each node's shape is checked by
        its layer (a merge of mismatched shapes fails here, naming the node and the shapes)."""
        shapes = [tuple(shape) for shape in input_shapes]
        for k, (layer_index, sources) in enumerate(self.nodes):
            layer = self.layers[layer_index]
            given = [shapes[s] for s in sources] if layer.merges else shapes[sources[0]]
            try:
                layer.check_input_shape(given)
                shapes.append(tuple(layer.output_shape(given)))
            except GlassnetError as error:
                raise GlassnetError(f"graph node {k} ({type(layer).__name__}): {error}") from None
            except (TypeError, ValueError, IndexError) as error:
                raise GlassnetError(f"graph node {k} ({type(layer).__name__}) cannot take input shape "
                                    f"{given} ({error})") from None
        return shapes

    # -- running -----------------------------------------------------------------------
    def runners(self):
        """The object that runs each node: the layer itself for its first call, a replica for each later one."""
        runners = [None] * len(self.nodes)
        for layer, uses in zip(self.layers, self.uses):
            runners[uses[0]] = layer
            for k in uses[1:]:
                runners[k] = replica(layer)
        return runners

    def forward(self, inputs, runners, watch=None):
        """inputs: one array per model input -> one array per model output.

        ``watch(k, node inputs, output)`` is called after each node (``glassnet.see.trace``). Without a
        watch, a ReLU whose one reader is a max pool is applied by the pool, after the maximum
        (``MaxPool2D.forward_rectified``: the same numbers and gradients on a quarter of the values behind a
        2x2 pool); the ReLU's node passes its input on, and keeps it for ``positive_mask``.
        """
        rectified = {} if watch is not None else self.rectified_max_pools()

        def run(k, sources, arguments, remaining):
            runner = runners[k]
            if k in rectified and type(arguments[0]) is np.ndarray:     # (the ReLU's and the pool's: one array)
                relu_node = rectified[k] is None
                return runner.pass_to_max_pool(arguments[0]) if relu_node else runner.forward_rectified(arguments[0])
            output = runner.forward(arguments if runner.merges else arguments[0])
            if watch is not None:
                watch(k, arguments, output)
            return output
        return self._evaluate(inputs, run)

    def infer(self, inputs, runners):
        """``forward`` for inference (``Model.infer``): every node through its layer's ``infer``, which keeps
        nothing for backward, with the same numbers as ``forward`` (bit for bit but for the second point):

        - a monotone activation (ReLU, ReLU6, LeakyReLU) whose one reader is a max pool runs after the pool
          instead, in place on the pool's new output: max(f(a), f(b)) = f(max(a, b)) for a non-decreasing
          f, so the numbers are the same, on a quarter of the values behind a 2x2 pool;
        - a convolution whose one reader is that max pool (or that activation) runs with the pool in one
          step where it can (``conv_then_max_pool``: first layers, windows that tile; a ReLU between them
          comes into that step too): the same products, which the BLAS may sum in another order, so equal
          up to the last bit or two;
        - a convolution whose one reader is a BatchNorm2D in evaluation runs with it in one step
          (``conv_then_batch_norm``: the normalisation folded into the weights and bias where that is
          cheaper, else in place on the convolution's output): equal up to rounding where folded;
        - an activation whose input is a new array that nothing else reads (the output of a layer marked
          ``fresh_output``: a convolution, BatchNorm, Dense) works in place: no new array to fill.
        """
        plans = self.max_pool_plans()
        norms = self.batch_norm_plans()
        deferred = {k for plan in plans.values() for k in plan if k is not None} | set(norms.values())

        def run(k, sources, arguments, remaining):
            runner = runners[k]
            if k in deferred:
                return arguments[0]                      # passed on as it is: run by the node after it
            if k in norms:
                conv = runners[norms[k]]
                conv.clear_cache()                       # nothing of an earlier forward stays (as infer)
                runner.clear_cache()
                out = conv_then_batch_norm(conv, runner, arguments[0])
                return runner.infer(conv.infer(arguments[0])) if out is None else out
            if k in plans:
                conv, activation = plans[k]
                pooled = None
                if conv is not None:
                    runners[conv].clear_cache()          # nothing of an earlier forward stays (as infer)
                    runner.clear_cache()
                    # a ReLU comes into the step (its max(v, 0) is the pool's starting value)
                    rectify = activation is not None and getattr(runners[activation], "applied_by_max_pool", False)
                    pooled = conv_then_max_pool(runners[conv], runner, arguments[0], rectify)
                    if pooled is not None and rectify:
                        return pooled
                if pooled is None:
                    pooled = runner.infer(arguments[0] if conv is None else runners[conv].infer(arguments[0]))
                return pooled if activation is None else runners[activation].infer(pooled, in_place=True)
            if getattr(runner, "takes_in_place", False) and self._owned(sources[0], remaining):
                return runner.infer(arguments[0], in_place=True)
            return runner.infer(arguments if runner.merges else arguments[0])
        return self._evaluate(inputs, run)

    def _evaluate(self, inputs, run):
        """The nodes in order, ``run(k, sources, arguments, remaining)`` giving node k's output; a value no
        later node reads is let go at once. ``remaining[v]``: the readers of value v yet to run, this one
        included."""
        values = list(inputs) + [None] * len(self.nodes)
        remaining = list(self.consumers)
        first = self.input_count
        for k, (_, sources) in enumerate(self.nodes):
            values[first + k] = run(k, sources, [values[s] for s in sources], remaining)
            for source in sources:
                remaining[source] -= 1
                if remaining[source] == 0:
                    values[source] = None
        return [values[v] for v in self.outputs]

    def _owned(self, value, remaining):
        """Whether ``value`` is a node's new array (its layer is marked ``fresh_output``) that only the node
        about to run still reads (not a model input, not a model output)."""
        if value < self.input_count or remaining[value] != 1:
            return False
        return getattr(self.layers[self.nodes[value - self.input_count][0]], "fresh_output", False)

    def max_pool_plans(self):
        """{max pool node p: (convolution node or None, activation node or None)} for what ``infer`` runs
        with the pool: a monotone activation at p - 1 whose value only p reads, and a convolution just
        before (p - 2, or p - 1 without the activation) whose value only its next node reads."""
        plans = {}
        for p in range(len(self.nodes)):
            if not getattr(self._layer(p), "takes_maximum", False):
                continue
            activation = p - 1 if (self._read_only_by(p - 1, p)
                                   and getattr(self._layer(p - 1), "monotone", False)) else None
            reader = p if activation is None else activation
            conv = reader - 1 if (self._read_only_by(reader - 1, reader)
                                  and getattr(self._layer(reader - 1), "pools_with_max", False)) else None
            if (conv, activation) != (None, None):
                plans[p] = (conv, activation)
        return plans

    def batch_norm_plans(self):
        """{BatchNorm node p: convolution node p - 1} where the convolution's value only p reads, for
        ``infer`` to run them in one step."""
        return {p: p - 1 for p in range(1, len(self.nodes))
                if hasattr(self._layer(p), "scale_and_shift") and self._read_only_by(p - 1, p)
                and getattr(self._layer(p - 1), "takes_batch_norm", False)}

    def rectified_max_pools(self):
        """{max pool node p: its ReLU node, ReLU node: None} for each ReLU whose value only a max pool reads
        (``forward`` runs the ReLU inside the pool); found once per graph."""
        if self._rectified is None:
            self._rectified = {}
            for p in range(1, len(self.nodes)):
                if (hasattr(self._layer(p), "forward_rectified") and self._read_only_by(p - 1, p)
                        and getattr(self._layer(p - 1), "applied_by_max_pool", False)):
                    self._rectified.update({p: p - 1, p - 1: None})
        return self._rectified

    def _layer(self, k):
        return self.layers[self.nodes[k][0]]

    def _read_only_by(self, k, reader):
        """Whether node k's value is read by node ``reader`` alone (not by the model's output either)."""
        value = self.input_count + k
        return k >= 0 and self.nodes[reader][1] == (value,) and self.consumers[value] == 1

    def backward(self, output_grads, runners, input_grad=True, watch=None, took_gradients=None):
        """output_grads: dL/d(each model output) -> dL/d(each model input) (None when ``input_grad`` is
        False: a node that reads only model inputs then fills its parameter gradients only).

        Each node lets go of what its forward kept as soon as its own backward has run (as PyTorch frees a
        node's saved tensors), so the early layers' caches and the late layers' gradients are never all
        alive together; a backward pass runs once per forward. A layer marked ``cache_read_after_backward``
        (a ReLU: ``fit`` reads its mask for the dead-unit figures) keeps its cache.

        ``watch(k, dL/d(output), [dL/d(each input)], parts)`` is called after each node; ``parts`` is the
        list of gradients that were summed into the node's output gradient (one when it has one reader).
        ``took_gradients(k, runner)`` is called as soon as node k's parameter gradients are in its runner's
        ``grads`` (a batch split sums them over its parts there: ``replicas.GradientFold``).
        """
        sums = GradientSums(watch is not None)
        for output, grad in zip(self.outputs, output_grads):
            sums.add(output, grad)
        first = self.input_count
        for k in reversed(range(len(self.nodes))):
            _, sources = self.nodes[k]
            runner = runners[k]
            grad, parts = sums.take(first + k)
            if not input_grad and not runner.merges and sources[0] < first:
                runner.backward_parameters(grad)
                input_grads = [None]
            else:
                input_grads = runner.backward(grad)
                input_grads = list(input_grads) if runner.merges else [input_grads]
                for source, source_grad in zip(sources, input_grads):
                    sums.add(source, source_grad)
            if took_gradients is not None:
                took_gradients(k, runner)
            if not getattr(runner, "cache_read_after_backward", False):
                runner.clear_cache()
            if watch is not None:
                watch(k, grad, input_grads, parts)
        if not input_grad:
            return None
        return [sums.take(index)[0] for index in range(first)]

    def gather_shared_gradients(self, runners):
        """Sum each layer's gradients over the runners of its calls into the layer's ``grads``; a layer run
        once by itself is left as is. (A batch split sums its parts' as they come: ``replicas.GradientFold``.)"""
        for layer, uses in zip(self.layers, self.uses):
            calls = [runners[k] for k in uses]
            if len(calls) == 1 and calls[0] is layer:
                continue
            for key in layer.params:
                total = calls[0].grads[key]
                for call in calls[1:]:
                    total = total + call.grads[key]
                layer.grads[key] = total


class GradientSums:
    """dL/d(value) for the values of one backward pass: a value's gradients summed into one buffer."""

    def __init__(self, keep_parts=False):
        self.grads, self.owned, self.parts = {}, set(), {}
        self.keep_parts = keep_parts

    def add(self, value, grad):
        if self.keep_parts:
            self.parts.setdefault(value, []).append(grad)
        if value not in self.grads:
            self.grads[value] = grad              # kept as received: it may be another value's gradient too
        elif value in self.owned:
            self.grads[value] += grad             # our own buffer: added in place
        else:
            self.grads[value] = self.grads[value] + grad
            self.owned.add(value)

    def take(self, value):
        """(the summed gradient, its parts or None), forgotten here once taken."""
        if value not in self.grads:
            raise GlassnetError(f"graph: no gradient reached value {value}")
        self.owned.discard(value)
        return self.grads.pop(value), self.parts.pop(value, None)


def from_symbolic(inputs, outputs):
    """(layers, nodes, outputs) of the graph between symbolic ``inputs`` and ``outputs``, in run order:
    the order a depth-first walk back from the outputs finishes the nodes (inputs before readers)."""
    input_ids = {value.id: index for index, value in enumerate(inputs)}
    if len(input_ids) != len(inputs):
        raise GlassnetError("Model: the same Input appears twice in inputs")
    order, value_index = [], dict(input_ids)
    for output in outputs:
        stack = [(output, False)]
        while stack:                              # an explicit stack: deep nets must not hit recursion limits
            value, expanded = stack.pop()         # symbolic values are made after their inputs: no cycles
            if value.id in value_index:
                continue
            if value.node is None:
                raise GlassnetError(f"Model: the outputs depend on {value.name} ({value.shape}), which is not "
                                    f"among the model's inputs")
            if expanded:
                value_index[value.id] = len(input_ids) + len(order)
                order.append(value.node)
                continue
            if len(order) >= MAX_NODES:
                raise GlassnetError(f"Model: more than {MAX_NODES} nodes")
            stack.append((value, True))
            stack.extend((source, False) for source in reversed(value.node.inputs))
    layers, layer_index, nodes = [], {}, []
    for node in order:
        if id(node.layer) not in layer_index:
            layer_index[id(node.layer)] = len(layers)
            layers.append(node.layer)
        nodes.append((layer_index[id(node.layer)], tuple(value_index[v.id] for v in node.inputs)))
    return layers, nodes, [value_index[v.id] for v in outputs]


def _count(value, what, maximum):
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise GlassnetError(f"graph: expected 1 to {maximum} {what}. Received: {value!r:.40}")
    return value


def _value_id(value, limit, where):
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < limit:
        raise GlassnetError(f"{where}: a value id must be an int in [0, {limit}) (a model input or an earlier "
                            f"node). Received: {value!r:.40}")
    return value
