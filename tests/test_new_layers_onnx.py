"""The layers of real architectures through ONNX: glassnet's export run by ONNX Runtime and read back;
PyTorch's two exporters (TorchScript and dynamo) of single modules and of the hand-written MobileNetV2,
ShuffleNet-v2 unit, U-Net decoder and DCGAN generator read by gn.import_onnx, equal at float32 1e-5."""
import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

import glassnet as gn
from real_architectures import ARCHITECTURES, WrittenShuffle
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
    "relu6": (lambda: nn.ReLU6(), (3, 4, 4)),
    "elu": (lambda: nn.ELU(0.5), (3, 4, 4)),
    "selu": (lambda: nn.SELU(), (3, 4, 4)),
    "prelu": (lambda: nn.PReLU(3, 0.1), (3, 4, 4)),
    "silu": (lambda: nn.SiLU(), (3, 4, 4)),
    "hardsigmoid": (lambda: nn.Hardsigmoid(), (3, 4, 4)),
    "gelu": (lambda: nn.Sequential(nn.Conv2d(3, 3, 1), nn.GELU()), (3, 4, 4)),          # TorchScript: Erf written out
    "gelu_tanh": (lambda: nn.Sequential(nn.Conv2d(3, 3, 1), nn.GELU(approximate="tanh")), (3, 4, 4)),
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
    "channel_shuffle_written": (lambda: WrittenShuffle(3), (6, 3, 3)),
}
DYNAMO_ONLY = {"channel_shuffle": (lambda: nn.ChannelShuffle(3), (6, 3, 3)),   # TorchScript's exporter has no
               "shufflenet_v2_unit": ARCHITECTURES["shufflenet_v2_unit"]}       # aten::channel_shuffle
CASES = [(name, dynamo) for name in sorted(MODULES) + sorted(ARCHITECTURES) for dynamo in (False, True)
         if name not in DYNAMO_ONLY or dynamo] + [(name, True) for name in DYNAMO_ONLY if name not in ARCHITECTURES]


def made(name):
    """(module, one sample's shape) of a case."""
    make = {**MODULES, **DYNAMO_ONLY}.get(name)
    if make is None or name in ARCHITECTURES:
        return ARCHITECTURES[name]()
    return make[0](), make[1]


@pytest.mark.parametrize("name, dynamo", CASES, ids=[f"{n}-{'dynamo' if d else 'torchscript'}" for n, d in CASES])
def test_pytorch_exports_import_equal_to_pytorch(tmp_path, name, dynamo):
    torch.manual_seed(0)
    module, shape = made(name)
    module = module.float().eval()
    x = torch.randn((2,) + shape, dtype=torch.float32) * 3
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(module, (x,), str(path), dynamo=dynamo, **({} if dynamo else {"opset_version": 17}))
    model = gn.import_onnx(path)
    with torch.no_grad():
        expected = module(x).numpy()
    np.testing.assert_allclose(model.predict(x.numpy()), expected, rtol=1e-5, atol=1e-5)


HAND_WRITTEN = {   # ONNX ops PyTorch's exporters write out in pieces, built here as the single ops other tools write
    "LRN": (dict(size=5, alpha=0.1, beta=0.75, bias=2.0), lambda t: torch.nn.functional.local_response_norm(
        t, 5, 0.1, 0.75, 2.0)),
    "Softsign": ({}, torch.nn.functional.softsign),
    "Softplus": ({}, torch.nn.functional.softplus),
    "Elu": (dict(alpha=0.5), lambda t: torch.nn.functional.elu(t, 0.5)),
    "HardSigmoid": (dict(alpha=1 / 6, beta=0.5), torch.nn.functional.hardsigmoid),
    "Gelu": (dict(approximate="tanh"), lambda t: torch.nn.functional.gelu(t, approximate="tanh")),
}


@pytest.mark.parametrize("op", sorted(HAND_WRITTEN))
def test_single_onnx_ops_import_equal_to_pytorch(tmp_path, op):
    from onnx import TensorProto, helper
    attributes, reference = HAND_WRITTEN[op]
    shape = [2, 7, 4, 4]
    graph = helper.make_graph([helper.make_node(op, ["input"], ["out"], name="the_op", **attributes)], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N"] + shape[1:])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N"] + shape[1:])])
    path = tmp_path / f"{op}.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]).SerializeToString())
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 3
    (runtime,) = onnxruntime.InferenceSession(str(path)).run(None, {"input": x})
    with torch.no_grad():
        expected = reference(torch.tensor(x)).numpy()
    np.testing.assert_allclose(runtime, expected, rtol=1e-5, atol=1e-5)           # the op means what torch means
    np.testing.assert_allclose(gn.import_onnx(path).predict(x), expected, rtol=1e-5, atol=1e-5)


def test_even_lrn_windows_are_refused_by_name(tmp_path):
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("LRN", ["input"], ["out"], name="norm", size=4)], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 6, 2, 2])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 6, 2, 2])])
    path = tmp_path / "lrn.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    with pytest.raises(gn.GlassnetError, match=r"node 'norm' \(LRN\): size=4: .* only odd sizes"):
        gn.import_onnx(path)


def test_an_erf_that_is_not_gelu_is_refused_by_name(tmp_path):
    class ErfOnly(nn.Module):
        def forward(self, x):
            return torch.erf(x) * 2.0
    torch.onnx.export(ErfOnly(), (torch.randn(2, 3, 4, 4),), str(tmp_path / "erf.onnx"), dynamo=False,
                      opset_version=17)
    with pytest.raises(gn.GlassnetError, match="is a Erf, which glassnet cannot import"):
        gn.import_onnx(tmp_path / "erf.onnx")
