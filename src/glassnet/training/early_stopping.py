"""Early stopping, as Keras' ``EarlyStopping(restore_best_weights=True)``: a ``fit`` callback that
watches a metric of the history at the end of each epoch, stops training after ``patience`` epochs
without an improvement of more than ``min_delta``, and puts the best epoch's weights (and BatchNorm
statistics) back, whether it stopped early or the epochs ran out.

>>> stop = gn.EarlyStopping(monitor="val_loss", patience=3)
>>> # model.fit(x, y, epochs=100, validation_split=0.2, callbacks=[stop]); stop.best_epoch, stop.stopped_epoch
"""
import math

from ..errors import GlassnetError
from .callbacks import Callback, StopTraining

MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")


class EarlyStopping(Callback):
    """monitor : "val_loss" (default), "val_accuracy", "loss" or "accuracy" (accuracies are maximised)
    patience : epochs without improvement before stopping (>= 0); min_delta : the least change that counts
    restore_best : put the best epoch's weights back at the end (default True)

    After ``fit``: ``best_epoch``, ``best`` (its value), ``stopped_epoch`` (None if the epochs ran out).
    A NaN value never counts as an improvement."""

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, restore_best=True):
        if monitor not in MONITORS:
            raise GlassnetError(f"EarlyStopping: monitor must be one of {', '.join(MONITORS)}. Received: {monitor!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise GlassnetError(f"EarlyStopping: patience must be an int >= 0. Received: patience={patience!r}")
        try:
            min_delta = float(min_delta)
        except (TypeError, ValueError):
            min_delta = float("nan")
        if not min_delta >= 0 or math.isinf(min_delta):
            raise GlassnetError(f"EarlyStopping: min_delta must be a finite number >= 0. Received: {min_delta!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.restore_best = bool(restore_best)
        self.maximise = monitor.endswith("accuracy")
        self.best, self.best_epoch, self.stopped_epoch, self.waited = None, None, None, 0
        self._best_weights = None

    def _improved(self, value):
        if value is None or math.isnan(value):
            return False
        if self.best is None:
            return True
        return value > self.best + self.min_delta if self.maximise else value < self.best - self.min_delta

    def on_epoch_end(self, event):
        values = event.history.get(self.monitor, [])
        value = values[-1] if values else None
        if value is None and self.monitor.startswith("val_"):
            raise GlassnetError(f"EarlyStopping: monitor={self.monitor!r} needs validation data "
                                f"(fit(..., validation_data=...) or validation_split=...)")
        if self._improved(value):
            self.best, self.best_epoch, self.waited = value, event.epoch, 0
            if self.restore_best:
                self._best_weights = {name: array.copy() for name, array in event.model.state_arrays().items()}
        else:
            self.waited += 1
        stopping = self.waited > self.patience
        if (stopping or event.epoch == event.epochs) and self.restore_best and self._best_weights is not None:
            event.model.load_state_arrays(self._best_weights)
        if stopping:
            self.stopped_epoch = event.epoch
            raise StopTraining()
