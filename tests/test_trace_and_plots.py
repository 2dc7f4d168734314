"""The trace records exactly what the engine computes (and what PyTorch computes), the built-in
example tells seed 000's story with the right numbers, and every picture is a real PNG."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import glassnet as gn
from glassnet.files.torch_convert import to_torch
from glassnet.see.explain import seed_example
from test_cli import draw_digit, run as glassnet
from test_seed000 import torch_updated_weights


def small_cnn():
    rng = np.random.default_rng(0)
    return gn.Sequential([gn.Conv2D(2, 3, 3, padding=1, rng=rng), gn.ReLU(), gn.MaxPool2D(2),
                          gn.Conv2D(3, 4, 2, rng=rng), gn.Tanh(), gn.Flatten(), gn.Dense(64, 5, rng=rng)])


def test_the_trace_records_the_engines_own_gradients_and_pytorchs():
    rng = np.random.default_rng(1)
    x, labels = rng.standard_normal((3, 2, 10, 10)), np.array([0, 4, 2])
    model = small_cnn()
    twin = to_torch(model).double()
    engine = copy.deepcopy(model)
    record = gn.trace(model, x, labels, gn.SoftmaxCrossEntropy())

    # the engine, run on its own, computes the very same arrays
    loss = gn.SoftmaxCrossEntropy()
    loss.forward(engine.forward(x), labels)
    assert np.array_equal(engine.backward(loss.backward()), record.steps[0].grad_input)
    for step, layer in zip(record.steps, engine.layers):
        for key, grad in layer.grads.items():
            assert np.array_equal(step.param_grads[key], grad)

    # PyTorch, float64: every layer's output, the gradient arriving at it, and every parameter gradient
    h = torch.tensor(x, requires_grad=True)
    outputs = []
    for module in twin:
        h = module(h)
        h.retain_grad()
        outputs.append(h)
    torch_loss = F.cross_entropy(h, torch.tensor(labels))
    torch_loss.backward()
    assert record.loss == pytest.approx(torch_loss.item(), rel=1e-12)
    for step, module, out in zip(record.steps, twin, outputs):
        np.testing.assert_allclose(step.output, out.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(step.grad_output, out.grad.numpy(), rtol=1e-10, atol=1e-14)
        if hasattr(module, "weight"):
            weight = module.weight.grad.numpy()
            weight = weight.T if isinstance(module, torch.nn.Linear) else weight
            np.testing.assert_allclose(step.param_grads["weight"], weight, rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(step.param_grads["bias"], module.bias.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_the_trace_shows_parameters_after_an_optimizer_step():
    model = small_cnn()
    x, labels = np.random.default_rng(2).standard_normal((2, 2, 10, 10)), np.array([1, 3])
    record = gn.trace(model, x, labels, gn.SoftmaxCrossEntropy(), optimizer=gn.SGD(model, lr=0.5))
    for step, layer in zip(record.steps, model.layers):
        for key in layer.params:
            np.testing.assert_array_equal(step.params_after[key], layer.params[key])
            np.testing.assert_allclose(step.params_after[key],
                                       step.params_before[key] - 0.5 * step.param_grads[key], rtol=1e-15)
    text = record.text(max_elements=10)
    assert "shape (2, 2, 10, 10)" in text and "(size 400: summarised)" in text and "norm" in text


def test_the_built_in_example_shows_the_seeds_matrices_and_the_correct_update():
    text = seed_example()
    for printed in ["[[ 1.  3.  0.  1.]\n     [ 1. -1.  1.  1.]\n     [ 1.  2.  1.  1.]\n     [ 0.  5. -1.  3.]]",
                    "[[1. 3. 0. 1.]\n     [1. 0. 1. 1.]\n     [1. 2. 1. 1.]\n     [0. 5. 0. 3.]]",
                    "[[3. 1.]\n     [5. 3.]]", "[[3. 1. 5. 3.]]", "(exactly 0.8807970779778823)"]:
        assert printed in text, printed
    kernel, conv_bias, dense_weight, _ = torch_updated_weights()
    correct = np.array2string(kernel[0, 0] + 0.0, precision=8, suppress_small=True, max_line_width=100)
    update = text[text.index("UPDATE: SGD(lr=0.1"):text.index("WHAT SEED 000 GOT WRONG")]
    assert correct.replace("\n", "\n    ") in update
    mistakes = text[text.index("WHAT SEED 000 GOT WRONG"):]
    assert "[[ 1.28608701 -0.89271737]\n     [-0.86887679  1.33376818]]" in mistakes  # what the seed printed
    assert f"correct {conv_bias[0]:.10g}" in mistakes and "seed's updated conv bias 1.143043506" in mistakes
    assert "log10 (0.05512413479)" in mistakes


def test_fit_records_gradient_norms_and_dead_relus():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((12, 2, 10, 10)), rng.integers(0, 5, 12)
    model = small_cnn()
    before = copy.deepcopy(model)
    history = model.fit(x, y, epochs=1, batch_size=12, optimizer="sgd", lr=0.1, seed=0, verbose=False)
    # one batch holding every sample: the epoch's mean is that batch's figure
    loss = gn.SoftmaxCrossEntropy()
    loss.forward(before.forward(x), y)
    before.backward(loss.backward())
    for name, layer, key in before.named_parameters():
        assert history["grad_norms"][name][0] == pytest.approx(np.linalg.norm(layer.grads[key]), rel=1e-9)
    relu = before.layers[1]
    dead = np.mean(~(relu.positive_mask().any(axis=0)))
    assert history["dead_relu"] == {"1": [pytest.approx(dead)]}


def assert_real_png(path, min_size=(300, 200)):
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # not one colour, not blank



def test_train_evaluate_and_inspect_write_real_pictures(tmp_path):
    trained = glassnet("train", "--dataset", "digits", "--epochs", "3", "--quiet", "--plots", "train",
                       "--out", "m.glassnet", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    names = ["training_curves", "gradient_norms", "filters", "confusion_matrix", "misclassified"]
    for name in names:
        assert_real_png(tmp_path / "train" / f"{name}.png")
    evaluated = glassnet("evaluate", "m.glassnet", "--dataset", "digits", "--plots", "eval", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == ["confusion_matrix.png", "filters.png",
                                                                      "misclassified.png"]
    draw_digit(tmp_path / "four.png", 4)
    inspected = glassnet("inspect", "m.glassnet", "four.png", "--out", "look", cwd=tmp_path)
    assert inspected.returncode == 0, inspected.stderr
    assert_real_png(tmp_path / "look" / "feature_maps.png")
    assert_real_png(tmp_path / "look" / "filters.png")
    explained = glassnet("explain", "--model", "m.glassnet", "--image", "four.png", "--label", "4", cwd=tmp_path)
    assert explained.returncode == 0, explained.stderr
    assert "m.glassnet on four.png, target class 4" in explained.stdout
    assert "-- layer 0: Conv2D(in_channels=1, out_channels=16" in explained.stdout
    assert "SoftmaxCrossEntropy = " in explained.stdout and "UPDATE: SGD(lr=0.1" in explained.stdout


def test_explain_from_the_command_line(tmp_path):
    built_in = glassnet("explain", cwd=tmp_path)
    assert built_in.returncode == 0 and "WHAT SEED 000 GOT WRONG" in built_in.stdout
    own = glassnet("explain", "--net", "conv:2:3,relu,maxpool:2,flatten,dense:3", "--input", "1x6x6", "--label", "2",
                   cwd=tmp_path)
    assert own.returncode == 0, own.stderr
    assert "-- layer 4: Dense(in_features=8, out_features=3" in own.stdout and "UPDATE: SGD(lr=0.1" in own.stdout
    bad = glassnet("explain", "--net", "conv:2,relu", "--input", "1x6x6", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "cannot read 'conv:2'" in bad.stderr
