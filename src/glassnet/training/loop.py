"""fit / evaluate / predict: the training loop.

It knows a model only through a small interface, never through the model classes: ``layers``,
``forward``, ``backward``, ``named_parameters``/``parameters``, ``place``, ``train``/``eval``,
``dtype``, ``metadata`` (where the input shape is kept once seen), and for checkpoints ``get_config``,
``state_arrays`` and ``load_state_arrays``.

An epoch visits every training sample exactly once, in an order drawn from the
given generator; ``batch_size=1`` is the seeds' per-sample SGD.

The data stays on the host (NumPy); each batch moves to where the model lives (``model.to``)
just before its forward pass, and each step's figures (loss, gradient norms, dead ReLUs, correct
predictions) come back to the host together, in one transfer.
"""
import math
import sys
from pathlib import Path

import numpy as np

from ..backend import NUMPY, all_finite, beside, host_floats, namespace, to_namespace, to_numpy
from ..data.augment import Augment
from ..data.imageset import ImageSet
from ..errors import GlassnetError, TrainingDivergedError
from ..nn.layers.activations import ReLU, softmax
from ..nn.losses import BinaryCrossEntropy, CrossEntropy, Loss, MSE, SoftmaxCrossEntropy, class_targets
from ..nn.optim import SGD, Adam, Optimizer
from ..nn.optim_adaptive import Adagrad, AdamW, RMSprop
from ..validation import as_float_array, foreign_array, make_rng, positive_int
from .callbacks import BatchEnd, Callback, EpochEnd, StopTraining, notify
from .checkpoint import (generator_from_state, generator_state, previous_path, read_checkpoint, restore,
                         same_architecture, save_checkpoint)
from .distributed import attach, world
from .distributed import step_figures as group_step_figures
from .history import History
from .toolkit import StepTools, split_validation

DIVERGENCE_FACTOR = 100     # a batch loss this many times the first batch's means training diverged
LOSS_FLOOR = 1e-3           # ... the first batch's loss counted as at least this, so a tiny one is no trap
NAMED_OPTIMIZERS = {"adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
LOSSES = {"softmax_cross_entropy": SoftmaxCrossEntropy, "cross_entropy": CrossEntropy,
          "binary_cross_entropy": BinaryCrossEntropy, "mse": MSE}


def resolve_loss(loss):
    if loss is None:
        return SoftmaxCrossEntropy()
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise GlassnetError(f"fit: loss must be a glassnet Loss or one of {sorted(LOSSES)}. Received: loss={loss!r}")


def resolve_optimizer(model, optimizer, lr):
    if isinstance(optimizer, Optimizer):
        return optimizer
    lr = 0.01 if lr is None else lr
    if optimizer in (None, "sgd"):
        return SGD(model, lr=lr)
    if optimizer == "momentum":
        return SGD(model, lr=lr, momentum=0.9)
    if optimizer == "nesterov":
        return SGD(model, lr=lr, momentum=0.9, nesterov=True)
    if optimizer in NAMED_OPTIMIZERS:
        return NAMED_OPTIMIZERS[optimizer](model, lr=lr)
    raise GlassnetError(f"fit: optimizer must be an Optimizer or one of {', '.join(OPTIMIZER_NAMES)}. "
                        f"Received: optimizer={optimizer!r}")


def accuracy(loss, outputs, target):
    """Fraction of correct predictions for classification losses; None for MSE."""
    correct = correct_count(loss, outputs, target)
    return None if correct is None else float(correct) / int(np.asarray(target).shape[0])


def correct_count(loss, outputs, target):
    """How many predictions are right, as a 0-d array beside ``outputs`` (host ``target``); None for MSE."""
    target = np.asarray(to_numpy(target))
    xp = namespace(outputs)
    if isinstance(loss, (SoftmaxCrossEntropy, CrossEntropy)):
        labels = target if target.ndim == 1 else target.argmax(axis=1)
        labels = beside(outputs, labels.astype(np.int64))
        return xp.sum(xp.astype(xp.argmax(outputs, axis=1) == labels, outputs.dtype))
    if isinstance(loss, BinaryCrossEntropy):
        positive = beside(outputs, target > 0.5)
        return xp.sum(xp.astype((outputs > 0.5) == positive, outputs.dtype)) / (math.prod(outputs.shape[1:]) or 1)
    return None


def check_xy(model, x, y, owner):
    if isinstance(x, ImageSet):   # decoded bytes, normalised batch by batch: never loaded whole
        y = np.asarray(y)
        if len(x) == 0 or y.shape[0] != len(x):
            raise GlassnetError(f"{owner}: x and y must hold the same, non-zero number of samples: "
                                f"x.shape={x.shape}, y.shape={y.shape}")
        return x, y
    if foreign_array(x):
        x = to_numpy(x)           # the data set stays on the host; batches move to the model
    x = as_float_array(x, owner, model.dtype, name="x")
    y = np.asarray(to_numpy(y))
    if x.shape[0] == 0:
        raise GlassnetError(f"{owner}: received an empty dataset, x.shape={x.shape}")
    if y.shape[0] != x.shape[0]:
        raise GlassnetError(f"{owner}: x and y hold different numbers of samples: "
                            f"x.shape={x.shape}, y.shape={y.shape}")
    if not np.all(np.isfinite(x)):
        raise GlassnetError(f"{owner}: x contains NaN or Inf values")
    return x, y


def in_notebook():
    """True inside a Jupyter kernel (IPython's ZMQ shell), where stderr is no terminal but a bar shows."""
    shell = sys.modules.get("IPython")
    try:
        return shell is not None and type(shell.get_ipython()).__name__ == "ZMQInteractiveShell"
    except Exception:
        return False


class ProgressBar(Callback):
    """A listener drawing one tqdm bar per epoch on a terminal or in a notebook (``tqdm.auto``);
    nothing when tqdm is missing or output goes elsewhere."""

    def __init__(self, samples, epochs):
        self.samples, self.epochs = samples, epochs
        self.tqdm = None
        if sys.stderr.isatty() or in_notebook():
            try:
                from tqdm.auto import tqdm      # a widget in Jupyter, text on a terminal
                self.tqdm = tqdm
            except ImportError:
                pass
        self.bar, self.shown = None, 0

    def on_batch_end(self, event):
        if self.tqdm is None:
            return
        if self.bar is None:  # the epoch's first batch (or the first after a resume)
            self.bar = self.tqdm(total=self.samples, desc=f"epoch {event.epoch}/{self.epochs}", unit="img",
                                 leave=False)
            self.shown = 0
        self.bar.update(event.samples_seen - self.shown)
        self.shown = event.samples_seen
        self.bar.set_postfix(loss=f"{event.loss:.4f}", **({"lr": f"{event.lr:.3g}"} if event.lr is not None else {}))

    def on_epoch_end(self, event):
        self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def fit(model, x, y, epochs=1, batch_size=32, loss=None, optimizer=None, lr=None, validation_data=None,
        shuffle=True, seed=None, verbose=True, log=print, checkpoint=None, checkpoint_every=None, resume=False,
        callbacks=(), augment=None, distributed=False, divergence_check=True, schedule=None, schedule_step=None,
        clip_grad_norm=None, validation_split=None):
    """Train ``model`` on (x, y); returns a history dict of per-epoch lists.

    Parameters
    ----------
    x : (N, ...) inputs; y : (N,) labels, (N, K) one-hot or (N, d) regression targets
    epochs, batch_size : int
    loss : Loss or name, default SoftmaxCrossEntropy
    optimizer : Optimizer or "sgd" | "momentum" | "nesterov" | "adam" | "adamw" | "rmsprop" | "adagrad"
        (with ``lr``)
    validation_data : (x_val, y_val) or None
    validation_split : a fraction in (0, 1) of (x, y) held out for validation instead, drawn with ``seed``,
        stratified for class labels
    schedule : one of ``gn.schedules`` made on ``optimizer``; stepped after every batch or every epoch
        (``schedule_step``: "batch" or "epoch"; default "batch" for OneCycleLR, else "epoch").
        ReduceLROnPlateau steps per epoch on the validation loss (the training loss without validation).
    clip_grad_norm : None or a float: every step's gradients scaled to that total norm at most (see
        ``gn.clip_grad_norm``), after the divergence checks and before the optimizer's step
    shuffle : reshuffle each epoch with ``seed`` (an int, a Generator or None)
    verbose : print one line per epoch through ``log`` and show a progress bar on a terminal
    checkpoint : path or None. Written at the end of every epoch and, with ``checkpoint_every=k``,
        after every k-th batch; the previous one is kept as ``<checkpoint>.prev``.
    resume : continue from ``checkpoint`` if it (or its ``.prev``) exists: weights, optimizer
        state, epoch, batch position and generator states are restored, so the run ends with
        exactly the weights an uninterrupted run would have.
    augment : None, "shift,flip,rotate,scale" (any of them) or an ``Augment``: each training batch
        is changed at random before the forward pass, drawing from the same seeded generator
        (so runs and resumed checkpoints are reproducible)
    callbacks : listeners with ``on_batch_end(BatchEnd)`` / ``on_epoch_end(EpochEnd)`` (see
        ``glassnet.training.callbacks``); one raising ``StopTraining`` ends training after that batch.
    distributed : data-parallel over the processes ``mpiexec`` started (see ``glassnet.training.distributed``):
        each trains on its share of every global batch of ``batch_size``; the result equals one
        process's. Only rank 0 prints and writes checkpoints.
    divergence_check : stop (``TrainingDivergedError``, naming the learning rate) when a batch's loss
        exceeds ``DIVERGENCE_FACTOR`` (100) times the run's first batch loss (or 100 x 1e-3, if that
        is smaller): a loss that explodes yet stays finite. NaN/Inf losses and gradients always stop.

    Returns
    -------
    dict with "loss", "accuracy", "val_loss", "val_accuracy", "lr" (the rate of the epoch's last batch;
    every batch's rate in "lr_batches") (lists, one entry per epoch;
    accuracies are None for regression losses), "grad_norms" ({"0.weight": [mean L2 norm of the
    gradient per epoch], ...}) and "dead_relu" ({"1": [mean fraction of units of ReLU layer 1 that
    output 0 for a whole batch, per epoch], ...}).

    Raises
    ------
    TrainingDivergedError at the first NaN/Inf loss or gradient, naming the epoch, batch and layer, or at
    a diverging loss (see ``divergence_check``).
    """
    epochs = positive_int(epochs, "epochs", "fit")
    batch_size = positive_int(batch_size, "batch_size", "fit")
    if checkpoint_every is not None:
        checkpoint_every = positive_int(checkpoint_every, "checkpoint_every", "fit")
        if checkpoint is None:
            raise GlassnetError("fit: checkpoint_every needs checkpoint=PATH")
    listeners = _listeners(callbacks)
    augmenter = Augment.parse(augment) if augment is not None else None
    x, y = check_xy(model, x, y, "fit")
    if validation_split is not None:
        if validation_data is not None:
            raise GlassnetError("fit: give validation_data or validation_split, not both")
        split_seed = seed.spawn(1)[0] if isinstance(seed, np.random.Generator) else seed   # not the order's draws
        x, y, *validation_data = split_validation(x, y, validation_split, split_seed)
    group = _group(model, x.shape[0], batch_size, epochs) if distributed else None
    if group is not None and not group.is_root:
        verbose, log = False, (lambda line: None)
    progress = ProgressBar(x.shape[0], epochs) if verbose else None
    if progress is not None:
        listeners.append(progress)
    loss = resolve_loss(loss)
    optimizer = resolve_optimizer(model, optimizer, lr)
    tools = StepTools(optimizer, schedule, schedule_step, clip_grad_norm)
    check_labels(model, loss, x, y, "fit")
    rng = make_rng(seed, "fit")
    n = x.shape[0]
    state = {"samples": n, "batch_size": batch_size, "shuffle": bool(shuffle), "epoch": 1, "position": 0,
             "total_loss": 0.0, "correct": 0.0,
             "history": History(loss=[], accuracy=[], val_loss=[], val_accuracy=[], lr=[], lr_batches=[],
                                grad_norms={}, dead_relu={}),
             "sums": new_sums()}
    order = None
    if resume and checkpoint is not None and (Path(checkpoint).exists() or previous_path(checkpoint).exists()):
        state, order, rng = _resume(checkpoint, model, optimizer, state, log)
        tools.load(state.get("schedule"), checkpoint)
        state["history"] = History({"lr": [], "lr_batches": [], **state["history"]})
    history = state["history"]
    try:
        _epochs(model, x, y, epochs, batch_size, loss, optimizer, validation_data, shuffle, verbose, log,
                checkpoint, checkpoint_every, listeners, state, order, rng, augmenter, group, divergence_check,
                tools)
    except StopTraining:
        pass  # a listener asked to stop: the weights stay as the last step left them
    finally:
        if progress is not None:
            progress.close()
        if group is not None:
            attach(model, None)
    model.eval()
    remember_input_shape(model, x)
    return history


def remember_input_shape(model, x):
    """Keep one sample's shape in ``model.metadata["input_shape"]`` once the model has run on data, so
    that ``summary``, ``output_shapes``, ``export_onnx`` and the studio know it (and files keep it)."""
    if not model.metadata.get("input_shape"):
        model.metadata["input_shape"] = [int(size) for size in x.shape[1:]]


def _group(model, n, batch_size, epochs):
    """The MPI group for ``fit(distributed=True)``, after checking every rank can take part."""
    group = world()
    if model.place()[0] is not NUMPY:
        raise GlassnetError("fit(distributed=True): the model must be on NumPy (model.to(numpy))")
    group.same_everywhere((n, batch_size, epochs), "the number of samples, the batch size and the epochs")
    group.share_cores()
    smallest = n % batch_size or batch_size
    if min(batch_size, n) < group.size or smallest < group.size:
        raise GlassnetError(f"fit(distributed=True): every batch needs at least one sample per rank: "
                            f"{group.size} ranks, batch size {batch_size}, last batch {smallest}")
    return group


def _listeners(callbacks):
    listeners = list(callbacks or ())
    for listener in listeners:
        if not (hasattr(listener, "on_batch_end") or hasattr(listener, "on_epoch_end")):
            raise GlassnetError("fit: every callback needs an on_batch_end or on_epoch_end method. "
                                f"Received: {listener!r}")
    return listeners


def _epochs(model, x, y, epochs, batch_size, loss, optimizer, validation_data, shuffle, verbose, log,
            checkpoint, checkpoint_every, listeners, state, order, rng, augmenter=None, group=None,
            divergence_check=True, tools=None):
    """The epoch loop of ``fit`` from where ``state`` says it stands."""
    writes_checkpoints = group is None or group.is_root      # in data-parallel training, rank 0 only
    tools = tools or StepTools(optimizer)
    n = x.shape[0]
    history = state["history"]
    tracks_accuracy = not isinstance(loss, MSE)
    batches = -(-n // batch_size)
    xp, device = model.place()
    # overflow is caught below as a non-finite loss or gradient, with a clearer message than NumPy's
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for epoch in range(state["epoch"], epochs + 1):
            model.train()
            if order is None:
                order = rng.permutation(n) if shuffle else np.arange(n)
            total_loss, correct = state["total_loss"], state["correct"]
            for start in range(state["position"], n, batch_size):
                batch_number = start // batch_size + 1
                batch = order[start:start + batch_size]
                inputs = x[batch] if augmenter is None else augmenter(np.asarray(x[batch]), rng)
                targets = y[batch]
                if group is not None:                  # this rank's share of the global batch
                    share = group.share(len(batch))
                    inputs, targets = inputs[share], targets[share]
                    attach(model, group, (share.start, len(batch)))
                outputs = model.forward(to_namespace(inputs, xp, device))
                loss_value = loss.forward_value(outputs, targets)
                weight = len(targets) / len(batch)      # this share's part of the global mean loss
                model.backward(loss.backward() * weight if group is not None else loss.backward(), input_grad=False)
                where = f"epoch {epoch}, batch {batch_number}"
                right = correct_count(loss, outputs, targets) if tracks_accuracy else None
                if group is None:
                    batch_loss, norms, dead, right = step_figures(model, loss_value, right)   # one host transfer
                else:
                    batch_loss, norms, dead, right = group_step_figures(group, model, loss_value, right, weight)
                if not np.isfinite(batch_loss):
                    raise TrainingDivergedError(f"fit: the loss became {batch_loss} at {where}"
                                                + _lower_lr(optimizer) + _last_good(checkpoint))
                if state.get("first_loss") is None:
                    state["first_loss"] = float(batch_loss)
                elif divergence_check and batch_loss > DIVERGENCE_FACTOR * max(state["first_loss"], LOSS_FLOOR):
                    raise TrainingDivergedError(f"fit: training diverged: the loss grew from "
                                                f"{state['first_loss']:.4g} (first batch) to {batch_loss:.4g} at "
                                                f"{where}" + _lower_lr(optimizer) + _last_good(checkpoint))
                record_gradients(model, state["sums"], norms, dead, where, checkpoint, optimizer)
                tools.before_step(model)
                rate = float(optimizer.lr)
                optimizer.step()
                tools.after_batch()
                history["lr_batches"].append(rate)
                total_loss += batch_loss * len(batch)
                batch_accuracy = right / len(batch) if tracks_accuracy else None
                if tracks_accuracy:
                    correct += right
                position = start + len(batch)
                notify(listeners, "on_batch_end", BatchEnd(epoch, batch_number, batches, position, float(batch_loss),
                                                           batch_accuracy, norms, dead, model, rate))
                if checkpoint_every and batch_number % checkpoint_every == 0 and position < n:
                    state.update(epoch=epoch, position=position, total_loss=total_loss, correct=correct,
                                 schedule=tools.state())
                    if writes_checkpoints:
                        _save(checkpoint, model, optimizer, state, order, rng, where)
            history["loss"].append(total_loss / n)
            close_sums(history, state["sums"])
            history["accuracy"].append(correct / n if tracks_accuracy else None)
            if validation_data is not None:
                val_loss, val_accuracy = evaluate(model, *validation_data, loss=loss)
            else:
                val_loss, val_accuracy = None, None
            history["val_loss"].append(val_loss)
            history["val_accuracy"].append(val_accuracy)
            history["lr"].append(rate)
            tools.after_epoch(history)
            order = None
            state.update(epoch=epoch + 1, position=0, total_loss=0.0, correct=0.0, sums=new_sums(),
                         schedule=tools.state())
            if checkpoint is not None and writes_checkpoints:
                _save(checkpoint, model, optimizer, state, np.arange(n), rng, f"the end of epoch {epoch}")
            notify(listeners, "on_epoch_end", EpochEnd(epoch, epochs, history, model))  # closes the bar first
            if verbose:
                log(epoch_line(epoch, epochs, history))


def check_labels(model, loss, x, y, owner):
    """Class labels must fit the model's outputs; checked before any training step."""
    if isinstance(loss, (SoftmaxCrossEntropy, CrossEntropy)) and y.ndim == 1:
        outputs = predict(model, x[:1]).shape[-1]
        class_targets(owner, y, len(y), outputs, model.dtype)


def new_sums():
    """Per-epoch running sums behind history["grad_norms"] and history["dead_relu"]."""
    return {"batches": 0, "grad_norms": {}, "dead_relu": {}}


def step_figures(model, loss_value, right):
    """A training step's figures, brought to the host together: (loss, {parameter: gradient L2 norm},
    {ReLU index: dead fraction}, correct predictions or None).

    A ReLU unit is dead in a batch when it outputs 0 for every sample of the batch. Norms are
    summed in float64.
    """
    xp = namespace(loss_value)
    norm_names, dead_names, values = [], [], [loss_value]
    for name, layer, key in model.named_parameters():
        grad = xp.astype(layer.grads[key], xp.float64)
        norm_names.append(name)
        values.append(xp.sqrt(xp.sum(grad * grad)))
    for index, layer in enumerate(model.layers):
        if isinstance(layer, ReLU):
            never_positive = xp.logical_not(xp.any(layer.positive_mask(), axis=0))
            dead_names.append(str(index))
            values.append(xp.mean(xp.astype(never_positive, xp.float64)))
    if right is not None:
        values.append(right)
    figures = host_floats(xp, values)
    norms = dict(zip(norm_names, figures[1:]))
    dead = dict(zip(dead_names, figures[1 + len(norm_names):]))
    return figures[0], norms, dead, (figures[-1] if right is not None else None)


def record_gradients(model, sums, norms, dead, where, checkpoint, optimizer=None):
    """Add the step's gradient norms and dead-ReLU fractions to ``sums``; stop on a NaN/Inf gradient."""
    layers = {name: type(layer).__name__ for name, layer, _ in model.named_parameters()}
    broken = [f"{name} ({layers[name]})" for name, norm in norms.items() if not np.isfinite(norm)]
    if broken:
        raise TrainingDivergedError(f"fit: NaN/Inf gradient at {where} in {', '.join(broken)}"
                                    + _lower_lr(optimizer) + _last_good(checkpoint))
    for name, norm in norms.items():
        sums["grad_norms"][name] = sums["grad_norms"].get(name, 0.0) + norm
    for name, fraction in dead.items():
        sums["dead_relu"][name] = sums["dead_relu"].get(name, 0.0) + fraction
    sums["batches"] += 1


def close_sums(history, sums):
    """Epoch means of the running sums, appended to the history."""
    count = max(sums["batches"], 1)
    for key in ("grad_norms", "dead_relu"):
        for name, total in sums[key].items():
            history[key].setdefault(name, []).append(total / count)


def _lower_lr(optimizer):
    lr = getattr(optimizer, "lr", None)
    return f"; the learning rate {lr:g} is likely too high: try a lower one" if lr is not None else ""


def _last_good(checkpoint):
    if checkpoint is not None and (Path(checkpoint).exists() or previous_path(checkpoint).exists()):
        return f"; the last good checkpoint is {checkpoint}"
    return ""


def _save(checkpoint, model, optimizer, state, order, rng, where):
    """Write a checkpoint, unless a weight is NaN/Inf (then stop and keep the last good one)."""
    params = model.parameters()
    if params and not all_finite(model.place()[0], *params.values()):
        broken = [name for name, value in params.items() if not np.all(np.isfinite(to_numpy(value)))]
        raise TrainingDivergedError(f"fit: weight {', '.join(broken)} became NaN/Inf at {where}; "
                                    "checkpoint not written" + _last_good(checkpoint))
    state["rng"] = generator_state(rng)
    state["layer_rngs"] = {str(i): generator_state(layer.rng) for i, layer in enumerate(model.layers)
                           if isinstance(getattr(layer, "rng", None), np.random.Generator)}
    save_checkpoint(checkpoint, model, optimizer, state, order)


def _resume(checkpoint, model, optimizer, fresh, log):
    """Restore from a checkpoint; returns (state, order or None, rng)."""
    saved = read_checkpoint(checkpoint, same_architecture(model))
    if saved.note:
        log(saved.note)
    state = saved.progress
    for key in ("samples", "batch_size", "shuffle"):
        if state.get(key) != fresh[key]:
            raise GlassnetError(f"fit: cannot resume {saved.path}: it was written with {key}={state.get(key)!r}, "
                                f"this run has {key}={fresh[key]!r}")
    if not (type(state.get("epoch")) is int and type(state.get("position")) is int
            and 0 <= state["position"] < fresh["samples"] and isinstance(state.get("history"), dict)):
        raise GlassnetError(f"fit: {saved.path} holds a damaged training state")
    restore(saved, model, optimizer)
    rng = generator_from_state(state.get("rng"), str(saved.path))
    for index, layer_state in state.get("layer_rngs", {}).items():
        layer = model.layers[int(index)]
        layer.rng = generator_from_state(layer_state, str(saved.path))
    log(f"resumed from {saved.path}: epoch {state['epoch']}, sample {state['position']}")
    return state, (saved.order if state["position"] > 0 else None), rng


def epoch_line(epoch, epochs, history):
    parts = [f"epoch {epoch}/{epochs}", f"loss {history['loss'][-1]:.4f}"]
    for key, label in (("accuracy", "acc"), ("val_loss", "val loss"), ("val_accuracy", "val acc")):
        if history[key][-1] is not None:
            parts.append(f"{label} {history[key][-1]:.4f}")
    if history.get("lr"):
        parts.append(f"lr {history['lr'][-1]:.3g}")
    return "  ".join(parts)


def predict(model, x, batch_size=256):
    """Model outputs for x in evaluation mode, batch by batch: (N, ...) -> (N, outputs)."""
    if not isinstance(x, ImageSet):
        x = as_float_array(to_numpy(x), "predict", model.dtype, name="x")
    if x.shape[0] == 0:
        raise GlassnetError(f"predict: received an empty batch, x.shape={x.shape}")
    xp, device = model.place()
    was_training = model.training
    model.eval()
    try:
        outputs = np.concatenate([to_numpy(model.infer(to_namespace(x[i:i + batch_size], xp, device)))
                                  for i in range(0, x.shape[0], batch_size)])
    finally:
        model.train(was_training)
    remember_input_shape(model, x)
    return outputs


def probabilities(model, x):
    """Class probabilities: softmax of the outputs unless the model already ends in Softmax/Sigmoid."""
    outputs = predict(model, x)
    last = type(model.layers[-1]).__name__
    return outputs if last in ("Softmax", "Sigmoid") else softmax(outputs, axis=1)


def evaluate(model, x, y, loss=None, batch_size=256):
    """(mean loss, accuracy) over the whole set; accuracy is None for regression."""
    x, y = check_xy(model, x, y, "evaluate")
    loss = resolve_loss(loss)
    outputs = predict(model, x, batch_size)
    return loss.forward(outputs, y), accuracy(loss, outputs, y)
