"""Checkpoint and resume, crash-safe saving and the NaN guard, each one a fault injected on purpose."""
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import glassnet as gn
from glassnet.files.serialization import load_checkpoint
from glassnet.training.checkpoint import previous_path
from test_cli import run as glassnet

from checkpoint_setup import SETTINGS, make_data, make_model

TESTS = os.path.dirname(os.path.abspath(__file__))


def run_python(code, cwd):
    """Run ``code`` in a fresh interpreter that can import checkpoint_setup."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")])))
    source = "import glassnet as gn\nfrom checkpoint_setup import SETTINGS, make_data, make_model\n"
    return subprocess.run([sys.executable, "-c", source + textwrap.dedent(code)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)


def weights(model):
    return [value for layer in model.layers for value in layer.params.values()]


def test_resume_after_a_kill_mid_epoch_ends_with_the_same_weights_bit_for_bit(tmp_path):
    uninterrupted = make_model()
    history = uninterrupted.fit(*make_data(), **SETTINGS)

    # 6 batches per epoch; checkpoints after batches 2 and 4 of each epoch; SIGKILL after step 11
    # (epoch 2, batch 5), so the newest checkpoint is epoch 2 after batch 4
    killed = run_python("""
        import os, signal
        model = make_model()
        optimizer = gn.Adam(model, lr=0.01)
        original_step = optimizer.step
        def step():
            original_step()
            if optimizer.steps == 11:
                os.kill(os.getpid(), signal.SIGKILL)
        optimizer.step = step
        model.fit(*make_data(), checkpoint="run.ckpt", checkpoint_every=2,
                  **{**SETTINGS, "optimizer": optimizer})
    """, tmp_path)
    assert killed.returncode == -signal.SIGKILL
    saved = load_checkpoint(tmp_path / "run.ckpt")
    assert (saved.progress["epoch"], saved.progress["position"]) == (2, 64)

    resumed = make_model()
    lines = []
    resumed_history = resumed.fit(*make_data(), checkpoint=tmp_path / "run.ckpt", checkpoint_every=2,
                                  resume=True, log=lines.append, **{**SETTINGS, "verbose": True})
    assert "resumed from" in lines[0] and "epoch 2, sample 64" in lines[0]
    for mine, reference in zip(weights(resumed), weights(uninterrupted)):
        assert np.array_equal(mine, reference)
    assert resumed_history == history


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    path = tmp_path / "run.ckpt"
    make_model().fit(*make_data(), checkpoint=path, **SETTINGS)
    assert previous_path(path).exists()
    path.write_bytes(path.read_bytes()[:500])  # truncated, as by a full disk
    checkpoint = load_checkpoint(path)
    assert checkpoint.path == previous_path(path) and "latest checkpoint unusable" in checkpoint.note
    assert checkpoint.progress["epoch"] == 3  # written at the end of epoch 2


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    path = tmp_path / "run.ckpt"
    make_model().fit(*make_data(), checkpoint=path, **SETTINGS)
    with pytest.raises(gn.GlassnetError, match="batch_size=16"):
        make_model().fit(*make_data(), checkpoint=path, resume=True, **{**SETTINGS, "batch_size": 8})
    other = gn.Sequential([gn.Flatten(), gn.Dense(64, 3, rng=0)])
    with pytest.raises(gn.GlassnetError, match="different architecture"):
        other.fit(*make_data(), checkpoint=path, resume=True, **SETTINGS)


def test_nan_injected_into_a_weight_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    path = tmp_path / "run.ckpt"
    model = make_model()
    optimizer = gn.Adam(model, lr=0.01)
    original_step = optimizer.step

    def step():
        original_step()
        if optimizer.steps == 9:  # epoch 2, batch 3
            model.layers[5].params["weight"][0, 0] = np.nan

    optimizer.step = step
    with pytest.raises(gn.TrainingDivergedError, match="loss became nan at epoch 2, batch 4") as error:
        model.fit(*make_data(), checkpoint=path, checkpoint_every=2, **{**SETTINGS, "optimizer": optimizer})
    assert f"last good checkpoint is {path}" in str(error.value)
    saved = load_checkpoint(path)
    assert (saved.progress["epoch"], saved.progress["position"]) == (2, 32) and not saved.note
    assert all(np.all(np.isfinite(w)) for w in weights(saved.model))


def test_a_huge_learning_rate_stops_cleanly_at_the_first_non_finite_loss(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 5)), rng.standard_normal((64, 1)) * 100
    model = gn.Sequential([gn.Dense(5, 16, rng=0), gn.ReLU(), gn.Dense(16, 1, rng=1)])
    path = tmp_path / "reg.ckpt"
    with pytest.raises(gn.TrainingDivergedError, match=r"loss became (inf|nan) at epoch \d+, batch \d+; the "
                                                       r"learning rate 1e\+06 is likely too high"):
        model.fit(x, y, loss="mse", optimizer="sgd", lr=1e6, epochs=50, batch_size=8, checkpoint=path, seed=0,
                  verbose=False, divergence_check=False)     # the NaN/Inf guard alone
    if path.exists():  # whatever was written before the blow-up is finite and loadable
        assert all(np.all(np.isfinite(w)) for w in weights(load_checkpoint(path).model))


def test_a_nan_gradient_is_reported_with_its_layer():
    model = make_model()
    dense = model.layers[5]
    original_backward = dense.backward

    def backward(dy):
        dx = original_backward(dy)
        dense.grads["bias"][1] = np.inf
        return dx

    dense.backward = backward
    with pytest.raises(gn.TrainingDivergedError, match=r"gradient at epoch 1, batch 1 in 5.bias \(Dense\)"):
        model.fit(*make_data(), **SETTINGS)


def test_a_save_killed_halfway_leaves_the_old_file_and_the_next_save_cleans_up(tmp_path):
    path = tmp_path / "model.glassnet"
    gn.save(make_model(), path)
    before = path.read_bytes()
    killed = run_python("""
        import os, signal
        import numpy as np
        original = np.lib.format.write_array
        written = []
        def write_array(*args, **kwargs):
            written.append(1)
            if len(written) == 3:  # header and first array written, then the process dies
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)
        np.lib.format.write_array = write_array
        gn.save(make_model(), "model.glassnet")
    """, tmp_path)
    assert killed.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    gn.load(path)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model.glassnet"]
    assert leftovers and all(name.startswith(".model.glassnet.") for name in leftovers)  # the kill's temp file
    gn.save(make_model(), path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.glassnet"]


def test_a_save_that_fails_halfway_leaves_the_old_file_and_nothing_else(tmp_path, monkeypatch):
    path = tmp_path / "model.glassnet"
    gn.save(make_model(), path)
    before = path.read_bytes()
    calls = []

    def failing_write_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return original(*args, **kwargs)

    original = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="No space left"):
        gn.save(make_model(), path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["model.glassnet"]



def test_cli_resume_carries_on_with_the_runs_own_settings(tmp_path):
    first = glassnet("train", "--dataset", "iris", "--epochs", "6", "--checkpoint", "run.ckpt", "--quiet",
                     "--out", "a.glassnet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    shutil.copy(tmp_path / "run.ckpt.prev", tmp_path / "half.ckpt")       # written after epoch 5 of 6
    resumed = glassnet("train", "--resume", "half.ckpt", "--out", "b.glassnet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from half.ckpt: epoch 6, sample 0" in resumed.stdout
    assert resumed.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]
    for a, b in zip(weights(gn.load(tmp_path / "a.glassnet")), weights(gn.load(tmp_path / "b.glassnet"))):
        assert np.array_equal(a, b)


def test_cli_divergence_exits_1_with_one_line(tmp_path):
    result = glassnet("train", "--dataset", "boston", "--optimizer", "sgd", "--lr", "1e6", "--quiet",
                      "--checkpoint", "run.ckpt", "--out", "m.glassnet", "--no-divergence-check", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "loss became inf at epoch 1" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "m.glassnet").exists()
