"""fit's listeners: batch and epoch events, StopTraining, and the progress bar as one of them."""
import sys
import types

import numpy as np
import pytest

import glassnet as gn


def small_problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((50, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    model = gn.Sequential([gn.Dense(4, 8, rng=1), gn.ReLU(), gn.Dense(8, 2, rng=2)])
    return model, x, y


class Recorder(gn.Callback):
    def __init__(self):
        self.batches, self.epochs = [], []

    def on_batch_end(self, event):
        self.batches.append(event)

    def on_epoch_end(self, event):
        self.epochs.append(event)


def test_events_follow_every_batch_and_epoch():
    model, x, y = small_problem()
    recorder = Recorder()
    history = model.fit(x, y, epochs=3, batch_size=16, lr=0.1, seed=0, verbose=False, callbacks=[recorder])
    assert [(e.epoch, e.batch) for e in recorder.batches] == [(k, b) for k in (1, 2, 3) for b in (1, 2, 3, 4)]
    assert [e.samples_seen for e in recorder.batches[:4]] == [16, 32, 48, 50]
    assert all(e.batches == 4 for e in recorder.batches)
    assert [e.epoch for e in recorder.epochs] == [1, 2, 3]
    # the epoch loss is the sample-weighted mean of its batch losses
    first = recorder.batches[:4]
    weighted = sum(e.loss * n for e, n in zip(first, (16, 16, 16, 2))) / 50
    assert history["loss"][0] == pytest.approx(weighted, rel=1e-12)
    assert set(first[0].grad_norms) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert set(first[0].dead_relu) == {"1"}
    assert history["grad_norms"]["0.weight"][0] == pytest.approx(
        np.mean([e.grad_norms["0.weight"] for e in first]), rel=1e-12)


def test_listeners_do_not_change_the_result():
    plain, x, y = small_problem()
    listened, _, _ = small_problem()
    plain.fit(x, y, epochs=2, batch_size=8, lr=0.1, seed=3, verbose=False)
    listened.fit(x, y, epochs=2, batch_size=8, lr=0.1, seed=3, verbose=False, callbacks=[Recorder()])
    for a, b in zip(plain.layers, listened.layers):
        for key in a.params:
            np.testing.assert_array_equal(a.params[key], b.params[key])


def test_stop_training_ends_after_that_batch_with_its_weights():
    model, x, y = small_problem()
    reference, _, _ = small_problem()

    class StopAtFive(gn.Callback):
        def __init__(self):
            self.seen = 0

        def on_batch_end(self, event):
            self.seen += 1
            if self.seen == 5:
                raise gn.StopTraining

    history = model.fit(x, y, epochs=10, batch_size=16, lr=0.1, seed=0, verbose=False, callbacks=[StopAtFive()])
    assert history["loss"] and len(history["loss"]) == 1         # epoch 1 finished, epoch 2 stopped at batch 1
    assert model.training is False
    # the same five steps by hand: fit draws each epoch's order from the seeded generator
    rng = np.random.default_rng(0)
    first = rng.permutation(50)
    second = rng.permutation(50)
    batches = [first[i:i + 16] for i in range(0, 50, 16)] + [second[:16]]
    loss, optimizer = gn.SoftmaxCrossEntropy(), gn.SGD(reference, lr=0.1)
    for batch in batches:
        loss.forward(reference.forward(x[batch]), y[batch])
        reference.backward(loss.backward())
        optimizer.step()
    for a, b in zip(model.layers, reference.layers):
        for key in a.params:
            np.testing.assert_allclose(a.params[key], b.params[key], rtol=1e-13, atol=1e-15)


def test_a_callback_without_handlers_is_refused():
    model, x, y = small_problem()
    with pytest.raises(gn.GlassnetError, match="every callback needs an on_batch_end or on_epoch_end method"):
        model.fit(x, y, epochs=1, verbose=False, callbacks=[object()])


def test_the_progress_bar_is_a_listener_one_bar_per_epoch(monkeypatch):
    bars = []

    class FakeBar:
        def __init__(self, total, desc, unit, leave):
            self.total, self.desc, self.count, self.closed, self.postfix = total, desc, 0, False, None
            bars.append(self)

        def update(self, n):
            self.count += n

        def set_postfix(self, **values):
            self.postfix = values

        def close(self):
            self.closed = True

    monkeypatch.setitem(sys.modules, "tqdm.auto", types.SimpleNamespace(tqdm=FakeBar))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    model, x, y = small_problem()
    model.fit(x, y, epochs=2, batch_size=16, lr=0.1, seed=0, log=lambda line: None)
    assert [(b.desc, b.total, b.count, b.closed) for b in bars] == [("epoch 1/2", 50, 50, True),
                                                                   ("epoch 2/2", 50, 50, True)]
    assert set(bars[0].postfix) == {"loss", "lr"}                    # the batch loss and the rate in force
