"""A 28x28 MNIST model reads photographed and drawn digits as well as MNIST's own test images.

Photos are made from real MNIST test digits: inverted to dark ink on off-white paper,
enlarged 8x, placed off-centre on a 400x320 page with uneven lighting and sensor noise,
saved as JPEG. ``glassnet predict`` must bring them back to MNIST's convention.
"""
import json

import numpy as np
import pytest
from PIL import Image

import glassnet as gn
from test_cli import draw_digit, run

PHOTOS = 200


@pytest.fixture(scope="module")
def mnist_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    model = folder / "mnist5k.glassnet"
    result = run("train", "--dataset", "mnist5k", "--dtype", "float32", "--epochs", "6", "--quiet",
                 "--out", str(model))
    assert result.returncode == 0, result.stderr
    return model


def photograph(digit_pixels, path, rng):
    """digit_pixels: (28, 28) MNIST intensities 0..255 (light ink on black). Writes a JPEG photo."""
    ink = Image.fromarray(digit_pixels.astype(np.uint8)).resize((224, 224), Image.BILINEAR)
    page = np.zeros((320, 400))
    top, left = rng.integers(10, 90), rng.integers(10, 170)
    page[top:top + 224, left:left + 224] = np.asarray(ink, dtype=np.float64) / 255
    lighting = np.linspace(235, 205, 400)[None, :] - np.linspace(0, 15, 320)[:, None]  # uneven light
    grey = lighting * (1 - 0.85 * page) + rng.normal(0, 4, page.shape)
    rgb = np.clip(np.stack([grey, grey * 0.98, grey * 0.93], axis=-1), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path, quality=90)
    return path


def test_photos_of_mnist_digits_are_read_as_well_as_the_digits_themselves(mnist_model, tmp_path):
    data = gn.datasets.mnist5k()
    pick = np.random.default_rng(0).choice(len(data.y_test), PHOTOS, replace=False)
    model = gn.load(mnist_model)
    direct = model.predict(data.x_test[pick]).argmax(axis=1)
    direct_accuracy = np.mean(direct == data.y_test[pick])

    rng = np.random.default_rng(1)
    raw = np.rint((data.x_test[pick, 0] + 0.5) * 255)
    paths = [str(photograph(raw[i], tmp_path / f"photo{i}.jpg", rng)) for i in range(PHOTOS)]
    result = run("predict", str(mnist_model), *paths, "--json")
    assert result.returncode == 0, result.stderr
    predicted = np.array([int(entry["class"]) for entry in json.loads(result.stdout)])
    photo_accuracy = np.mean(predicted == data.y_test[pick])

    print(f"{PHOTOS} MNIST test digits: accuracy {direct_accuracy:.3f} as images, {photo_accuracy:.3f} as photos, "
          f"same answer for {np.mean(predicted == direct):.3f}")
    assert direct_accuracy >= 0.9
    assert photo_accuracy >= direct_accuracy - 0.03
    assert np.mean(predicted == direct) >= 0.93  # the same answers, not just the same score


def test_drawn_digits_on_paper_with_the_mnist_model(mnist_model, tmp_path):
    zero, four = draw_digit(tmp_path / "zero.png", 0), draw_digit(tmp_path / "four.jpg", 4)
    result = run("predict", str(mnist_model), str(zero), str(four))
    assert result.returncode == 0, result.stderr
    labels = [line.split("\t")[1] for line in result.stdout.strip().splitlines()]
    assert labels == ["0", "4"]
