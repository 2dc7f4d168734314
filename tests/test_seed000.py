"""Seed 000's worked example (5x5 image, 2x2 kernel, ReLU, max pool, dense, sigmoid, BCE), done right.

Forward values are the ones the seed prints (they are correct). The updated weights come
from PyTorch float64; the seed's printed conv update is wrong because it back-propagated
the dense layer's weight gradient instead of its input gradient.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import glassnet as gn
from reference import assert_matches, tensor

IMAGE = np.array([[1, 2, 0, 2, 1],
                  [0, 1, 1, 2, 1],
                  [1, 2, 0, 1, 0],
                  [1, 2, 1, 2, 1],
                  [0, 0, 3, 2, 3]], dtype=np.float64)
KERNEL = np.array([[1, -1], [-1, 1]], dtype=np.float64)
CONV_BIAS = 1.0
DENSE_WEIGHT = np.array([1, 1, -1, 1], dtype=np.float64)
LEARNING_RATE = 0.1


def seed_model():
    model = gn.Sequential([gn.Conv2D(1, 1, 2), gn.ReLU(), gn.MaxPool2D(2), gn.Flatten(), gn.Dense(4, 1),
                           gn.Sigmoid()])
    model[0].params["weight"][...] = KERNEL
    model[0].params["bias"][...] = CONV_BIAS
    model[4].params["weight"][...] = DENSE_WEIGHT.reshape(4, 1)
    model[4].params["bias"][...] = 0.0
    return model


def test_forward_values_printed_by_the_seed():
    model = seed_model()
    x = IMAGE.reshape(1, 1, 5, 5)
    conv = model[0].forward(x)
    relu = model[1].forward(conv)
    pool = model[2].forward(relu)
    flat = model[3].forward(pool)
    activation = model[5].forward(model[4].forward(flat))
    np.testing.assert_array_equal(conv[0, 0], [[1, 3, 0, 1], [1, -1, 1, 1], [1, 2, 1, 1], [0, 5, -1, 3]])
    np.testing.assert_array_equal(relu[0, 0], [[1, 3, 0, 1], [1, 0, 1, 1], [1, 2, 1, 1], [0, 5, 0, 3]])
    np.testing.assert_array_equal(pool[0, 0], [[3, 1], [5, 3]])
    np.testing.assert_array_equal(flat, [[3, 1, 5, 3]])
    assert activation[0, 0] == pytest.approx(0.8807970779778823, rel=1e-15)
    # natural-log BCE (the seed printed log10): -ln(sigmoid(2))
    loss = gn.BinaryCrossEntropy().forward(activation, np.array([[1.0]]))
    assert loss == pytest.approx(np.log1p(np.exp(-2.0)), rel=1e-14)


def torch_updated_weights():
    x = tensor(IMAGE.reshape(1, 1, 5, 5))
    kernel = tensor(KERNEL.reshape(1, 1, 2, 2), grad=True)
    conv_bias = tensor([CONV_BIAS], grad=True)
    dense_weight = tensor(DENSE_WEIGHT.reshape(1, 4), grad=True)
    dense_bias = tensor([0.0], grad=True)
    hidden = F.max_pool2d(F.relu(F.conv2d(x, kernel, conv_bias)), 2).flatten(1)
    prediction = torch.sigmoid(F.linear(hidden, dense_weight, dense_bias))
    F.binary_cross_entropy(prediction, tensor([[1.0]])).backward()
    params = (kernel, conv_bias, dense_weight, dense_bias)
    return [(p - LEARNING_RATE * p.grad).detach().numpy() for p in params]


def test_one_sgd_step_gives_the_correct_updated_weights():
    model = seed_model()
    loss = gn.BinaryCrossEntropy()
    loss.forward(model.forward(IMAGE.reshape(1, 1, 5, 5)), np.array([[1.0]]))
    model.backward(loss.backward())
    gn.SGD(model, lr=LEARNING_RATE).step()
    kernel, conv_bias, dense_weight, dense_bias = torch_updated_weights()
    assert_matches(model[0].params["weight"], kernel)
    assert_matches(model[0].params["bias"], conv_bias)
    assert_matches(model[4].params["weight"], dense_weight.T)
    assert_matches(model[4].params["bias"], dense_bias)
    # the seed's dense-layer update is right and agrees with ours ...
    np.testing.assert_allclose(model[4].params["weight"][:, 0],
                               [1.03576088, 1.01192029, -0.94039854, 1.03576088], atol=1e-8)
    assert model[4].params["bias"][0] == pytest.approx(0.011920292202211769, rel=1e-12)
    # ... but its conv kernel update (from the dense *weight* gradient) is not
    seed_printed_kernel = np.array([[1.28608701, -0.89271737], [-0.86887679, 1.33376818]])
    assert np.abs(model[0].params["weight"][0, 0] - seed_printed_kernel).max() > 0.1
