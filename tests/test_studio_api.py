"""The studio's JSON API through Starlette's test client: every endpoint, bad input, foreign sites.

Reference values come from the engine called directly (``load_image``, ``gn.trace``, ``gn.SGD``,
``fit``), from plain loops written here, and from PyTorch (seed 000's updated weights).
"""
import copy
import io
import json
import time

import numpy as np
import pytest
from PIL import Image

import glassnet as gn
from glassnet.data.preprocessing import load_image
from glassnet.apps.studio import app as studio_app
from glassnet.apps.studio.app import create_app
from glassnet.apps.studio.arrays import decode
from glassnet.apps.studio.views import Studio
from reference import assert_matches
from studio_setup import BASE_URL, conv_unit_by_loops, digits_model, drawn_digit_png, png_bytes
from test_seed000 import torch_updated_weights

starlette_testclient = pytest.importorskip("starlette.testclient")


@pytest.fixture
def studio(tmp_path):
    return Studio(digits_model(), save_dir=tmp_path)


@pytest.fixture
def client(studio):
    return starlette_testclient.TestClient(create_app(studio), base_url=BASE_URL)


def post_image(client, data, content_type="image/png"):
    return client.post("/api/predict", content=data, headers={"Content-Type": content_type})


@pytest.fixture
def input_id(client):
    reply = post_image(client, drawn_digit_png())
    assert reply.status_code == 200, reply.text
    return reply.json()["input_id"]


def test_model_info_lists_layers_classes_and_no_job(client):
    info = client.get("/api/model").json()
    model = info["model"]
    assert [layer["type"] for layer in model["layers"]][:3] == ["Conv2D", "ReLU", "MaxPool2D"]
    assert model["layers"][0]["output_shape"] == [16, 8, 8]
    assert model["class_names"] == [str(d) for d in range(10)]
    assert model["takes_images"] is True and model["parameters"] == digits_model().num_params()
    assert info["job"] is None


def test_predict_prepares_the_image_exactly_as_glassnet_predict(client, studio, tmp_path):
    data = drawn_digit_png()
    (tmp_path / "zero.png").write_bytes(data)
    expected = load_image(tmp_path / "zero.png", studio.model.metadata["preprocessing"])   # the CLI's path
    reply = post_image(client, data).json()
    np.testing.assert_array_equal(decode(reply["input"]), expected)          # the same array to the last bit
    np.testing.assert_array_equal(studio.last_input[0], expected)
    probabilities = digits_model().predict_proba(expected[None])[0]
    np.testing.assert_array_equal(reply["probabilities"], probabilities)
    assert reply["predicted"] == int(np.argmax(probabilities))
    assert [entry["index"] for entry in reply["top_k"]] == list(np.argsort(-probabilities, kind="stable")[:5])


def test_trace_returns_the_engines_arrays(client, studio, input_id):
    x = studio.inputs[input_id]
    reply = client.post("/api/trace", json={"input_id": input_id, "target": 3}).json()
    reference = copy.deepcopy(studio.model)
    record = gn.trace(reference, x, np.array([3]), gn.SoftmaxCrossEntropy())
    assert reply["target"] == 3 and reply["loss"] == record.loss
    for layer, step in zip(reply["layers"], record.steps):
        np.testing.assert_array_equal(decode(layer["output"]), step.output[0])
        np.testing.assert_array_equal(decode(layer["grad_output"]), step.grad_output[0])
        np.testing.assert_array_equal(decode(layer["grad_input"]), step.grad_input[0])
        for key, grad in step.param_grads.items():
            np.testing.assert_array_equal(decode(layer["param_grads"][key]), grad)


def test_trace_without_gradients_and_default_target(client, studio, input_id):
    reply = client.post("/api/trace", json={"input_id": input_id, "gradients": False}).json()
    assert "grad_output" not in reply["layers"][0]
    assert reply["target"] == int(np.argmax(studio.model.predict(studio.inputs[input_id])))


@pytest.mark.parametrize("position", [[0, 0, 0], [5, 3, 4], [15, 7, 7]])
def test_conv_unit_products_sum_to_the_feature_map_value(client, studio, input_id, position):
    reply = client.post("/api/unit", json={"input_id": input_id, "layer": 0, "position": position}).json()
    x = studio.inputs[input_id][0]
    conv = studio.model.layers[0]
    by_loops = conv_unit_by_loops(x, conv.params["weight"], conv.params["bias"], conv.pads, conv.stride, *position)
    assert reply["value"] == pytest.approx(by_loops, rel=1e-12, abs=1e-12)
    assert reply["sum"] == pytest.approx(reply["value"], rel=1e-12, abs=1e-12)
    products = np.array(reply["products"])
    assert products.shape == (1, 3, 3)
    np.testing.assert_array_equal(products, np.array(reply["field"]) * np.array(reply["kernel"]))
    np.testing.assert_array_equal(reply["kernel"], conv.params["weight"][position[0]])


def test_pool_dense_softmax_flatten_and_activation_units(client, studio, input_id):
    x = studio.inputs[input_id]
    outputs = [x]
    for layer in studio.model.layers:
        outputs.append(layer.forward(outputs[-1]))
    ask = lambda layer, position: client.post("/api/unit", json={"input_id": input_id, "layer": layer,
                                                                 "position": position}).json()
    pool = ask(2, [4, 1, 2])                      # window rows 2-3, cols 4-5 of ReLU channel 4
    window = outputs[2][0, 4, 2:4, 4:6]
    np.testing.assert_array_equal(pool["window"], window)
    assert pool["value"] == window.max() == window[tuple(pool["winner"])]
    relu = ask(1, [2, 3, 3])
    assert relu["value"] == max(0.0, outputs[1][0, 2, 3, 3]) and relu["input"] == outputs[1][0, 2, 3, 3]
    flat = ask(6, [37])                           # 37 = channel 9, row 0, col 1 of (32, 2, 2)
    assert flat["source"] == [9, 0, 1] and flat["value"] == outputs[6][0, 9, 0, 1]
    dense = ask(9, [7])
    weight, bias = studio.model.layers[9].params["weight"], studio.model.layers[9].params["bias"]
    by_loop = bias[7] + sum(outputs[9][0, i] * weight[i, 7] for i in range(weight.shape[0]))
    assert dense["value"] == pytest.approx(by_loop, rel=1e-12)
    assert dense["sum"] == pytest.approx(dense["value"], rel=1e-12)


def test_softmax_unit_of_a_model_ending_in_softmax(tmp_path):
    model = gn.Sequential([gn.Flatten(), gn.Dense(64, 3, rng=0), gn.Softmax()])
    model.metadata.update(digits_model().metadata, class_names=["a", "b", "c"], loss="cross_entropy")
    client = starlette_testclient.TestClient(create_app(Studio(model, save_dir=tmp_path)), base_url=BASE_URL)
    input_id = post_image(client, drawn_digit_png()).json()["input_id"]
    reply = client.post("/api/unit", json={"input_id": input_id, "layer": 2, "position": [1]}).json()
    z = np.array(reply["logits"])
    assert reply["value"] == pytest.approx(np.exp(z[1]) / np.exp(z).sum(), rel=1e-12)


def test_sgd_step_equals_gn_sgd_and_revert_restores(client, studio, input_id):
    x = studio.inputs[input_id]
    reference = copy.deepcopy(studio.model)
    loss = gn.SoftmaxCrossEntropy()
    loss.forward(reference.forward(x), np.array([2]))
    reference.backward(loss.backward())
    gn.SGD(reference, lr=0.05).step()
    reply = client.post("/api/step", json={"input_id": input_id, "target": 2, "lr": 0.05}).json()
    assert reply["steps_taken"] == 1 and reply["loss_after"] < reply["loss_before"]
    for layer in reply["layers"]:
        for key, after in layer["after"].items():
            np.testing.assert_array_equal(decode(after), reference.layers[layer["index"]].params[key])
            np.testing.assert_array_equal(studio.model.layers[layer["index"]].params[key], decode(after))
            np.testing.assert_allclose(decode(layer["change"][key]), -0.05 * decode(layer["grads"][key]),
                                       rtol=1e-9, atol=1e-15)   # plain SGD: w - lr * g, up to rounding
    original = digits_model()
    assert client.post("/api/revert").json()["steps_taken"] == 0
    for ours, theirs in zip(studio.model.layers, original.layers):
        for key in ours.params:
            np.testing.assert_array_equal(ours.params[key], theirs.params[key])


def test_save_under_a_new_name_only(client, studio, tmp_path, input_id):
    client.post("/api/step", json={"input_id": input_id, "lr": 0.1})
    reply = client.post("/api/save", json={"name": "stepped"})
    assert reply.status_code == 200 and reply.json()["name"] == "stepped.glassnet"
    saved = gn.load(tmp_path / "stepped.glassnet")
    np.testing.assert_array_equal(saved.layers[0].params["weight"], studio.model.layers[0].params["weight"])
    again = client.post("/api/save", json={"name": "stepped.glassnet"})
    assert again.status_code == 409 and "already exists" in again.json()["error"]
    for name in ["../escape", "/etc/passwd", "a/b", "", ".hidden", 42, None]:
        refused = client.post("/api/save", json={"name": name})
        assert refused.status_code == 400, name
        assert "name must be a file name" in refused.json()["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stepped.glassnet"]


def test_a_save_that_fails_is_a_clear_error_and_keeps_the_model(client, studio, tmp_path, monkeypatch):
    from glassnet.apps.studio import views

    def disk_full(model, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(views, "save", disk_full)
    reply = client.post("/api/save", json={"name": "full"})
    assert reply.status_code == 500
    assert reply.json()["error"] == (f"could not save full.glassnet in {tmp_path} (No space left on device); the "
                                     "model is still here: free some space or start the studio in another folder")
    assert client.get("/api/model").status_code == 200 and list(tmp_path.iterdir()) == []


def test_example_is_seed_000_done_right_and_names_the_seeds_mistake(client):
    example = client.get("/api/example").json()
    kernel, conv_bias, dense_weight, dense_bias = torch_updated_weights()       # PyTorch float64
    steps = example["steps"]
    assert_matches(np.array(steps[0]["params_after"]["weight"]), kernel)
    assert_matches(np.array(steps[0]["params_after"]["bias"]), conv_bias)
    assert_matches(np.array(steps[4]["params_after"]["weight"]), dense_weight.T)
    np.testing.assert_array_equal(steps[0]["output"], [[[1, 3, 0, 1], [1, -1, 1, 1], [1, 2, 1, 1], [0, 5, -1, 3]]])
    mistakes = example["mistakes"]
    seed_printed_kernel = [[1.28608701, -0.89271737], [-0.86887679, 1.33376818]]   # what the seed printed
    np.testing.assert_allclose(np.array(mistakes["seed_kernel"])[0, 0], seed_printed_kernel, atol=1e-8)
    assert mistakes["loss"] == pytest.approx(np.log1p(np.exp(-2.0)), rel=1e-14)
    assert mistakes["loss_log10"] == pytest.approx(np.log1p(np.exp(-2.0)) / np.log(10), rel=1e-14)


# -- bad input ------------------------------------------------------------------------------------

def test_bad_uploads_are_refused_with_one_line(client, monkeypatch):
    empty = post_image(client, b"")
    assert empty.status_code == 400 and "empty" in empty.json()["error"]
    text = post_image(client, b"just some words, not a picture")
    assert text.status_code == 400 and "not a readable image" in text.json()["error"]
    wrong_type = post_image(client, drawn_digit_png(), "text/plain")
    assert wrong_type.status_code == 415 and "expected an image" in wrong_type.json()["error"]
    huge = Image.new("L", (5000, 4000), 255)                  # 20 M pixels, a small PNG
    over_pixels = post_image(client, png_bytes(huge))
    assert over_pixels.status_code == 413 and "exceeds the limit" in over_pixels.json()["error"]
    over_bytes = post_image(client, b"\x89PNG" + bytes(studio_app.MAX_UPLOAD_BYTES))
    assert over_bytes.status_code == 413 and "limit of 8,388,608 bytes" in over_bytes.json()["error"]
    truncated = post_image(client, drawn_digit_png()[:200])
    assert truncated.status_code == 400
    blank = post_image(client, png_bytes(Image.new("L", (50, 50), 255)))
    assert blank.status_code == 400 and "blank" in blank.json()["error"]


def test_streamed_upload_over_the_cap_without_content_length(client):
    chunks = (b"x" * 1_048_576 for _ in range(9))             # a generator: sent chunked, no length
    reply = client.post("/api/predict", content=chunks, headers={"Content-Type": "image/png"})
    assert reply.status_code == 413


@pytest.mark.parametrize("route, body, status, words", [
    ("/api/trace", {"input_id": "999"}, 404, "draw or upload again"),
    ("/api/trace", {"input_id": "1", "target": 10}, 400, "target must be a class index in [0, 9]"),
    ("/api/trace", {"input_id": "1", "target": "3"}, 400, "target must be a class index"),
    ("/api/unit", {"input_id": "1", "layer": 0, "position": [16, 0, 0]}, 400, "inside the output of shape [16, 8, 8]"),
    ("/api/unit", {"input_id": "1", "layer": 0, "position": [0, 0]}, 400, "position must be 3 indices"),
    ("/api/unit", {"input_id": "1", "layer": 10, "position": [0]}, 400, "layer must be an index in [0, 9]"),
    ("/api/step", {"input_id": "1", "lr": -1}, 400, "lr must be a number in (0, 100]"),
    ("/api/step", {"input_id": "1", "lr": "fast"}, 400, "lr must be a number"),
    ("/api/train", {"dataset": "mnist"}, 400, "dataset must be one of digits, mnist5k, fashion_mnist, shapes"),
    ("/api/train", {"dataset": "digits", "epochs": 0}, 400, "epochs must be a whole number in [1, 200]"),
    ("/api/train", {"dataset": "digits", "arch": "resnet"}, 400, "arch must be one of"),
    ("/api/train", {"dataset": "digits", "lr": 1e9}, 400, "lr must be a number in (0, 10]"),
    ("/api/train", {"dataset": "digits", "schedule": "cyclic"}, 400, "schedule must be none or one of step, cosine"),
    ("/api/train", {"dataset": "digits", "epochs": 3, "warmup_epochs": 3}, 400,
     "warmup_epochs must be a whole number from 0 to epochs - 1"),
    ("/api/train/pause", {}, 409, "no training job"),
    ("/api/train/use", {}, 409, "no training job"),
])
def test_bad_requests_name_what_was_expected(client, input_id, route, body, status, words):
    reply = client.post(route, json=body)
    assert reply.status_code == status, reply.text
    assert words in reply.json()["error"]


def test_malformed_json_and_non_objects(client):
    reply = client.post("/api/trace", content=b"{not json", headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and "not valid JSON" in reply.json()["error"]
    reply = client.post("/api/trace", json=[1, 2])
    assert reply.status_code == 400 and "expected a JSON object" in reply.json()["error"]


def test_no_model_yet_asks_to_train_one(tmp_path):
    client = starlette_testclient.TestClient(create_app(Studio(save_dir=tmp_path)), base_url=BASE_URL)
    assert client.get("/api/model").json()["model"] is None
    reply = post_image(client, drawn_digit_png())
    assert reply.status_code == 409 and "train one" in reply.json()["error"]


def test_a_model_not_trained_on_images_refuses_drawings(tmp_path):
    model = gn.Sequential([gn.Dense(4, 3, rng=0)])
    model.metadata.update(preprocessing={"kind": "features"}, input_shape=[4])
    client = starlette_testclient.TestClient(create_app(Studio(model, save_dir=tmp_path)), base_url=BASE_URL)
    reply = post_image(client, drawn_digit_png())
    assert reply.status_code == 400 and "not trained on images" in reply.json()["error"]


def test_a_failing_request_does_not_take_the_server_down(client, studio, monkeypatch):
    def broken(*args):
        raise RuntimeError("something broke inside")
    monkeypatch.setattr(studio, "describe", broken)
    reply = client.get("/api/model")
    assert reply.status_code == 500 and reply.json() == {"error": "internal error: RuntimeError: something broke inside"}
    monkeypatch.undo()
    assert client.get("/api/model").status_code == 200


# -- foreign sites ------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "", "10.0.0.5"])
def test_foreign_host_headers_are_refused(client, host):
    reply = client.get("/api/model", headers={"Host": host})
    assert reply.status_code == 403 and "Host" in reply.json()["error"]
    assert client.get("/", headers={"Host": host}).status_code == 403


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:9999", "[::1]:8000", "LOCALHOST"])
def test_local_host_headers_are_served(client, host):
    assert client.get("/api/model", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "https://127.0.0.1.evil.example", "file://"])
def test_posts_from_a_foreign_origin_are_refused(client, input_id, origin):
    reply = client.post("/api/step", json={"input_id": input_id, "lr": 0.1}, headers={"Origin": origin})
    assert reply.status_code == 403 and "another site" in reply.json()["error"]


def test_posts_from_the_page_itself_are_served(client, input_id):
    reply = client.post("/api/step", json={"input_id": input_id, "lr": 0.1}, headers={"Origin": BASE_URL})
    assert reply.status_code == 200


def test_page_and_static_files_carry_a_local_only_content_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas id=\"pad\"" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "http" not in policy
    script = client.get("/static/main.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert client.get("/static/../views.py").status_code == 404


# -- training ---------------------------------------------------------------------------------------------

def read_events(client):
    """Every event of the current job, read through the SSE route until its 'end'."""
    events = []
    with client.stream("GET", "/api/train/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: ") and line != "data: {}":
                events.append(json.loads(line[len("data: "):]))
            if line == "event: end":
                break
    return events


def wait_for_state(client, states, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get("/api/model").json()["job"]
        if job and job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"the job did not reach {states} in {timeout} s")


def test_training_streams_every_batch_and_ends_with_the_weights_fit_gives(client, studio, tmp_path):
    settings = {"dataset": "digits", "arch": "lenet", "epochs": 1, "batch_size": 64, "lr": 0.001,
                "optimizer": "adam"}
    assert client.post("/api/train", json=settings).status_code == 200
    events = read_events(client)
    batches = [e for e in events if e["type"] == "batch"]
    assert len(batches) == 23 and [b["batch"] for b in batches] == list(range(1, 24))   # ceil(1438 / 64)
    assert [e["state"] for e in events if e["type"] == "state"] == ["running", "finished"]
    assert any(e["type"] == "filters" for e in events)
    epoch = next(e for e in events if e["type"] == "epoch")
    assert set(batches[0]["grad_norms"]) == {"0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias",
                                             "9.weight", "9.bias"}
    assert set(batches[0]["dead_relu"]) == {"1", "4", "8"}
    # the same run done directly: the studio only called fit
    data = gn.datasets.digits()
    reference = gn.presets.build_for_dataset(data, dict(studio.job.settings))
    history = reference.fit(data.x_train, data.y_train, epochs=1, batch_size=64, optimizer="adam", lr=0.001,
                            seed=0, verbose=False)
    assert epoch["loss"] == history["loss"][0]
    for ours, theirs in zip(studio.job.model.layers, reference.layers):
        for key in ours.params:
            np.testing.assert_array_equal(ours.params[key], theirs.params[key])
    saved = client.post("/api/train/save", json={"name": "trained"}).json()
    assert gn.load(saved["saved"]).num_params() == reference.num_params()
    assert client.post("/api/train/use").json()["model"]["source"] == "trained on digits"


def test_pause_resume_stop_and_one_job_at_a_time(client, studio):
    settings = {"dataset": "digits", "epochs": 50, "batch_size": 8}
    assert client.post("/api/train", json=settings).status_code == 200
    wait_for_state(client, {"running"})
    second = client.post("/api/train", json=settings)
    assert second.status_code == 409 and "one job at a time" in second.json()["error"]
    assert client.post("/api/train/pause").json()["state"] == "paused"
    time.sleep(0.3)
    frozen = len(studio.job.events)
    time.sleep(0.5)
    assert len(studio.job.events) == frozen                     # no batch runs while paused
    assert client.post("/api/train/resume").json()["state"] == "running"
    deadline = time.monotonic() + 30
    while len(studio.job.events) <= frozen + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(studio.job.events) > frozen + 3
    client.post("/api/train/stop")
    job = wait_for_state(client, {"stopped"})
    assert job["error"] is None and job["test_accuracy"] is not None
    events = read_events(client)
    assert events[-1]["state"] == "stopped"
    assert client.post("/api/train", json={"dataset": "digits", "epochs": 1}).status_code == 200  # free again
    wait_for_state(client, {"finished"})


def test_training_failure_is_reported_not_raised(client, studio, monkeypatch):
    def no_data(name, data_dir=None):
        raise gn.GlassnetError("fashion-mnist files not found here")
    monkeypatch.setattr(gn.datasets, "load", no_data)
    client.post("/api/train", json={"dataset": "fashion_mnist", "epochs": 1})
    job = wait_for_state(client, {"failed"})
    assert job["error"] == "fashion-mnist files not found here"
    assert client.get("/api/model").status_code == 200


def test_a_colour_model_reads_drawings_with_its_own_record(tmp_path):
    data = gn.datasets.shapes(n=50, size=16)
    model = gn.presets.build("colour", data.input_shape, 5, seed=0)
    model.metadata.update(preprocessing=data.preprocessing, class_names=data.class_names, input_shape=[3, 16, 16])
    client = starlette_testclient.TestClient(create_app(Studio(model, save_dir=tmp_path)), base_url=BASE_URL)
    reply = post_image(client, drawn_digit_png()).json()
    assert decode(reply["input"]).shape == (3, 16, 16)
    assert "a grey image, made colour" in reply["note"]
    assert reply["class_names"] == ["circle", "square", "triangle", "star", "cross"]
    unit = client.post("/api/unit", json={"input_id": reply["input_id"], "layer": 0, "position": [2, 5, 6]}).json()
    assert np.array(unit["field"]).shape == (3, 3, 3) and unit["sum"] == pytest.approx(unit["value"], rel=1e-9)


def test_training_with_a_schedule_streams_the_rate_of_every_batch(client, studio):
    """Warm-up then cosine, chosen in the Train form: each batch event carries the rate it used, equal to
    the same schedule made by hand on the same steps."""
    settings = {"dataset": "digits", "arch": "lenet", "epochs": 3, "batch_size": 256, "lr": 0.004,
                "optimizer": "adamw", "schedule": "cosine", "warmup_epochs": 1}
    assert client.post("/api/train", json=settings).status_code == 200
    events = read_events(client)
    rates = [e["lr"] for e in events if e["type"] == "batch"]
    assert len(rates) == 3 * 6                                               # ceil(1438 / 256) batches an epoch
    model = gn.Sequential([gn.Dense(1, 1)])
    opt = gn.AdamW(model, lr=0.004)
    warm = gn.schedules.LinearLR(opt, start_factor=0.1, total_iters=1)
    schedule = gn.schedules.SequentialLR(opt, [warm, gn.schedules.CosineAnnealingLR(opt, T_max=2)], milestones=[1])
    expected = []
    for _ in range(3):
        expected += [opt.lr] * 6
        schedule.step()
    assert rates == expected and rates[0] == pytest.approx(0.0004) and rates[6] == pytest.approx(0.004)
    assert [e["lr"] for e in events if e["type"] == "epoch"] == [rates[5], rates[11], rates[17]]
    options = client.get("/api/train/options").json()
    assert options["schedules"] == ["none", "step", "cosine", "onecycle", "plateau"]
    assert "adamw" in options["optimizers"]
