"""``glassnet sweep`` on a local Ray (loopback, no dashboard): eight trials on digits with ASHA, the
table, CSV and JSON, the best model loadable with the accuracy the table gives, a trial that diverges
reported as failed, an interrupted sweep resumed, and nothing written outside --out."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import glassnet as gn

pytest.importorskip("ray", reason="glassnet sweep needs ray[tune] (the test extra installs it)")

SWEEP = ["sweep", "--dataset", "digits", "--arch", "lenet,mlp", "--lr", "0.01,100000", "--optimizer", "adam,sgd",
         "--epochs", "3", "--scheduler", "asha", "--parallel", "2"]


def command(out):
    return [sys.executable, "-m", "glassnet.apps.cli", *SWEEP, "--out", str(out)]


def isolated_env(home):
    return {**os.environ, "HOME": str(home)}          # anything Ray writes to ~ would show up here


def test_a_sweep_reports_every_trial_and_keeps_the_best_model(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    result = subprocess.run(command(out), capture_output=True, text=True, timeout=600, env=isolated_env(home),
                            cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = json.loads((out / "results.json").read_text())
    with open(out / "results.csv") as handle:
        assert list(csv.DictReader(handle)) == [{k: ("" if v is None else str(v)) for k, v in row.items()
                                                 if k != "curve"} for row in rows]
    assert len(rows) == 8
    accuracies = [row["val_accuracy"] for row in rows if row["val_accuracy"] is not None]
    assert accuracies == sorted(accuracies, reverse=True)
    statuses = [row["status"] for row in rows]
    assert any(s.startswith("failed: ") and "TrainingDivergedError" in s for s in statuses), statuses
    assert "stopped early" in statuses, statuses                       # ASHA cut at least one trial short
    assert any(s == "done" for s in statuses)
    for row in rows:                                                   # each trial's validation curve, per epoch
        assert len(row["curve"]) == row["epochs_run"] and (not row["curve"] or row["curve"][-1] == row["val_accuracy"])
    assert "epoch 3  val acc" in result.stdout                          # reported while the trials train
    best = rows[0]
    assert best["status"] == "done" and f"{best['val_accuracy']:.4f}" in result.stdout
    data = gn.datasets.digits()
    model = gn.load(out / "best.glassnet")
    assert model.evaluate(data.x_test, data.y_test)[1] == pytest.approx(best["val_accuracy"], abs=1e-12)
    assert list(home.iterdir()) == []                                   # no ~/.ray, no ~/ray_results


def test_an_interrupted_sweep_resumes(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    process = subprocess.Popen(command(out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=isolated_env(home), cwd=tmp_path)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list((out / "sweep").glob("*/result.json"))) < 3:
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)                                  # Ctrl-C: Tune saves its state and stops
    process.communicate(timeout=120)                                    # (it reports what it has so far)
    resumed = subprocess.run(command(out), capture_output=True, text=True, timeout=600, env=isolated_env(home),
                             cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming the sweep" in resumed.stdout
    rows = json.loads((out / "results.json").read_text())
    assert len(rows) == 8
    statuses = [row["status"] for row in rows]
    assert "done" in statuses and any("TrainingDivergedError" in s for s in statuses), statuses
    assert "not run" not in statuses, statuses                         # the trials pending at Ctrl-C ran
    assert (out / "best.glassnet").exists()
    assert list(home.iterdir()) == []


def test_bad_sweep_settings_are_one_line():
    result = subprocess.run([sys.executable, "-m", "glassnet.apps.cli", "sweep", "--dataset", "digits", "--arch", "nope",
                             "--lr", "0.1", "--epochs", "1", "--out", "x"], capture_output=True, text=True)
    assert result.returncode == 1 and "unknown architecture" in result.stderr and "Traceback" not in result.stderr


def test_toolkit_axes_make_trials_of_their_own(tmp_path):
    """--schedule none,onecycle x --label-smoothing 0,0.1: four trials, each named by its toolkit in the
    table and in the results."""
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    arguments = ["sweep", "--dataset", "digits", "--arch", "lenet", "--lr", "0.003", "--optimizer", "adamw",
                 "--schedule", "none,onecycle", "--label-smoothing", "0,0.1", "--clip-norm", "5", "--epochs", "2",
                 "--parallel", "2",
                 "--out", str(out)]
    result = subprocess.run([sys.executable, "-m", "glassnet.apps.cli", *arguments], capture_output=True, text=True,
                            timeout=600, env=isolated_env(home), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = json.loads((out / "results.json").read_text())
    assert {(row["schedule"], row["label_smoothing"]) for row in rows} == {
        (None, 0.0), (None, 0.1), ("onecycle", 0.0), ("onecycle", 0.1)}
    assert all(row["status"] == "done" and row["clip_norm"] == 5.0 for row in rows)
    assert "onecycle, smoothing 0.1, clip 5" in result.stdout and "toolkit" in result.stdout
