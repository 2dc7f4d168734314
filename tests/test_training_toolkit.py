"""The training toolkit inside fit: schedules stepped per batch or per epoch (the rates in the history equal
PyTorch's schedule on the same steps), gradient clipping in the step (equal to clipping by hand), a
stratified validation split, early stopping with the best weights restored (evaluate after fit equals the
best validation loss), and a checkpointed run with a schedule killed and resumed equal bit for bit."""
import signal

import numpy as np
import pytest
import torch

import glassnet as gn
from checkpoint_setup import SETTINGS, make_data, make_model
from test_checkpoint import run_python, weights


def test_fit_steps_a_one_cycle_per_batch_and_a_cosine_per_epoch_as_pytorch():
    x, y = make_data()                                           # 90 samples, batch 16: 6 batches per epoch
    for make, step, count in (
            (lambda opt: gn.schedules.OneCycleLR(opt, max_lr=0.05, total_steps=18), "batch", 18),
            (lambda opt: gn.schedules.CosineAnnealingLR(opt, T_max=3, eta_min=0.001), "epoch", 3)):
        model = make_model()
        opt = gn.SGD(model, lr=0.01, momentum=0.9)
        history = model.fit(x, y, epochs=3, batch_size=16, optimizer=opt, schedule=make(opt), seed=0,
                            verbose=False)
        reference = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01, momentum=0.9)
        torch_schedule = (torch.optim.lr_scheduler.OneCycleLR(reference, max_lr=0.05, total_steps=18)
                          if step == "batch" else
                          torch.optim.lr_scheduler.CosineAnnealingLR(reference, T_max=3, eta_min=0.001))
        expected = []
        for index in range(18):
            expected.append(reference.param_groups[0]["lr"])
            reference.step()
            if step == "batch" and index < 17 or step == "epoch" and index % 6 == 5:
                torch_schedule.step()
        np.testing.assert_allclose(history["lr_batches"], expected, rtol=1e-12)
        assert history["lr"] == [history["lr_batches"][k] for k in (5, 11, 17)]
        assert len({round(r, 15) for r in history["lr_batches"]}) == count


def test_clipping_in_fit_equals_clipping_by_hand():
    x, y = make_data()
    model = make_model().eval()                                   # no dropout: the same step both ways
    by_hand = make_model().eval()
    model.fit(x[:16], y[:16], epochs=1, batch_size=16, optimizer=gn.SGD(model, lr=0.1), clip_grad_norm=0.05,
              shuffle=False, verbose=False)
    loss = gn.SoftmaxCrossEntropy()
    by_hand.train()
    loss.forward(by_hand.forward(x[:16]), y[:16])
    by_hand.backward(loss.backward())
    norm = gn.clip_grad_norm(by_hand, 0.05)
    assert norm > 0.05                                            # it did clip
    gn.SGD(by_hand, lr=0.1).step()
    for mine, reference in zip(weights(model), weights(by_hand)):
        np.testing.assert_allclose(mine, reference, rtol=1e-13, atol=1e-15)


def test_validation_split_is_stratified_seeded_and_refuses_bad_fractions():
    from glassnet.training.toolkit import split_validation
    y = np.repeat(np.arange(4), [50, 30, 15, 5])
    x = np.arange(len(y), dtype=float)[:, None]
    x_train, y_train, x_val, y_val = split_validation(x, y, 0.2, seed=3)
    assert np.bincount(y_val).tolist() == [10, 6, 3, 1]                     # each class keeps its share
    assert sorted(np.concatenate([x_train, x_val]).ravel().tolist()) == x.ravel().tolist()   # a partition
    again = split_validation(x, y, 0.2, seed=3)
    assert np.array_equal(again[2], x_val)                                   # the same split for the same seed
    for bad in (0, 1.0, -0.2, "half", float("nan")):
        with pytest.raises(gn.GlassnetError, match=r"validation_split must be a number in \(0, 1\)"):
            split_validation(x, y, bad, seed=0)
    with pytest.raises(gn.GlassnetError, match="give validation_data or validation_split, not both"):
        make_model().fit(*make_data(), validation_split=0.2, validation_data=make_data(), verbose=False)


def overfitting_run(patience):
    """An MLP on 40 digits, tested on 300 more: the validation loss falls, then climbs as it memorises."""
    digits = gn.datasets.digits()
    x_train, y_train = digits.x_train[:40], digits.y_train[:40]
    x_val, y_val = digits.x_train[40:340], digits.y_train[40:340]
    model = gn.Sequential([gn.Flatten(), gn.Dense(64, 256, rng=0), gn.ReLU(), gn.Dense(256, 10, rng=1)])
    stop = gn.EarlyStopping(monitor="val_loss", patience=patience)
    history = model.fit(x_train, y_train, epochs=60, batch_size=8, optimizer="adam", lr=0.01, seed=0,
                        validation_data=(x_val, y_val), callbacks=[stop], verbose=False)
    return model, stop, history, (x_val, y_val)


def test_early_stopping_stops_an_overfitting_run_and_restores_the_best_weights():
    model, stop, history, (x_val, y_val) = overfitting_run(patience=3)
    losses = history["val_loss"]
    best = int(np.argmin(losses))
    assert stop.stopped_epoch == len(losses) < 60                     # stopped early...
    assert stop.best_epoch == best + 1 and stop.stopped_epoch == stop.best_epoch + 4   # ...patience 3 after best
    assert min(losses[best + 1:]) > losses[best]                      # the validation loss really rose
    val_loss, _ = model.evaluate(x_val, y_val)
    assert val_loss == pytest.approx(losses[best], rel=1e-12)        # the best epoch's weights are back


def test_early_stopping_arguments_and_nan_metrics():
    for kwargs, message in (({"monitor": "val_acc"}, "monitor must be one of"),
                            ({"patience": -1}, "patience must be an int >= 0"),
                            ({"min_delta": -0.1}, "min_delta must be a finite number >= 0")):
        with pytest.raises(gn.GlassnetError, match=f"EarlyStopping: {message}"):
            gn.EarlyStopping(**kwargs)
    stop = gn.EarlyStopping(monitor="loss", patience=5)
    model = make_model()
    for epoch, value in enumerate([1.0, float("nan"), 0.5], start=1):
        stop.on_epoch_end(gn.EpochEnd(epoch, 10, {"loss": [value]}, model))
    assert (stop.best, stop.best_epoch, stop.waited) == (0.5, 3, 0)
    with pytest.raises(gn.GlassnetError, match="needs validation data"):
        make_model().fit(*make_data(), epochs=1, callbacks=[gn.EarlyStopping()], verbose=False)


def test_a_schedule_for_another_optimizer_is_refused():
    model = make_model()
    other = gn.SGD(make_model(), lr=0.1)
    with pytest.raises(gn.GlassnetError, match="the schedule belongs to another optimizer"):
        model.fit(*make_data(), optimizer=gn.SGD(model, lr=0.1), schedule=gn.schedules.StepLR(other, 1),
                  verbose=False)
    opt = gn.SGD(model, lr=0.1)
    with pytest.raises(gn.GlassnetError, match="ReduceLROnPlateau steps per epoch"):
        model.fit(*make_data(), optimizer=opt, schedule=gn.schedules.ReduceLROnPlateau(opt), schedule_step="batch",
                  verbose=False)
    with pytest.raises(gn.GlassnetError, match="clip_grad_norm must be a number > 0"):
        model.fit(*make_data(), optimizer=opt, clip_grad_norm=0, verbose=False)


@pytest.mark.parametrize("kind", ["onecycle", "plateau"])
def test_a_killed_run_with_a_schedule_resumes_to_the_uninterrupted_weights_bit_for_bit(tmp_path, kind):
    """AdamW with one-cycle (per batch, beta1 cycled) or SGD with ReduceLROnPlateau (per epoch) and clipping;
    killed at step 11 (epoch 2, batch 5; newest checkpoint: epoch 2 after batch 4), then resumed."""
    make = {"onecycle": """
        def make_optimizer(model):
            opt = gn.AdamW(model, lr=0.01, weight_decay=0.05)
            return opt, gn.schedules.OneCycleLR(opt, max_lr=0.03, total_steps=18)
        """, "plateau": """
        def make_optimizer(model):
            opt = gn.SGD(model, lr=0.05, momentum=0.9)
            return opt, gn.schedules.ReduceLROnPlateau(opt, patience=0, factor=0.5, threshold=0.5)
        """}[kind]
    namespace = {"gn": gn}
    exec(make.replace("\n        ", "\n"), namespace)
    uninterrupted = make_model()
    opt, schedule = namespace["make_optimizer"](uninterrupted)
    settings = {**SETTINGS, "clip_grad_norm": 0.5}
    history = uninterrupted.fit(*make_data(), **{**settings, "optimizer": opt}, schedule=schedule)
    killed = run_python(make + """
        import os, signal
        model = make_model()
        optimizer, schedule = make_optimizer(model)
        original_step = optimizer.step
        def step():
            original_step()
            if optimizer.steps == 11:
                os.kill(os.getpid(), signal.SIGKILL)
        optimizer.step = step
        model.fit(*make_data(), checkpoint="run.ckpt", checkpoint_every=2, schedule=schedule,
                  **{**SETTINGS, "clip_grad_norm": 0.5, "optimizer": optimizer})
    """, tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = make_model()
    opt_b, schedule_b = namespace["make_optimizer"](resumed)
    resumed_history = resumed.fit(*make_data(), checkpoint=tmp_path / "run.ckpt", checkpoint_every=2, resume=True,
                                  schedule=schedule_b, **{**settings, "optimizer": opt_b})
    for mine, reference in zip(weights(resumed), weights(uninterrupted)):
        assert np.array_equal(mine, reference)
    assert resumed_history["lr_batches"] == history["lr_batches"] and resumed_history == history
    assert len(set(history["lr_batches"])) > 1                             # the rate did move
