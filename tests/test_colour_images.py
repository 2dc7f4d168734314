"""Colour images: the preprocessing records, image folders (layouts, skips, bad folders) and the
decode-once cache. Expected pixels are derived by hand in each test."""
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

import glassnet as gn
from glassnet.data.datasets import cache as cache_module
from glassnet.data.datasets.folder import image_folder, stratified_split
from glassnet.data.imageset import ImageSet, normalise
from glassnet.data.preprocessing import decode_resized, image_to_input, kind_of, resize_record


@pytest.fixture(autouse=True)
def data_cache(tmp_path, monkeypatch):
    """Every test gets its own data cache folder."""
    monkeypatch.setenv("GLASSNET_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "image-folders"


def save(image, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def colour_bands(height=8, width=16):
    """Left quarter red, middle half green, right quarter blue."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, :width // 4, 0] = 255
    pixels[:, width // 4:3 * width // 4, 1] = 255
    pixels[:, 3 * width // 4:, 2] = 255
    return Image.fromarray(pixels)


# -- the records ------------------------------------------------------------------------------------

def test_resize_crop_keeps_the_centre(tmp_path):
    path = save(colour_bands(), tmp_path / "bands.png")
    pixels, note = decode_resized(path, (8, 8), 3, "crop")
    # 8x16 -> 8x8 keeping the aspect ratio: no scaling, the centre 8 columns are all green
    assert note == "" and pixels.shape == (3, 8, 8) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[1], 255)
    np.testing.assert_array_equal(pixels[[0, 2]], 0)


def test_resize_pad_keeps_everything_and_pads_black(tmp_path):
    path = save(Image.new("RGB", (16, 8), (255, 255, 255)), tmp_path / "white.png")
    pixels, _ = decode_resized(path, (16, 16), 3, "pad")
    # 16 wide already: the 8 rows sit in the middle, 4 black rows above and below
    np.testing.assert_array_equal(pixels[:, 4:12], 255)
    np.testing.assert_array_equal(pixels[:, :4], 0)
    np.testing.assert_array_equal(pixels[:, 12:], 0)


def test_normalisation_is_the_per_channel_formula():
    pixels = np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2) * 10
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 2.0]
    expected = np.empty((2, 3, 2, 2))
    for n in range(2):
        for c in range(3):
            expected[n, c] = (pixels[n, c] / 255.0 - mean[c]) / std[c]
    np.testing.assert_allclose(normalise(pixels, mean, std, np.float64), expected, rtol=1e-15)
    images = ImageSet(pixels, mean, std, indices=[1])
    assert images.shape == (1, 3, 2, 2) and len(images) == 1
    np.testing.assert_allclose(images[[0]], expected[[1]].astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("make, channels, expected, note", [
    (lambda: Image.new("L", (4, 4), 100), 3, [100, 100, 100], "made colour"),
    (lambda: Image.new("RGB", (4, 4), (255, 0, 0)), 1, [76], "made grey"),          # ITU-R 601: 0.299 * 255
    (lambda: Image.new("RGBA", (4, 4), (0, 0, 0, 0)), 3, [255, 255, 255], ""),      # transparent: white paper
    (lambda: Image.new("RGB", (4, 4), (10, 20, 30)).convert("P", palette=Image.Palette.ADAPTIVE), 3, [10, 20, 30], ""),
    (lambda: Image.new("CMYK", (4, 4), (0, 255, 255, 0)), 3, [255, 0, 0], ""),      # CMYK red
    (lambda: Image.fromarray(np.full((4, 4), 32896, dtype=np.uint16)), 1, [128], ""),  # 16-bit: 32896/65535*255
    (lambda: Image.new("1", (4, 4), 1), 1, [255], ""),
])
def test_image_modes_are_converted(tmp_path, make, channels, expected, note):
    image = make()
    path = tmp_path / ("m.tiff" if image.mode in ("CMYK",) else "m.png")
    image.save(path)
    pixels, said = decode_resized(path, (4, 4), channels, "crop")
    assert pixels.shape == (channels, 4, 4)
    np.testing.assert_array_equal(pixels[:, 0, 0], expected)
    assert (note in said) if note else said == ""


def test_digit_kind_is_unchanged_and_old_files_say_image(tmp_path):
    record = gn.datasets.builtin.mnist_preprocessing()
    assert kind_of(record) == "digit" and kind_of(dict(record, kind="image")) == "digit"
    image = Image.new("L", (60, 60), 255)
    image.paste(0, (20, 10, 30, 50))
    path = save(image, tmp_path / "one.png")
    new, _ = image_to_input(path, record)
    old, _ = image_to_input(path, dict(record, kind="image"))
    np.testing.assert_array_equal(new, old)
    assert new.shape == (1, 28, 28) and new.min() == -0.5
    assert kind_of({"kind": "features"}) is None
    with pytest.raises(gn.GlassnetError, match="not trained on images"):
        image_to_input(path, {"kind": "features"})


def test_bad_records_are_refused():
    with pytest.raises(gn.GlassnetError, match="channels must be 3"):
        resize_record((32, 32), channels=2)
    with pytest.raises(gn.GlassnetError, match="fit must be 'crop' or 'pad'"):
        resize_record((32, 32), fit="stretch")
    with pytest.raises(gn.GlassnetError, match="size must be two whole numbers"):
        resize_record((2, 32))


def test_record_round_trips_and_predict_on_a_file_equals_predict_on_the_array(tmp_path):
    gn.datasets.export_shapes(tmp_path / "shapes", n=40, size=16, seed=3, image_format="jpeg")
    data = image_folder(tmp_path / "shapes", size=(16, 16))
    model = gn.presets.build("colour", data.input_shape, 5, seed=0)
    model.metadata["preprocessing"] = data.preprocessing
    gn.save(model, tmp_path / "m.glassnet")
    loaded = gn.load(tmp_path / "m.glassnet")
    assert loaded.metadata["preprocessing"] == data.preprocessing
    files = sorted((tmp_path / "shapes").rglob("*.jpg"))
    train_rows = data.x_train.indices
    for row, position in zip(train_rows[:6], range(6)):
        x, _ = image_to_input(files[row], loaded.metadata["preprocessing"])
        np.testing.assert_array_equal(x, data.x_train[position])
        np.testing.assert_array_equal(loaded.predict(x[None]), model.predict(data.x_train[[position]]))


# -- folders --------------------------------------------------------------------------------------------

def small_folder(root, classes=("a", "b", "c"), per_class=4, size=(12, 10)):
    rng = np.random.default_rng(0)
    for name in classes:
        for k in range(per_class):
            save(Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)), root / name / f"{k}.png")
    return root


def test_stratified_split_keeps_each_class_share():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    train, test = stratified_split(labels, 0.2, seed=4)
    assert np.bincount(labels[test]).tolist() == [10, 6, 4]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(100))
    again = stratified_split(labels, 0.2, seed=4)
    assert np.array_equal(again[1], test)


def test_train_and_test_layout_is_used_as_given(tmp_path):
    small_folder(tmp_path / "root" / "train", per_class=3)
    small_folder(tmp_path / "root" / "test", per_class=2)
    data = image_folder(tmp_path / "root", size=8)
    assert len(data.x_train) == 9 and len(data.x_test) == 6
    assert data.class_names == ["a", "b", "c"] and sorted(data.y_test.tolist()) == [0, 0, 1, 1, 2, 2]
    assert "train/ and test/ as given" in data.description


def test_statistics_come_from_the_training_split_only(tmp_path):
    for name, value in (("dark", 0), ("light", 255)):
        save(Image.new("RGB", (4, 4), (value,) * 3), tmp_path / "train" / name / "x.png")
    save(Image.new("RGB", (4, 4), (255,) * 3), tmp_path / "test" / "dark" / "y.png")
    save(Image.new("RGB", (4, 4), (255,) * 3), tmp_path / "test" / "light" / "y.png")
    data = image_folder(tmp_path, size=4)
    np.testing.assert_allclose(data.preprocessing["mean"], [0.5, 0.5, 0.5])      # the test images are all white
    np.testing.assert_allclose(data.preprocessing["std"], [0.5, 0.5, 0.5])


def test_mixed_sizes_and_modes_and_skipped_files_are_reported(tmp_path):
    root = small_folder(tmp_path / "root")
    save(Image.new("L", (40, 30), 7), root / "a" / "grey.png")
    save(Image.new("RGBA", (5, 9), (1, 2, 3, 128)), root / "a" / "alpha.png")
    save(Image.new("RGB", (20, 20), (9, 9, 9)).convert("P"), root / "b" / "palette.gif")
    save(Image.fromarray(np.full((6, 6), 40000, dtype=np.uint16)), root / "b" / "deep.png")
    save(Image.new("CMYK", (8, 8), (1, 2, 3, 4)), root / "c" / "print.tiff")
    (root / "c" / "notes.txt").write_text("not a picture")
    (root / "c" / "empty.png").write_bytes(b"")
    (root / "c" / "sub").mkdir()
    os.symlink(root / "c" / "loop", root / "c" / "loop")                 # a link to itself
    os.symlink(root / "nowhere.png", root / "a" / "broken.png")
    (root / "a" / ".DS_Store").write_text("hidden: ignored")
    data = image_folder(root, size=8)
    assert len(data.x_train) + len(data.x_test) == 12 + 5
    (note,) = data.notes
    assert note.startswith("skipped 5 of 22 files:")
    for name in ("notes.txt", "empty.png", "sub", "loop", "broken.png"):
        assert name in note


@pytest.mark.parametrize("build, message", [
    (lambda root: root.mkdir(), r"expected one sub-folder per class \(at least 2\), found 0"),
    (lambda root: small_folder(root, classes=("only",)), r"found 1 \(only\)"),
    (lambda root: (small_folder(root, classes=("a", "b")), (root / "c").mkdir(),
                   (root / "c" / "x.png").write_text("no")), "class 'c' has no readable image .*x.png"),
    (lambda root: (small_folder(root, classes=("a", "b")), (root / "c").mkdir()), "class 'c' has no readable image "
                                                                                   r"\(its folder is empty\)"),
    (lambda root: None, "does not exist"),
    (lambda root: (small_folder(root / "train"), small_folder(root / "test", classes=("a", "z", "c"))),
     "differ from train/'s"),
])
def test_bad_folders_give_a_clear_message(tmp_path, build, message):
    root = tmp_path / "root"
    build(root)
    with pytest.raises(gn.GlassnetError, match=message):
        image_folder(root, size=8)


def test_bad_arguments(tmp_path):
    root = small_folder(tmp_path / "root")
    with pytest.raises(gn.GlassnetError, match="kind must be 'resize' or 'digit'"):
        image_folder(root, kind="colour")
    with pytest.raises(gn.GlassnetError, match="size must be N or"):
        image_folder(root, size=(0, 8))
    with pytest.raises(gn.GlassnetError, match="channels must be 3"):
        image_folder(root, channels=4)


def test_grey_and_digit_folders(tmp_path):
    root = small_folder(tmp_path / "root")
    grey = image_folder(root, size=8, channels=1)
    assert grey.input_shape == (1, 8, 8) and grey.preprocessing["channels"] == 1
    digits = tmp_path / "digits"
    for label, box in (("one", (24, 10, 32, 50)), ("dash", (10, 26, 50, 34))):
        for k in range(3):
            image = Image.new("L", (60, 60), 255)
            image.paste(0, box)
            save(image, digits / label / f"{k}.png")
    data = image_folder(digits, kind="digit", size=28)
    assert data.input_shape == (1, 28, 28) and kind_of(data.preprocessing) == "digit"
    assert isinstance(data.x_train, np.ndarray)


# -- the cache --------------------------------------------------------------------------------------------

def test_second_run_reads_the_cache_and_touching_a_file_invalidates_it(tmp_path, data_cache, monkeypatch):
    root = small_folder(tmp_path / "root", per_class=30)
    started = time.perf_counter()
    first = image_folder(root, size=16)
    first_seconds = time.perf_counter() - started
    assert first.description.endswith("; decoded)")
    decodes = []
    real = cache_module._decode
    monkeypatch.setattr(cache_module, "_decode", lambda *args: decodes.append(1) or real(*args))
    started = time.perf_counter()
    second = image_folder(root, size=16)
    second_seconds = time.perf_counter() - started
    assert decodes == [] and second.description.endswith("; cache)")
    assert isinstance(second.x_train.pixels, np.memmap)
    np.testing.assert_array_equal(second.x_train[:], first.x_train[:])
    print(f"\nfolder of 90 images: decoded in {first_seconds * 1000:.0f} ms, from the cache in "
          f"{second_seconds * 1000:.0f} ms")
    image_folder(root, size=12)                                          # other settings: another cache
    assert len(decodes) == 1
    stat = os.stat(root / "b" / "3.png")
    os.utime(root / "b" / "3.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    image_folder(root, size=16)
    assert len(decodes) == 2
    assert len(list(data_cache.glob("*.npy"))) == 3 and not list(data_cache.glob(".*.tmp"))


def test_a_killed_decode_leaves_no_cache_that_is_used(tmp_path, data_cache, monkeypatch):
    from glassnet.data.datasets import folder as folder_module
    root = small_folder(tmp_path / "root", per_class=5)
    original, calls = folder_module.decode_resized, []

    def dies_on_the_seventh(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 7:
            raise KeyboardInterrupt                                     # as Ctrl-C would stop it
        return original(path, *args, **kwargs)

    monkeypatch.setattr(folder_module, "decode_resized", dies_on_the_seventh)
    with pytest.raises(KeyboardInterrupt):
        image_folder(root, size=8)
    assert not list(data_cache.glob("*.npy")) and not list(data_cache.glob("*.json"))
    assert not list(data_cache.glob(".*.tmp"))
    # a process killed outright (SIGKILL) leaves its temporary file: never read, removed by the next decode
    files = [path for path, _ in folder_module.list_folder(root)[1]]
    key = cache_module.cache_key(files, {"size": [8, 8], "channels": 3, "fit": "crop"})
    stale = data_cache / f".{key}.npy.x1y2.tmp"
    stale.write_bytes(b"half a file")
    monkeypatch.setattr(folder_module, "decode_resized", original)
    data = image_folder(root, size=8)
    assert data.description.endswith("; decoded)") and len(data.x_train) + len(data.x_test) == 15
    assert not stale.exists()


def test_a_damaged_cache_is_decoded_again(tmp_path, data_cache):
    root = small_folder(tmp_path / "root")
    expected = image_folder(root, size=8).x_test[:]          # a copy: the map is about to be damaged
    (cached,) = data_cache.glob("*.npy")
    cached.unlink()
    cached.write_bytes(b"\x93NUMPY garbage")
    again = image_folder(root, size=8)
    assert again.description.endswith("; decoded)")
    np.testing.assert_array_equal(again.x_test[:], expected)
    index = json.loads(next(data_cache.glob("*.json")).read_text())
    assert len(index["readable"]) == 12 and index["skipped"] == []
