"""What the studio shows, as JSON-ready dicts: every number comes from the engine.

``Studio`` holds one model (loaded from a file, or trained in the page), the inputs the
page has sent, and at most one training job. Each method is what one route of ``app.py``
returns. The numbers are the arrays ``gn.trace`` records (the engine's own, copied as they
pass), the outputs of ``predict``, or the history and events of ``fit``; the unit details
lay out the products behind one output value from the layer's recorded input and
parameters, and report the recorded value beside their sum.
"""
import base64
import io
import re
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ...data.preprocessing import image_to_input, kind_of
from ...errors import GlassnetError
from ...files.serialization import save
from ...models.summary import summary_text
from ...nn.layers import (
    Add,
    AvgPool2D,
    BatchNorm2D,
    Concatenate,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    Identity,
    LeakyReLU,
    MaxPool2D,
    Multiply,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from ...nn.layers.activations import softmax
from ...nn.optim import SGD
from ...see.explain import loss_for, seed_example_trace, seed_mistake_facts, target_for
from ...see.trace import LayerStep, Trace, trace
from . import more_units, why
from .arrays import encode, scalars
from .jobs import TrainingJob

MAX_UPLOAD_PIXELS = 4096 * 4096   # larger images are refused from their header
INLINE_VALUES = 1 << 16           # a node's array travels whole in /api/trace up to this many values ...
INLINE_TOTAL = 1 << 18            # ... while the reply's arrays stay under this many; larger ones are paged
PAGE_CHANNELS = 16                # channels per /api/maps page (the page asks for more)
TRACE_MEMORY = 1 << 30            # bytes of recorded passes kept for the page; least recently used go first
KEPT_INPUTS = 32                  # the page refers to recent inputs by id
SAVE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class StudioError(Exception):
    """A request the studio refuses: ``status`` is the HTTP status, the message one line."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Studio:
    """The state behind one studio page: a model, recent inputs, one training job."""

    def __init__(self, model=None, model_path=None, save_dir=None):
        self.lock = threading.RLock()   # layers cache arrays in forward: one pass at a time
        self.model = None
        self.model_path = Path(model_path) if model_path else None
        folder = save_dir or (self.model_path.parent if self.model_path else Path.cwd())
        self.save_dir = Path(folder)
        self.inputs = OrderedDict()     # input id -> (1, C, H, W) model input
        self.next_input = 1
        self.last_input = None          # the latest array the server prepared (tests compare with it)
        self.job = None
        self.steps_taken = 0
        self.passes = OrderedDict()     # (input id, target, gradients) -> a recorded pass (see _recorded)
        if model is not None:
            self._adopt(model, str(self.model_path.name) if self.model_path else "model")

    # -- the model ------------------------------------------------------------------------
    def _adopt(self, model, source):
        model.eval()
        self.passes = OrderedDict()
        self.model = model
        self.source = source
        self.loaded = {name: value.copy() for name, value in _all_arrays(model).items()}
        self.steps_taken = 0

    def _require_model(self):
        if self.model is None:
            raise StudioError(409, "no model loaded: train one in the Train view, or start "
                                   "'glassnet studio MODEL'")
        return self.model

    def describe(self):
        """The model's layers, shapes, classes and preprocessing, and the training job's state."""
        with self.lock:
            info = {"model": None, "job": self.job.status() if self.job else None,
                    "save_dir": str(self.save_dir)}
            if self.model is None:
                return info
            model = self.model
            metadata = model.metadata
            layers, sources, depths = [], _node_sources(model), _depths(model)
            for k, ((index, _), shape) in enumerate(zip(model.graph.nodes, model.output_shapes())):
                layer = model.layers[index]
                layers.append({"index": k, "layer": index, "type": type(layer).__name__, "label": repr(layer),
                               "output_shape": list(shape) if shape else None, "params": layer.num_params(),
                               "inputs": sources[k], "depth": depths[k]})
            preprocessing = metadata.get("preprocessing") or {}
            info["model"] = {
                "source": self.source, "layers": layers, "parameters": model.num_params(),
                "input_shape": metadata.get("input_shape"), "class_names": self._class_names(),
                "takes_images": kind_of(preprocessing) is not None, "dataset": metadata.get("dataset"),
                "dtype": model.dtype.name, "steps_taken": self.steps_taken, "summary": summary_text(model),
                "graph": not model.is_chain}
            return info

    def _class_names(self):
        outputs = self._output_count()
        names = list(self.model.metadata.get("class_names") or [])
        return [names[i] if i < len(names) else str(i) for i in range(outputs)]

    def _output_count(self):
        last = self.model.output_shapes()[-1]
        if last is None:   # no recorded input shape: the last Dense layer says how many outputs
            last = (next(l.out_features for l in reversed(self.model.layers) if hasattr(l, "out_features")),)
        return int(last[-1])

    # -- input ----------------------------------------------------------------------------
    def predict_image(self, data, name="upload"):
        """Image bytes -> the model input (as ``glassnet predict`` prepares it) and its probabilities."""
        with self.lock:
            model = self._require_model()
            preprocessing = model.metadata.get("preprocessing") or {}
        if kind_of(preprocessing) is None:
            raise StudioError(400, "this model was not trained on images, so it cannot read a drawing "
                                   "or an image file")
        try:  # decoding needs no model: done outside the lock, so requests decode side by side
            x, note = image_to_input(io.BytesIO(data), preprocessing, MAX_UPLOAD_PIXELS, name)
            x = x[None]
        except GlassnetError as error:
            status = 413 if "exceeds the limit" in str(error) else 400
            raise StudioError(status, str(error)) from None
        with self.lock:
            if self.model is not model:
                raise StudioError(409, "the studio's model changed while this image was read; send it again")
            input_id = self._keep(x)
            probabilities = model.predict_proba(x)[0]
            return {"input_id": input_id, "input": encode(x[0]), "note": note, **self._ranking(probabilities)}

    def _keep(self, x):
        input_id = str(self.next_input)
        self.next_input += 1
        self.inputs[input_id] = x
        self.last_input = x
        while len(self.inputs) > KEPT_INPUTS:
            self.inputs.popitem(last=False)
        return input_id

    def _input(self, input_id):
        x = self.inputs.get(str(input_id))
        if x is None:
            raise StudioError(404, f"input {input_id!r} is not (or no longer) on the server; draw or upload again")
        return x

    def _ranking(self, probabilities):
        names = self._class_names()
        order = np.argsort(-probabilities, kind="stable")
        return {"probabilities": scalars(probabilities), "class_names": names, "predicted": int(order[0]),
                "top_k": [{"index": int(i), "class": names[i], "probability": float(probabilities[i])}
                          for i in order[:5]]}

    def _target(self, model, x, target):
        """(loss, target array, class index): class ``target``, or the predicted class when None."""
        loss = loss_for(model, model.metadata.get("loss"))
        outputs = self._output_count()
        if target is None:
            target = int(np.argmax(model.predict(x)[0]))
        if type(target) is not int or not 0 <= target < max(outputs, 2):
            raise StudioError(400, f"target must be a class index in [0, {max(outputs, 2) - 1}]. "
                                   f"Received: {target!r}")
        return loss, target_for(loss, outputs, target), target

    # -- why (see why.py) ---------------------------------------------------------------------
    def why_view(self, input_id, method, target=None, layer=None):
        """An attribution map of the input for class ``target`` (default: the predicted one)."""
        with self.lock:
            model, x = self._require_model(), self._input(input_id)
            _, _, label = self._target(model, x, target)
            return why.why_map(model, x, label, method, layer)

    def why_pixel(self, input_id, method, position, target=None, layer=None):
        """The numbers behind one value of the map."""
        with self.lock:
            model, x = self._require_model(), self._input(input_id)
            _, _, label = self._target(model, x, target)
            return why.why_pixel(model, x, label, method, position, layer)

    def why_mistakes(self):
        with self.lock:
            return why.mistakes(self._require_model())

    # -- forward and backward ---------------------------------------------------------------
    def trace_view(self, input_id, target=None, gradients=True):
        """Every node's output (and, with ``gradients``, dL/d(output), dL/d(input), dL/d(params)).

        Arrays up to INLINE_VALUES values travel whole (float64, exact); a larger one (a wide layer of a
        big model) is described by its shape and range and ``"paged": true``, and the page asks
        ``/api/maps`` for its channels when it shows them. The pass is recorded once per input and
        target and kept (within TRACE_MEMORY) for the page's later questions. The weights do not
        change; the model's ``grads`` hold this pass afterwards.
        """
        with self.lock:
            model = self._require_model()
            x = self._input(input_id)
            record, loss, label = self._pass(model, input_id, x, target, gradients)
            budget = Budget()
            layers, sources, depths, readers = [], _node_sources(model), _depths(model), _readers(model)
            for step in record.steps:
                layer = {"index": step.index, "layer": step.layer_index, "type": step.layer.split("(")[0],
                         "label": step.layer, "inputs": sources[step.index], "depth": depths[step.index],
                         **budget.array("output", step.output[0])}
                if gradients:
                    first = step.grad_input if step.merges else [step.grad_input]
                    layer.update(budget.array("grad_output", step.grad_output[0]))
                    layer.update(budget.array("grad_input", first[0][0]))
                    layer["param_grads"] = {k: budget.whole_or_summary(v) for k, v in step.param_grads.items()}
                    if step.merges:
                        layer["grad_inputs"] = [budget.whole_or_summary(g[0]) for g in step.grad_input]
                    if step.grad_parts:       # read by several nodes: dL/d(output) is the sum of these
                        layer["grad_parts"] = [{"from": reader, **budget.array("grad", part[0])}
                                               for reader, part in zip(readers[step.index], step.grad_parts)]
                layers.append(layer)
            probabilities = self._probabilities(model, x, record)
            saliency = {"saliency": encode(record.grad_input[0])} if gradients else {}
            loss_part = {"loss_name": record.loss_name, "loss": float(record.loss)} if gradients else {
                "loss_name": type(loss).__name__, "loss": None}
            return {"input_id": str(input_id), "input": encode(x[0]), "target": label, **loss_part,
                    "layers": layers, "graph": not model.is_chain, **saliency, **self._ranking(probabilities)}

    def _pass(self, model, input_id, x, target, gradients):
        """(recorded pass, loss, target class): the forward pass alone needs no target (its class is the
        predicted one, read from the pass itself); with gradients the loss needs one."""
        if not gradients:
            record = self._recorded(input_id, None, False, None, None)
            return record, loss_for(model, model.metadata.get("loss")), int(np.argmax(record.steps[-1].output[0]))
        loss, target_array, label = self._target(model, x, target)
        return self._recorded(input_id, label, True, loss, target_array), loss, label

    def _recorded(self, input_id, label, gradients, loss, target_array):
        """The pass for this input (and target): ``gn.trace`` with gradients, else the forward values
        only; computed once and kept, the least recently used dropped beyond TRACE_MEMORY bytes."""
        key = (str(input_id), label, bool(gradients))
        if key in self.passes:
            self.passes.move_to_end(key)
            return self.passes[key]
        model, x = self.model, self._input(input_id)
        record = trace(model, x, target_array, loss) if gradients else forward_record(model, x)
        self.passes[key] = record
        while len(self.passes) > 1 and sum(record_bytes(r) for r in self.passes.values()) > TRACE_MEMORY:
            self.passes.popitem(last=False)
        return record

    def _probabilities(self, model, x, record):
        """Class probabilities of the recorded pass's output, as ``predict_proba`` gives them (softmax of
        the outputs unless the model ends in Softmax or Sigmoid), without a second forward pass."""
        outputs = np.asarray(record.steps[-1].output, dtype=np.float64)
        last = type(model.layers[model.graph.nodes[-1][0]]).__name__
        return outputs[0] if last in ("Softmax", "Sigmoid") else softmax(outputs, axis=1)[0]

    def maps(self, input_id, target, node, what, start, count):
        """Channels ``start .. start+count`` of one node's array (``what``: "output", "grad_output",
        "grad_input", or "grad_part K") as 8-bit pictures on the whole array's colour scale."""
        with self.lock:
            model = self._require_model()
            x = self._input(input_id)
            nodes = len(model.graph.nodes)
            if type(node) is not int or not 0 <= node < nodes:
                raise StudioError(400, f"node must be an index in [0, {nodes - 1}]. Received: {node!r}")
            record, _, _ = self._pass(model, input_id, x, target, what != "output")
            step = record.steps[node]
            array = _pick(step, what)
            if type(start) is not int or type(count) is not int or not (0 <= start < array.shape[0] and 1 <= count):
                raise StudioError(400, f"start and count must pick channels of {array.shape[0]}. "
                                       f"Received: start={start!r}, count={count!r}")
            return {"node": node, "what": what, "start": start, "total": int(array.shape[0]),
                    **quantized(array, start, min(count, PAGE_CHANNELS * 4))}

    def unit(self, input_id, layer_index, position):
        """The numbers that made one output value of node ``layer_index`` (in a Sequential, layer k is node
        k): ``position`` is [channel, row, col] or [unit]."""
        with self.lock:
            model = self._require_model()
            x = self._input(input_id)
            nodes = len(model.graph.nodes)
            if type(layer_index) is not int or not 0 <= layer_index < nodes:
                raise StudioError(400, f"layer must be an index in [0, {nodes - 1}]. Received: {layer_index!r}")
            seen = {}
            recorded = self.passes.get((str(input_id), None, False))
            if recorded is not None:                # the forward view's pass: no need to run it again
                step = recorded.steps[layer_index]
                seen["inputs"] = [a[0] for a in step.input] if step.merges else [step.input[0]]
                seen["output"] = step.output[0]
            else:
                def keep(k, inputs, output):        # the clicked node's inputs and output, as the engine ran them
                    if k == layer_index:
                        seen["inputs"], seen["output"] = [a[0] for a in inputs], output[0]
                model.graph.forward([x], model.graph.runners(), watch=keep)
            layer = model.layers[model.graph.nodes[layer_index][0]]
            out = seen["output"]
            if not (isinstance(position, list) and len(position) == out.ndim
                    and all(type(p) is int and 0 <= p < n for p, n in zip(position, out.shape))):
                raise StudioError(400, f"position must be {out.ndim} indices inside the output of shape "
                                       f"{list(out.shape)}. Received: {position!r}")
            inputs = seen["inputs"] if layer.merges else seen["inputs"][0]
            detail = explain_unit(layer, inputs, out, tuple(position))
            if layer.merges:
                names = model.node_inputs()[layer_index]
                for entry, name in zip(detail.get("terms", []), names):
                    entry["from"] = name
            return {"layer": layer_index, "type": type(layer).__name__, "label": repr(layer),
                    "position": position, "value": float(out[tuple(position)]), **detail}

    def sgd_step(self, input_id, target, lr):
        """One ``gn.SGD`` step on this input: parameters before and after, predictions before and after."""
        if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and 0 < lr <= 100 and np.isfinite(lr)):
            raise StudioError(400, f"lr must be a number in (0, 100]. Received: {lr!r}")
        with self.lock:
            model = self._require_model()
            x = self._input(input_id)
            loss, target_array, label = self._target(model, x, target)
            before = model.predict_proba(x)[0]
            self.passes.clear()                         # the weights change: recorded passes are out of date
            record = trace(model, x, target_array, loss, optimizer=SGD(model, lr=float(lr)))
            after = model.predict_proba(x)[0]
            self.steps_taken += 1
            budget = Budget()
            layers = [{"index": step.index, "layer": step.layer_index, "type": step.layer.split("(")[0],
                       "label": step.layer,
                       "before": {k: budget.whole_or_summary(v) for k, v in step.params_before.items()},
                       "after": {k: budget.whole_or_summary(v) for k, v in step.params_after.items()},
                       "change": {k: budget.whole_or_summary(step.params_after[k] - v)
                                  for k, v in step.params_before.items()},
                       "largest_change": {k: float(np.max(np.abs(step.params_after[k] - v)))
                                          for k, v in step.params_before.items()},
                       "grads": {k: budget.whole_or_summary(v) for k, v in step.param_grads.items()}}
                      for step in record.steps if step.params_before]
            return {"target": label, "lr": float(lr), "loss_before": float(record.loss),
                    "loss_after": float(loss.forward(model.predict(x), target_array)),
                    "probabilities_before": scalars(before), "layers": layers, "steps_taken": self.steps_taken,
                    "after": self._ranking(after)}

    def revert(self):
        """Put back the weights the model had when loaded (or when training handed it over)."""
        with self.lock:
            model = self._require_model()
            for name, value in _all_arrays(model).items():
                value[...] = self.loaded[name]
            self.passes.clear()
            self.steps_taken = 0
            return {"reverted": True, "steps_taken": 0}

    def save_as(self, name, model=None):
        """Save the studio's model (or ``model``) as ``name`` in the save folder; never overwrites."""
        if not isinstance(name, str) or not SAVE_NAME.match(name) or name in (".", ".."):
            raise StudioError(400, "name must be a file name of letters, digits, '_', '-' and '.', without a "
                                   f"folder. Received: {name!r}")
        if not name.endswith(".glassnet"):
            name += ".glassnet"
        path = self.save_dir / name
        with self.lock:
            model = model if model is not None else self._require_model()
            if path.exists():
                raise StudioError(409, f"{name} already exists in {self.save_dir}; choose a new name")
            try:
                save(model, path)
            except OSError as error:     # the model stays in the studio; nothing half-written (atomic write)
                raise StudioError(500, f"could not save {name} in {self.save_dir} ({error.strerror}); the model "
                                       "is still here: free some space or start the studio in another folder") \
                    from None
        return {"saved": str(path), "name": name}

    # -- training ---------------------------------------------------------------------------
    def start_training(self, settings):
        with self.lock:
            if self.job is not None and not self.job.finished():
                raise StudioError(409, "a training job is already running; stop it first (one job at a time)")
            self.job = TrainingJob(settings, on_done=self._training_done)
            self.job.start()
            return self.job.status()

    def _training_done(self, job):
        """Hand a trained model to the page when the studio has none yet."""
        with self.lock:
            if self.model is None and job.model is not None:
                self._adopt(job.model, f"trained on {job.settings['dataset']}")

    def use_trained(self):
        with self.lock:
            job = self.require_job()
            if not job.finished() or job.model is None:
                raise StudioError(409, "the training job has not finished; stop it or wait for it")
            self._adopt(job.model, f"trained on {job.settings['dataset']}")
            return self.describe()

    def require_job(self):
        if self.job is None:
            raise StudioError(409, "no training job: start one first")
        return self.job

    def shutdown(self):
        """Stop a running job and wait for it (called when the server stops)."""
        if self.job is not None:
            self.job.stop()
            self.job.join(timeout=30)

    # -- seed 000's worked example -----------------------------------------------------------
    def example(self, lr=0.1):
        """Seed 000's worked example: every array of its pass and step, and the seed's mistakes."""
        record = seed_example_trace(lr)
        steps = [{"index": s.index, "label": s.layer, "input": scalars(s.input[0]), "output": scalars(s.output[0]),
                  "grad_output": scalars(s.grad_output[0]), "grad_input": scalars(s.grad_input[0]),
                  "params_before": {k: scalars(v) for k, v in s.params_before.items()},
                  "param_grads": {k: scalars(v) for k, v in s.param_grads.items()},
                  "params_after": {k: scalars(v) for k, v in s.params_after.items()}} for s in record.steps]
        facts = seed_mistake_facts(record, lr)
        return {"lr": lr, "loss_name": record.loss_name, "loss": float(record.loss),
                "target": scalars(record.target), "grad_prediction": scalars(record.grad_prediction),
                "steps": steps, "mistakes": {k: scalars(v) for k, v in facts.items()}}


class Budget:
    """What one /api/trace reply may carry whole: each array up to INLINE_VALUES values, all of them up
    to INLINE_TOTAL; the rest described (shape, range) and paged through /api/maps."""

    def __init__(self):
        self.values = 0

    def fits(self, array):
        size = int(np.prod(array.shape))
        if size > INLINE_VALUES or self.values + size > INLINE_TOTAL:
            return False
        self.values += size
        return True

    def array(self, name, array):
        if self.fits(array):
            return {name: encode(array)}
        return {name: None, f"{name}_paged": _description(array)}

    def whole_or_summary(self, array):
        return encode(array) if self.fits(array) else {"paged": _description(array)}


def _description(array):
    values = np.asarray(array, dtype=np.float64)
    return {"shape": list(values.shape), "min": float(values.min()), "max": float(values.max()),
            "norm": float(np.linalg.norm(values))}


def _pick(step, what):
    """One sample's array of a recorded step by name (see ``Studio.maps``)."""
    if what == "output":
        return step.output[0]
    if what == "grad_output" and step.grad_output is not None:
        return step.grad_output[0]
    if what == "grad_input" and step.grad_input is not None:
        return (step.grad_input[0] if step.merges else step.grad_input)[0]
    if what.startswith("grad_part ") and step.grad_parts and what[10:].isdigit() and int(what[10:]) < len(
            step.grad_parts):
        return step.grad_parts[int(what[10:])][0]
    raise StudioError(400, f"what must be output, grad_output, grad_input or 'grad_part K' of this node. "
                           f"Received: {what!r}")


def quantized(array, start, count):
    """Channels ``start:start+count`` of (C, ...) ``array`` as uint8 on the whole array's scale: signed data
    map [-limit, limit] to [0, 255] (127.5 is zero), data without negatives [0, limit] to [0, 255]."""
    values = np.asarray(array, dtype=np.float64)
    limit = float(np.abs(values).max()) or 1.0
    signed = bool(values.min() < 0)
    chosen = values[start:start + count]
    levels = (chosen / limit + 1) * 127.5 if signed else chosen / limit * 255
    data = np.clip(np.rint(levels), 0, 255).astype(np.uint8)
    return {"shape": list(data.shape), "limit": limit, "signed": signed,
            "data": base64.b64encode(data.tobytes()).decode("ascii")}


def forward_record(model, x):
    """A forward-only record of ``model`` on ``x`` (the same steps as ``gn.trace``, without gradients)."""
    steps, sources = [], model.node_inputs()

    def keep(k, inputs, output):
        index = model.graph.nodes[k][0]
        layer = model.layers[index]
        shown = [np.array(a, copy=True) for a in inputs] if layer.merges else np.array(inputs[0], copy=True)
        steps.append(LayerStep(k, repr(layer), shown, np.array(output, copy=True), sources=sources[k],
                               layer_index=index))
    model.graph.forward([x], model.graph.runners(), watch=keep)
    return Trace(steps, "", float("nan"), np.zeros(0), None)


def record_bytes(record):
    """Bytes of the arrays a recorded pass holds (the inputs of a step are the outputs of others: not counted)."""
    total = 0
    for step in record.steps:
        for value in [step.output, step.grad_output, *(step.grad_parts or [])]:
            total += getattr(value, "nbytes", 0)
    return total


def _node_sources(model):
    """For each node, the nodes it reads (-1: the model input)."""
    first = model.graph.input_count
    return [[source - first for source in sources] for _, sources in model.graph.nodes]


def _depths(model):
    """For each node, the longest path from the input (the column the page draws it in)."""
    depths = []
    for sources in _node_sources(model):
        depths.append(1 + max((depths[s] if s >= 0 else -1) for s in sources))
    return depths


def _readers(model):
    """For each node, its readers in the order the backward pass adds their gradients (the parts of a
    fan-out): "output" first when it is the model's output, then the reading nodes, last to first."""
    first, nodes = model.graph.input_count, model.graph.nodes
    readers = []
    for k in range(len(nodes)):
        value = first + k
        order = ["output"] * model.graph.outputs.count(value)
        for reader in reversed(range(len(nodes))):
            order += [f"{reader}: {type(model.layers[nodes[reader][0]]).__name__}"] * nodes[reader][1].count(value)
        readers.append(order)
    return readers


def _all_arrays(model):
    """name -> live array for every parameter and buffer of ``model``."""
    return {f"{i}.{key}": value for i, layer in enumerate(model.layers)
            for store in (layer.params, layer.buffers) for key, value in store.items()}


# -- one unit, explained ---------------------------------------------------------------------

def explain_unit(layer, x, out, position):
    """The numbers behind ``out[position]`` of ``layer`` given its input ``x`` (one sample, no batch axis).

    Returns a dict with ``formula`` (text with the numbers) and the arrays it names.
    """
    for kind, explainer in UNIT_EXPLAINERS:
        if isinstance(layer, kind):
            return explainer(layer, x, out, position)
    return {"formula": f"{type(layer).__name__}: no per-unit detail"}


def _dense_unit(layer, x, out, position):
    (j,) = position
    weights = layer.params["weight"][:, j]                      # (in_features,)
    bias = float(layer.params["bias"][j]) if "bias" in layer.params else 0.0
    products = x * weights                                      # (in_features,)
    total = float(products.sum()) + bias
    order = np.argsort(-np.abs(products), kind="stable")[:12]
    rest = float(products.sum() - products[order].sum())
    terms = " + ".join(f"{x[k]:.4g}*{weights[k]:.4g}" for k in order)
    more = f" + ({len(products) - len(order)} smaller terms: {rest:.6g})" if len(products) > len(order) else ""
    return {"formula": f"y[{j}] = bias[{j}] + sum over i of x[i] * weight[i, {j}] = {bias:.6g} + {terms}{more} "
                       f"= {total:.8g}",
            "inputs": scalars(x), "weights": scalars(weights), "products": scalars(products), "bias": bias,
            "largest_terms": [int(k) for k in order], "sum": total}


def _activation_unit(layer, x, out, position):
    value, result = float(x[position]), float(out[position])
    where = "[" + ", ".join(map(str, position)) + "]"
    if isinstance(layer, LeakyReLU):
        text = f"leaky_relu(x) = x if x > 0 else {layer.alpha} * x"
    elif isinstance(layer, ReLU):
        text = "relu(x) = max(0, x)"
    elif isinstance(layer, Sigmoid):
        text = "sigmoid(x) = 1 / (1 + exp(-x))"
    elif isinstance(layer, Tanh):
        text = "tanh(x)"
    else:
        text = "x (passed through unchanged)"
    return {"formula": f"y{where} = {text}; x{where} = {value:.8g} gives {result:.8g}", "input": value,
            "sum": result}


def _softmax_unit(layer, x, out, position):
    (j,) = position
    shifted = x - x.max()                                       # softmax(z) = softmax(z - max z)
    exps = np.exp(shifted)
    total = float(exps.sum())
    return {"formula": f"p[{j}] = exp(z[{j}] - max z) / sum over k of exp(z[k] - max z) = {exps[j]:.6g} / "
                       f"{total:.6g} = {exps[j] / total:.8g}",
            "logits": scalars(x), "exps": scalars(exps), "sum": float(exps[j] / total)}


def _flatten_unit(layer, x, out, position):
    (k,) = position
    source = np.unravel_index(k, x.shape)
    where = ", ".join(str(int(s)) for s in source)
    return {"formula": f"y[{k}] = x[{where}] (C, H, W order, as PyTorch) = {x[source]:.8g}",
            "source": [int(s) for s in source], "sum": float(x[source])}


def _batchnorm_unit(layer, x, out, position):
    c = position[0]
    mean, var = float(layer.buffers["running_mean"][c]), float(layer.buffers["running_var"][c])
    gamma, beta = float(layer.params["weight"][c]), float(layer.params["bias"][c])
    value = float(x[position])
    result = (value - mean) / np.sqrt(var + layer.eps) * gamma + beta
    return {"formula": f"y = (x - mean) / sqrt(var + eps) * gamma + beta = ({value:.6g} - {mean:.6g}) / "
                       f"sqrt({var:.6g} + {layer.eps:g}) * {gamma:.6g} + {beta:.6g} = {result:.8g}",
            "sum": float(result)}


def _merge_unit(layer, xs, out, position):
    """Add and Multiply: the same position in every input; Concatenate: which input the channel came from."""
    where = "[" + ", ".join(map(str, position)) + "]"
    if isinstance(layer, Concatenate):
        axis = layer._sample_axis(out.ndim)
        index, offset = position[axis], 0
        for k, x in enumerate(xs):
            if index < offset + x.shape[axis]:
                source = list(position)
                source[axis] = index - offset
                value = float(x[tuple(source)])
                return {"formula": f"y{where} = input {k}[{', '.join(map(str, source))}] = {value:.8g} (input {k} "
                                   f"fills positions {offset} to {offset + x.shape[axis] - 1} of axis {layer.axis})",
                        "terms": [{"input": j, "value": float(x[tuple(source)]) if j == k else None,
                                   "span": [sum(a.shape[axis] for a in xs[:j]),
                                            sum(a.shape[axis] for a in xs[:j + 1]) - 1]}
                                  for j, x in enumerate(xs)],
                        "source_input": k, "source_position": source, "sum": value}
            offset += x.shape[axis]
    # a broadcast input (squeeze-and-excitation's (C, 1, 1) gate) is read at 0 on its axes of size 1
    sources = [tuple(p if size > 1 else 0 for p, size in zip(position, x.shape)) for x in xs]
    values = [float(x[source]) for x, source in zip(xs, sources)]
    symbol = " + " if isinstance(layer, Add) else " * "
    total = float(np.sum(values)) if isinstance(layer, Add) else float(np.prod(values))
    names = [f"x{k}[{', '.join(map(str, source))}]" for k, source in enumerate(sources)]
    spread = [k for k, source in enumerate(sources) if list(source) != list(position)]
    note = f" (input{'s' if len(spread) > 1 else ''} {', '.join(map(str, spread))} broadcast over the axes of " \
           f"size 1)" if spread else ""
    return {"formula": f"y{where} = {symbol.join(names)} = {symbol.join(f'{v:.6g}' for v in values)} = "
                       f"{total:.8g}{note}",
            "terms": [{"input": k, "value": v, "position": list(source)}
                      for k, (v, source) in enumerate(zip(values, sources))], "sum": total}


def _global_pool_unit(layer, x, out, position):
    (c,) = position
    window = x[c]                                                # (H, W): the whole channel
    if isinstance(layer, GlobalMaxPool2D):
        u, v = np.unravel_index(int(np.argmax(window)), window.shape)
        return {"formula": f"y[{c}] = max over the {window.shape[0]}x{window.shape[1]} map of channel {c} = "
                           f"x[{c}, {u}, {v}] = {window[u, v]:.8g}", "window": scalars(window),
                "winner": [int(u), int(v)], "sum": float(window[u, v])}
    mean = float(window.sum() / window.size)
    return {"formula": f"y[{c}] = (sum of channel {c}'s {window.shape[0]}x{window.shape[1]} map) / {window.size} "
                       f"= {window.sum():.6g} / {window.size} = {mean:.8g}", "window": scalars(window), "sum": mean}


def _nan_to_none(array):
    return [[None if np.isnan(v) else float(v) for v in row] for row in array]


UNIT_EXPLAINERS = [((Add, Multiply, Concatenate), _merge_unit), ((GlobalAvgPool2D, GlobalMaxPool2D), _global_pool_unit),
                   *more_units.EXPLAINERS,
                   (Conv2D, more_units.conv_unit), ((MaxPool2D, AvgPool2D), more_units.pool_unit), (Dense, _dense_unit),
                   ((ReLU, LeakyReLU, Sigmoid, Tanh, Identity, Dropout), _activation_unit),
                   (Softmax, _softmax_unit), (Flatten, _flatten_unit), (BatchNorm2D, _batchnorm_unit)]
