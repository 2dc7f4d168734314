"""The studio's unit details for the layers of real architectures: for every node of a digits model
holding them, a few units' "sum of the terms" equals the value in the feature map; a depthwise unit
names the input channel it reads, an LRN unit its window of channels."""
import numpy as np
import pytest

import glassnet as gn
from glassnet.apps.studio.arrays import decode
from glassnet.models import presets
from test_studio_graphs import client_for

starlette_testclient = pytest.importorskip("starlette.testclient")


def layers_digits_model():
    """(1, 8, 8) digits through depthwise/dilated/grouped conv, LRN, ceil-mode pooling, padding, upsampling,
    shuffles, a transposed conv and the modern activations."""
    rng = np.random.default_rng(0)
    x = gn.Input((1, 8, 8))
    h = gn.GELU()(gn.Conv2D(1, 8, 3, padding=1, rng=rng)(x))
    h = gn.PReLU(16)(gn.Conv2D(8, 16, 3, padding=2, dilation=2, groups=8, rng=rng)(h))       # depthwise x2
    h = gn.LRN(5, alpha=0.5)(h)
    h = gn.Add()([h, gn.ChannelShuffle(4)(gn.Conv2D(16, 16, 1, groups=4, rng=rng)(h))])     # a graph
    h = gn.MaxPool2D(3, 2, padding=1, ceil_mode=True)(gn.Pad2D((0, 1, 1, 0), mode="reflect")(h))
    h = gn.ConvTranspose2D(16, 8, 3, stride=2, padding=1, output_padding=1, rng=rng)(h)
    h = gn.Upsample2D(2, mode="bilinear")(gn.AvgPool2D(2, ceil_mode=True, count_include_pad=False)(h))
    h = gn.SiLU()(gn.PixelShuffle(2)(gn.Conv2D(8, 8, 1, rng=rng)(h)))
    y = gn.LogSoftmax()(gn.Dense(2, 10, rng=rng)(gn.GlobalAvgPool2D()(gn.Hardswish()(h))))
    model = gn.Model(x, y)
    reference = presets.build_for_dataset(gn.datasets.digits(), dict(
        presets.DEFAULTS["digits"], dataset="digits", data_dir=None, dtype="float64", seed=0, checkpoint_every=None))
    model.metadata.update(reference.metadata)
    model.metadata["arch"] = "layers test"
    return model


def test_every_units_terms_add_up_to_its_value(tmp_path):
    studio, client, input_id = client_for(layers_digits_model(), tmp_path)
    answer = client.post("/api/trace", json={"input_id": input_id, "gradients": False}).json()
    seen = set()
    for node in answer["layers"]:
        output = decode(node["output"])
        for flat in (0, output.size // 2, output.size - 1):
            position = [int(p) for p in np.unravel_index(flat, output.shape)]
            detail = client.post("/api/unit", json={"input_id": input_id, "layer": node["index"],
                                                    "position": position})
            assert detail.status_code == 200, detail.text
            detail = detail.json()
            assert "no per-unit detail" not in detail["formula"], node["type"]
            np.testing.assert_allclose(detail["sum"], detail["value"], rtol=1e-9, atol=1e-12,
                                       err_msg=f"{node['type']} {position}: {detail['formula']}")
            seen.add(node["type"])
    assert {"LRN", "ConvTranspose2D", "Pad2D", "Upsample2D", "PixelShuffle", "ChannelShuffle", "GELU", "PReLU",
            "LogSoftmax", "Hardswish", "SiLU"} <= seen


def test_a_depthwise_unit_reads_one_input_channel_and_an_lrn_unit_its_window(tmp_path):
    studio, client, input_id = client_for(layers_digits_model(), tmp_path)
    depthwise = client.post("/api/unit", json={"input_id": input_id, "layer": 2, "position": [11, 3, 4]}).json()
    assert depthwise["channels_shown"] == [5] and depthwise["group"] == 5          # output 11 = channel 5, copy 2
    assert "group 5 of 8: reads input channel 5 only" in depthwise["note"]
    assert "x[5+c, 1+2u, 2+2v]" in depthwise["formula"]                           # dilation 2: every other pixel
    lrn = client.post("/api/unit", json={"input_id": input_id, "layer": 4, "position": [0, 1, 1]}).json()
    assert lrn["window_channels"] == [0, 2] and len(lrn["channel_values"]) == 3
    assert "channels 0-2" in lrn["note"]


def squeeze_excitation_digits_model():
    """(1, 8, 8) digits through Rescaling, a squeeze-and-excitation gate (Reshape, broadcast Multiply) and
    stochastic depth (Dropout with a noise_shape)."""
    rng = np.random.default_rng(1)
    x = gn.Input((1, 8, 8))
    h = gn.SiLU()(gn.Conv2D(1, 8, 3, padding=1, rng=rng)(gn.Rescaling(1 / 16, -0.5)(x)))
    gate = gn.Sigmoid()(gn.Conv2D(8, 8, 1, rng=rng)(gn.Reshape((8, 1, 1))(gn.GlobalAvgPool2D()(h))))
    h = gn.Add()([h, gn.Dropout(0.2, rng=0, noise_shape=(1, 1, 1))(gn.Multiply()([h, gate]))])
    model = gn.Model(x, gn.Dense(8, 10, rng=rng)(gn.GlobalAvgPool2D()(h)))
    reference = layers_digits_model()
    model.metadata.update(reference.metadata)
    model.metadata["arch"] = "squeeze-excitation test"
    return model


def test_squeeze_excitation_units_add_up_and_name_the_broadcast_gate(tmp_path):
    studio, client, input_id = client_for(squeeze_excitation_digits_model(), tmp_path)
    answer = client.post("/api/trace", json={"input_id": input_id, "gradients": True}).json()
    kinds = set()
    for node in answer["layers"]:
        output = decode(node["output"])
        position = [int(p) for p in np.unravel_index(output.size - 1, output.shape)]
        detail = client.post("/api/unit", json={"input_id": input_id, "layer": node["index"], "position": position})
        assert detail.status_code == 200, detail.text
        detail = detail.json()
        kinds.add(node["type"])
        if node["type"] in ("Rescaling", "Reshape", "Multiply"):
            assert "no per-unit detail" not in detail["formula"], node["type"]
            np.testing.assert_allclose(detail["sum"], detail["value"], rtol=1e-9, atol=1e-12, err_msg=node["type"])
        if node["type"] == "Multiply":                     # the gate (C, 1, 1) is read at [c, 0, 0]
            assert detail["terms"][1]["position"] == [position[0], 0, 0]
            assert "input 1 broadcast over the axes of size 1" in detail["formula"]
    assert {"Rescaling", "Reshape", "Multiply", "Dropout"} <= kinds
