"""Data-parallel training over MPI (mpiexec from the mpich wheel, mpi4py): N ranks end with the
weights one process ends with on the same global batches (float64, relative 1e-10), with BatchNorm,
with Dropout and for a graph model (a residual block); a resumed MPI run equals an uninterrupted one; a rank killed mid-epoch ends the
run at once with MPI's message and leaves the last checkpoint readable.

Outside CI these tests skip when no ``mpiexec`` is installed; in CI (CI=true) they fail instead.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn

SCRIPT = Path(__file__).with_name("mpi_script.py")


def mpiexec():
    found = shutil.which("mpiexec", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("mpiexec is not installed; the test extra installs mpi4py and mpich")
        pytest.skip("no mpiexec here: pip install 'glassnet[mpi]'")
    return found


def train(tmp_path, name, ranks=None, *options, check=True):
    """Run tests/mpi_script.py (under mpiexec -n ranks when given); returns (weights, history, process)."""
    out = tmp_path / f"{name}.npz"
    command = [sys.executable, str(SCRIPT), str(out), *options]
    if ranks is not None:
        command = [mpiexec(), "-n", str(ranks)] + command + ["--distributed"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    if not out.exists():
        return None, None, result
    saved = np.load(out)
    weights = {key: saved[key] for key in saved.files if key != "history"}
    return weights, json.loads(str(saved["history"])), result


def assert_same_weights(ours, reference, rtol=1e-10):
    assert ours.keys() == reference.keys()
    for key, value in reference.items():
        np.testing.assert_allclose(ours[key], value, rtol=rtol, atol=rtol * np.abs(value).max(), err_msg=key)


@pytest.mark.parametrize("net, ranks, optimizer", [("bn", 2, "momentum"), ("dropout", 2, "adam"), ("plain", 3, "adam"),
                                                   ("graph", 2, "momentum")])
def test_ranks_end_with_the_weights_of_one_process(tmp_path, net, ranks, optimizer):
    one, one_history, _ = train(tmp_path, "one", None, "--net", net, "--optimizer", optimizer)
    many, many_history, _ = train(tmp_path, "many", ranks, "--net", net, "--optimizer", optimizer)
    assert_same_weights(many, one)
    np.testing.assert_allclose(many_history["loss"], one_history["loss"], rtol=1e-10)
    assert many_history["accuracy"] == pytest.approx(one_history["accuracy"], rel=1e-12)
    assert many_history["dead_relu"].keys() == one_history["dead_relu"].keys()
    for key, fractions in one_history["dead_relu"].items():
        np.testing.assert_allclose(many_history["dead_relu"][key], fractions, rtol=1e-12)


def test_a_resumed_mpi_run_equals_an_uninterrupted_one(tmp_path):
    whole, _, _ = train(tmp_path, "whole", 2, "--net", "bn")
    common = ["--net", "bn", "--checkpoint", str(tmp_path / "run.ckpt"), "--checkpoint-every", "5"]
    train(tmp_path, "part", 2, *common, "--stop-at", "1:12")          # stops after batch 12; checkpoint at 10
    assert gn.load_checkpoint(tmp_path / "run.ckpt").progress["position"] == 10 * 32
    resumed, _, _ = train(tmp_path, "resumed", 2, *common, "--resume")
    for key, value in whole.items():
        np.testing.assert_array_equal(resumed[key], value, err_msg=key)


def test_a_rank_killed_mid_epoch_ends_the_run_and_keeps_the_checkpoint(tmp_path):
    common = ["--net", "bn", "--checkpoint", str(tmp_path / "run.ckpt"), "--checkpoint-every", "5"]
    _, _, result = train(tmp_path, "died", 2, *common, "--die-at", "1:12", check=False)   # rank 1: SIGKILL
    assert result.returncode != 0
    assert "BAD TERMINATION" in result.stdout + result.stderr          # mpiexec names the killed process
    saved = gn.load_checkpoint(tmp_path / "run.ckpt")                    # written by rank 0 at batch 10
    assert saved.progress["position"] == 10 * 32 and saved.progress["epoch"] == 1
    assert not (tmp_path / "died.npz").exists()


def test_train_distributed_from_the_command_line_prints_and_writes_once(tmp_path):
    out = tmp_path / "digits.glassnet"
    glassnet = Path(sys.executable).with_name("glassnet")
    result = subprocess.run([mpiexec(), "-n", "2", str(glassnet), "train", "--dataset", "digits", "--distributed",
                             "--epochs", "2", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("test accuracy") == 1 and result.stdout.count("epoch 2/2") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["digits.glassnet"]
    data = gn.datasets.digits()
    assert gn.load(out).evaluate(data.x_test, data.y_test)[1] > 0.5


def test_distributed_in_one_process_is_plain_fit_and_a_device_model_is_refused():
    data = gn.datasets.digits()
    plain, alone = (gn.Sequential([gn.Flatten(), gn.Dense(64, 10, rng=0)]) for _ in range(2))
    plain.fit(data.x_train[:40], data.y_train[:40], epochs=2, batch_size=8, verbose=False, seed=0)
    alone.fit(data.x_train[:40], data.y_train[:40], epochs=2, batch_size=8, verbose=False, seed=0, distributed=True)
    np.testing.assert_array_equal(alone[1].params["weight"], plain[1].params["weight"])
    with pytest.raises(gn.GlassnetError, match="the model must be on NumPy"):
        gn.Sequential([gn.Dense(64, 10, rng=0)]).to(__import__("torch"), "cpu").fit(
            data.x_train[:8].reshape(8, 64), data.y_train[:8], distributed=True, verbose=False)
