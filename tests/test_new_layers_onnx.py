"""The layers of real architectures through ONNX: glassnet's export run by ONNX Runtime and read back;
PyTorch's two exporters (TorchScript and dynamo) of single modules and of the hand-written MobileNetV2,
ShuffleNet-v2 unit, U-Net decoder and DCGAN generator read by gn.import_onnx, equal at float32 1e-5."""
import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

import glassnet as gn
from real_architectures import ARCHITECTURES
from test_new_layers_everywhere import zoo


def test_the_zoo_exported_runs_in_onnx_runtime_and_reads_back(tmp_path):
    model = zoo().astype(np.float32).eval()
    x = np.random.default_rng(0).standard_normal((3, 4, 8, 8)).astype(np.float32)
    ours = model.forward(x)
    for attempt in range(2):
        path = gn.export_onnx(model, tmp_path / "zoo.onnx")
        (theirs,) = onnxruntime.InferenceSession(str(path)).run(None, {"input": x})
        np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5)
        back = gn.import_onnx(path)
        np.testing.assert_allclose(back.predict(x), ours, rtol=1e-5, atol=1e-5)


MODULES = {   # one layer (or two) per case: (module, one sample's shape)
    "depthwise_dilated": (lambda: nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=4), (4, 9, 9)),
    "grouped_strided": (lambda: nn.Conv2d(6, 9, (3, 2), stride=(2, 1), groups=3), (6, 9, 8)),
    "conv_transpose": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (4, 5, 5)),
    "max_pool_ceil": (lambda: nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), (3, 8, 8)),
    "max_pool_dilated": (lambda: nn.MaxPool2d(2, 1, dilation=2), (3, 7, 7)),
    "avg_pool_ceil_exclude_pad": (lambda: nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
                                  (3, 8, 8)),
    "lrn": (lambda: nn.LocalResponseNorm(5, alpha=0.1, beta=0.75, k=2.0), (7, 4, 4)),
    "relu6": (lambda: nn.ReLU6(), (3, 4, 4)),
    "elu": (lambda: nn.ELU(0.5), (3, 4, 4)),
    "selu": (lambda: nn.SELU(), (3, 4, 4)),
    "prelu": (lambda: nn.PReLU(3, 0.1), (3, 4, 4)),
    "softplus": (lambda: nn.Softplus(), (3, 4, 4)),
    "softsign": (lambda: nn.Softsign(), (3, 4, 4)),
    "silu": (lambda: nn.SiLU(), (3, 4, 4)),
    "hardsigmoid": (lambda: nn.Hardsigmoid(), (3, 4, 4)),
    "hardswish": (lambda: nn.Hardswish(), (3, 4, 4)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.2), (3, 4, 4)),
    "log_softmax": (lambda: nn.Sequential(nn.Flatten(), nn.LogSoftmax(dim=1)), (3, 2, 2)),
    "zero_pad": (lambda: nn.ZeroPad2d((1, 2, 0, 3)), (3, 4, 4)),
    "constant_pad": (lambda: nn.ConstantPad2d(1, 0.5), (3, 4, 4)),
    "reflection_pad": (lambda: nn.ReflectionPad2d((1, 2, 2, 1)), (3, 4, 5)),
    "replication_pad": (lambda: nn.ReplicationPad2d(2), (3, 4, 4)),
    "upsample_nearest": (lambda: nn.Upsample(scale_factor=2, mode="nearest"), (3, 4, 5)),
    "upsample_bilinear": (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (3, 4, 5)),
    "upsample_align_corners": (lambda: nn.Upsample(scale_factor=3, mode="bilinear", align_corners=True), (3, 4, 5)),
    "pixel_shuffle": (lambda: nn.PixelShuffle(2), (8, 3, 3)),
    "channel_shuffle": (lambda: nn.ChannelShuffle(3), (6, 3, 3)),
}
MODULES.update(ARCHITECTURES and {name: make for name, make in ARCHITECTURES.items()})


def built(make):
    made = make()
    return made if isinstance(made[1], tuple) and isinstance(made[0], nn.Module) else (made, None)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", sorted(MODULES))
def test_pytorch_exports_import_equal_to_pytorch(tmp_path, name, dynamo):
    torch.manual_seed(0)
    module, shape = MODULES[name]() if name in ARCHITECTURES else (MODULES[name][0](), MODULES[name][1])
    module = module.float().eval()
    x = torch.randn((2,) + shape, dtype=torch.float32) * 3
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(module, (x,), str(path), dynamo=dynamo, **({} if dynamo else {"opset_version": 17}))
    model = gn.import_onnx(path)
    with torch.no_grad():
        expected = module(x).numpy()
    np.testing.assert_allclose(model.predict(x.numpy()), expected, rtol=1e-5, atol=1e-5)
