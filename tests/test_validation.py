"""Bad arguments and bad inputs raise ValueError naming what was expected and received."""
import numpy as np
import pytest
from PIL import Image

import glassnet as gn


@pytest.mark.parametrize("kwargs, pattern", [
    ({"in_channels": -1, "out_channels": 2, "kernel_size": 3}, r"in_channels.*Received: in_channels=-1"),
    ({"in_channels": 1, "out_channels": 0, "kernel_size": 3}, r"out_channels.*Received: out_channels=0"),
    ({"in_channels": 1, "out_channels": 2, "kernel_size": 0}, r"kernel_size.*Received: kernel_size=0"),
    ({"in_channels": 1, "out_channels": 2, "kernel_size": 3, "stride": 0}, r"stride.*Received: stride=0"),
    ({"in_channels": 1, "out_channels": 2, "kernel_size": 3, "stride": (1, 0)}, r"Received: stride=\(1, 0\)"),
    ({"in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": "full"}, r"Received: padding='full'"),
    ({"in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": -1}, r"Received: padding=-1"),
    ({"in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": "same", "stride": 2},
     r"same.*stride 1.*Received: stride=\(2, 2\)"),
    ({"in_channels": 1, "out_channels": 2, "kernel_size": 3, "weight_init": "zeros"}, r"weight_init='zeros'"),
    ({"in_channels": 1.5, "out_channels": 2, "kernel_size": 3}, r"Received: in_channels=1.5"),
])
def test_conv2d_constructor_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        gn.Conv2D(**kwargs)


@pytest.mark.parametrize("make, pattern", [
    (lambda: gn.MaxPool2D(0), r"kernel_size.*Received: kernel_size=0"),
    (lambda: gn.AvgPool2D(2, stride=0), r"stride.*Received: stride=0"),
    (lambda: gn.MaxPool2D(2, padding=2), r"padding.*half the kernel.*Received: padding=2"),
    (lambda: gn.Dense(0, 3), r"Received: in_features=0"),
    (lambda: gn.Dropout(1.0), r"Received: p=1.0"),
    (lambda: gn.LeakyReLU(alpha=-1), r"Received: alpha=-1"),
    (lambda: gn.BatchNorm2D(-2), r"Received: num_features=-2"),
    (lambda: gn.Dense(2, 2, dtype=np.int32), r"dtype"),
    (lambda: gn.SGD(gn.Sequential([gn.Dense(2, 2)]), lr=0), r"Received: lr=0"),
    (lambda: gn.SGD(gn.Sequential([gn.Dense(2, 2)]), lr=0.1, nesterov=True), r"nesterov"),
    (lambda: gn.Adam(gn.Sequential([gn.Dense(2, 2)]), betas=(0.9, 1.5)), r"betas\[1\]"),
    (lambda: gn.Sequential([]), r"at least one layer"),
    (lambda: gn.Sequential([gn.Dense(2, 2), "relu"]), r"item 1 is not a glassnet layer"),
])
def test_other_constructor_errors(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_kernel_larger_than_input_names_the_kernel():
    with pytest.raises(ValueError, match=r"Conv2D: kernel_size=\(5, 5\) is larger than the padded input"):
        gn.Conv2D(1, 1, 5).forward(np.zeros((1, 1, 4, 8)))
    with pytest.raises(ValueError, match=r"MaxPool2D: kernel_size=\(3, 3\) is larger"):
        gn.MaxPool2D(3).forward(np.zeros((1, 1, 2, 2)))


def test_wrong_number_of_dimensions_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Conv2D: expected a 4-dimensional input of shape \(N, 1, H, W\), "
                                         r"received shape \(28, 28\)"):
        gn.Conv2D(1, 2, 3).forward(np.zeros((28, 28)))
    with pytest.raises(ValueError, match=r"x\[None\]"):
        gn.Conv2D(1, 2, 3).forward(np.zeros((1, 28, 28)))
    with pytest.raises(ValueError, match=r"Dense: expected a 2-dimensional input of shape \(N, 4\)"):
        gn.Dense(4, 2).forward(np.zeros((2, 1, 2, 2)))


def test_wrong_channel_count_and_channels_last_hint():
    with pytest.raises(ValueError, match=r"Conv2D: expected input of shape \(N, 3, H, W\) with 3 channel\(s\).*"
                                         r"received shape \(2, 1, 8, 8\)"):
        gn.Conv2D(3, 2, 3).forward(np.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"channels-last: use x.transpose\(0, 3, 1, 2\)"):
        gn.Conv2D(3, 2, 3).forward(np.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"Dense: expected input of shape \(N, 10\).*received shape \(5, 12\)"):
        gn.Dense(10, 2).forward(np.zeros((5, 12)))


def test_non_float_inputs_are_refused():
    with pytest.raises(ValueError, match=r"Conv2D: input must be a floating-point array. Received: dtype=uint8"):
        gn.Conv2D(1, 1, 2).forward(np.zeros((1, 1, 3, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"dtype=object"):
        gn.Dense(2, 1).forward(np.array([[1, "a"]], dtype=object))
    with pytest.raises(ValueError, match=r"dtype=complex128"):
        gn.ReLU().forward(np.zeros((2, 2), dtype=complex))


def test_empty_batch_is_refused():
    with pytest.raises(ValueError, match=r"empty batch"):
        gn.Dense(3, 2).forward(np.zeros((0, 3)))


def test_loss_target_errors():
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]. Received labels in \[0, 3\]"):
        gn.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"expected 2 labels, received shape \(3,\)"):
        gn.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"MSE: expected target of shape \(4, 1\).*received shape \(4,\).*reshape"):
        gn.MSE().forward(np.zeros((4, 1)), np.zeros(4))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        gn.BinaryCrossEntropy().forward(np.array([[1.5]]), np.array([[1.0]]))
    with pytest.raises(ValueError, match=r"backward called before forward"):
        gn.MSE().backward()


def test_backward_with_wrong_gradient_shape():
    dense = gn.Dense(3, 2, rng=0)
    dense.forward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"Dense.backward: expected an upstream gradient of shape \(4, 2\)"):
        dense.backward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"backward called before forward"):
        gn.Conv2D(1, 1, 2).backward(np.zeros((1, 1, 2, 2)))


# -- where data enters a model: Sequential, fit, evaluate, predict, losses, loaders --------------

def small_cnn():
    return gn.Sequential([gn.Conv2D(1, 2, 3, rng=0), gn.ReLU(), gn.Flatten(), gn.Dense(8, 3, rng=1)])


@pytest.mark.parametrize("bad, pattern", [
    (np.full((2, 1, 4, 4), np.nan), r"Sequential: the input holds NaN or Inf values \(32 of 32\)"),
    (np.where(np.eye(4)[None, None] > 0, np.inf, 0.0), r"NaN or Inf values \(4 of 16\)"),
    (np.zeros((2, 4, 4, 1)), r"channels-last: use x.transpose\(0, 3, 1, 2\)"),
    (np.zeros((1, 4, 4)), r"expected a 4-dimensional input.*x\[None\]"),
    (np.zeros((2, 1, 4, 4), dtype=np.int64), r"floating-point array. Received: dtype=int64"),
    (np.zeros((2, 1, 4, 4), dtype=np.complex64), r"dtype=complex64"),
    (np.zeros((0, 1, 4, 4)), r"empty"),
])
def test_bad_inputs_to_a_model(bad, pattern):
    with pytest.raises(gn.GlassnetError, match=pattern):
        small_cnn().forward(bad)
    with pytest.raises(gn.GlassnetError, match=pattern):
        small_cnn().predict(bad)


@pytest.mark.parametrize("x, y, pattern", [
    (np.zeros((5, 1, 4, 4)), np.zeros(4, dtype=int), r"fit: x and y hold different numbers of samples: "
                                                      r"x.shape=\(5, 1, 4, 4\), y.shape=\(4,\)"),
    (np.zeros((4, 1, 4, 4)), np.array([0, 1, 2, 3]), r"fit: labels must be in \[0, 2\]. Received labels in \[0, 3\]"),
    (np.zeros((4, 1, 4, 4)), np.array([0, -1, 2, 1]), r"labels must be in \[0, 2\]"),
    (np.zeros((4, 1, 4, 4)), np.array([0.0, 1.0, np.nan, 1.0]), r"1-D targets must be integer class labels"),
    (np.zeros((4, 1, 4, 4)), np.array(["a", "b", "c", "a"]), r"integer class labels. Received: dtype=<U1"),
    (np.full((4, 1, 4, 4), np.nan), np.zeros(4, dtype=int), r"fit: x contains NaN or Inf values"),
    (np.zeros((0, 1, 4, 4)), np.zeros(0, dtype=int), r"fit: received an empty dataset"),
])
def test_bad_training_data_is_refused_before_any_step(x, y, pattern):
    model = small_cnn()
    before = [w.copy() for layer in model.layers for w in layer.params.values()]
    with pytest.raises(gn.GlassnetError, match=pattern):
        model.fit(x, y, epochs=1, verbose=False)
    after = [w for layer in model.layers for w in layer.params.values()]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_bad_targets_for_losses_and_evaluate():
    with pytest.raises(gn.GlassnetError, match=r"MSE: target contains NaN or Inf values"):
        gn.MSE().forward(np.zeros((3, 1)), np.array([[0.0], [np.inf], [1.0]]))
    with pytest.raises(gn.GlassnetError, match=r"SoftmaxCrossEntropy: target contains NaN or Inf"):
        gn.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([[1, 0, 0], [np.nan, 0, 1.0]]))
    with pytest.raises(gn.GlassnetError, match=r"evaluate: x and y hold different numbers of samples"):
        small_cnn().evaluate(np.zeros((3, 1, 4, 4)), np.zeros(2, dtype=int))


def test_bad_image_folders(tmp_path):
    with pytest.raises(gn.GlassnetError, match=r"does not exist or is not a folder"):
        gn.datasets.image_folder(tmp_path / "nothing")
    (tmp_path / "only_class").mkdir()
    with pytest.raises(gn.GlassnetError, match=r"expected one sub-folder per class \(at least 2\)"):
        gn.datasets.image_folder(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "fake.png").write_text("not a png")
    with pytest.raises(gn.GlassnetError, match=r"class 'only_class' has no readable image \(its folder is empty\)"):
        gn.datasets.image_folder(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "only_class" / "real.png")
    # an unreadable file is skipped and reported; here it leaves its class empty, which is an error
    with pytest.raises(gn.GlassnetError, match=r"class 'other' has no readable image \(skipped 1 of 1 files: "
                                               r"fake.png \(not a readable image"):
        gn.datasets.image_folder(tmp_path)
