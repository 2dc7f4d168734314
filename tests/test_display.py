"""Notebook display: the summary, trace and history as HTML, and the progress bar in Jupyter."""
import base64
import io
import json
import re
import sys
import types

import numpy as np
from PIL import Image

import glassnet as gn
from glassnet.training.loop import in_notebook


def small_model():
    model = gn.Sequential([gn.Conv2D(1, 2, 2, rng=0), gn.ReLU(), gn.MaxPool2D(2), gn.Flatten(),
                           gn.Dense(2 * 4 * 4, 3, rng=1)])
    model.metadata["input_shape"] = [1, 9, 9]
    return model


def test_summary_html_lists_every_layer_with_shapes_and_the_total():
    page = small_model()._repr_html_()
    assert page.count("<tr><td>") == 5
    assert "<td>0: Conv2D</td><td>(N, 2, 8, 8)</td>" in page and "<td>4: Dense</td><td>(N, 3)</td>" in page
    assert f"{small_model().num_params():,}" in page.split("total parameters")[1]


def test_trace_html_holds_the_engines_numbers_and_pictures():
    model = small_model()
    x = np.random.default_rng(0).standard_normal((1, 1, 9, 9))
    record = gn.trace(model, x, np.array([2]), gn.SoftmaxCrossEntropy(), optimizer=gn.SGD(model, lr=0.1))
    page = record._repr_html_()
    assert page.count("<details>") == 5 and "layer 4: Dense(" in page
    kernel = record.steps[0].params_before["weight"]                    # 8 values: shown whole, exactly
    titles = re.findall(r"title='([^']+)'", page.split("<summary>layer 0")[1].split("</table>")[0])
    assert [float(t) for t in titles] == kernel.ravel().tolist()
    assert repr(record.loss) in page and "SGD(lr=0.1" in page
    output = record.steps[0].output                                    # 128 values: a picture and statistics
    picture = re.search(r"src='data:image/png;base64,([^']+)'", page.split("<summary>layer 0")[1]).group(1)
    image = Image.open(io.BytesIO(base64.b64decode(picture)))
    assert image.size[0] > image.size[1] > 0                           # 2 maps side by side
    assert f"max {output.max():.6g}" in page


def test_history_draws_its_curves_and_stays_a_dict():
    model = small_model()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 1, 9, 9)), np.arange(20) % 3
    history = model.fit(x, y, epochs=3, batch_size=5, lr=0.05, seed=0, verbose=False, validation_data=(x, y))
    assert isinstance(history, dict) and json.loads(json.dumps(history))["loss"] == history["loss"]
    page = history._repr_html_()
    assert page.count("<svg") == 2 and "3 epoch(s)" in page
    polyline = re.search(r"<polyline[^>]*points='([^']+)'", page).group(1)
    assert len(polyline.split()) == 3                                  # one point per epoch
    assert f"loss {history['loss'][-1]:.4g}" in page


def test_the_progress_bar_appears_in_a_notebook(monkeypatch):
    assert not in_notebook()
    shell = type("ZMQInteractiveShell", (), {})()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert in_notebook()
    bars = []

    class FakeBar:
        def __init__(self, **options):
            bars.append(options)

        def update(self, n):
            pass

        def set_postfix(self, **values):
            pass

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "tqdm.auto", types.SimpleNamespace(tqdm=FakeBar))
    model = small_model()
    model.fit(np.zeros((4, 1, 9, 9)), np.arange(4) % 3, epochs=2, batch_size=2, log=lambda line: None)
    assert [b["desc"] for b in bars] == ["epoch 1/2", "epoch 2/2"]
