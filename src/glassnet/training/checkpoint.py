"""Checkpoints: everything ``fit`` needs to carry on exactly where it stopped.

A checkpoint is an archive (``glassnet.archive``) holding the model (its ``get_config()`` and
``state_arrays()``, as a model file does), the optimizer's hyperparameters and state (momentum
buffers, Adam moments and step counts), the epoch and batch position, the epoch's sample order,
the shuffling generator's state and every Dropout generator's state, and the history so far.

Writing keeps the previous checkpoint as ``<path>.prev``: the current file is moved
there, then the new one is written atomically. Reading falls back to ``<path>.prev``
when the latest file is missing or damaged, and says so.

This module reads a checkpoint *into a model that already exists* (``fit(resume=True)`` restores
the model it was given); building a model from a checkpoint is ``glassnet.files``' work
(``gn.load_checkpoint``).
"""
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..archive import ArchiveReader, refuse_non_finite, write_archive
from ..backend import to_numpy
from ..errors import GlassnetError
from ..nn.optim_adaptive import OPTIMIZERS

FORMAT, VERSION = "glassnet-checkpoint", 1
BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM, "MT19937": np.random.MT19937,
                  "Philox": np.random.Philox, "SFC64": np.random.SFC64}


def previous_path(path):
    return Path(str(path) + ".prev")


@dataclass
class Checkpoint:
    """What ``read_checkpoint`` read. ``weights`` are the model's arrays by name (host arrays, checked
    against ``model``'s shapes); ``progress`` is the JSON training state (see ``fit``)."""
    model: object
    weights: dict
    optimizer: dict
    optimizer_arrays: dict
    progress: dict
    order: np.ndarray
    path: Path
    note: str = ""


def save_checkpoint(path, model, optimizer, progress, order):
    """Write a checkpoint; refuses (and keeps the old files untouched) if any weight is NaN/Inf.

    progress : JSON-ready dict (epoch, position, rng states, history, settings)
    order : (n,) int64, the current epoch's sample order
    """
    path = Path(path)
    kinds = [name for name, kind in OPTIMIZERS.items() if type(optimizer) is kind]
    if not kinds:
        raise GlassnetError(f"checkpoint: can save the state of {', '.join(OPTIMIZERS)} optimizers, "
                            f"not {type(optimizer).__name__}")
    arrays = model.state_arrays()
    arrays.update({f"optimizer.{name}": to_numpy(value) for name, value in optimizer.state_arrays().items()})
    arrays["order"] = np.asarray(order, dtype=np.int64)
    header = {"format": FORMAT, "version": VERSION, "model": model.get_config(),
              "optimizer": {"type": kinds[0], "hyperparameters": optimizer.hyperparameters(),
                            "counters": optimizer.state_counters()},
              "progress": progress}
    refuse_non_finite(arrays, "checkpoint")   # before the previous checkpoint is moved aside
    if path.exists():
        os.replace(path, previous_path(path))
    return write_archive(path, header, arrays)


def read_checkpoint(path, model_for):
    """Read ``path``, or ``<path>.prev`` if ``path`` is missing or damaged (``note`` says which).

    model_for : ``(description, archive) -> model`` giving the model the weights are read for (their
        names, shapes and dtypes); ``description`` is the ``get_config()`` dict the checkpoint holds.
        ``fit`` passes its own model (after checking the architecture), ``gn.load_checkpoint`` a new one.
    """
    path = Path(path)
    try:
        return _read(path, model_for)
    except GlassnetError as latest_error:
        fallback = previous_path(path)
        if not fallback.exists():
            raise
        checkpoint = _read(fallback, model_for)
        checkpoint.note = f"latest checkpoint unusable ({latest_error}); resumed from {fallback}"
        return checkpoint


def _read(path, model_for):
    with ArchiveReader(path, "checkpoint") as archive:
        header = archive.header(FORMAT)
        if header.get("version") != VERSION:
            raise GlassnetError(f"{path}: checkpoint version {header.get('version')!r}, expected {VERSION}")
        description, optimizer, progress = (header.get(key) for key in ("model", "optimizer", "progress"))
        if not all(isinstance(part, dict) for part in (description, optimizer, progress)):
            raise GlassnetError(f"{path}: damaged checkpoint header")
        n = progress.get("samples")
        if type(n) is not int or n < 1:
            raise GlassnetError(f"{path}: damaged checkpoint (samples={n!r})")
        optimizer_names = {name for name in archive.names() if name.startswith("optimizer.")}
        model = model_for(description, archive)
        weights = archive.arrays_like(model.state_arrays(), optimizer_names | {"order"})
        order = archive.array("order", (n,), np.int64)
        if not np.array_equal(np.sort(order), np.arange(n)):
            raise GlassnetError(f"{path}: damaged checkpoint (sample order is not a permutation)")
        optimizer_arrays = {}
        for member in optimizer_names:
            name = member[len("optimizer."):]
            owner = weights.get(name.rsplit(".", 1)[0])
            if owner is None:
                raise GlassnetError(f"{path}: optimizer array {name} belongs to no parameter")
            optimizer_arrays[name] = archive.array(member, owner.shape, owner.dtype)
        return Checkpoint(model, weights, optimizer, optimizer_arrays, progress, order, path)


def same_architecture(model):
    """A ``model_for`` for ``read_checkpoint`` that accepts only checkpoints of ``model``'s architecture
    and dtype, and reads the weights for ``model`` itself."""
    def check(description, archive):
        config = model.get_config()
        if description.get("layers") != config["layers"] or description.get("graph") != config.get("graph"):
            raise GlassnetError(f"{archive.path}: the checkpoint holds a different architecture than the model")
        if description.get("dtype") != model.dtype.name:
            raise GlassnetError(f"{archive.path}: checkpoint dtype {description.get('dtype')}, "
                                f"model dtype {model.dtype}")
        return model
    return check


def restore(checkpoint, model, optimizer):
    """Copy the checkpoint's weights into ``model`` and its state into ``optimizer`` (same kinds)."""
    kind = checkpoint.optimizer.get("type")
    if not isinstance(kind, str) or kind not in OPTIMIZERS or type(optimizer) is not OPTIMIZERS[kind]:
        raise GlassnetError(f"{checkpoint.path}: checkpoint optimizer {kind!r}, fit was given "
                            f"{type(optimizer).__name__}")
    counters = checkpoint.optimizer.get("counters", {})
    if not isinstance(counters, dict):
        raise GlassnetError(f"{checkpoint.path}: damaged optimizer state")

    def read_array(name, shape, dtype):
        value = checkpoint.optimizer_arrays.get(name)
        if value is None or value.shape != tuple(shape) or value.dtype != dtype:
            raise GlassnetError(f"{checkpoint.path}: missing or mismatched optimizer array {name}")
        return value.copy()

    model.load_state_arrays(checkpoint.weights)   # in place: references stay live
    optimizer.load_state(counters, read_array)


def generator_state(rng):
    """JSON-ready state of a NumPy Generator."""
    return rng.bit_generator.state


def generator_from_state(state, where):
    """A Generator set to ``state`` (bit generators from an allow-list only)."""
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if not isinstance(kind, str) or kind not in BIT_GENERATORS:
        raise GlassnetError(f"{where}: unsupported random generator {kind!r}")
    bit_generator = BIT_GENERATORS[kind]()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise GlassnetError(f"{where}: damaged random generator state ({error})") from None
    return np.random.Generator(bit_generator)
