"""The studio's Why view through its JSON API: every method's map equals gn.attribute on the input the
server prepared; for every method, the numbers behind a clicked pixel add up to the map's value there; the
mistakes panel lists misclassified test digits with their Grad-CAM; bad requests get one line."""
import numpy as np
import pytest

import glassnet as gn
from glassnet.apps.studio.arrays import decode
from glassnet.apps.studio.views import Studio
from glassnet.apps.studio.why import METHODS, OPTIONS
from studio_setup import BASE_URL, digits_model, drawn_digit_png

starlette_testclient = pytest.importorskip("starlette.testclient")
from glassnet.apps.studio.app import create_app  # noqa: E402 -- after the skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = gn.datasets.digits()
    model = digits_model()
    model.fit(data.x_train, data.y_train, epochs=3, batch_size=32, optimizer="adam", lr=0.003, seed=0, verbose=False)
    return model


@pytest.fixture
def setup(trained, tmp_path):
    studio = Studio(trained, save_dir=tmp_path)
    client = starlette_testclient.TestClient(create_app(studio), base_url=BASE_URL)
    reply = client.post("/api/predict", content=drawn_digit_png(), headers={"Content-Type": "image/png"})
    assert reply.status_code == 200, reply.text
    return studio, client, reply.json()["input_id"]


@pytest.mark.parametrize("method", METHODS)
def test_each_method_map_and_a_clicked_pixel_add_up(setup, method):
    studio, client, input_id = setup
    answer = client.post("/api/why", json={"input_id": input_id, "method": method, "target": 3})
    assert answer.status_code == 200, answer.text
    answer = answer.json()
    values = decode(answer["map"])
    expected = gn.attribute(studio.model, studio.last_input, 3, method=method, **OPTIONS.get(method, {}))[0]
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-15)
    where = [int(p) for p in np.unravel_index(int(np.argmax(np.abs(values))), values.shape)]
    detail = client.post("/api/why/pixel", json={"input_id": input_id, "method": method, "target": 3,
                                                 "position": where})
    assert detail.status_code == 200, detail.text
    detail = detail.json()
    assert detail["value"] == pytest.approx(float(values[tuple(where)]), rel=1e-12, abs=1e-15)
    assert detail["sum"] == pytest.approx(detail["value"], rel=1e-9, abs=1e-12)          # the numbers add up
    if method == "integrated_gradients":
        assert len(detail["path_gradients"]) == OPTIONS[method]["steps"]
        assert abs(answer["sum"] - answer["change"]) < 0.05 * abs(answer["change"]) + 1e-6   # completeness
    if method == "occlusion":
        assert 1 <= len(detail["windows"]) <= 4
    if method == "gradcam":
        assert len(detail["weights"]) == len(detail["activations"])


def test_the_mistakes_panel_lists_wrong_digits_with_their_gradcam(setup):
    studio, client, _ = setup
    answer = client.get("/api/why/mistakes").json()
    assert answer["dataset"] == "digits" and answer["wrong"] >= len(answer["items"]) > 0
    data = gn.datasets.digits()
    for item in answer["items"]:
        x = data.x_test[item["index"]][None]
        predicted = int(studio.model.predict(x).argmax())
        assert item["label"] != item["predicted"] == str(predicted)
        expected = gn.attribute(studio.model, x, predicted, method="gradcam")[0]
        np.testing.assert_allclose(decode(item["gradcam"]), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("body, words", [
    ({"method": "lime"}, "method must be one of gradient"),
    ({"method": "gradient", "target": 12}, "target must be a class index in [0, 9]"),
    ({"method": "gradcam", "layer": "conv"}, "layer must be a layer index"),
])
def test_bad_why_requests_name_what_was_expected(setup, body, words):
    _, client, input_id = setup
    reply = client.post("/api/why", json={"input_id": input_id, **body})
    assert reply.status_code == 400 and words in reply.json()["error"]
    pixel = client.post("/api/why/pixel", json={"input_id": input_id, "method": "gradient", "position": [0, 99, 0]})
    assert pixel.status_code == 400 and "position must be 3 indices inside (1, 8, 8)" in pixel.json()["error"]
