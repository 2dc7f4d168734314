"""Hand-written PyTorch MobileNetV2, ShuffleNet-v2 unit (its channel shuffle by nn.ChannelShuffle, and written
out with view/transpose/reshape as torchvision writes it), U-Net decoder, DCGAN generator and EfficientNet through
gn.from_torch and gn.to_torch: outputs equal in float32 (1e-5) and float64 (1e-10), one training
step's gradients equal to PyTorch's (float64, 1e-10), and each traced."""
import numpy as np
import pytest
import torch

import glassnet as gn
from real_architectures import ARCHITECTURES
from reference import assert_matches


def glassnet_arrays(model):
    """Every parameter of ``model`` as (name, array, layer, key); Dense's weight also seen transposed."""
    for index, layer in enumerate(model.layers):
        for key, value in layer.params.items():
            yield f"{index}.{key}", value, layer, key


def pair_parameters(module, model):
    """torch parameter name -> (layer, key): the glassnet array holding the same values (the copy
    from_torch made; every initial weight is distinct)."""
    pairs = {}
    for name, parameter in module.named_parameters():
        values = parameter.detach().numpy()
        matches = [(layer, key) for _, array, layer, key in glassnet_arrays(model)
                   if (array.shape == values.shape and np.array_equal(array, values))
                   or (isinstance(layer, gn.Dense) and key == "weight" and np.array_equal(array.T, values))]
        assert len(matches) >= 1, f"{name} has no glassnet counterpart"
        pairs[name] = matches[0]
    return pairs


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_from_torch_float64_forward_and_gradients_equal_torch(name):
    torch.manual_seed(0)
    module, shape = ARCHITECTURES[name]()
    module = module.double().train()
    with torch.no_grad():                         # BatchNorm's affine weights away from their 1/0 start
        for parameter in module.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    model = gn.from_torch(module, input_shape=shape)
    x = np.random.default_rng(1).standard_normal((3,) + shape)
    out = model.forward(x)
    x_t = torch.tensor(x, requires_grad=True)
    out_t = module(x_t)
    assert_matches(out, out_t)
    dy = np.random.default_rng(2).standard_normal(out.shape)
    dx = model.backward(dy)
    out_t.backward(torch.tensor(dy))
    assert_matches(dx, x_t.grad)
    pairs = pair_parameters(module, model)
    assert len(pairs) == sum(1 for _ in module.parameters())
    for parameter_name, parameter in module.named_parameters():
        layer, key = pairs[parameter_name]
        grad = layer.grads[key].T if isinstance(layer, gn.Dense) and key == "weight" else layer.grads[key]
        assert_matches(grad, parameter.grad)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_float32_round_trip_through_to_torch_and_trace(name):
    torch.manual_seed(1)
    module, shape = ARCHITECTURES[name]()
    module = module.float().eval()
    model = gn.from_torch(module, input_shape=shape)
    assert model.dtype == np.float32
    x = np.random.default_rng(3).standard_normal((2,) + shape).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.tensor(x)).numpy()
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-5, atol=1e-5)
    twin = gn.to_torch(model)
    with torch.no_grad():
        np.testing.assert_allclose(twin(torch.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)
    recorded = gn.trace(model, x, np.zeros(expected.shape, np.float32), gn.MSE())
    assert len(recorded.steps) == len(model.graph.nodes)
