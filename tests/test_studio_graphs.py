"""The studio on graph models: the node list with inputs and depths, every node's arrays, the parts of a
fan-out's gradient, the unit detail of Add and Concatenate. References: gn.trace and the engine itself."""
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
