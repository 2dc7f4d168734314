"""The studio on graph models: the node list with inputs and depths, every node's arrays, the parts of a
fan-out's gradient, the unit detail of Add and Concatenate. References: gn.trace and the engine itself."""
import base64

import numpy as np
import pytest

import glassnet as gn
from glassnet.apps.studio.app import create_app
from glassnet.apps.studio.arrays import decode
from glassnet.apps.studio.views import Studio
from studio_setup import BASE_URL, drawn_digit_png, inception_digits_model, resnet_digits_model

starlette_testclient = pytest.importorskip("starlette.testclient")


def client_for(model, tmp_path):
    studio = Studio(model, save_dir=tmp_path)
    client = starlette_testclient.TestClient(create_app(studio), base_url=BASE_URL)
    reply = client.post("/api/predict", content=drawn_digit_png(), headers={"Content-Type": "image/png"})
    assert reply.status_code == 200, reply.text
    return studio, client, reply.json()["input_id"]


def test_the_model_lists_nodes_with_their_inputs_and_depths(tmp_path):
    studio, client, _ = client_for(resnet_digits_model(), tmp_path)
    info = client.get("/api/model").json()["model"]
    assert info["graph"] is True
    nodes = info["layers"]
    assert len(nodes) == len(studio.model.graph.nodes)
    adds = [node for node in nodes if node["type"] == "Add"]
    assert len(adds) == 3 and all(len(node["inputs"]) == 2 for node in adds)
    for node in nodes:                    # a node sits one column right of its deepest input
        assert node["depth"] == 1 + max(nodes[s]["depth"] if s >= 0 else -1 for s in node["inputs"])


def test_trace_gives_every_node_and_the_parts_summed_at_a_fan_out(tmp_path):
    studio, client, input_id = client_for(resnet_digits_model(), tmp_path)
    answer = client.post("/api/trace", json={"input_id": input_id, "target": 3, "gradients": True}).json()
    model = studio.model
    record = gn.trace(model, studio.inputs[input_id], np.array([3]), gn.SoftmaxCrossEntropy())
    assert len(answer["layers"]) == len(record.steps)
    for node, step in zip(answer["layers"], record.steps):
        np.testing.assert_array_equal(decode(node["output"]), step.output[0])
        np.testing.assert_array_equal(decode(node["grad_output"]), step.grad_output[0])
    fan_outs = [node for node in answer["layers"] if "grad_parts" in node]
    assert fan_outs, "resnet_mini's block inputs are read by a convolution and the shortcut"
    for node in fan_outs:
        parts = [decode(part["grad"]) for part in node["grad_parts"]]
        np.testing.assert_allclose(sum(parts), decode(node["grad_output"]), rtol=1e-13, atol=1e-18)
        readers = [part["from"] for part in node["grad_parts"]]
        expected = [f"{k}: {answer['layers'][k]['type']}" for k in reversed(range(len(answer["layers"])))
                    if node["index"] in answer["layers"][k]["inputs"]]
        assert readers == expected
    add = next(node for node in answer["layers"] if node["type"] == "Add")
    assert len(add["grad_inputs"]) == 2      # dL/d(each addend): dy itself, for each
    for grad in add["grad_inputs"]:
        np.testing.assert_array_equal(decode(grad), decode(add["grad_output"]))


def test_an_add_unit_shows_its_addends(tmp_path):
    studio, client, input_id = client_for(resnet_digits_model(), tmp_path)
    answer = client.post("/api/trace", json={"input_id": input_id, "gradients": False}).json()
    add = next(node for node in answer["layers"] if node["type"] == "Add")
    detail = client.post("/api/unit", json={"input_id": input_id, "layer": add["index"], "position": [3, 2, 5]})
    assert detail.status_code == 200, detail.text
    detail = detail.json()
    addends = [decode(answer["layers"][s]["output"])[3, 2, 5] for s in add["inputs"]]
    assert [term["value"] for term in detail["terms"]] == addends
    assert [term["from"] for term in detail["terms"]] == [f"{s}: {answer['layers'][s]['type']}" for s in add["inputs"]]
    assert detail["sum"] == addends[0] + addends[1] == detail["value"]


def test_a_concatenate_unit_names_the_input_its_channel_came_from(tmp_path):
    studio, client, input_id = client_for(inception_digits_model(), tmp_path)
    answer = client.post("/api/trace", json={"input_id": input_id, "gradients": False}).json()
    joined = next(node for node in answer["layers"] if node["type"] == "Concatenate")
    widths = [decode(answer["layers"][s]["output"]).shape[0] for s in joined["inputs"]]   # 8, 16, 8
    channel = widths[0] + 5                                      # the second input's channel 5
    detail = client.post("/api/unit", json={"input_id": input_id, "layer": joined["index"],
                                            "position": [channel, 1, 2]}).json()
    assert detail["source_input"] == 1 and detail["source_position"] == [5, 1, 2]
    second = decode(answer["layers"][joined["inputs"][1]]["output"])
    assert detail["value"] == detail["sum"] == second[5, 1, 2]
    assert [term["span"] for term in detail["terms"]] == [[0, 7], [8, 23], [24, 31]]


def test_large_arrays_are_paged_as_8_bit_maps_on_the_whole_arrays_scale(tmp_path, monkeypatch):
    """With the inline limit lowered, every node's output is paged: /api/trace sends its shape and range,
    /api/maps its channels as 8-bit levels within half a level of the engine's values."""
    from glassnet.apps.studio import views
    monkeypatch.setattr(views, "INLINE_VALUES", 100)
    studio, client, input_id = client_for(resnet_digits_model(), tmp_path)
    answer = client.post("/api/trace", json={"input_id": input_id, "gradients": False}).json()
    record = gn.trace(studio.model, studio.inputs[input_id], np.array([0]), gn.SoftmaxCrossEntropy())
    wide = answer["layers"][0]                                       # the stem: (16, 8, 8)
    assert wide["output"] is None and wide["output_paged"]["shape"] == [16, 8, 8]
    reply = client.post("/api/maps", json={"input_id": input_id, "node": 0, "what": "output", "start": 4,
                                           "count": 8}).json()
    assert reply["total"] == 16 and reply["shape"] == [8, 8, 8] and reply["start"] == 4
    levels = np.frombuffer(base64.b64decode(reply["data"]), dtype=np.uint8).reshape(8, 8, 8)
    limit, exact = reply["limit"], record.steps[0].output[0]
    assert limit == np.abs(exact).max() and reply["signed"] == bool(exact.min() < 0)
    approx = (levels / 127.5 - 1) * limit if reply["signed"] else levels / 255 * limit
    assert np.abs(approx - exact[4:12]).max() <= limit / 255 + 1e-12
    unit = client.post("/api/unit", json={"input_id": input_id, "layer": 0, "position": [5, 2, 3]}).json()
    assert unit["value"] == exact[5, 2, 3]                           # exact numbers for the unit opened
    bad = client.post("/api/maps", json={"input_id": input_id, "node": 0, "what": "weights", "start": 0, "count": 4})
    assert bad.status_code == 400 and "what must be output, grad_output" in bad.json()["error"]
    bad = client.post("/api/maps", json={"input_id": input_id, "node": 0, "what": "output", "start": 16, "count": 4})
    assert bad.status_code == 400 and "start and count must pick channels of 16" in bad.json()["error"]
    with_grads = client.post("/api/trace", json={"input_id": input_id, "target": 1, "gradients": True}).json()
    assert with_grads["layers"][0]["grad_output_paged"]["shape"] == [16, 8, 8]
    grad_page = client.post("/api/maps", json={"input_id": input_id, "target": 1, "node": 0, "what": "grad_output",
                                               "start": 0, "count": 16}).json()
    assert grad_page["shape"] == [16, 8, 8]


def test_a_pass_is_recorded_once_and_forgotten_when_the_weights_change(tmp_path):
    studio, client, input_id = client_for(resnet_digits_model(), tmp_path)
    client.post("/api/trace", json={"input_id": input_id, "gradients": False})
    first = studio.passes[(input_id, None, False)]
    client.post("/api/trace", json={"input_id": input_id, "gradients": False})
    assert studio.passes[(input_id, None, False)] is first                  # the same record, not run again
    client.post("/api/step", json={"input_id": input_id, "target": 1, "lr": 0.1})
    assert studio.passes == {}
    again = client.post("/api/trace", json={"input_id": input_id, "gradients": False}).json()
    record = gn.trace(studio.model, studio.inputs[input_id], np.array([0]), gn.SoftmaxCrossEntropy())
    np.testing.assert_array_equal(decode(again["layers"][-1]["output"]), record.steps[-1].output[0])
