"""Colour images end to end: folders trained from the command line, predict on photos, the shapes
accuracy floor, augmentation that helps, and memory bounded by the memory-mapped cache."""
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

import glassnet as gn
from glassnet.data.datasets.folder import image_folder
from glassnet.data.imageset import ImageSet


@pytest.fixture(autouse=True)
def data_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSNET_DATA_DIR", str(tmp_path / "cache"))


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "glassnet.apps.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


def test_the_folder_from_the_issue_trains_from_the_command_line(tmp_path):
    """180 small colour PNGs, three classes of coloured shapes on coloured backgrounds."""
    exported = run("datasets", "export", "shapes", "pictures", "--count", "300", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    for extra in ("star", "cross"):
        shutil.rmtree(tmp_path / "pictures" / extra)
    assert sum(1 for _ in (tmp_path / "pictures").rglob("*.png")) == 180
    trained = run("train", "--dataset", "folder", "--data-dir", "pictures", "--epochs", "3", "--out", "m.glassnet",
                  cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "training colour on image folder pictures (resize 32x32, colour; 144 train / 36 test" in trained.stdout
    assert "test accuracy:" in trained.stdout
    model = gn.load(tmp_path / "m.glassnet")
    assert model.metadata["preprocessing"]["kind"] == "resize" and model.metadata["class_names"] == [
        "circle", "square", "triangle"]


def test_export_refuses_to_overwrite_and_bad_options_are_one_line(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    refused = run("datasets", "export", "shapes", "full", "--count", "10", cwd=tmp_path)
    assert refused.returncode == 1 and "not an empty folder" in refused.stderr
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    bad = run("train", "--dataset", "shapes", "--augment", "spin", "--out", "m", cwd=tmp_path)
    assert bad.returncode == 1 and "augment must name some of shift, flip, rotate, scale" in bad.stderr


def test_predict_on_colour_jpegs_of_a_new_seed_equals_predict_on_the_arrays(tmp_path):
    data = gn.datasets.shapes(n=500, size=32, seed=0)
    model = gn.presets.build_for_dataset(data, dict(gn.presets.DEFAULTS["shapes"], dataset="shapes", dtype="float32",
                                                    seed=0, data_dir=None, checkpoint_every=None))
    model.fit(data.x_train, data.y_train, epochs=4, batch_size=32, optimizer="adam", lr=1e-3, seed=0, verbose=False)
    gn.save(model, tmp_path / "m.glassnet")
    gn.datasets.export_shapes(tmp_path / "new", n=25, size=32, seed=123, image_format="jpeg")
    files = sorted((tmp_path / "new").rglob("*.jpg"))
    reply = run("predict", "m.glassnet", *map(str, files), "--json", cwd=tmp_path)
    assert reply.returncode == 0, reply.stderr
    answers = json.loads(reply.stdout)
    # the same files read as a folder, normalised with the model's statistics
    folder = image_folder(tmp_path / "new", size=(32, 32), test_fraction=0.2)
    record = model.metadata["preprocessing"]
    every = ImageSet(folder.x_train.pixels, record["mean"], record["std"])
    probabilities = model.predict_proba(every)
    order = np.argsort([str(f) for f in files])
    for answer, row in zip(answers, order):
        assert answer["class"] == data.class_names[int(np.argmax(probabilities[row]))]
        assert answer["probability"] == pytest.approx(float(probabilities[row].max()), rel=1e-6)
    Image.open(files[0]).convert("L").save(tmp_path / "grey.png")
    grey = run("predict", "m.glassnet", "grey.png", cwd=tmp_path)
    assert grey.returncode == 0 and "note: grey.png: a grey image, made colour (R = G = B)" in grey.stderr


def test_shapes_reaches_the_accuracy_floor_through_an_exported_folder(tmp_path):
    assert run("datasets", "export", "shapes", "shapes", cwd=tmp_path).returncode == 0
    trained = run("train", "--dataset", "folder", "--data-dir", "shapes", "--augment", "shift,flip,rotate",
                  "--epochs", "25", "--dtype", "float32", "--quiet", "--out", "m.glassnet", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    accuracy = float(trained.stdout.strip().splitlines()[-1].split()[-1])
    print(f"\nshapes (3,000 exported PNGs, 2,400 train / 600 test), colour, 25 epochs with augmentation: "
          f"test accuracy {accuracy:.4f}; {trained.stdout.strip().splitlines()[-2]}")
    assert accuracy >= 0.95


def off_centre_digits(x, rng):
    """MNIST digits (N, 1, 28, 28) in [-0.5, 0.5] moved off-centre by up to 5 pixels and turned up to
    20 degrees, with Pillow (not glassnet's own warp)."""
    moved = np.empty_like(x)
    for n, image in enumerate(x[:, 0]):
        picture = Image.fromarray(np.round((image + 0.5) * 255).astype(np.uint8))
        dx, dy = rng.integers(-5, 6, size=2)
        picture = picture.rotate(rng.uniform(-20, 20), resample=Image.Resampling.BILINEAR,
                                 translate=(int(dx), int(dy)), fillcolor=0)
        moved[n, 0] = np.asarray(picture, dtype=np.float64) / 255 - 0.5
    return moved


def test_augmentation_helps_on_off_centre_turned_digits():
    data = gn.datasets.mnist5k()
    keep = np.flatnonzero(np.arange(len(data.y_train)) % 2 == 0)                  # 2,000 training digits
    x_test = off_centre_digits(data.x_test, np.random.default_rng(0))
    scores = {}
    for augment in (None, "shift,rotate"):
        model = gn.presets.build("lenet", (1, 28, 28), 10, seed=0, dtype="float32")
        model.fit(data.x_train[keep], data.y_train[keep], epochs=6, batch_size=32, optimizer="adam", lr=1e-3,
                  seed=0, verbose=False, augment=augment)
        scores[augment] = model.evaluate(x_test, data.y_test)[1]
    print(f"\noff-centre, turned MNIST test digits: lenet without augmentation {scores[None]:.4f}, "
          f"with shift,rotate {scores['shift,rotate']:.4f}")
    assert scores["shift,rotate"] > scores[None] + 0.05


MEMORY_SCRIPT = textwrap.dedent("""
    import sys, threading, time
    import numpy as np
    import glassnet as gn
    from glassnet.data.imageset import ImageSet

    path, count = sys.argv[1], int(sys.argv[2])
    pixels = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, 3, 64, 64))
    for start in range(0, count, 2000):      # written in slices, then closed: only the file holds them
        pixels[start:start + 2000] = np.random.default_rng(start).integers(0, 256, size=pixels[start:start + 2000].shape,
                                                                           dtype=np.uint8)
    pixels.flush()
    del pixels

    def anonymous_kib():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1])

    peak = [0]
    running = [True]
    def watch():
        while running[0]:
            peak[0] = max(peak[0], anonymous_kib())
            time.sleep(0.01)
    watcher = threading.Thread(target=watch)
    before = anonymous_kib()
    watcher.start()
    images = ImageSet(np.load(path, mmap_mode="r"), [0.5] * 3, [0.25] * 3)
    labels = np.arange(count) % 5
    model = gn.Sequential([gn.Conv2D(3, 4, 3, stride=2, rng=0), gn.ReLU(), gn.MaxPool2D(4), gn.Flatten(),
                           gn.Dense(4 * 7 * 7, 5, rng=1)], dtype=np.float32)
    model.fit(images, labels, epochs=1, batch_size=256, lr=0.01, seed=0, verbose=False)
    model.evaluate(images, labels)
    running[0] = False
    watcher.join()
    print(before, peak[0])
""")


def test_training_from_a_memory_mapped_cache_larger_than_the_limit_stays_bounded(tmp_path):
    count, limit_mib = 30_000, 150                      # 30,000 x 3 x 64 x 64 bytes = 351 MiB on disk
    script = tmp_path / "memory.py"
    script.write_text(MEMORY_SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "big.npy"), str(count)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    before_kib, peak_kib = map(int, result.stdout.split())
    size_mib = count * 3 * 64 * 64 / 2 ** 20
    grown_mib = (peak_kib - before_kib) / 1024
    print(f"\nmemory-mapped set of {size_mib:.0f} MiB: one epoch of training and an evaluation grew anonymous "
          f"memory (RssAnon) by {grown_mib:.0f} MiB at the peak (limit {limit_mib} MiB)")
    assert size_mib > 2 * limit_mib and grown_mib < limit_mib
