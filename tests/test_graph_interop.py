"""Graph models in and out of ONNX: a hand-written PyTorch ResNet-18 and an Inception-style net exported
by both of PyTorch's exporters and imported (float64, relative 1e-10 against PyTorch); glassnet graphs
exported and run by ONNX Runtime."""
import numpy as np
import onnxruntime
import pytest
import torch
import torch.nn.functional as F

import glassnet as gn
from fuzzing import graph_model
from reference import assert_matches

nn = torch.nn


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 as He et al. 2015 (torchvision's layout): a 7x7 stem, four stages of two basic blocks."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


class InceptionNet(nn.Module):
    """GoogLeNet's module: 1x1, 1x1-3x3, 1x1-5x5 and pool-1x1 branches joined on the channels."""

    def __init__(self, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.b1 = nn.Conv2d(8, 4, 1)
        self.b3 = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(8, 2, 1), nn.ReLU(), nn.Conv2d(2, 3, 5, padding=2))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(8, 3, 1))
        self.fc = nn.Linear(16 * 4 * 4, classes)

    def forward(self, x):
        h = F.relu(self.stem(x))
        joined = torch.cat([F.relu(self.b1(h)), F.relu(self.b3(h)), F.relu(self.b5(h)), F.relu(self.bp(h))], 1)
        return self.fc(torch.flatten(F.max_pool2d(joined, 2), 1))


def trained_statistics(net, shape):
    """Running statistics that are not the initial 0 and 1, so BatchNorm's inference form is tested."""
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.randn((8,) + shape, dtype=torch.float64))
    return net.eval()


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", ["resnet18", "inception"])
def test_pytorch_exports_of_graphs_import_equal_to_pytorch(tmp_path, name, dynamo):
    torch.manual_seed(0)
    shape = (3, 32, 32) if name == "resnet18" else (3, 8, 8)
    net = trained_statistics((ResNet18() if name == "resnet18" else InceptionNet()).double(), shape)
    x = torch.randn((2,) + shape, dtype=torch.float64)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(net, (x,), str(path), dynamo=dynamo, **({} if dynamo else {"opset_version": 17}))
    model = gn.import_onnx(path)
    assert isinstance(model, gn.Model) and not isinstance(model, gn.Sequential)
    merges = [layer for layer in model.layers if isinstance(layer, (gn.Add, gn.Concatenate))]
    assert len(merges) == (8 if name == "resnet18" else 1)
    with torch.no_grad():
        expected = net(x)
    assert_matches(model.predict(x.numpy()), expected)
    if name == "resnet18":                               # 1 stem + 16 in the blocks + 3 projection shortcuts
        assert sum(isinstance(layer, gn.Conv2D) for layer in model.layers) == 20


def test_glassnet_graphs_exported_run_in_onnx_runtime_as_in_glassnet(tmp_path):
    rng = np.random.default_rng(0)
    for model in (graph_model(), gn.presets.build("resnet_mini", (1, 8, 8), 10),
                  gn.presets.build("inception_mini", (3, 8, 8), 4)):
        model.astype(np.float32).eval()
        path = gn.export_onnx(model, tmp_path / "graph.onnx")
        x = rng.standard_normal((3,) + tuple(model.input_shapes[0])).astype(np.float32)
        (ours,) = [model.forward(x)]
        (theirs,) = onnxruntime.InferenceSession(str(path)).run(None, {"input": x})
        np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6)
        back = gn.import_onnx(path)                       # and read back: the same graph, the same numbers
        assert len(back.graph.nodes) == len(model.graph.nodes)
        extra_calls = sum(len(uses) - 1 for uses in model.graph.uses)
        assert len(back.layers) == len(model.layers) + extra_calls         # a shared layer comes back per call
        np.testing.assert_allclose(back.predict(x), ours, rtol=1e-6, atol=1e-6)


def test_a_sequential_without_a_recorded_shape_exports_with_input_shape(tmp_path):
    model = gn.Sequential([gn.Flatten(), gn.Dense(4, 2, rng=0)], dtype=np.float32)
    with pytest.raises(gn.GlassnetError, match=r"pass export_onnx\(model, path, input_shape=\(C, H, W\)\)"):
        gn.export_onnx(model, tmp_path / "m.onnx")
    with pytest.raises(gn.GlassnetError, match=r"input_shape must be one sample's shape"):
        gn.export_onnx(model, tmp_path / "m.onnx", input_shape=(0, 2))
    path = gn.export_onnx(model, tmp_path / "m.onnx", input_shape=(1, 2, 2))
    x = np.ones((3, 1, 2, 2), np.float32)
    np.testing.assert_allclose(gn.import_onnx(path).predict(x), model.predict(x), rtol=1e-6)


def test_a_short_onnx_fuzz_run_raises_only_glassnet_errors():
    """The loop of tests/onnx_fuzzing.py (100,000 inputs for the record) on 2,000 inputs."""
    from onnx_fuzzing import fuzz
    summary = fuzz(2000, seed=11)
    assert [message for _, message, _ in summary["failures"]] == [] and summary["slowest_seconds"] < 5.0
    assert summary["outcomes"]["GlassnetError"] > 1000


def test_missing_and_mistyped_attributes_name_the_node(tmp_path):
    from onnx import TensorProto, helper, numpy_helper
    pool = helper.make_node("MaxPool", ["input"], ["out"], name="pool1")
    conv = helper.make_node("Conv", ["input", "w"], ["out"], name="conv1", pads=[1, 1])
    gemm = helper.make_node("Gemm", ["input", "w"], ["out"], name="fc", alpha="big")
    cases = [(pool, [], r"node 'pool1' \(MaxPool\): the required attribute 'kernel_shape' is missing"),
             (conv, [numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")],
              r"node 'conv1' \(Conv\): attribute 'pads' must be 4 ints of at least 0. Received: \[1, 1\]"),
             (gemm, [numpy_helper.from_array(np.ones((4, 2), np.float32), "w")],
              r"node 'fc' \(Gemm\): attribute 'alpha' must be a float. Received: b'big'")]
    for index, (node, weights, message) in enumerate(cases):
        shape = ["N", 4] if node.op_type == "Gemm" else ["N", 1, 6, 6]
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], weights)
        path = tmp_path / f"case{index}.onnx"
        path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
        with pytest.raises(gn.GlassnetError, match=message):
            gn.import_onnx(path)


@pytest.mark.parametrize("name", ["resnet18", "inception"])
def test_from_torch_traces_graph_modules_equal_to_pytorch_forward_and_backward(name):
    torch.manual_seed(0)
    shape = (3, 32, 32) if name == "resnet18" else (3, 8, 8)
    net = trained_statistics((ResNet18() if name == "resnet18" else InceptionNet()).double(), shape)
    model = gn.from_torch(net, input_shape=shape)
    assert isinstance(model, gn.Model) and model.num_params() == sum(p.numel() for p in net.parameters())
    x = torch.randn((2,) + shape, dtype=torch.float64, requires_grad=True)
    out = net(x)
    assert_matches(model.eval().forward(x.detach().numpy()), out)
    dy = torch.randn(out.shape, dtype=torch.float64)
    out.backward(dy)
    assert_matches(model.backward(dy.numpy()), x.grad)
    weights = [p for p in net.parameters()]
    ours = [layer.grads[key] for layer in model.layers for key in layer.params]
    assert len(ours) == len(weights)
    for grad, parameter in zip(ours, weights):
        reference = parameter.grad.numpy()
        assert_matches(grad, reference.T if grad.shape != reference.shape else reference)


def test_to_torch_of_a_graph_is_a_graph_module_computing_the_same():
    model = graph_model().eval()                         # a shared convolution, Add, Multiply, Concatenate
    twin = gn.to_torch(model)
    assert isinstance(twin, torch.fx.GraphModule) and "torch.cat" in twin.code
    x = np.random.default_rng(1).standard_normal((3, 2, 6, 6))
    with torch.no_grad():
        assert_matches(model.forward(x), twin(torch.from_numpy(x)))
    back = gn.from_torch(twin, input_shape=(2, 6, 6))
    assert len(back.layers) == len(model.layers)        # the shared layer comes back shared
    np.testing.assert_allclose(back.eval().forward(x), model.forward(x), rtol=1e-13)


def test_from_torch_refuses_what_it_cannot_trace_or_convert_by_name():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return self.conv(x) * 2.0

    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(gn.GlassnetError, match=r"pass input_shape=\(C, H, W\)"):
        gn.from_torch(Scaled())
    with pytest.raises(gn.GlassnetError, match=r"node 'mul'.*expected a tensor computed from the input. Received: 2.0"):
        gn.from_torch(Scaled(), input_shape=(1, 5, 5))
    with pytest.raises(gn.GlassnetError, match=r"torch.fx cannot trace Branchy"):
        gn.from_torch(Branchy(), input_shape=(1, 5, 5))
