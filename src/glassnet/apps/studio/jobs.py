"""One training run in a background thread, as a stream of events for the page.

The job calls ``fit`` with itself as a listener (``glassnet.callbacks``): after every batch
it publishes the batch's loss, accuracy, gradient norms and dead-ReLU fractions (and, at
most every ``FILTER_INTERVAL`` seconds, the first layer's filters); after every epoch, the
epoch's figures. Pausing blocks the listener, so ``fit`` waits between two batches;
stopping raises ``StopTraining`` there. The events are numbered; the server's SSE route
sends each client the ones it has not seen (``events_after``).
"""
import threading
import time

from ...data import datasets
from ...errors import GlassnetError
from ...models import presets
from ...training.callbacks import Callback, StopTraining
from ..parser import OPTIMIZERS as ALL_OPTIMIZERS
from ..parser import SCHEDULES
from ..recipe import fit_arguments
from .arrays import encode

STUDIO_DATASETS = ("digits", "mnist5k", "fashion_mnist", "shapes")    # image datasets a drawing can be compared with
OPTIMIZERS = tuple(ALL_OPTIMIZERS)
SCHEDULE_CHOICES = (None,) + tuple(SCHEDULES)
FILTER_INTERVAL = 0.5   # seconds between two snapshots of the first layer's filters
LIMITS = {"epochs": (1, 200), "batch_size": (1, 4096)}


def check_settings(raw):
    """The page's training form -> settings for ``presets.build_for_dataset`` and ``fit``."""
    if not isinstance(raw, dict):
        raise GlassnetError(f"training settings must be a JSON object. Received: {raw!r}")
    dataset = raw.get("dataset")
    if dataset not in STUDIO_DATASETS:
        raise GlassnetError(f"dataset must be one of {', '.join(STUDIO_DATASETS)}. Received: {dataset!r}")
    settings = dict(presets.DEFAULTS[dataset], dataset=dataset, data_dir=None, checkpoint_every=None,
                    dtype="float32", seed=0)
    for key in ("arch", "optimizer"):
        if raw.get(key) is not None:
            settings[key] = raw[key]
    if settings["arch"] not in presets.ARCHITECTURES or settings["arch"] == "xor":
        raise GlassnetError(f"arch must be one of {', '.join(a for a in presets.ARCHITECTURES if a != 'xor')}. "
                            f"Received: {settings['arch']!r}")
    if settings["optimizer"] not in OPTIMIZERS:
        raise GlassnetError(f"optimizer must be one of {', '.join(OPTIMIZERS)}. Received: {settings['optimizer']!r}")
    for key, (low, high) in LIMITS.items():
        value = raw.get(key, settings[key])
        if type(value) is not int or not low <= value <= high:
            raise GlassnetError(f"{key} must be a whole number in [{low}, {high}]. Received: {value!r}")
        settings[key] = value
    lr = raw.get("lr", settings["lr"])
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr <= 10:
        raise GlassnetError(f"lr must be a number in (0, 10]. Received: {lr!r}")
    settings["lr"] = float(lr)
    schedule = raw.get("schedule") or None
    if schedule not in SCHEDULE_CHOICES:
        raise GlassnetError(f"schedule must be none or one of {', '.join(SCHEDULES)}. Received: {schedule!r}")
    warmup = raw.get("warmup_epochs", 0) or 0
    if type(warmup) is not int or not 0 <= warmup < settings["epochs"]:
        raise GlassnetError(f"warmup_epochs must be a whole number from 0 to epochs - 1. Received: {warmup!r}")
    if warmup and schedule == "plateau":
        raise GlassnetError("warm-up does not combine with the plateau schedule")
    settings.update(schedule=schedule, warmup_epochs=warmup, validation_split=None)
    return settings


class TrainingJob(Callback):
    """``fit`` in a thread. States: loading, running, paused, finished, stopped, failed."""

    def __init__(self, settings, on_done=None):
        self.settings = check_settings(settings)
        self.on_done = on_done
        self.state = "loading"
        self.error = None
        self.model = None
        self.test_accuracy = None
        self.events = []
        self.changed = threading.Condition()
        self.running = threading.Event()   # cleared while paused
        self.running.set()
        self.stop_requested = False
        self.last_filters = 0.0
        self.thread = threading.Thread(target=self._run, name="glassnet-studio-training", daemon=True)

    # -- control (called from request threads) ----------------------------------------------
    def start(self):
        self.thread.start()

    def pause(self):
        if self.state == "running":
            self.running.clear()
            self._set_state("paused")
        return self.status()

    def resume(self):
        if self.state == "paused":
            self._set_state("running")
            self.running.set()
        return self.status()

    def stop(self):
        self.stop_requested = True
        self.running.set()
        return self.status()

    def join(self, timeout=None):
        self.thread.join(timeout)

    def finished(self):
        return self.state in ("finished", "stopped", "failed")

    def status(self):
        return {"state": self.state, "settings": self.settings, "error": self.error, "events": len(self.events),
                "test_accuracy": self.test_accuracy}

    # -- events ---------------------------------------------------------------------------------
    def _publish(self, event):
        with self.changed:
            event["seq"] = len(self.events) + 1
            self.events.append(event)
            self.changed.notify_all()

    def _set_state(self, state, **extra):
        # the event first: a reader that sees the new state has its event too (see app.event_stream)
        self._publish({"type": "state", "state": state, **extra})
        self.state = state

    def events_after(self, seq):
        """Events numbered above ``seq`` (a list, possibly empty)."""
        with self.changed:
            return self.events[seq:]

    # -- the thread -------------------------------------------------------------------------------
    def _run(self):
        try:
            settings = self.settings
            dataset = datasets.load(settings["dataset"])
            self.model = presets.build_for_dataset(dataset, settings)
            self._set_state("running", description=dataset.description, layers=[repr(l) for l in self.model.layers],
                            class_names=dataset.class_names)
            self._publish_filters(force=True)
            tools = fit_arguments(self.model, settings, len(dataset.y_train))     # the test set validates
            listeners = [self, *tools.pop("callbacks")]
            self.model.fit(dataset.x_train, dataset.y_train, epochs=settings["epochs"],
                           batch_size=settings["batch_size"], seed=settings["seed"], **tools,
                           validation_data=(dataset.x_test, dataset.y_test), verbose=False,
                           callbacks=listeners, augment=settings.get("augment"))
            self._publish_filters(force=True)
            _, self.test_accuracy = self.model.evaluate(dataset.x_test, dataset.y_test, loss=settings["loss"])
            self._set_state("stopped" if self.stop_requested else "finished", test_accuracy=self.test_accuracy)
        except Exception as error:  # reported to the page; the server goes on
            self.error = str(error) if isinstance(error, GlassnetError) else f"{type(error).__name__}: {error}"
            self._set_state("failed", error=self.error)
        if self.on_done is not None:
            self.on_done(self)

    def on_batch_end(self, event):
        self._publish({"type": "batch", "epoch": event.epoch, "batch": event.batch, "batches": event.batches,
                       "loss": event.loss, "accuracy": event.accuracy, "grad_norms": event.grad_norms,
                       "dead_relu": event.dead_relu, "lr": event.lr})
        self._publish_filters()
        self.running.wait()                # blocks here while paused
        if self.stop_requested:
            raise StopTraining

    def on_epoch_end(self, event):
        history = event.history
        self._publish({"type": "epoch", "epoch": event.epoch, "epochs": event.epochs,
                       **{key: history[key][-1] for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr")}})

    def _publish_filters(self, force=False):
        """The first Conv2D's weights (out, in, kh, kw), at most every FILTER_INTERVAL seconds."""
        now = time.monotonic()
        if not force and now - self.last_filters < FILTER_INTERVAL:
            return
        self.last_filters = now
        for index, layer in enumerate(self.model.layers):
            if type(layer).__name__ == "Conv2D":
                self._publish({"type": "filters", "layer": index, "weight": encode(layer.params["weight"])})
                return
