"""The benchmark runs end to end (smoke mode) and compares identical networks.

Speed is never asserted here: figures come from ``glassnet bench`` (see README, Performance).
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from glassnet.apps import cli
from glassnet.apps.benchmark.cases import CASES, batch
from glassnet.files.torch_convert import to_torch
from glassnet.apps.benchmark.seed_loops import SeedStyleNet
from glassnet.models.presets import build


@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_twin_computes_the_same_outputs(name):
    model = build(CASES[name].arch, (1, 28, 28), 10, seed=3)
    x, _ = batch(CASES[name], np.float64, batch_size=4)
    twin = to_torch(model).double()
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-10, atol=1e-12)


def test_seed_style_loops_learn_one_image():
    net = SeedStyleNet(seed=0)
    image = np.random.default_rng(1).random((28, 28))
    losses = [net.train_step(image, 7, lr=0.05) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]


def test_bench_smoke_run_writes_json_and_markdown(tmp_path, capsys):
    assert cli.main(["bench", "--smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    for name in CASES:
        for kind in ("train", "infer"):
            for framework in ("glassnet", "pytorch"):
                assert report["cases"][name][kind][framework]["median"] > 0
    assert report["environment"]["threads"] == 2
    assert report["seed_loops_img_s"] > 0
    markdown = (tmp_path / "bench.md").read_text()
    assert "| simple | 100 |" in markdown and "SMOKE RUN" in markdown
    assert set(report["threads"]["lenet"]) == {"1", "2"} and "against threads" in markdown
    assert markdown in capsys.readouterr().out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_bench_times_inference_in_evaluation_mode_on_both_sides(monkeypatch):
    """The inference figure is taken as a user infers: glassnet's model and PyTorch's twin in evaluation
    (BatchNorm on its running statistics), the training figure in training."""
    from glassnet.apps.benchmark import cases, measure
    run = importlib.import_module("glassnet.apps.benchmark.run")
    modes = []
    trainer = cases.glassnet_trainer

    def recording_trainer(case, dtype, seed=0):
        model, train_step, infer = trainer(case, dtype, seed)
        return (model, lambda x, y: modes.append(("train", model.training)) or train_step(x, y),
                lambda x: modes.append(("infer", model.training)) or infer(x))
    monkeypatch.setattr(run, "glassnet_trainer", recording_trainer)

    def once(steps, n, repeats, seconds):                 # each step run once instead of timed
        for step in steps.values():
            step()
        return {name: {"median": 1.0} for name in steps}
    monkeypatch.setattr(measure, "side_by_side", once)
    run.time_case(CASES["resnet_mini"], np.float32, torch, repeats=1, seconds=0.01, batch_size=4)
    assert modes == [("train", True), ("infer", False)]


def test_bench_rejects_bad_settings(tmp_path, capsys):
    assert cli.main(["bench", "--smoke", "--threads", "0", "--out", str(tmp_path)]) == 1
    assert "--threads" in capsys.readouterr().err


def test_bench_epoch_trains_both_frameworks_on_the_same_order_and_reports_both(tmp_path, capsys):
    """``--epoch``: one epoch each, same initial weights and sample order, so (float32 round-off aside)
    the two test accuracies agree; times are reported, never judged here."""
    assert cli.main(["bench", "--epoch", "mnist5k", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench-epoch.json").read_text())["epoch"]
    assert report["images"] == 4000 and report["batch_size"] == 100
    for framework in ("glassnet", "pytorch"):
        assert report[framework]["seconds"] > 0
    assert abs(report["glassnet"]["accuracy"] - report["pytorch"]["accuracy"]) <= 0.01
    assert report["glassnet"]["accuracy"] > 0.8
    assert "glassnet is" in capsys.readouterr().out


def benchmark_script(name):
    """benchmarks/NAME.py loaded as a module."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_gemm_floor_script_prints_a_row_per_setting(capsys):
    """benchmarks/floor.py (the matrix products of a step, timed beside PyTorch) runs on glassnet's current API."""
    benchmark_script("floor").main(["--repeats", "1", "lenet:8"])
    row = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert row[:2] == ["lenet", "8"] and len(row) == 9
    assert all(float(figure) > 0 for figure in row[2:])


def test_gemm_floor_script_times_the_forward_products_for_inference(capsys):
    benchmark_script("floor").main(["--repeats", "1", "--infer", "simple:4"])
    row = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert row[:2] == ["simple", "4"] and all(float(figure) > 0 for figure in row[2:])


def test_large_floor_script_prints_each_kind_of_arithmetic(capsys):
    """benchmarks/large_floor.py: a large net's products (and depthwise taps) beside ONNX Runtime, small here."""
    benchmark_script("large_floor").main(["--batch", "1", "--image-size", "32", "--repeats", "1", "--seconds",
                                          "0.01", "mobilenet_v2", "vgg16"])
    rows = capsys.readouterr().out.strip().splitlines()[-2:]
    mobilenet, vgg = (row.split() for row in rows)
    assert mobilenet[0] == "mobilenet_v2" and vgg[0] == "vgg16"
    assert all(float(figure) > 0 for figure in mobilenet[1:5] + vgg[1:5])
    assert "pointwise" in rows[0] and "depthwise" in rows[0] and "columns" in rows[1] and "dense" in rows[1]


def test_reference_ratios_script_prints_both_speeds_per_setting(capsys):
    benchmark_script("reference_ratios").main(["lenet:2", "simple:3"], repeats=1, seconds=0.01)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [["lenet", "b2"], ["simple", "b3"]]
    assert all(line.count("speed") == 2 and "train: glassnet" in line and "infer: glassnet" in line for line in lines)


def test_toggle_script_times_both_values_and_leaves_the_new_one_set(capsys):
    """benchmarks/toggle.py: one module setting switched in turn inside one process."""
    from glassnet.nn.layers import depthwise
    before = depthwise.BLOCK_VALUES
    try:
        benchmark_script("toggle").main(["glassnet.nn.layers.depthwise.BLOCK_VALUES", "64", "4096",
                                         "lenet:2", "--rounds", "2", "--steps", "1", "--infer"])
        line = capsys.readouterr().out.strip().splitlines()[-1]
        assert line.startswith("lenet:2 inference: glassnet.nn.layers.depthwise.BLOCK_VALUES = 64:")
        assert "= 4096:" in line and float(line.rsplit(" ", 1)[1]) > 0
        assert depthwise.BLOCK_VALUES == 4096
    finally:
        depthwise.BLOCK_VALUES = before
    with pytest.raises(SystemExit):
        benchmark_script("toggle").main(["glassnet.nn.layers.depthwise.NO_SUCH", "1", "2", "lenet:2"])
    assert "has no attribute NO_SUCH" in capsys.readouterr().err


def test_gpu_check_runs_on_the_cpu_and_says_what_it_left_out():
    """benchmarks/gpu_check.py on a machine with no GPU: NumPy rows only, each missing framework named."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    result = subprocess.run([sys.executable, str(script), "--batch-sizes", "8", "--repeats", "1", "--seconds", "0.02"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line for line in lines if " img/s " in line]
    assert [row.split(":")[0] for row in rows] == ["simple b8 train", "simple b8 infer", "lenet b8 train",
                                                   "lenet b8 infer"]
    if "glassnet cupy" not in result.stdout:
        assert any(line.startswith("glassnet on CuPy left out") for line in lines)
    assert all("glassnet numpy" in row and "(1.00x numpy)" in row for row in rows)
