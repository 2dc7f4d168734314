"""A newcomer's first hour (issue 23): nothing lost at save time, argument errors before the work and in
one line, defaults in the help, a diverging run stopped, every readable image answered, the input shape
remembered, colour inputs drawn in colour, MPI ranks sized to the cores."""
import argparse
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.apps import cli
from glassnet.apps.parser import build_parser
from glassnet.see import plots
from glassnet.training import distributed, replicas


def glassnet(*args, cwd):
    return subprocess.run([sys.executable, "-m", "glassnet.apps.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def picture(path, grey=False):
    from PIL import Image
    pixels = np.random.default_rng(0).integers(0, 256, size=(28, 28) if grey else (28, 28, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


# -- 1. nothing lost --------------------------------------------------------------------------------

def test_train_makes_the_missing_folder_of_out(tmp_path):
    result = glassnet("train", "--dataset", "iris", "--epochs", "2", "--quiet", "--out", "new/sub/iris.glassnet",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert gn.load(tmp_path / "new" / "sub" / "iris.glassnet").metadata["dataset"] == "iris"


@pytest.mark.parametrize("args, expected", [
    (["train", "--dataset", "iris", "--epochs", "2", "--out", "work"], "work is a folder; give a file name"),
    (["train", "--dataset", "iris", "--epochs", "2", "--out", "m.glassnet", "--checkpoint", "work"],
     "work is a folder; give a file name (e.g. work/run.ckpt)"),
    (["train", "--dataset", "iris", "--epochs", "2", "--out", "m.glassnet", "--plots", "file.txt"],
     "file.txt is a file, not a folder"),
])
def test_train_refuses_a_bad_destination_before_any_work(tmp_path, args, expected):
    (tmp_path / "work").mkdir()
    (tmp_path / "file.txt").write_text("x")
    result = glassnet(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""                                   # no header: nothing was trained
    assert result.stderr.strip() == f"glassnet: error: {expected}" or expected in result.stderr
    assert ".tmp" not in result.stderr


def test_a_folder_that_cannot_be_written_is_refused_naming_the_path(tmp_path, monkeypatch):
    from glassnet import atomic
    (tmp_path / "locked").mkdir()
    monkeypatch.setattr(atomic.os, "access", lambda path, mode: Path(path) != tmp_path / "locked")   # as if 0o555
    with pytest.raises(gn.GlassnetError, match=f"cannot write {tmp_path}/locked/m.glassnet: the folder "
                                               f"{tmp_path}/locked is not writable"):
        atomic.writable_file(tmp_path / "locked" / "m.glassnet")


def test_export_onto_a_folder_or_into_a_missing_one(tmp_path):
    gn.save(gn.presets.build("mlp", (4,), 3), tmp_path / "m.glassnet")
    (tmp_path / "work").mkdir()
    onto_folder = glassnet("export", "m.glassnet", "--onnx", "work", cwd=tmp_path)
    assert onto_folder.returncode == 1
    assert onto_folder.stderr.strip() == "glassnet: error: work is a folder; give a file name (e.g. work/model.onnx)"
    into_new = glassnet("export", "m.glassnet", "--onnx", "new/m.onnx", cwd=tmp_path)
    assert into_new.returncode == 0, into_new.stderr
    assert (tmp_path / "new" / "m.onnx").stat().st_size > 0


def test_a_failed_write_names_the_users_path_not_a_temporary_file(tmp_path):
    model = gn.Sequential([gn.Dense(2, 3, rng=0)])
    (tmp_path / "blocked").write_text("a file where a folder should be")
    with pytest.raises(OSError) as raised:
        gn.save(model, tmp_path / "blocked" / "m.glassnet")
    assert raised.value.filename == str(tmp_path / "blocked" / "m.glassnet")
    assert ".tmp" not in str(raised.value)
    with pytest.raises(IsADirectoryError) as raised:
        gn.save(model, tmp_path)
    assert raised.value.filename == str(tmp_path)


def test_a_save_that_fails_after_training_keeps_the_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    real_save = cli.save

    def disk_full_at_out(model, path):
        if str(path) == "m.glassnet":
            raise OSError(28, "No space left on device", "m.glassnet")
        return real_save(model, path)

    monkeypatch.setattr(cli, "save", disk_full_at_out)
    status = cli.main(["train", "--dataset", "iris", "--epochs", "3", "--quiet", "--out", "m.glassnet"])
    error = capsys.readouterr().err.strip()
    assert status == 1
    rescue = tmp_path / "rescued-m.glassnet"
    assert error == (f"glassnet: error: could not save the model to m.glassnet (No space left on device); the "
                     f"trained model was saved to {rescue} instead")
    assert gn.load(rescue).metadata["training"]["epochs"] == 3


# -- 2. MPI sized to the machine --------------------------------------------------------------------

class FakeGroup(distributed.Group):
    """A rank whose machine-mates may use ``others`` (sets of cores); its own cores: sched_getaffinity."""

    def __init__(self, others):
        self.rank, self.size, self.others = 0, 1 + len(others), others

    def cores_of_ranks_here(self):
        return [distributed._usable_cores()] + self.others


@pytest.fixture
def no_thread_settings(monkeypatch):
    for name in distributed.THREAD_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    limits = []
    fake = types.ModuleType("threadpoolctl")
    fake.threadpool_limits = lambda threads, user_api=None: limits.append((threads, user_api))
    monkeypatch.setitem(sys.modules, "threadpoolctl", fake)
    monkeypatch.setattr(replicas, "_threads", None)
    return limits


def test_ranks_sharing_the_same_cores_divide_them(monkeypatch, no_thread_settings):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert FakeGroup(others=[{0, 1, 2, 3}]).share_cores() == 2                 # mpiexec -n 2, nothing bound
    assert no_thread_settings == [(2, "blas")] and replicas.thread_count() == 2
    assert FakeGroup(others=[{0, 1, 2, 3}] * 3).share_cores() == 1             # 4 ranks on this machine
    assert replicas.thread_count() == 1                                        # and no batch split inside
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)   # a container's 2 cores
    assert FakeGroup(others=[{0, 1}]).share_cores() == 1


def test_a_rank_bound_to_its_own_cores_keeps_them_and_a_users_setting_wins(monkeypatch, no_thread_settings):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {2, 3}, raising=False)   # mpiexec -bind-to
    assert FakeGroup(others=[{0, 1}]).share_cores() == 2
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    no_thread_settings.clear()
    assert FakeGroup(others=[{2, 3}]).share_cores() == 3 and no_thread_settings == []


def test_the_mpi_header_says_processes_and_threads(tmp_path):
    from test_distributed import mpiexec
    env = {key: value for key, value in os.environ.items() if key not in distributed.THREAD_SETTINGS}
    result = subprocess.run([mpiexec(), "-n", "2", sys.executable, "-m", "glassnet.apps.cli", "train", "--dataset",
                             "digits", "--epochs", "1", "--distributed", "--out", "m.glassnet"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0]
    usable = len(os.sched_getaffinity(0))
    threads = max(1, usable // 2)
    assert header.endswith(f", 2 processes x {threads} thread{'s' if threads > 1 else ''}"), header


# -- 3. divergence ----------------------------------------------------------------------------------

def exploding_regression():
    """Full-batch gradient descent on least squares with lr far above 2 / (largest curvature): the loss
    grows about 2.4x per step, staying finite for many epochs."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4))
    y = x @ rng.standard_normal((4, 1))
    return gn.Sequential([gn.Dense(4, 1, rng=0)]), x, y


def test_a_finite_but_exploding_loss_stops_training_naming_the_rate():
    model, x, y = exploding_regression()
    with pytest.raises(gn.TrainingDivergedError, match=r"training diverged: the loss grew from .* at epoch \d+, "
                                                       r"batch 1; the learning rate 1.5 is likely too high"):
        model.fit(x, y, epochs=40, batch_size=64, loss="mse", optimizer="sgd", lr=1.5, verbose=False)


def test_the_divergence_check_can_be_turned_off():
    model, x, y = exploding_regression()
    history = model.fit(x, y, epochs=20, batch_size=64, loss="mse", optimizer="sgd", lr=1.5, verbose=False,
                        divergence_check=False)
    assert np.isfinite(history["loss"][-1]) and history["loss"][-1] > 1e5 * history["loss"][0]


def test_a_healthy_run_is_not_stopped():
    model, x, y = exploding_regression()
    history = model.fit(x, y, epochs=20, batch_size=8, loss="mse", optimizer="sgd", lr=0.05, verbose=False)
    assert history["loss"][-1] < history["loss"][0]


def test_the_cli_stops_a_diverging_run_and_saves_nothing(tmp_path):
    result = glassnet("train", "--dataset", "digits", "--lr", "1e6", "--out", "d.glassnet", cwd=tmp_path)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert message.startswith("glassnet: error: fit: training diverged: the loss grew from") and "\n" not in message
    assert "the learning rate 1e+06 is likely too high: try a lower one (--lr); the model was not saved" in message
    assert not (tmp_path / "d.glassnet").exists()


# -- 4. predict answers every readable image --------------------------------------------------------

def test_predict_answers_each_readable_image_and_reports_each_unreadable_one(tmp_path):
    gn.save(gn.presets.build_for_dataset(gn.datasets.digits(), dict(gn.presets.DEFAULTS["digits"], seed=0,
                                                                     dtype="float64")), tmp_path / "m.glassnet")
    picture(tmp_path / "good.png", grey=True)
    (tmp_path / "notes.png").write_text("not an image")
    result = glassnet("predict", "m.glassnet", "good.png", "notes.png", "missing.png", cwd=tmp_path)
    assert result.returncode == 1
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["good.png"]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and errors[0].startswith("glassnet: error: notes.png: not a readable image")
    assert errors[1] == "glassnet: error: missing.png: no such file"
    as_json = glassnet("predict", "m.glassnet", "good.png", "notes.png", "--json", cwd=tmp_path)
    assert as_json.returncode == 1
    entries = json.loads(as_json.stdout)
    assert entries[0]["path"] == "good.png" and "class" in entries[0]
    assert entries[1]["path"] == "notes.png" and entries[1]["error"].startswith("notes.png: not a readable image")


# -- 5. version, defaults, argument errors, a finished run ------------------------------------------

def test_version(tmp_path):
    result = glassnet("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"glassnet {gn.__version__}"


def subcommands(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield name, child
                yield from ((f"{name} {inner}", grandchild) for inner, grandchild in subcommands(child))


def test_every_option_that_takes_a_value_says_its_default_or_is_required():
    silent = []
    for name, parser in subcommands(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0 or action.required:
                continue
            if "default" not in formatter._get_help_string(action):
                silent.append(f"{name} {action.option_strings[0]}")
    assert silent == []


@pytest.mark.parametrize("args, expected", [
    (["train", "--dataset", "digits", "--epochs", "-3", "--out", "m"], "argument --epochs: must be >= 1. Received: -3"),
    (["train", "--dataset", "digits", "--batch-size", "0", "--out", "m"],
     "argument --batch-size: must be >= 1. Received: 0"),
    (["train", "--dataset", "digits", "--lr", "0", "--out", "m"], "argument --lr: must be > 0. Received: 0"),
    (["train", "--dataset", "nope", "--out", "m"], "argument --dataset: invalid choice: 'nope' (choose from"),
    (["predict", "m.glassnet", "a.png", "--top-k", "0"], "argument --top-k: must be >= 1. Received: 0"),
])
def test_argument_errors_come_first_in_one_line(tmp_path, args, expected):
    result = glassnet(*args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_resuming_a_finished_run_says_so(tmp_path):
    first = glassnet("train", "--dataset", "iris", "--epochs", "2", "--quiet", "--out", "m.glassnet",
                     "--checkpoint", "c.ckpt", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = glassnet("train", "--resume", "c.ckpt", "--out", "again.glassnet", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        "c.ckpt holds a finished run: all 2 epochs are done, nothing left to train (to train longer, start a new "
        "run with more --epochs)", "model saved to again.glassnet", first.stdout.splitlines()[-1]]
    assert "resumed" not in again.stdout and "trained in" not in again.stdout
    for a, b in zip(gn.load(tmp_path / "m.glassnet").state_arrays().values(),
                    gn.load(tmp_path / "again.glassnet").state_arrays().values()):
        assert np.array_equal(a, b)


# -- 6. the input shape, once seen --------------------------------------------------------------------

def hand_built():
    return gn.Sequential([gn.Conv2D(1, 2, 3, rng=0), gn.ReLU(), gn.Flatten(), gn.Dense(2 * 6 * 6, 3, rng=1)])


@pytest.mark.parametrize("first_use", ["fit", "predict", "evaluate"])
def test_summary_knows_the_shapes_after_the_model_has_seen_data(first_use, tmp_path):
    model = hand_built()
    assert model.output_shapes() == [None] * 4
    x, y = np.random.default_rng(0).standard_normal((5, 1, 8, 8)), np.array([0, 1, 2, 0, 1])
    {"fit": lambda: model.fit(x, y, epochs=1, verbose=False), "predict": lambda: model.predict(x),
     "evaluate": lambda: model.evaluate(x, y)}[first_use]()
    lines = []
    model.summary(print_fn=lines.append)
    assert "?" not in lines[0] and "(N, 2, 6, 6)" in lines[0] and "(N, 3)" in lines[0]
    gn.save(model, tmp_path / "m.glassnet")
    assert gn.load(tmp_path / "m.glassnet").output_shapes() == [(2, 6, 6), (2, 6, 6), (72,), (3,)]


def test_a_failed_prediction_records_no_shape():
    model = hand_built()
    with pytest.raises(gn.GlassnetError):
        model.predict(np.zeros((2, 1, 9, 8)))        # Dense gets 2 * 7 * 6 features, expects 72
    assert "input_shape" not in model.metadata


# -- 7. inspect's pictures ------------------------------------------------------------------------------

class Axis:
    def __init__(self):
        self.shown = []

    def imshow(self, image, **options):
        self.shown.append((np.asarray(image), options))


def test_colour_inputs_are_drawn_in_colour_and_grey_ones_in_grey():
    colour, grey = Axis(), Axis()
    image = np.zeros((3, 4, 5))
    image[0] = 1.0                                            # pure red
    plots._show_image(colour, image)
    plots._show_image(grey, np.ones((1, 4, 5)))
    (shown, options), = colour.shown
    assert shown.shape == (4, 5, 3) and "cmap" not in options
    assert np.all(shown[..., 0] == 1) and np.all(shown[..., 1:] == 0)
    (shown, options), = grey.shown
    assert shown.shape == (4, 5) and options["cmap"] == "gray"


@pytest.mark.parametrize("draw", ["filters", "feature_maps"])
def test_no_title_overlaps_another(draw, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    figures = []
    real_save = plots._save
    monkeypatch.setattr(plots, "_save", lambda figure, path: (figures.append(figure), real_save(figure, path))[1])
    model = gn.presets.build("colour", (3, 32, 32), 5)
    if draw == "filters":
        plots.filters(model, tmp_path / "f.png")
    else:
        plots.feature_maps(model, np.random.default_rng(0).standard_normal((1, 3, 32, 32)), tmp_path / "m.png")
    figure, = figures
    renderer = figure.canvas.get_renderer()
    boxes = [figure._suptitle.get_window_extent(renderer)]
    boxes += [axis.title.get_window_extent(renderer) for axis in figure.axes if axis.get_title()]
    overlapping = [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
    assert overlapping == []


def test_export_onnx_works_on_a_python_built_model_after_its_first_use(tmp_path):
    pytest.importorskip("onnx")
    model = hand_built()
    with pytest.raises(gn.GlassnetError, match="does not record its input shape"):
        gn.export_onnx(model, tmp_path / "before.onnx")
    model.predict(np.zeros((2, 1, 8, 8)))
    assert gn.export_onnx(model, tmp_path / "after.onnx").stat().st_size > 0
    assert gn.import_onnx(tmp_path / "after.onnx").output_shapes() == model.output_shapes()


@pytest.mark.parametrize("args", [["evaluate", "m.glassnet", "--dataset", "iris", "--plots", "file.txt"],
                                  ["bench", "--smoke", "--no-torch", "--out", "file.txt"],
                                  ["inspect", "m.glassnet", "a.png", "--out", "file.txt"]])
def test_other_commands_check_their_folder_first(tmp_path, args):
    (tmp_path / "file.txt").write_text("x")
    result = glassnet(*args, cwd=tmp_path)           # m.glassnet does not even exist: the folder is checked first
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == "glassnet: error: file.txt is a file, not a folder; give a folder for the output"
