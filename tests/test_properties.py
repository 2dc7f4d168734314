"""Property tests (hypothesis): documented output shapes hold for every valid configuration,
and every invalid one raises glassnet's error, never an IndexError or a broadcast error."""
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import glassnet as gn

# GLASSNET_HYPOTHESIS_EXAMPLES=3000 for a thorough run (7 tests x 3,000 examples: about a minute)
SETTINGS = settings(max_examples=int(os.environ.get("GLASSNET_HYPOTHESIS_EXAMPLES", 150)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
small = st.integers(1, 4)


def formula(size, kernel, stride, pad_before, pad_after):
    """The documented output size: floor((size + pads - kernel) / stride) + 1."""
    return (size + pad_before + pad_after - kernel) // stride + 1


@SETTINGS
@given(n=st.integers(1, 3), c=small, f=small, h=st.integers(1, 9), w=st.integers(1, 9), kh=small, kw=small,
       sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2))
def test_conv2d_output_shape_follows_the_formula(n, c, f, h, w, kh, kw, sh, sw, ph, pw):
    conv = gn.Conv2D(c, f, (kh, kw), stride=(sh, sw), padding=(ph, pw), rng=0)
    x = np.ones((n, c, h, w))
    if h + 2 * ph < kh or w + 2 * pw < kw:
        try:
            conv.forward(x)
        except gn.GlassnetError as error:
            assert "larger than the padded input" in str(error)
        else:
            raise AssertionError("a kernel larger than the padded input was accepted")
        return
    expected = (n, f, formula(h, kh, sh, ph, ph), formula(w, kw, sw, pw, pw))
    out = conv.forward(x)
    assert out.shape == expected and (f,) + expected[2:] == conv.output_shape((c, h, w))
    assert conv.backward(np.ones(expected)).shape == x.shape


@SETTINGS
@given(kind=st.sampled_from([gn.MaxPool2D, gn.AvgPool2D]), n=st.integers(1, 3), c=small, h=st.integers(1, 9),
       w=st.integers(1, 9), kh=small, kw=small, sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2),
       pw=st.integers(0, 2))
def test_pooling_output_shape_follows_the_formula(kind, n, c, h, w, kh, kw, sh, sw, ph, pw):
    try:
        pool = kind((kh, kw), stride=(sh, sw), padding=(ph, pw))
    except gn.GlassnetError as error:
        assert 2 * ph > kh or 2 * pw > kw, error  # the only documented constructor refusal here
        return
    x = np.random.default_rng(0).standard_normal((n, c, h, w))
    if h + 2 * ph < kh or w + 2 * pw < kw:
        try:
            pool.forward(x)
        except gn.GlassnetError:
            return
        raise AssertionError("a window larger than the padded input was accepted")
    expected = (n, c, formula(h, kh, sh, ph, ph), formula(w, kw, sw, pw, pw))
    out = pool.forward(x)
    assert out.shape == expected and expected[1:] == pool.output_shape((c, h, w))
    assert pool.backward(np.ones(expected)).shape == x.shape


anything = st.one_of(st.integers(-3, 6), st.floats(allow_nan=True), st.none(), st.text(max_size=3),
                     st.tuples(st.integers(-2, 5), st.integers(-2, 5)), st.booleans(),
                     st.lists(st.integers(-1, 4), max_size=3))
shapes = st.lists(st.integers(0, 6), min_size=0, max_size=5).map(tuple)


def only_glassnet_errors(build, shape, dtype):
    """Build a layer and run it on an array of ``shape``: success or GlassnetError, nothing else."""
    try:
        layer = build()
        x = np.ones(shape, dtype=dtype)
        out = layer.forward(x)
        layer.backward(np.ones_like(out))
    except gn.GlassnetError:
        pass


@SETTINGS
@given(in_channels=anything, out_channels=anything, kernel=anything, stride=anything,
       padding=st.one_of(anything, st.sampled_from(["same", "valid", "full"])), shape=shapes,
       dtype=st.sampled_from([np.float64, np.float32, np.int32, np.bool_, np.complex128, object]))
def test_invalid_conv2d_configurations_raise_only_glassnet_errors(in_channels, out_channels, kernel, stride,
                                                                  padding, shape, dtype):
    only_glassnet_errors(lambda: gn.Conv2D(in_channels, out_channels, kernel, stride=stride, padding=padding,
                                           rng=0), shape, dtype)


@SETTINGS
@given(kind=st.sampled_from([gn.MaxPool2D, gn.AvgPool2D]), kernel=anything, stride=anything, padding=anything,
       shape=shapes, dtype=st.sampled_from([np.float64, np.float32, np.int64, object]))
def test_invalid_pooling_configurations_raise_only_glassnet_errors(kind, kernel, stride, padding, shape, dtype):
    only_glassnet_errors(lambda: kind(kernel, stride=stride, padding=padding), shape, dtype)


@SETTINGS
@given(in_features=anything, out_features=anything, shape=shapes,
       dtype=st.sampled_from([np.float64, np.float32, np.uint8]))
def test_invalid_dense_configurations_raise_only_glassnet_errors(in_features, out_features, shape, dtype):
    only_glassnet_errors(lambda: gn.Dense(in_features, out_features, rng=0), shape, dtype)


@SETTINGS
@given(kind=st.sampled_from([gn.ReLU, gn.Sigmoid, gn.Tanh, gn.Flatten, gn.Softmax, gn.Identity]),
       shape=shapes, dtype=st.sampled_from([np.float64, np.float32, np.int8, object]))
def test_parameterless_layers_raise_only_glassnet_errors(kind, shape, dtype):
    only_glassnet_errors(kind, shape, dtype)


@SETTINGS
@given(kind=st.sampled_from([gn.SoftmaxCrossEntropy, gn.CrossEntropy, gn.MSE, gn.BinaryCrossEntropy]),
       pred_shape=shapes, target_shape=shapes,
       target_kind=st.sampled_from(["int", "float", "nan", "str"]))
def test_losses_raise_only_glassnet_errors(kind, pred_shape, target_shape, target_kind):
    rng = np.random.default_rng(0)
    pred = rng.random(pred_shape)
    target = {"int": lambda: rng.integers(-1, 4, target_shape), "float": lambda: rng.random(target_shape),
              "nan": lambda: np.full(target_shape, np.nan), "str": lambda: np.full(target_shape, "a")}[target_kind]()
    try:
        loss = kind()
        loss.forward(pred, target)
        loss.backward()
    except gn.GlassnetError:
        pass
