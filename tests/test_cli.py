"""The glassnet command: train/evaluate agree, predict on a drawn digit, exit codes and messages."""
import json
import subprocess
import sys

import pytest
from PIL import Image, ImageDraw

INK, PAPER = (20, 20, 30), (250, 248, 240)


def run(*args, cwd=None):
    """``glassnet ARGS`` in a fresh process (as a user runs it), in folder ``cwd``."""
    return subprocess.run([sys.executable, "-m", "glassnet.apps.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def draw_digit(path, digit):
    """A digit drawn dark on light paper, off-centre, much larger than 28x28."""
    image = Image.new("RGB", (300, 240), PAPER)
    pen = ImageDraw.Draw(image)
    if digit == 0:
        pen.ellipse((170, 40, 250, 190), outline=INK, width=14)
    elif digit == 4:
        pen.line((200, 40, 150, 140), fill=INK, width=14)
        pen.line((150, 140, 250, 140), fill=INK, width=14)
        pen.line((225, 80, 225, 210), fill=INK, width=14)
    image.save(path)
    return path


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    model = folder / "digits.glassnet"
    result = run("train", "--dataset", "digits", "--quiet", "--out", str(model))
    assert result.returncode == 0, result.stderr
    return model, result.stdout


def test_train_then_evaluate_print_the_same_accuracy(digits_model):
    model, train_output = digits_model
    last_line = train_output.strip().splitlines()[-1]
    assert last_line.startswith("test accuracy: ")
    assert float(last_line.split(": ")[1]) >= 0.98
    assert f"model saved to {model}" in train_output
    evaluated = run("evaluate", str(model), "--dataset", "digits")
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.strip().splitlines()[-1] == last_line


def test_predict_reads_a_drawn_digit(digits_model, tmp_path):
    model, _ = digits_model
    zero, four = draw_digit(tmp_path / "zero.png", 0), draw_digit(tmp_path / "four.jpg", 4)
    result = run("predict", str(model), str(zero), str(four))
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert [(path, label) for path, label, _ in lines] == [(str(zero), "0"), (str(four), "4")]
    assert all(0.5 < float(prob) <= 1.0 for _, _, prob in lines)


def test_predict_json_and_top_k(digits_model, tmp_path):
    model, _ = digits_model
    zero = draw_digit(tmp_path / "zero.png", 0)
    result = run("predict", str(model), str(zero), "--json", "--top-k", "3")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert len(records) == 1 and set(records[0]) == {"path", "class", "probability", "top_k"}
    assert records[0]["class"] == "0" and len(records[0]["top_k"]) == 3
    probs = [entry["probability"] for entry in records[0]["top_k"]]
    assert probs == sorted(probs, reverse=True) and probs[0] == records[0]["probability"]


def test_summary_and_datasets(digits_model):
    model, _ = digits_model
    result = run("summary", str(model))
    assert result.returncode == 0 and "total parameters: 22,602" in result.stdout
    listing = run("datasets")
    assert listing.returncode == 0 and "digits\tavailable" in listing.stdout


@pytest.mark.parametrize("make_args, message", [
    (lambda m, t: ["predict", str(t / "missing.glassnet"), "x.png"], "no such model file"),
    (lambda m, t: ["predict", str(m), str(t / "nothing.png")], "no such file"),
    (lambda m, t: ["predict", str(m), str(t / "notes.txt")], "not a readable image"),
    (lambda m, t: ["evaluate", str(t / "notes.txt"), "--dataset", "digits"], "not a glassnet model file"),
    (lambda m, t: ["evaluate", str(m), "--dataset", "iris"], "model expects inputs of shape"),
])
def test_user_errors_exit_1_with_one_line(digits_model, tmp_path, make_args, message):
    model, _ = digits_model
    (tmp_path / "notes.txt").write_text("not an image")
    result = run(*make_args(model, tmp_path))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_help_exits_0_and_bad_usage_exits_2():
    assert run("--help").returncode == 0
    assert run("train", "--help").returncode == 0
    assert run("train", "--dataset", "nope", "--out", "x").returncode == 2
    assert run().returncode == 2
