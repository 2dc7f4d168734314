"""gn.gradcheck: passes on every layer in float64, fails loudly on a broken backward."""
import numpy as np
import pytest

import glassnet as gn

rng = np.random.default_rng(0)

LAYER_CASES = [
    ("conv", lambda: gn.Conv2D(2, 3, (3, 2), stride=(2, 1), padding=1, rng=0), (2, 2, 6, 5)),
    ("conv-same", lambda: gn.Conv2D(1, 2, 4, padding="same", rng=1), (1, 1, 5, 6)),
    ("maxpool-overlap", lambda: gn.MaxPool2D(3, stride=1, padding=1), (2, 2, 5, 5)),
    ("avgpool", lambda: gn.AvgPool2D(2, padding=1), (2, 2, 5, 4)),
    ("dense", lambda: gn.Dense(6, 3, rng=2), (4, 6)),
    ("flatten", lambda: gn.Flatten(), (2, 3, 2, 2)),
    ("dropout", lambda: gn.Dropout(0.4, rng=3), (3, 8)),
    ("batchnorm", lambda: gn.BatchNorm2D(3), (4, 3, 3, 3)),
    ("relu", lambda: gn.ReLU(), (3, 7)),
    ("leaky", lambda: gn.LeakyReLU(0.1), (3, 7)),
    ("sigmoid", lambda: gn.Sigmoid(), (3, 7)),
    ("tanh", lambda: gn.Tanh(), (3, 7)),
    ("identity", lambda: gn.Identity(), (3, 7)),
    ("softmax", lambda: gn.Softmax(), (3, 7)),
]


@pytest.mark.parametrize("name, make_layer, shape", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_gradcheck_passes_on_every_layer(name, make_layer, shape):
    x = rng.standard_normal(shape)
    layer = make_layer()
    target = rng.standard_normal(layer.forward(x).shape)
    errors = gn.gradcheck(layer, x, target, gn.MSE())
    assert "input" in errors
    assert set(errors) == {"input"} | {f"0.{key}" for key in layer.params}
    assert max(errors.values()) < 1e-5


@pytest.mark.parametrize("loss, target_fn", [
    (gn.SoftmaxCrossEntropy(), lambda n: np.arange(n) % 3),
    (gn.MSE(), lambda n: np.ones((n, 3))),
])
def test_gradcheck_on_a_whole_model(loss, target_fn):
    model = gn.Sequential([gn.Conv2D(1, 2, 3, padding=1, rng=0), gn.BatchNorm2D(2), gn.Tanh(),
                           gn.AvgPool2D(2), gn.Flatten(), gn.Dense(8, 3, rng=1)])
    errors = gn.gradcheck(model, rng.standard_normal((3, 1, 4, 4)), target_fn(3), loss)
    assert max(errors.values()) < 1e-5


def test_gradcheck_with_probability_losses():
    model = gn.Sequential([gn.Dense(4, 3, rng=0), gn.Softmax()])
    errors = gn.gradcheck(model, rng.standard_normal((5, 4)), np.arange(5) % 3, gn.CrossEntropy())
    assert max(errors.values()) < 1e-5
    model = gn.Sequential([gn.Dense(4, 2, rng=0), gn.Sigmoid()])
    errors = gn.gradcheck(model, rng.standard_normal((5, 4)), rng.random((5, 2)), gn.BinaryCrossEntropy())
    assert max(errors.values()) < 1e-5


class ReLUWithWrongSlope(gn.ReLU):
    """Deliberately broken: the derivative is leaky (seed 004's bug) while the forward is not."""

    def _input_grad(self, dy, x):
        return np.where(x > 0, dy, 0.1 * dy)


class DenseForgettingBiasGradient(gn.Dense):
    """Deliberately broken: the bias gradient is halved."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["bias"] = self.grads["bias"] / 2
        return dx


def test_gradcheck_fails_loudly_on_a_broken_backward():
    model = gn.Sequential([gn.Dense(4, 5, rng=0), ReLUWithWrongSlope(), gn.Dense(5, 2, rng=1)])
    with pytest.raises(gn.GradcheckError, match="disagree") as info:
        gn.gradcheck(model, rng.standard_normal((6, 4)), rng.standard_normal((6, 2)), gn.MSE())
    assert "input" in str(info.value) and "0.weight" in str(info.value)


def test_gradcheck_names_the_broken_parameter():
    model = gn.Sequential([DenseForgettingBiasGradient(3, 2, rng=0)])
    errors = gn.gradcheck(model, rng.standard_normal((4, 3)), rng.standard_normal((4, 2)), gn.MSE(),
                          raise_on_failure=False)
    assert errors["0.bias"] == pytest.approx(0.5, rel=1e-3)  # analytic is half the true gradient
    assert errors["0.weight"] < 1e-6


def test_gradcheck_leaves_the_model_untouched():
    model = gn.Sequential([gn.Dense(3, 2, rng=0)], dtype=np.float32)
    before = model[0].params["weight"].copy()
    gn.gradcheck(model, rng.standard_normal((2, 3)), rng.standard_normal((2, 2)), gn.MSE())
    np.testing.assert_array_equal(model[0].params["weight"], before)
    assert model.dtype == np.float32
