"""Augmentation: each operation against a hand-made expectation, seeded reproducibility, and a
resumed run that ends with the weights of an uninterrupted one."""
import numpy as np
import pytest

import glassnet as gn
from glassnet.data.augment import Augment, warp


def batch(seed=0, shape=(6, 3, 7, 9)):
    return np.random.default_rng(seed).standard_normal(shape)


def test_quarter_turn_is_rot90():
    x = batch(shape=(2, 3, 5, 5))
    turned = warp(x, np.full(2, np.pi / 2), np.ones(2), np.zeros(2), np.zeros(2))
    np.testing.assert_allclose(turned, np.rot90(x, k=-1, axes=(2, 3)), atol=1e-12)   # clockwise as displayed


def test_a_shift_copies_whole_pixels_and_repeats_the_border():
    x = batch()
    moved = warp(x, np.zeros(6), np.ones(6), np.full(6, 2), np.full(6, -1))     # 2 down, 1 left
    np.testing.assert_array_equal(moved[:, :, 2:, :-1], x[:, :, :-2, 1:])
    np.testing.assert_array_equal(moved[:, :, 0, :-1], x[:, :, 0, 1:])           # the top row repeated
    np.testing.assert_array_equal(moved[:, :, 1, :-1], x[:, :, 0, 1:])
    np.testing.assert_array_equal(moved[:, :, 2:, -1], x[:, :, :-2, -1])         # the right column repeated


def test_zoom_two_about_the_centre_by_hand():
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    zoomed = warp(x, np.zeros(1), np.full(1, 2.0), np.zeros(1), np.zeros(1))
    # output (i, j) reads source ((i - 2) / 2 + 2, (j - 2) / 2 + 2): bilinear between neighbours
    expected = np.empty((5, 5))
    for i in range(5):
        for j in range(5):
            expected[i, j] = 5 * ((i - 2) / 2 + 2) + ((j - 2) / 2 + 2)                # x[r, c] = 5r + c is linear
    np.testing.assert_allclose(zoomed[0, 0], expected, atol=1e-12)


def test_flip_mirrors_about_half_the_images_and_nothing_else():
    x = batch(shape=(400, 1, 2, 3))
    out = Augment(flip=True)(x, np.random.default_rng(1))
    mirrored = np.all(out == x[..., ::-1], axis=(1, 2, 3))
    unchanged = np.all(out == x, axis=(1, 2, 3))
    assert np.all(mirrored | unchanged) and 150 < mirrored.sum() < 250
    assert out is not x and np.array_equal(x, batch(shape=(400, 1, 2, 3)))           # the input is untouched


def test_same_seed_same_changes_and_dtype_kept():
    x = batch().astype(np.float32)
    augment = Augment.parse("shift,flip,rotate,scale")
    first = augment(x, np.random.default_rng(5))
    second = augment(x, np.random.default_rng(5))
    assert first.dtype == np.float32 and np.array_equal(first, second)
    assert not np.array_equal(first, augment(x, np.random.default_rng(6)))


@pytest.mark.parametrize("spec, message", [("shift,blur", "augment must name some of shift, flip, rotate, scale"),
                                           ("", "augment must name some of")])
def test_bad_specs(spec, message):
    with pytest.raises(gn.GlassnetError, match=message):
        Augment.parse(spec)
    with pytest.raises(gn.GlassnetError, match="rotate must be a number in"):
        Augment(rotate=-5)


def small_images(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((40, 1, 8, 8))
    y = np.arange(40) % 3
    return x, y


def new_model():
    return gn.Sequential([gn.Conv2D(1, 4, 3, padding=1, rng=0), gn.ReLU(), gn.MaxPool2D(2), gn.Flatten(),
                          gn.Dense(64, 3, rng=1)])


class Crash(gn.Callback):
    """Stops the process's fit as a crash would, at a given batch."""

    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_batch_end(self, event):
        if (event.epoch, event.batch) == self.at:
            raise KeyboardInterrupt


def test_a_resumed_run_with_augmentation_ends_with_the_uninterrupted_weights(tmp_path):
    x, y = small_images()
    settings = dict(epochs=3, batch_size=8, optimizer="momentum", lr=0.05, seed=7, verbose=False,
                    augment="shift,flip,rotate")
    whole = new_model()
    whole.fit(x, y, **settings)
    interrupted = new_model()
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(x, y, checkpoint=checkpoint, checkpoint_every=2, callbacks=[Crash(2, 3)], **settings)
    resumed = new_model()
    resumed.fit(x, y, checkpoint=checkpoint, checkpoint_every=2, resume=True, **settings)
    for a, b in zip(whole.layers, resumed.layers):
        for key in a.params:
            np.testing.assert_array_equal(a.params[key], b.params[key])
