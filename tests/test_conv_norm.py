"""Inference's convolution + BatchNorm2D step (conv_norm.py, Graph.infer): the normalisation folded into the
convolution's weights and bias where the weights are the smaller, else in place on the convolution's output.

Reference: the two layers one after the other (``forward``) and PyTorch float64 (Conv2d then BatchNorm2d in
eval mode). Folded, (scale W) * x + (scale b + shift) sums other rounded numbers than (W * x + b) * scale +
shift: equal to 1e-12 relative in float64 (a wrong scale or shift would be off by its own size); in place,
the same passes as BatchNorm2D.forward: the same bits.
"""
import numpy as np
import pytest
import torch

import glassnet as gn
from glassnet.nn.layers.conv_norm import conv_output_size, conv_then_batch_norm
from reference import assert_matches


def with_statistics(norm, rng):
    """A BatchNorm2D whose weight, bias and running statistics are not the initial 1, 0, 0, 1."""
    C = norm.num_features
    norm.params["weight"] = rng.uniform(0.5, 1.5, C).astype(norm.dtype)
    norm.params["bias"] = rng.standard_normal(C).astype(norm.dtype)
    norm.buffers["running_mean"] = rng.standard_normal(C).astype(norm.dtype)
    norm.buffers["running_var"] = rng.uniform(0.5, 2.0, C).astype(norm.dtype)
    return norm.eval()


def torch_conv_norm(conv, norm, x):
    """PyTorch float64: Conv2d then BatchNorm2d (eval) with the same parameters."""
    twin = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0, conv.dilation,
                           conv.groups, bias=conv.use_bias, dtype=torch.float64)
    twin.weight.data = torch.tensor(conv.params["weight"], dtype=torch.float64)
    if conv.use_bias:
        twin.bias.data = torch.tensor(conv.params["bias"], dtype=torch.float64)
    bn = torch.nn.BatchNorm2d(norm.num_features, eps=norm.eps, dtype=torch.float64).eval()
    bn.weight.data, bn.bias.data = (torch.tensor(norm.params[k], dtype=torch.float64) for k in ("weight", "bias"))
    bn.running_mean.data, bn.running_var.data = (torch.tensor(norm.buffers[k], dtype=torch.float64)
                                                 for k in ("running_mean", "running_var"))
    top, bottom, left, right = conv.pads
    padded = torch.nn.functional.pad(torch.tensor(x, dtype=torch.float64), (left, right, top, bottom))
    with torch.no_grad():
        return bn(twin(padded)).numpy()


CONVS = {   # (in, out, kernel, keyword arguments): each of Conv2D's ways
    "pointwise": (8, 12, 1, {}),
    "pointwise_stride2": (8, 12, 1, {"stride": 2}),
    "columns_3x3": (6, 10, 3, {"padding": 1}),
    "first_layer": (1, 6, 5, {}),
    "strided_7x7": (3, 8, 7, {"stride": 2, "padding": 3}),
    "depthwise": (8, 8, 3, {"padding": 1, "groups": 8}),
    "grouped": (8, 6, 3, {"groups": 2, "dilation": 2, "padding": 2}),
    "winograd": (128, 128, 3, {"padding": 1}),
}


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("name", sorted(CONVS))
@pytest.mark.parametrize("batch", [1, 6])
def test_the_step_equals_the_two_layers_and_pytorch(name, bias, batch):
    rng = np.random.default_rng(0)
    c_in, c_out, k, kwargs = CONVS[name]
    conv = gn.Conv2D(c_in, c_out, k, bias=bias, rng=1, **kwargs)
    norm = with_statistics(gn.BatchNorm2D(c_out), rng)
    x = rng.standard_normal((batch, c_in, 12, 12))
    kept = {key: value.copy() for key, value in conv.params.items()}
    expected = norm.forward(conv.forward(x))
    ours = conv_then_batch_norm(conv, norm, x)
    if conv.params["weight"].size >= conv_output_size(conv, x):      # in place: forward's passes, its bits
        np.testing.assert_array_equal(ours, expected)
    else:                                                            # folded
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    assert_matches(ours, torch_conv_norm(conv, norm, x))
    for key, value in kept.items():                                 # the layer's own weights untouched
        np.testing.assert_array_equal(conv.params[key], value)
    assert set(conv.params) == set(kept)


def test_both_ways_are_taken_by_size():
    x = np.zeros((1, 8, 4, 4))
    small = gn.Conv2D(8, 8, 1, rng=0)                      # 64 weights, 128 outputs: folded
    large = gn.Conv2D(8, 8, 3, padding=1, rng=0)           # 576 weights, 128 outputs: in place
    assert small.params["weight"].size < conv_output_size(small, x)
    assert large.params["weight"].size >= conv_output_size(large, x)


@pytest.mark.parametrize("name", ["pointwise", "columns_3x3", "depthwise"])
def test_float32_step_agrees_with_the_float64_reference(name):
    rng = np.random.default_rng(2)
    c_in, c_out, k, kwargs = CONVS[name]
    conv64 = gn.Conv2D(c_in, c_out, k, rng=1, **kwargs)
    norm64 = with_statistics(gn.BatchNorm2D(c_out), rng)
    x = rng.standard_normal((6, c_in, 12, 12))
    expected = norm64.forward(conv64.forward(x))
    ours = conv_then_batch_norm(conv64.astype(np.float32), norm64.astype(np.float32).eval(), x.astype(np.float32))
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-6 * np.abs(expected).max())


def test_training_statistics_or_another_reader_keep_the_layers_apart():
    inputs = gn.Input((3, 8, 8))
    h = gn.Conv2D(3, 4, 3, padding=1, rng=0)(inputs)
    joined = gn.BatchNorm2D(4)(h)
    shared = gn.Conv2D(3, 4, 1, rng=1)(inputs)                  # read by the BatchNorm and by the Add
    out = gn.Add()([joined, gn.BatchNorm2D(4)(shared), shared])
    model = gn.Model(inputs, out)
    assert model.graph.batch_norm_plans() == {1: 0}
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if isinstance(layer, gn.BatchNorm2D):
            with_statistics(layer, rng)
    x = rng.standard_normal((5, 3, 8, 8))
    model.train()                                              # batch statistics: never folded, forward's bits
    np.testing.assert_array_equal(model.infer(x), model.forward(x))
    model.eval()
    expected = model.forward(x)
    np.testing.assert_allclose(model.infer(x), expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_a_model_with_batch_norm_infers_as_pytorch_and_leaves_its_input_alone():
    model = gn.presets.build("resnet_mini", (1, 12, 12), 3, seed=1).eval()
    rng = np.random.default_rng(4)
    for layer in model.layers:
        if isinstance(layer, gn.BatchNorm2D):
            with_statistics(layer, rng)
    assert len(model.graph.batch_norm_plans()) == sum(isinstance(layer, gn.BatchNorm2D) for layer in model.layers)
    x = rng.standard_normal((4, 1, 12, 12))
    kept = x.copy()
    twin = gn.to_torch(model).eval()
    with torch.no_grad():
        expected = twin(torch.tensor(x))
    assert_matches(model.infer(x), expected)
    assert_matches(model.infer(x), expected)                   # again: nothing of the first call stays
    np.testing.assert_array_equal(x, kept)
