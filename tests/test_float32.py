"""float32 on request, kept end to end; results close to float64."""
import numpy as np

import glassnet as gn


def build(dtype):
    return gn.Sequential([
        gn.Conv2D(1, 4, 3, stride=2, padding=1, rng=0), gn.BatchNorm2D(4), gn.LeakyReLU(),
        gn.MaxPool2D(2), gn.Conv2D(4, 3, 2, padding="same", rng=1), gn.Sigmoid(), gn.AvgPool2D(2, stride=1),
        gn.Dropout(0.2, rng=2), gn.Flatten(), gn.Dense(3 * 2 * 2, 10, rng=3), gn.Tanh(), gn.Dense(10, 4, rng=4),
        gn.Softmax(),
    ], dtype=dtype)


def test_float32_is_preserved_through_forward_backward_and_optimizers():
    model = build(np.float32)
    x = np.random.default_rng(0).standard_normal((3, 1, 12, 12))  # float64 data is converted on entry
    for layer in model.layers:
        x = layer.forward(x)
        assert x.dtype == np.float32, type(layer).__name__
    loss = gn.CrossEntropy()
    loss.forward(x, np.array([0, 1, 3]))
    dy = loss.backward()
    assert dy.dtype == np.float32
    for layer in reversed(model.layers):
        dy = layer.backward(dy)
        assert dy.dtype == np.float32, type(layer).__name__
        for key, grad in layer.grads.items():
            assert grad.dtype == np.float32, f"{type(layer).__name__}.{key}"
    for opt in (gn.SGD(model, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
                gn.Adam(model, lr=0.01, weight_decay=0.01)):
        opt.step()
        for name, param in model.parameters().items():
            assert param.dtype == np.float32, name


def test_float32_results_are_close_to_float64():
    x = np.random.default_rng(1).standard_normal((3, 1, 12, 12))
    model64, model32 = build(np.float64), build(np.float32)
    model64.eval()
    model32.eval()
    np.testing.assert_allclose(model32.forward(x), model64.forward(x), rtol=1e-4, atol=1e-5)


def test_float64_is_the_default():
    assert gn.Dense(2, 2).params["weight"].dtype == np.float64
    assert gn.Conv2D(1, 1, 2).params["weight"].dtype == np.float64
