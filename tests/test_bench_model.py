"""The large ImageNet nets (models/imagenet.py) and ``glassnet bench --model``.

The nets: torchvision's parameter counts (its documentation: VGG-16 138,357,544; ResNet-50 25,557,032;
MobileNetV2 3,504,872), and in float64 the same forward, input gradient and every parameter gradient
as PyTorch running ``gn.to_torch`` of them. The benchmark: smoke runs end to end on a built-in net and
on an ONNX file, every framework's figure present; bad settings get one clear line. Speed is never
asserted (the figures are in docs/accuracy-and-speed.md).
"""
import json

import numpy as np
import pytest
import torch

import glassnet as gn
from glassnet.apps import cli
from glassnet.errors import GlassnetError
from glassnet.models import imagenet, presets

TORCHVISION_PARAMETERS = {"vgg16": 138_357_544, "resnet50": 25_557_032, "mobilenet_v2": 3_504_872}
LAYOUT = {  # (Conv2D, of which depthwise, BatchNorm2D, Dense) as torchvision's nets have them
    "vgg16": (13, 0, 0, 3), "resnet50": (53, 0, 53, 1), "mobilenet_v2": (52, 17, 52, 1)}


def counts(model):
    kinds = [type(layer).__name__ for layer in model.layers]
    depthwise = sum(1 for layer in model.layers if isinstance(layer, gn.Conv2D) and layer.groups > 1)
    return kinds.count("Conv2D"), depthwise, kinds.count("BatchNorm2D"), kinds.count("Dense")


@pytest.mark.parametrize("arch", sorted(imagenet.ARCHITECTURES))
def test_the_large_nets_have_torchvisions_parameters_and_layers(arch):
    shape = (3, 224, 224) if arch != "vgg16" else (3, 32, 32)     # VGG-16's Dense layers depend on the size
    model = presets.build(arch, shape, 1000, dtype=np.float32)
    assert counts(model) == LAYOUT[arch]
    if arch != "vgg16":
        assert model.num_params() == TORCHVISION_PARAMETERS[arch]
    else:   # at 32x32 the first Dense reads 512 features, not 7 * 7 * 512: the rest is torchvision's
        assert model.num_params() == TORCHVISION_PARAMETERS[arch] - (7 * 7 * 512 - 512) * 4096


def test_vgg16_at_224_has_torchvisions_parameter_count():
    layers = imagenet.vgg16((3, 224, 224), 1000, np.random.default_rng(0)).layers
    assert sum(value.size for layer in layers for value in layer.params.values()) == TORCHVISION_PARAMETERS["vgg16"]


def module_of(twin, index):
    """The twin's module of layer ``index``: a chain's twin is an nn.Sequential, a graph's a GraphModule."""
    return twin[index] if isinstance(twin, torch.nn.Sequential) else getattr(twin, f"layer{index}")


def torch_param(module, key, layer):
    value = getattr(module, key)
    return value.grad.numpy().T if isinstance(layer, gn.Dense) and key == "weight" else value.grad.numpy()


@pytest.mark.parametrize("arch, winograd", [("resnet50", False), ("mobilenet_v2", False), ("vgg16", False),
                                            ("resnet50", True), ("vgg16", True)])
def test_forward_and_every_gradient_match_pytorch_in_float64(monkeypatch, arch, winograd):
    """winograd=True: every 3x3 stride-1 convolution forced through Winograd (winograd.py), whose rule
    would leave these small ones on columns."""
    from glassnet.nn.layers import conv as conv_module
    if winograd:
        monkeypatch.setattr(conv_module, "WINOGRAD_MIN_CHANNELS", 0)
        monkeypatch.setattr(conv_module, "WINOGRAD_MIN_WORK", 0)
    model = presets.build(arch, (3, 64, 64), 10, seed=2, dtype=np.float64)
    for layer in model.layers:
        if isinstance(layer, gn.Dropout):
            layer.p = 0.0                    # the two frameworks draw different masks; the rest is compared
    twin = gn.to_torch(model)
    for module in twin.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    x = np.random.default_rng(3).standard_normal((2, 3, 64, 64))
    labels = np.array([1, 7])
    loss = gn.SoftmaxCrossEntropy()
    logits = model.forward(x)
    value = loss.forward(logits, labels)
    by_winograd = [layer for layer in model.layers if isinstance(layer, gn.Conv2D) and layer.winograd]
    assert not winograd or len(by_winograd) == 13   # both nets have 13 such layers
    # what each forward kept says which path its backward takes (backward lets it go)
    assert all(isinstance(layer._cache[0], conv_module.WinogradInput) == winograd for layer in by_winograd)
    dx = model.backward(loss.backward())
    x_t = torch.tensor(x, requires_grad=True)
    logits_t = twin(x_t)
    value_t = torch.nn.functional.cross_entropy(logits_t, torch.tensor(labels))
    value_t.backward()
    scale = np.abs(logits_t.detach().numpy()).max()
    assert np.abs(logits - logits_t.detach().numpy()).max() <= 1e-10 * scale
    assert abs(value - value_t.item()) <= 1e-10 * abs(value_t.item())
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=0, atol=1e-10 * np.abs(x_t.grad.numpy()).max())
    checked = 0
    for index, layer in enumerate(model.layers):
        expected = {key: torch_param(module_of(twin, index), key, layer) for key in layer.params}
        # a layer's scale is its largest gradient: MobileNetV2's projection BatchNorm bias feeds a 1x1
        # convolution and another BatchNorm, which removes any per-channel shift, so its gradient is 0
        # and both frameworks give rounding noise of 1e-15 there
        scale = max((np.abs(value).max() for value in expected.values()), default=0.0)
        for key, value in expected.items():
            np.testing.assert_allclose(layer.grads[key], value, rtol=0, atol=1e-10 * scale,
                                       err_msg=f"{arch} layer {index} ({type(layer).__name__}) {key}")
            checked += 1
    assert checked == sum(len(layer.params) for layer in model.layers) > 0


@pytest.mark.parametrize("arch", sorted(imagenet.ARCHITECTURES))
def test_the_large_nets_refuse_images_too_small_for_their_pools(arch):
    message = rf"'{arch}' needs images of at least 32x32 \(it halves them 5 times\). Received: 16x16"
    with pytest.raises(GlassnetError, match=message):
        presets.build(arch, (3, 16, 16), 10)


def read_report(folder):
    return json.loads((folder / "bench-model.json").read_text())


def test_bench_model_times_a_built_in_net_in_three_frameworks_and_one_training_step(tmp_path, capsys):
    assert cli.main(["bench", "--model", "mobilenet_v2", "--image-size", "32", "--batches", "1,2",
                     "--train-batch", "2", "--smoke", "--out", str(tmp_path)]) == 0
    report = read_report(tmp_path)
    large = report["large"]
    assert large["parameters"] == TORCHVISION_PARAMETERS["mobilenet_v2"]
    assert set(large["inference"]) == {"1", "2"}
    for figures in large["inference"].values():
        assert set(figures) == {"glassnet", "onnxruntime", "pytorch"} and min(figures.values()) > 0
    assert set(large["train"]["ms"]) == {"glassnet", "pytorch"} and large["train"]["batch_size"] == 2
    assert all(peak is not None and peak > 0 for peak in large["train"]["peak_bytes"].values())
    assert report["cpu"].endswith("AVX-512)")
    markdown = (tmp_path / "bench-model.md").read_text()
    assert "| 2 |" in markdown and "One training step at batch 2" in markdown
    assert markdown in capsys.readouterr().out


def test_bench_model_reads_an_onnx_file(tmp_path):
    model = presets.build("resnet_mini", (1, 28, 28), 10, dtype=np.float32)
    gn.export_onnx(model, tmp_path / "mini.onnx")
    out = tmp_path / "out"
    assert cli.main(["bench", "--model", str(tmp_path / "mini.onnx"), "--batches", "3", "--no-train", "--smoke",
                     "--out", str(out)]) == 0
    large = read_report(out)["large"]
    assert large["model"] == "mini.onnx" and large["input_shape"] == [1, 28, 28] and "train" not in large
    assert set(large["inference"]["3"]) == {"glassnet", "onnxruntime", "pytorch"}


@pytest.mark.parametrize("arguments, message", [
    (["--model", "resnet51"], "expected one of vgg16, resnet50, mobilenet_v2 or an .onnx file. Received: 'resnet51'"),
    (["--model", "mobilenet_v2", "--image-size", "0"], "--image-size and --train-batch must be at least 1"),
])
def test_bench_model_refuses_what_it_cannot_run_in_one_line(tmp_path, capsys, arguments, message):
    assert cli.main(["bench", *arguments, "--smoke", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bench_model_batches_must_be_positive_numbers(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--model", "mobilenet_v2", "--batches", "1,0", "--out", str(tmp_path)])
    assert "expected batch sizes such as 1,8. Received: '1,0'" in capsys.readouterr().err


@pytest.mark.parametrize("arch", ["resnet50", "mobilenet_v2", "vgg16"])
def test_float32_fast_paths_agree_with_float64(monkeypatch, arch):
    """The float32 paths (1x1 products, depthwise blocks and shifted slices, convolutions block by block,
    here forced on with a 64 KiB budget, Winograd for every 3x3 stride-1 convolution) against the same
    model in float64: outputs in training and evaluation mode, and dL/dx in evaluation, to float32's
    precision. (In training, dL/dx runs back through 53 BatchNorms on batch statistics of 3 samples of
    2x2 pixels at the end: float32's rounding grows to a few percent there whatever the path, so it is
    not a measure of the paths.)"""
    from glassnet.nn.layers import conv as conv_module
    monkeypatch.setattr(conv_module, "BLOCKED_COLUMN_BYTES", 64 << 10)
    monkeypatch.setattr(conv_module, "WINOGRAD_MIN_CHANNELS", 0)
    monkeypatch.setattr(conv_module, "WINOGRAD_MIN_WORK", 0)
    model64 = presets.build(arch, (3, 64, 64), 10, seed=4, dtype=np.float64)
    model32 = presets.build(arch, (3, 64, 64), 10, seed=4, dtype=np.float32)   # the same draws, rounded
    x = np.random.default_rng(5).standard_normal((3, 3, 64, 64))
    for mode in ("train", "eval"):
        for model in (model64, model32):
            getattr(model, mode)()
        for layer in model32.layers + model64.layers:
            if isinstance(layer, gn.Dropout):
                layer.p = 0.0
        out64, out32 = model64.forward(x), model32.forward(x.astype(np.float32))
        assert out32.dtype == np.float32 and out64.dtype == np.float64
        assert np.abs(out32 - out64).max() <= 1e-4 * np.abs(out64).max()
        if mode == "eval":
            dy = np.random.default_rng(6).standard_normal(out64.shape)
            dx64, dx32 = model64.backward(dy), model32.backward(dy.astype(np.float32))
            assert dx32.dtype == np.float32
            assert np.abs(dx32 - dx64).max() <= 1e-4 * np.abs(dx64).max()
