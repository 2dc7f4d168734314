"""Keras 3 (PyTorch backend: no TensorFlow) to glassnet and back: channels-last kernels, the NHWC
order of Keras' Flatten, activations given inside layers, 'same' padding, BatchNormalization.

Measured here: Keras' own float64 Dense and BatchNormalization on the torch backend are 3e-7 and 5e-7
away from their formulas worked out in NumPy, while Conv2D and pooling agree to 1e-15. So glassnet is
held to the formulas at 1e-12, and to Keras' float64 outputs within 1e-6 (Keras' own error)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import glassnet as gn  # noqa: E402

keras = pytest.importorskip("keras")
L = keras.layers
# Keras 3.15 on NumPy 2 warns about its own __array__ signature on every call: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def keras_cnn(dtype="float32", batch_norm=True):
    keras.utils.set_random_seed(0)
    norm = [L.BatchNormalization(dtype=dtype)] if batch_norm else [L.Identity(dtype=dtype)]
    model = keras.Sequential([
        keras.Input((11, 12, 3), dtype=dtype), L.Conv2D(4, 3, padding="same", activation="relu", dtype=dtype),
        *norm, L.MaxPooling2D(2, dtype=dtype),
        L.Conv2D(5, (2, 3), strides=2, activation="tanh", dtype=dtype), L.AveragePooling2D(2, strides=1, dtype=dtype),
        L.Flatten(dtype=dtype), L.Dropout(0.2, dtype=dtype), L.Dense(7, activation="sigmoid", dtype=dtype),
        L.LeakyReLU(0.1, dtype=dtype), L.Dense(3, dtype=dtype), L.Activation("softmax", dtype=dtype)])
    if batch_norm:
        rng = np.random.default_rng(1)
        model.layers[1].set_weights([rng.uniform(0.5, 1.5, 4), rng.uniform(-1, 1, 4), rng.uniform(-1, 1, 4),
                                     rng.uniform(0.5, 2, 4)])
    return model


def run_keras(model, x):
    """Keras' own outputs; its predict() would first cast NumPy inputs to float32 (floatx)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def images(dtype, seed=0):
    return np.random.default_rng(seed).standard_normal((3, 11, 12, 3)).astype(dtype)   # NHWC


@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-5), ("float64", 1e-6)])
def test_keras_to_glassnet_matches_keras(dtype, tolerance):
    model = keras_cnn(dtype, batch_norm=dtype == "float32")
    x = images(dtype)
    expected = run_keras(model, x)
    glass = gn.from_keras(model)
    assert glass.dtype == np.dtype(dtype) and glass.metadata["input_shape"] == [3, 11, 12]
    assert [type(layer).__name__ for layer in glass.layers] == [
        "Conv2D", "ReLU", "BatchNorm2D" if dtype == "float32" else "Identity", "MaxPool2D", "Conv2D", "Tanh", "AvgPool2D", "Flatten", "Dropout", "Dense",
        "Sigmoid", "LeakyReLU", "Dense", "Softmax"]
    np.testing.assert_allclose(glass.predict(x.transpose(0, 3, 1, 2)), expected, rtol=tolerance, atol=tolerance)


def test_batch_normalization_follows_the_formula():
    """Keras' own float64 BatchNormalization (torch backend) is ~5e-7 away from the formula; glassnet's
    conversion is held to the formula by hand, and to Keras within that distance."""
    model = keras.Sequential([keras.Input((4, 4, 2), dtype="float64"), L.BatchNormalization(dtype="float64")])
    rng = np.random.default_rng(1)
    model.layers[0].set_weights([rng.uniform(0.5, 1.5, 2), rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 2),
                                 rng.uniform(0.5, 2, 2)])
    gamma, beta, mean, var = model.layers[0].get_weights()
    x = rng.standard_normal((3, 4, 4, 2))
    by_hand = (x - mean) / np.sqrt(var + 0.001) * gamma + beta                   # Keras' default epsilon 1e-3
    ours = gn.from_keras(model).predict(x.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(ours, by_hand, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours, run_keras(model, x), atol=1e-6)


def test_flatten_then_dense_rows_follow_keras_nhwc_order():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4, 5, 3), dtype="float64"), L.Flatten(dtype="float64"),
                              L.Dense(2, dtype="float64")])
    x = images("float64")[:, :4, :5, :]
    glass = gn.from_keras(model)
    kernel, bias = model.layers[1].get_weights()
    by_hand = x.reshape(3, -1) @ kernel + bias                                # Keras' Flatten: (h, w, c) order
    np.testing.assert_allclose(glass.predict(x.transpose(0, 3, 1, 2)), by_hand, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(glass.predict(x.transpose(0, 3, 1, 2)), run_keras(model, x), atol=1e-6)
    # by hand: Keras' row for pixel (h, w, channel c) is glassnet's row for (c, h, w)
    keras_kernel, glass_kernel = model.layers[1].get_weights()[0], glass.layers[1].params["weight"]
    for c, h, w in [(0, 0, 0), (2, 1, 3), (1, 3, 4)]:
        np.testing.assert_array_equal(glass_kernel[c * 20 + h * 5 + w], keras_kernel[h * 15 + w * 3 + c])


def test_keras_glassnet_keras_is_exact():
    model = keras_cnn("float64")
    again = gn.to_keras(gn.from_keras(model))
    for ours, theirs in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    x = images("float64")
    np.testing.assert_allclose(run_keras(again, x), run_keras(model, x), rtol=1e-12)


def test_glassnet_padding_and_pools_reach_keras():
    model = gn.Sequential([gn.Conv2D(2, 3, 3, padding=1, rng=0), gn.ReLU(), gn.AvgPool2D(2, padding=1),
                           gn.Conv2D(3, 2, (2, 4), padding="same", rng=1), gn.Flatten(), gn.Dense(2 * 5 * 5, 4, rng=2)])
    model.metadata["input_shape"] = [2, 8, 8]
    x = np.random.default_rng(0).standard_normal((2, 2, 8, 8))
    twin = gn.to_keras(model)
    np.testing.assert_allclose(run_keras(twin, x.transpose(0, 2, 3, 1)), model.predict(x), atol=1e-6)
    back = gn.from_keras(twin)
    np.testing.assert_allclose(back.predict(x), model.predict(x), rtol=1e-12, atol=1e-14)


def test_what_keras_cannot_take_or_give_is_named():
    with pytest.raises(gn.GlassnetError, match=r"layer 'gru' \(GRU\) has no glassnet equivalent"):
        gn.from_keras(keras.Sequential([keras.Input((5, 3)), L.GRU(2, name="gru")]))
    with pytest.raises(gn.GlassnetError, match="max_value other than 6"):
        gn.from_keras(keras.Sequential([keras.Input((8, 8, 1)), L.ReLU(max_value=3.0)]))
    with pytest.raises(gn.GlassnetError, match="activation 'mish' has no glassnet equivalent"):
        gn.from_keras(keras.Sequential([keras.Input((4,)), L.Dense(2, activation="mish")]))
    with pytest.raises(gn.GlassnetError, match=r"layer 0 \(LRN\) has no Keras equivalent"):
        shuffled = gn.Sequential([gn.LRN(3)])
        shuffled.metadata["input_shape"] = [4, 4, 4]
        gn.to_keras(shuffled)
    padded = gn.Sequential([gn.MaxPool2D(2, padding=1)])
    padded.metadata["input_shape"] = [1, 4, 4]
    with pytest.raises(gn.GlassnetError, match="padded max pooling has no Keras equivalent"):
        gn.to_keras(padded)
    with pytest.raises(gn.GlassnetError, match="expected a keras.Sequential"):
        gn.from_keras(object())


def test_keras_own_onnx_export_imports_and_matches_keras(tmp_path):
    """Keras' exporter wraps every op in NHWC <-> NCHW transposes and casts, writes 'same' as a Pad whose
    amounts are a small constant computation, biases as Adds, and flattens in NHWC order."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((10, 9, 3)), L.Conv2D(4, 3, activation="relu"), L.BatchNormalization(), L.MaxPooling2D(2),
        L.Conv2D(5, 2, padding="same", activation="tanh"), L.AveragePooling2D(2), L.Flatten(), L.Dropout(0.3),
        L.Dense(6, activation="relu"), L.Dense(3, activation="softmax")])
    rng = np.random.default_rng(2)
    model.layers[1].set_weights([rng.uniform(0.5, 1.5, 4).astype("float32"), rng.uniform(-1, 1, 4).astype("float32"),
                                 rng.uniform(-1, 1, 4).astype("float32"), rng.uniform(0.5, 2, 4).astype("float32")])
    x = images("float32")[:, :10, :9, :]
    expected = run_keras(model, x)
    model.export(str(tmp_path / "k.onnx"), format="onnx")
    glass = gn.import_onnx(tmp_path / "k.onnx")
    assert glass.metadata["input_shape"] == [3, 10, 9]
    np.testing.assert_allclose(glass.predict(x.transpose(0, 3, 1, 2)), expected, rtol=1e-5, atol=1e-6)


def test_compare_lines_keras_layers_up_with_glassnet_layers():
    model = keras_cnn("float64", batch_norm=False)
    glass = gn.from_keras(model)
    x = images("float64").transpose(0, 3, 1, 2)                                # glassnet's NCHW
    report = gn.compare(glass, model, x)
    assert len(report.layers) == len(model.layers) == 11                       # one row per Keras layer
    assert report.largest < 1e-6 and report.layers[0].output < 1e-12         # Conv2D+ReLU: exact
    broken = gn.from_keras(model)
    broken.layers[0].params["weight"][0, 0, 0, 0] += 0.5
    assert gn.compare(broken, model, x).layers[0].output > 1e-3
    with pytest.raises(gn.GlassnetError, match="gradients are compared for glassnet and PyTorch models"):
        gn.compare(glass, model, x, target=np.array([0, 1, 2]), loss=gn.CrossEntropy())


SIZES = {"ResNet50": 32, "DenseNet121": 32, "MobileNetV2": 32, "InceptionV3": 75, "Xception": 71, "EfficientNetB0": 32}
MERGES = {"resnet50": 16, "densenet121": 58, "mobilenetv2_1.00_32": 10, "inception_v3": 15, "xception": 12,
          "efficientnetb0": 9 + 16}                        # 9 residual Adds, 16 squeeze-and-excitation Multiplys


@pytest.fixture(scope="module", params=sorted(SIZES))
def application(request):
    """keras.applications' own graph (random weights, built offline; logits, so that small differences
    show), its output on a small batch. MobileNetV2 (depthwise, ReLU6, uneven 'same' pads), InceptionV3
    (BatchNormalization without scale, 'same' average pooling), Xception (separable convolutions),
    EfficientNetB0 (Rescaling and Normalization, SiLU, squeeze-and-excitation: a Reshape and a broadcast
    Multiply, stochastic depth: Dropout with a noise_shape)."""
    keras.utils.set_random_seed(0)
    size = SIZES[request.param]
    model = getattr(keras.applications, request.param)(weights=None, input_shape=(size, size, 3), classes=10,
                                                         classifier_activation=None)
    x = np.random.default_rng(0).standard_normal((2, size, size, 3)).astype(np.float32)
    return model, x, run_keras(model, x)


def assert_close_relative(ours, expected, rtol=1e-5):
    """Equal to ``rtol`` of the output's own scale (random-weight logits range from 1e-12 to 1e2)."""
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(ours / scale, expected / scale, rtol=rtol, atol=rtol)


def weight_bytes(arrays):
    return sorted((a.shape, a.tobytes()) for a in arrays)


def test_keras_applications_convert_to_graphs_equal_to_keras_and_back(application):
    model, x, expected = application
    glass = gn.from_keras(model)
    assert isinstance(glass, gn.Model) and not isinstance(glass, gn.Sequential)
    merges = sum(isinstance(layer, (gn.Add, gn.Concatenate, gn.Multiply)) for layer in glass.layers)
    assert merges == MERGES[model.name]                                 # residual Adds / Concatenates
    assert_close_relative(glass.predict(x.transpose(0, 3, 1, 2)), expected)
    back = gn.to_keras(glass)
    if model.name != "inception_v3":                   # its BatchNormalizations have no scale: 1s come back
        # EfficientNet's Normalization (mean, variance, count) comes back as a Rescaling: no weights
        kept = [w for layer in model.layers if type(layer).__name__ != "Normalization" for w in layer.get_weights()]
        assert weight_bytes(back.get_weights()) == weight_bytes(kept)   # the same weights, bit for bit
    assert_close_relative(run_keras(back, x), expected)


def test_keras_applications_through_keras_onnx_export_import_equal(application, tmp_path):
    model, x, expected = application
    if model.name == "xception":      # Keras' own exporter cannot write it with the torch backend (torch.onnx:
        with pytest.raises(Exception, match="not constant"):        # a kernel shape "is not constant");
            model.export(str(tmp_path / "app.onnx"), format="onnx", verbose=False)   # from_keras covers it
        return
    model.export(str(tmp_path / "app.onnx"), format="onnx", verbose=False)
    glass = gn.import_onnx(tmp_path / "app.onnx")
    assert isinstance(glass, gn.Model) and glass.metadata["input_shape"] == [3] + list(x.shape[1:3])
    assert_close_relative(glass.predict(x.transpose(0, 3, 1, 2)), expected)


def test_keras_layers_of_real_architectures_convert_both_ways():
    """DepthwiseConv2D, SeparableConv2D, dilated and grouped Conv2D, Conv2DTranspose, UpSampling2D, an uneven
    ZeroPadding2D, ReLU(max_value=6) and the modern activations: Keras -> glassnet -> Keras, equal.
    (Pooling with uneven 'same' pads is left out: Keras' torch backend pads it by repeating the edge, where
    Keras' documented rule, TensorFlow's, which glassnet follows, leaves the padded cells out.)"""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((12, 12, 4)), L.ZeroPadding2D(((0, 1), (2, 1))), L.DepthwiseConv2D(3, depth_multiplier=2),
        L.ReLU(max_value=6.0), L.SeparableConv2D(6, 3, padding="same", activation="swish"),
        L.Conv2D(6, 3, dilation_rate=2, padding="same", groups=2, activation="gelu"),
        L.Conv2D(4, 3, strides=2, padding="same", activation="elu"), L.Conv2DTranspose(5, 4, strides=2, padding="same"),
        L.Activation("selu"), L.UpSampling2D(2, interpolation="bilinear"), L.Activation("hard_sigmoid"),
        L.AveragePooling2D(3, strides=1, padding="same"), L.Activation("softplus"), L.GlobalAveragePooling2D(),
        L.Dense(3)])
    x = np.random.default_rng(4).standard_normal((3, 12, 12, 4)).astype(np.float32)
    expected = run_keras(model, x)
    glass = gn.from_keras(model)
    kinds = {type(layer).__name__ for layer in glass.layers}
    assert {"Pad2D", "ReLU6", "SiLU", "GELU", "ELU", "SELU", "ConvTranspose2D", "Upsample2D", "Hardsigmoid",
            "Softplus"} <= kinds
    assert any(isinstance(layer, gn.Conv2D) and layer.groups == layer.in_channels for layer in glass.layers)
    assert_close_relative(glass.predict(x.transpose(0, 3, 1, 2)), expected)
    assert_close_relative(run_keras(gn.to_keras(glass), x), expected)
