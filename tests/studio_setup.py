"""Shared pieces of the studio tests: a digits model, drawn images, a served studio."""
import contextlib
import io

import numpy as np
from PIL import Image, ImageDraw

import glassnet as gn
from glassnet import presets

BASE_URL = "http://127.0.0.1:8000"   # the address the API tests' client claims to talk to


def digits_model(seed=0):
    """An untrained lenet for scikit-learn digits (8x8), float64, with the dataset's metadata."""
    settings = dict(presets.DEFAULTS["digits"], dataset="digits", data_dir=None, dtype="float64", seed=seed,
                    checkpoint_every=None)
    return presets.build_for_dataset(gn.datasets.digits(), settings)


def drawn_digit_png(size=(200, 200)):
    """PNG bytes of a ring drawn dark on white (a zero)."""
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).ellipse((50, 30, 150, 170), outline=0, width=16)
    return png_bytes(image)


def png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@contextlib.contextmanager
def served(studio):
    """``studio`` served by uvicorn on 127.0.0.1 with a free port, in a thread; always stopped."""
    from glassnet.apps.studio.server import StudioServer
    server = StudioServer(studio, "127.0.0.1", 0).start_in_thread()
    try:
        yield server
    finally:
        server.stop()


def conv_unit_by_loops(x, weight, bias, pads, stride, f, i, j):
    """One Conv2D output value written as the plain triple sum (x: (C, H, W), one sample)."""
    top, bottom, left, right = pads
    C, H, W = x.shape
    padded = np.zeros((C, H + top + bottom, W + left + right))
    padded[:, top:top + H, left:left + W] = x
    total = bias[f]
    for c in range(C):
        for u in range(weight.shape[2]):
            for v in range(weight.shape[3]):
                total += padded[c, i * stride[0] + u, j * stride[1] + v] * weight[f, c, u, v]
    return total


def resnet_digits_model(seed=0):
    """An untrained resnet_mini for scikit-learn digits (8x8): residual Adds, projection shortcuts, fan-outs."""
    settings = dict(presets.DEFAULTS["digits"], arch="resnet_mini", dataset="digits", data_dir=None,
                    dtype="float64", seed=seed, checkpoint_every=None)
    return presets.build_for_dataset(gn.datasets.digits(), settings)


def inception_digits_model(seed=0):
    """An untrained inception_mini for scikit-learn digits: three-way Concatenates."""
    settings = dict(presets.DEFAULTS["digits"], arch="inception_mini", dataset="digits", data_dir=None,
                    dtype="float64", seed=seed, checkpoint_every=None)
    return presets.build_for_dataset(gn.datasets.digits(), settings)


@contextlib.contextmanager
def open_page(browser, studio, expected_line="22,602 parameters"):
    """The studio page of ``studio`` served and open in ``browser``; fails on any console or page error."""
    from browser_setup import sync_api, watch_for_errors
    with served(studio) as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems = watch_for_errors(page)
        page.goto(server.url)
        sync_api.expect(page.locator("#model-line")).to_contain_text(expected_line)
        yield page
        page.close()
    assert problems == [], problems
