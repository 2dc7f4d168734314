"""Image files of every kind: a correct conversion or a clear error, never a crash."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

import glassnet as gn
from glassnet.data.datasets.builtin import mnist_preprocessing
from glassnet.data.images import MAX_PIXELS, read_grey
from glassnet.data.preprocessing import load_image

MNIST = mnist_preprocessing()


def drawn_seven(size=(120, 100)):
    """A dark 7 on white paper, as an 8-bit grey array."""
    image = Image.new("L", size, 255)
    pen = ImageDraw.Draw(image)
    pen.line((30, 20, 90, 20), fill=0, width=9)
    pen.line((90, 20, 50, 90), fill=0, width=9)
    return np.asarray(image)


def save(array_or_image, path, **kwargs):
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    image.save(path, **kwargs)
    return path


@pytest.fixture
def reference(tmp_path):
    return load_image(save(drawn_seven(), tmp_path / "grey.png"), MNIST)


@pytest.mark.parametrize("convert", [
    lambda g: Image.fromarray(g).convert("RGB"),
    lambda g: Image.fromarray(g).convert("P"),
    lambda g: Image.fromarray(g).convert("1", dither=Image.Dither.NONE),
    lambda g: Image.fromarray(g).convert("CMYK"),
    lambda g: Image.fromarray(g.astype(np.uint16) * 257),               # 16-bit grey
    lambda g: Image.fromarray(np.dstack([np.zeros_like(g)] * 3 + [255 - g]), "RGBA"),  # black ink on transparency
    lambda g: Image.fromarray(np.dstack([g, np.full_like(g, 255)]), "LA"),
])
def test_every_image_mode_gives_the_same_input(tmp_path, reference, convert):
    image = convert(drawn_seven())
    path = save(image, tmp_path / ("image.tiff" if image.mode == "CMYK" else "image.png"))
    converted = load_image(path, MNIST)
    assert converted.shape == (1, 28, 28)
    assert np.abs(converted - reference).max() < 0.02, image.mode


def test_palette_with_a_transparent_background(tmp_path, reference):
    # index 0: a dark red that is fully transparent (must become white paper), index 1: black ink
    indices = (drawn_seven() < 128).astype(np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette([90, 0, 0, 0, 0, 0])
    path = save(image, tmp_path / "p.png", transparency=0)
    assert np.abs(load_image(path, MNIST) - reference).max() < 0.1


def test_sixteen_bit_uses_the_full_range(tmp_path):
    dark = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 100)  # 0..6300 of 65535
    grey = read_grey(save(Image.fromarray(dark), tmp_path / "dark16.png"))
    np.testing.assert_allclose(grey, dark / 65535.0)


def png_declaring(width, height):
    """A tiny PNG whose header claims width x height (a decompression bomb's calling card)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.mark.parametrize("make, pattern", [
    (lambda p: p.write_text("definitely not an image"), r"not a readable image"),
    (lambda p: p.write_bytes(b""), r"not a readable image"),
    (lambda p: p.write_bytes(png_declaring(100_000, 100_000)), r"refused as a decompression bomb|exceeds the limit"),
    (lambda p: p.write_bytes(png_declaring(8000, 7000)), r"image of 8000x7000 pixels exceeds the limit of 50,000,000"),
    (lambda p: p.write_bytes(save(drawn_seven(), p).read_bytes()[:300]), r"not a readable image"),  # truncated
    (lambda p: save(np.full((30, 30), 255, np.uint8), p), r"the image is blank"),
    (lambda p: p.mkdir(), r"is a folder, not an image file|not a readable image"),
])
def test_bad_image_files_give_one_clear_error(tmp_path, make, pattern):
    path = tmp_path / "input.png"
    make(path)
    with pytest.raises(gn.GlassnetError, match=pattern):
        load_image(path, MNIST)
    assert MAX_PIXELS == 50_000_000


def test_the_cli_reports_bad_images_in_one_line(tmp_path):
    import subprocess
    import sys
    model = gn.Sequential([gn.Flatten(), gn.Dense(784, 10, rng=0)])
    model.metadata = {"preprocessing": MNIST, "class_names": [str(d) for d in range(10)]}
    gn.save(model, tmp_path / "m.glassnet")
    (tmp_path / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    result = subprocess.run([sys.executable, "-m", "glassnet.apps.cli", "predict", str(tmp_path / "m.glassnet"),
                             str(tmp_path / "bomb.png")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
