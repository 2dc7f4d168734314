"""What EfficientNet adds to the layers of real architectures: merges that broadcast (squeeze-and-excitation
multiplies (N, C, H, W) by (N, C, 1, 1)), Reshape, Rescaling (Keras' Rescaling and Normalization) and
Dropout with a noise_shape (stochastic depth). Against PyTorch float64 on every array library, and by hand."""
import numpy as np
import pytest
import torch

import glassnet as gn
from reference import assert_matches

SHAPES = [[(2, 3, 4, 5), (2, 3, 1, 1)], [(2, 3, 1, 1), (2, 3, 4, 5)], [(2, 3, 4, 5), (2, 1, 4, 5), (2, 3, 4, 1)],
          [(2, 6), (2, 1)], [(2, 3, 4, 5), (2, 3, 4, 5)]]


@pytest.mark.parametrize("kind", ["Add", "Multiply"])
@pytest.mark.parametrize("shapes", SHAPES)
def test_broadcast_merges_match_torch(backend, kind, shapes):
    rng = np.random.default_rng(len(shapes) * 7 + len(shapes[0]))
    arrays = [rng.standard_normal(shape) for shape in shapes]
    layer = backend.move(getattr(gn, kind)())
    out = layer.forward([backend.array(a) for a in arrays])
    backend.check_place(out)
    dy = rng.standard_normal(tuple(out.shape))
    grads = layer.backward(backend.array(dy))
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    expected = tensors[0]
    for tensor in tensors[1:]:
        expected = expected + tensor if kind == "Add" else expected * tensor
    expected.backward(torch.tensor(dy))
    assert_matches(gn.backend.to_numpy(out), expected.detach().numpy())
    for grad, tensor in zip(grads, tensors):
        assert tuple(grad.shape) == tuple(tensor.shape)                   # summed back to the input's shape
        assert_matches(gn.backend.to_numpy(grad), tensor.grad.numpy())


def test_merges_name_shapes_that_do_not_broadcast():
    with pytest.raises(gn.GlassnetError, match=r"equal sizes, or 1, on each axis.*\(3, 4, 5\), \(2, 1, 1\)"):
        gn.Multiply()([gn.Input((3, 4, 5)), gn.Input((2, 1, 1))])
    with pytest.raises(gn.GlassnetError, match="same number of axes and batch size"):
        gn.Add()([np.ones((2, 3)), np.ones((3, 3))])
    with pytest.raises(gn.GlassnetError, match="same number of axes"):
        gn.Add()([gn.Input((3, 4, 5)), gn.Input((3,))])


@pytest.mark.parametrize("scale, offset", [(1 / 255, 0.0), ([0.5, -2.0, 3.0], [1.0, 0.0, -1.0]),
                                           (2.0, [1.0, 2.0, 3.0])])
def test_rescaling_matches_torch(backend, scale, offset):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 4, 5))
    run = backend.forward_backward(gn.Rescaling(scale, offset), x, rng.standard_normal)
    x_t = torch.tensor(x, requires_grad=True)
    shaped = [torch.tensor(v).reshape(1, -1, 1, 1) if isinstance(v, list) else torch.tensor(v) for v in (scale, offset)]
    out = x_t * shaped[0] + shaped[1]
    out.backward(torch.tensor(run.dy))
    assert_matches(run.out, out.detach().numpy())
    assert_matches(run.dx, x_t.grad.numpy())


def test_rescaling_refuses_what_is_not_a_scale():
    with pytest.raises(gn.GlassnetError, match="different numbers of channels"):
        gn.Rescaling([1.0, 2.0], [0.0, 0.0, 0.0])
    with pytest.raises(gn.GlassnetError, match="finite"):
        gn.Rescaling(float("nan"))
    with pytest.raises(gn.GlassnetError, match="a float or a list of floats"):
        gn.Rescaling("big")
    with pytest.raises(gn.GlassnetError, match=r"expected 3 channels on axis 1.*\(2, 4, 5, 5\)"):
        gn.Rescaling([1.0, 2.0, 3.0]).forward(np.ones((2, 4, 5, 5)))


@pytest.mark.parametrize("before, target", [((6,), (6, 1, 1)), ((6, 1, 1), (6,)), ((2, 3, 4), (4, -1)),
                                            ((12,), (3, 2, 2))])
def test_reshape_matches_torch(backend, before, target):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2,) + before)
    run = backend.forward_backward(gn.Reshape(target), x, rng.standard_normal)
    x_t = torch.tensor(x, requires_grad=True)
    out = x_t.reshape((2,) + target)
    out.backward(torch.tensor(run.dy))
    assert_matches(run.out, out.detach().numpy())
    assert_matches(run.dx, x_t.grad.numpy())


def test_reshape_names_sizes_that_do_not_fit():
    with pytest.raises(gn.GlassnetError, match=r"\(2, 3\) \(6 values\) cannot become \(4, 1\)"):
        gn.Reshape((4, 1))(gn.Input((2, 3)))
    with pytest.raises(gn.GlassnetError, match="at most one of them -1"):
        gn.Reshape((-1, -1))


def test_dropout_with_a_noise_shape_drops_whole_samples_as_derived_by_hand():
    """noise_shape (1, 1, 1): one draw per sample; kept samples are scaled by 1 / (1 - p), dropped ones are 0,
    and backward multiplies by the same per-sample factor (y = m_n x / (1 - p) => dx = m_n dy / (1 - p))."""
    layer = gn.Dropout(0.5, rng=np.random.default_rng(0), noise_shape=(1, 1, 1))
    x = np.random.default_rng(1).standard_normal((64, 3, 4, 4))
    y = layer.forward(x)
    factor = y[:, 0, 0, 0] / x[:, 0, 0, 0]
    assert set(np.round(factor, 12)) == {0.0, 2.0}                          # both happen among 64 samples
    np.testing.assert_array_equal(y, x * factor[:, None, None, None])      # the whole sample shares it
    dy = np.random.default_rng(2).standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(dy), dy * factor[:, None, None, None])
    channels = gn.Dropout(0.5, rng=np.random.default_rng(3), noise_shape=(3, 1, 1)).forward(x)
    kept = channels[:, :, 0, 0] != 0
    assert np.array_equal(channels != 0, np.broadcast_to(kept[:, :, None, None], x.shape))   # per channel
    assert not np.all(kept == kept[:, :1])                                    # channels differ within a sample
    np.testing.assert_array_equal(layer.eval().forward(x), x)


def test_dropout_noise_shape_must_fit_the_sample():
    with pytest.raises(gn.GlassnetError, match=r"noise_shape \(2, 1, 1\) does not fit one sample of shape \(3, 4, 4\)"):
        gn.Dropout(0.5, noise_shape=(2, 1, 1))(gn.Input((3, 4, 4)))
    with pytest.raises(gn.GlassnetError, match="positive ints"):
        gn.Dropout(0.5, noise_shape=(0, 1))


def squeeze_excitation_model():
    """Rescaling at the entrance, a squeeze-and-excitation gate (pool, Reshape, 1x1 convs, broadcast Multiply),
    stochastic depth on the residual branch."""
    x = gn.Input((3, 8, 8))
    h = gn.Conv2D(3, 8, 3, padding=1, rng=1)(gn.Rescaling([0.5, 2.0, -1.0], [0.1, 0.0, 0.2])(x))
    s = gn.Reshape((8, 1, 1))(gn.GlobalAvgPool2D()(h))
    gate = gn.Sigmoid()(gn.Conv2D(2, 8, 1, rng=3)(gn.SiLU()(gn.Conv2D(8, 2, 1, rng=2)(s))))
    branch = gn.Dropout(0.2, rng=0, noise_shape=(1, 1, 1))(gn.Multiply()([h, gate]))
    y = gn.Dense(8, 4, rng=4)(gn.GlobalAvgPool2D()(gn.Add()([branch, h])))
    return gn.Model(x, y)


def test_squeeze_excitation_model_everywhere(tmp_path):
    """Saved and loaded twice, summarised, traced, finite differences, PyTorch and ONNX both ways."""
    model = squeeze_excitation_model().eval()
    x = np.random.default_rng(7).standard_normal((2, 3, 8, 8))
    for _ in range(2):
        gn.save(model, tmp_path / "se.glassnet")
        np.testing.assert_array_equal(gn.load(tmp_path / "se.glassnet").eval().predict(x), model.predict(x))
    lines = []
    model.summary(print_fn=lines.append)
    assert "(N, 8, 1, 1)" in "\n".join(lines) and "Rescaling" in "\n".join(lines)
    target = np.random.default_rng(8).standard_normal((2, 4))
    recorded = gn.trace(model, x, target, gn.MSE())
    assert {"Reshape", "Rescaling", "Multiply"} <= {step.layer.split("(")[0] for step in recorded.steps}
    assert len(gn.gradcheck(model, x, target, gn.MSE(), eps=1e-5, tol=1e-6)) == 1 + sum(
        len(layer.params) for layer in model.layers)
    twin = gn.to_torch(model).eval()
    x_t = torch.tensor(x, requires_grad=True)
    out = twin(x_t)
    dy = np.random.default_rng(9).standard_normal(out.shape)
    out.backward(torch.tensor(dy))
    model.forward(x)
    assert_matches(model.backward(dy), x_t.grad.numpy())
    back = gn.from_torch(twin, input_shape=(3, 8, 8))
    assert [repr(layer) for layer in back.layers] == [repr(layer) for layer in model.layers]
    gn.export_onnx(model, tmp_path / "se.onnx")
    imported = gn.import_onnx(tmp_path / "se.onnx")
    np.testing.assert_allclose(imported.eval().predict(x), model.predict(x), rtol=1e-12, atol=1e-12)
