"""Listeners of ``fit``: called at the end of every batch and every epoch.

A listener is any object with ``on_batch_end(event)`` and/or ``on_epoch_end(event)``
(subclass ``Callback`` to get no-op defaults). The studio's live view is one; a listener
may block (to pause training) or raise ``StopTraining`` (to end it after the current
batch, keeping the weights as they are and returning the history so far).

>>> class Printer(gn.Callback):
...     def on_epoch_end(self, event):
...         print(f"epoch {event.epoch} of {event.epochs} done")
>>> model = gn.Sequential([gn.Dense(2, 2, rng=0)])
>>> history = model.fit(np.zeros((4, 2)), np.array([0, 1, 0, 1]), epochs=2, verbose=False, callbacks=[Printer()])
epoch 1 of 2 done
epoch 2 of 2 done
"""
from dataclasses import dataclass, field


class StopTraining(Exception):
    """Raised by a listener to end ``fit`` cleanly after the current batch."""


@dataclass
class BatchEnd:
    """What one training step did.

    epoch, batch : 1-based; batches : batches per epoch
    samples_seen : samples trained on so far in this epoch
    loss : the batch's mean loss; accuracy : the batch's accuracy (None for regression)
    grad_norms : parameter name ("0.weight") -> L2 norm of its gradient in this batch
    dead_relu : ReLU layer index ("1") -> fraction of its units that output 0 for the whole batch
    model : the model being trained (read it, do not change it)
    lr : the learning rate this step used
    """
    epoch: int
    batch: int
    batches: int
    samples_seen: int
    loss: float
    accuracy: float
    grad_norms: dict = field(default_factory=dict)
    dead_relu: dict = field(default_factory=dict)
    model: object = None
    lr: float = None


@dataclass
class EpochEnd:
    """One finished epoch: its number (1-based), the epoch count and the history so far."""
    epoch: int
    epochs: int
    history: dict
    model: object = None


class Callback:
    """Base class with no-op handlers; override the events you need."""

    def on_batch_end(self, event):
        pass

    def on_epoch_end(self, event):
        pass


def notify(listeners, handler, event):
    """Call ``handler`` (an event method name) on every listener that has it."""
    for listener in listeners:
        method = getattr(listener, handler, None)
        if method is not None:
            method(event)
