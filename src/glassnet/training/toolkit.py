"""What ``fit`` adds around each step: a learning-rate schedule stepped per batch or per epoch, gradient
clipping, and a validation set split off the training data."""

import numpy as np

from ..errors import GlassnetError
from ..validation import make_rng
from .clipping import clip_grad_norm, positive_number
from .schedules import OneCycleLR, ReduceLROnPlateau, Schedule


class StepTools:
    """The schedule (and whether it steps per "batch" or per "epoch") and the clipping norm of one fit."""

    def __init__(self, optimizer, schedule=None, schedule_step=None, clip_norm=None):
        if schedule is not None and not isinstance(schedule, (Schedule, ReduceLROnPlateau)):
            raise GlassnetError(f"fit: schedule must be one of gn.schedules. Received: {type(schedule).__name__}")
        if schedule is not None and schedule.optimizer is not optimizer:
            raise GlassnetError("fit: the schedule belongs to another optimizer; make it on the optimizer given "
                                "to fit (optimizer=opt, schedule=gn.schedules.X(opt, ...))")
        default = "batch" if isinstance(schedule, OneCycleLR) else "epoch"
        self.schedule_step = default if schedule_step is None else schedule_step
        if self.schedule_step not in ("batch", "epoch"):
            raise GlassnetError(f"fit: schedule_step must be 'batch' or 'epoch'. Received: {schedule_step!r}")
        if isinstance(schedule, ReduceLROnPlateau) and self.schedule_step != "epoch":
            raise GlassnetError("fit: ReduceLROnPlateau steps per epoch, on the validation loss")
        if clip_norm is not None:
            clip_norm = positive_number(clip_norm, "clip_grad_norm", "fit")
        self.schedule, self.clip_norm = schedule, clip_norm

    def before_step(self, model):
        """Clip the gradients; returns the norm before clipping (None without clipping)."""
        return clip_grad_norm(model, self.clip_norm) if self.clip_norm is not None else None

    def after_batch(self):
        if self.schedule is not None and self.schedule_step == "batch":
            self.schedule.step()

    def after_epoch(self, history):
        if self.schedule is None or self.schedule_step != "epoch":
            return
        if isinstance(self.schedule, ReduceLROnPlateau):
            monitored = history["val_loss"][-1] if history["val_loss"][-1] is not None else history["loss"][-1]
            self.schedule.step(monitored)
        else:
            self.schedule.step()

    def state(self):
        return None if self.schedule is None else self.schedule.state_dict()

    def load(self, saved, where):
        if (saved is None) != (self.schedule is None):
            raise GlassnetError(f"fit: cannot resume {where}: it was written "
                                f"{'without' if saved is None else 'with'} a schedule, this run has "
                                f"{'none' if self.schedule is None else type(self.schedule).__name__}")
        if saved is not None:
            self.schedule.load_state_dict(saved)


def split_validation(x, y, fraction, seed):
    """(x_train, y_train, x_val, y_val): ``fraction`` of the samples held out, drawn with ``seed``;
    stratified for class labels (each class keeps its share, at least one sample of a class with two)."""
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        fraction = float("nan")
    if not 0 < fraction < 1:
        raise GlassnetError(f"fit: validation_split must be a number in (0, 1). Received: {fraction!r}")
    if not isinstance(x, np.ndarray):
        raise GlassnetError("fit: validation_split needs the data as an array; for an ImageSet, pass "
                            "validation_data=(x_val, y_val)")
    rng = make_rng(seed, "fit")
    labels = y if y.ndim == 1 and y.dtype.kind in "iu" else (y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1
                                                             and y.dtype.kind == "f" and np.allclose(y.sum(1), 1)
                                                             else None)
    n = x.shape[0]
    if labels is None:                                   # regression: a plain random share
        held = rng.permutation(n)[:max(1, round(fraction * n))]
    else:
        held = []
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            count = round(fraction * len(members))
            count = min(max(count, 1 if len(members) > 1 else 0), len(members) - 1)
            held.extend(rng.permutation(members)[:count].tolist())
        held = np.asarray(sorted(held), dtype=np.int64)
    if len(held) == 0 or len(held) == n:
        raise GlassnetError(f"fit: validation_split={fraction} of {n} samples leaves no training or no "
                            f"validation samples")
    keep = np.ones(n, dtype=bool)
    keep[held] = False
    return x[keep], y[keep], x[held], y[held]

