"""glassnet train with the training toolkit: the options reach fit (the header names them, the rates move,
early stopping reports its epoch), a run with a schedule resumed from its checkpoint ends with the
uninterrupted weights, and every bad value is refused in one line before any training."""
import shutil

import numpy as np
import pytest

import glassnet as gn
from test_checkpoint import weights
from test_cli import run as glassnet


def test_train_with_the_whole_toolkit(tmp_path):
    result = glassnet("train", "--dataset", "digits", "--epochs", "5", "--optimizer", "adamw", "--lr", "0.003",
                      "--weight-decay", "0.05", "--schedule", "cosine", "--warmup-epochs", "1", "--clip-norm", "1",
                      "--label-smoothing", "0.1", "--early-stopping", "1", "--out", "m.glassnet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0]
    for words in ("adamw lr 0.003", "weight decay 0.05", "cosine schedule", "1 warm-up epoch(s)",
                  "gradients clipped to norm 1", "label smoothing 0.1", "0.1 held out for validation"):
        assert words in header
    rates = [float(line.split("lr ")[-1]) for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert rates[0] == pytest.approx(0.0003) and rates[1] == pytest.approx(0.003)     # warm-up, then the peak
    assert "early stopping: the best validation loss" in result.stdout
    accuracy = float(result.stdout.splitlines()[-1].split()[-1])
    assert accuracy > 0.9
    training = gn.load(tmp_path / "m.glassnet").metadata["training"]
    assert (training["schedule"], training["warmup_epochs"], training["label_smoothing"]) == ("cosine", 1, 0.1)


@pytest.mark.parametrize("schedule", ["onecycle", "step"])
def test_a_cli_run_with_a_schedule_resumes_to_the_same_weights(tmp_path, schedule):
    first = glassnet("train", "--dataset", "iris", "--epochs", "6", "--optimizer", "momentum", "--lr", "0.05",
                     "--schedule", schedule, "--clip-norm", "2", "--checkpoint", "run.ckpt", "--quiet",
                     "--out", "a.glassnet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    shutil.copy(tmp_path / "run.ckpt.prev", tmp_path / "half.ckpt")       # written after epoch 5 of 6
    resumed = glassnet("train", "--resume", "half.ckpt", "--out", "b.glassnet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from half.ckpt: epoch 6, sample 0" in resumed.stdout
    for a, b in zip(weights(gn.load(tmp_path / "a.glassnet")), weights(gn.load(tmp_path / "b.glassnet"))):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("arguments, message", [
    (["--optimizer", "lamb"], "argument --optimizer: invalid choice: 'lamb'"),
    (["--label-smoothing", "1"], "argument --label-smoothing: must be below 1. Received: 1"),
    (["--validation-split", "0"], "argument --validation-split: must be > 0. Received: 0"),
    (["--clip-norm", "0"], "argument --clip-norm: must be > 0. Received: 0"),
    (["--weight-decay", "-1"], "argument --weight-decay: must be >= 0. Received: -1"),
    (["--early-stopping", "-2"], "argument --early-stopping: must be >= 0. Received: -2"),
    (["--schedule", "cyclic"], "argument --schedule: invalid choice: 'cyclic'"),
    (["--warmup-epochs", "3", "--epochs", "3"], "--warmup-epochs 3 must be fewer than the 3 epochs"),
    (["--schedule", "plateau", "--warmup-epochs", "1"], "--warmup-epochs does not combine with --schedule plateau"),
])
def test_bad_toolkit_options_are_refused_in_one_line(tmp_path, arguments, message):
    result = glassnet("train", "--dataset", "iris", *arguments, "--out", "m.glassnet", cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "m.glassnet").exists()


def test_explain_shows_a_clipped_step(tmp_path):
    result = glassnet("explain", "--net", "conv:2:3,relu,flatten,dense:2", "--input", "1x5x5", "--clip-norm", "0.1",
                      "--max-elements", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = next(text for text in result.stdout.splitlines() if text.startswith("gradients clipped"))
    words = line.replace(",", "").split()
    before, scale, after = float(words[words.index("was") + 1]), float(words[words.index("=") + 1]), float(words[-1])
    assert before > 0.1 and after == pytest.approx(0.1, rel=1e-5)             # clipped to the limit
    assert scale == pytest.approx(0.1 / (before + 1e-6), rel=1e-7) and after == pytest.approx(before * scale, rel=1e-7)
    model = gn.Sequential([gn.Dense(3, 2, rng=0)])                            # in Python, the same record
    record = gn.trace(model, np.ones((1, 3)), np.array([1]), gn.SoftmaxCrossEntropy(), optimizer=gn.SGD(model),
                      clip_norm=1e-3)
    assert record.clipping[0] > 1e-3 and record.clipping[1] == pytest.approx(1e-3, rel=1e-3)
    assert "gradients clipped to total norm 0.001" in record.text()
