"""Models in and out: ONNX (checked with ONNX Runtime and ONNX's reference evaluator), PyTorch both
ways, torch.onnx.export into glassnet, gn.compare, hostile ONNX files and the CLI."""
import subprocess
import sys

import numpy as np
import pytest
import torch

import glassnet as gn
from reference import assert_matches

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

torch.set_default_dtype(torch.float64)


def grid_models():
    """(name, model with its input shape): every layer glassnet has, odd kernels, strides and paddings."""
    def with_shape(model, shape):
        model.metadata["input_shape"] = list(shape)
        return model
    yield "conv-stride-pad", with_shape(gn.Sequential([
        gn.Conv2D(3, 5, 3, stride=2, padding=1, rng=0), gn.ReLU(), gn.MaxPool2D(3, stride=2, padding=1),
        gn.Flatten(), gn.Dense(5 * 4 * 4, 4, rng=1)]), (3, 13, 13))
    yield "same-even-kernel", with_shape(gn.Sequential([
        gn.Conv2D(1, 2, (2, 4), padding="same", rng=2), gn.Tanh(), gn.AvgPool2D(2, stride=1, padding=1),
        gn.Conv2D(2, 3, 1, bias=False, rng=3), gn.Sigmoid(), gn.Flatten(), gn.Dense(3 * 10 * 10, 3, rng=4),
        gn.Softmax()]), (1, 9, 9))
    yield "pair-kernels", with_shape(gn.Sequential([
        gn.Conv2D(2, 3, (3, 5), stride=(1, 2), padding=(2, 1), rng=5), gn.LeakyReLU(0.2),
        gn.MaxPool2D((2, 3)), gn.Flatten(), gn.Dropout(0.3), gn.Dense(3 * 5 * 1, 2, rng=6), gn.Identity()]),
        (2, 8, 11))
    yield "mlp", with_shape(gn.Sequential([gn.Dense(6, 5, rng=7), gn.ReLU(), gn.Dense(5, 2, rng=8)]), (6,))


def batchnorm_model():
    model = gn.Sequential([gn.Conv2D(2, 4, 3, padding=1, rng=0), gn.BatchNorm2D(4), gn.ReLU(), gn.Flatten(),
                           gn.Dense(4 * 6 * 6, 3, rng=1)])
    model.layers[1].buffers["running_mean"][...] = [0.1, -0.2, 0.3, 0.0]
    model.layers[1].buffers["running_var"][...] = [0.5, 2.0, 1.5, 1.0]
    model.layers[1].params["weight"][...] = [1.5, 0.5, -1.0, 2.0]
    model.metadata["input_shape"] = [2, 6, 6]
    return model.eval()


def sample(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal((3,) + tuple(shape)).astype(dtype)


@pytest.mark.parametrize("name, model", list(grid_models()), ids=lambda v: v if isinstance(v, str) else "")
def test_glassnet_onnx_runtime_and_back(tmp_path, name, model):
    shape = tuple(model.metadata["input_shape"])
    model.eval()
    x64 = sample(shape, np.float64)
    # float64: ONNX Runtime has no float64 Conv kernel on CPU, so ONNX's own reference evaluator checks it
    gn.export_onnx(model, tmp_path / "m64.onnx")
    reference = ReferenceEvaluator(str(tmp_path / "m64.onnx")).run(None, {"input": x64})[0]
    np.testing.assert_allclose(reference, model.predict(x64), rtol=1e-12, atol=1e-12)
    back = gn.import_onnx(tmp_path / "m64.onnx")
    for ours, theirs in zip(model.layers, back.layers):
        assert type(ours) is type(theirs) or (type(ours) is gn.Dropout and type(theirs) is gn.Identity)
        for key in ours.params:
            np.testing.assert_array_equal(ours.params[key], theirs.params[key])
    np.testing.assert_array_equal(back.predict(x64), model.predict(x64))
    # float32 through ONNX Runtime
    model32 = gn.import_onnx(tmp_path / "m64.onnx").astype(np.float32)
    model32.metadata["input_shape"] = list(shape)
    gn.export_onnx(model32, tmp_path / "m32.onnx")
    x32 = x64.astype(np.float32)
    runtime = ort.InferenceSession(str(tmp_path / "m32.onnx")).run(None, {"input": x32})[0]
    np.testing.assert_allclose(runtime, model32.predict(x32), rtol=1e-5, atol=1e-5)


def test_batchnorm_epsilon_travels_as_float32(tmp_path):
    """ONNX stores attributes as float32: eps 1e-5 becomes 9.99999974738e-06 in the file. Import reads it
    back as 1e-5 (the shortest decimal it denotes); a float64 runtime using the file's value differs by ~1e-11."""
    model = batchnorm_model()
    x = sample((2, 6, 6), np.float64)
    gn.export_onnx(model, tmp_path / "bn.onnx")
    reference = ReferenceEvaluator(str(tmp_path / "bn.onnx")).run(None, {"input": x})[0]
    np.testing.assert_allclose(reference, model.predict(x), rtol=1e-10, atol=1e-10)
    back = gn.import_onnx(tmp_path / "bn.onnx")
    assert back.layers[1].eps == 1e-5
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


def test_metadata_travels_in_the_onnx_file(tmp_path):
    model = gn.presets.build("lenet", (1, 8, 8), 10, seed=0)
    model.metadata.update(preprocessing=gn.datasets.digits().preprocessing, class_names=list("0123456789"))
    gn.export_onnx(model, tmp_path / "d.onnx")
    back = gn.import_onnx(tmp_path / "d.onnx")
    assert back.metadata["preprocessing"] == model.metadata["preprocessing"]
    assert back.metadata["class_names"] == list("0123456789") and back.metadata["input_shape"] == [1, 8, 8]


def torch_cnn():
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, stride=2, padding="valid"), nn.LeakyReLU(0.05),
                         nn.AvgPool2d(2, padding=1), nn.Flatten(), nn.Dropout(0.1), nn.Linear(6 * 2 * 2, 8),
                         nn.Tanh(), nn.Linear(8, 3), nn.Softmax(dim=1)).float().eval()


@pytest.mark.parametrize("dynamo", [False, True])
def test_torch_onnx_export_imports_and_matches_torch(tmp_path, dynamo):
    net = torch_cnn()
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    x = torch.from_numpy(sample((1, 12, 12), np.float32))
    options = {"dynamo": dynamo, "input_names": ["input"]}
    if not dynamo:
        options["dynamic_axes"] = {"input": {0: "N"}}
    torch.onnx.export(net, (x,), str(tmp_path / "t.onnx"), **options)
    model = gn.import_onnx(tmp_path / "t.onnx")
    with torch.no_grad():
        expected = net(x).numpy()
    np.testing.assert_allclose(model.predict(x.numpy()), expected, rtol=1e-5, atol=1e-6)


def test_torch_both_ways_is_exact_and_compare_agrees():
    net = torch_cnn().double()
    model = gn.from_torch(net, input_shape=(1, 12, 12))
    x = sample((1, 12, 12), np.float64)
    with torch.no_grad():
        assert_matches(model.predict(x), net(torch.from_numpy(x)))
    again = gn.to_torch(model).eval()
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        if a.dtype.is_floating_point:
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    plain = gn.Sequential(model.layers[:-1])                     # compare with gradients: logits + softmax CE
    report = gn.compare(plain, gn.to_torch(plain), x, target=np.array([0, 2, 1]), loss=gn.SoftmaxCrossEntropy())
    assert len(report.layers) == 12 and report.largest < 1e-12
    assert all(d.gradient is None or d.gradient < 1e-12 for d in report.layers)
    assert "Conv2D" in report.text()


def test_unsupported_torch_modules_are_named():
    with pytest.raises(gn.GlassnetError, match=r"module 1 \(Mish\) has no glassnet equivalent"):
        gn.from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Mish()))
    with pytest.raises(gn.GlassnetError, match="padding_mode='circular'"):
        gn.from_torch(torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3, groups=2, padding=1, padding_mode="circular")))
    with pytest.raises(gn.GlassnetError, match="Linear is not an nn.Sequential, so it is traced into a graph; "
                                               r"pass input_shape=\(C, H, W\)"):
        gn.from_torch(torch.nn.Linear(2, 2))


# -- hostile files ------------------------------------------------------------------------------------------

def tiny_graph(nodes, initializers=(), opsets=(("", 17),), inputs=None):
    inputs = inputs or [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 2])],
                              list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])


def dense_weights():
    return [numpy_helper.from_array(np.ones((4, 2), np.float32), "w"),
            numpy_helper.from_array(np.zeros(2, np.float32), "b")]


def write(tmp_path, proto, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(proto.SerializeToString())
    return path


def test_a_plain_tiny_graph_imports(tmp_path):
    model = gn.import_onnx(write(tmp_path, tiny_graph([helper.make_node("Gemm", ["input", "w", "b"], ["out"])],
                                                      dense_weights())))
    np.testing.assert_array_equal(model.predict(np.ones((1, 4), np.float32)), [[4.0, 4.0]])


def external_weight(location, offset=0, length=None):
    weight = numpy_helper.from_array(np.ones((4, 2), np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", length)):
        if value is not None:
            entry = weight.external_data.add()
            entry.key, entry.value = key, str(value)
    return weight


@pytest.mark.parametrize("location, offset, length, message", [
    ("/etc/passwd", 0, None, "must be a file inside the model's own folder"),
    ("../../secret.bin", 0, None, "must be a file inside the model's own folder"),
    ("missing.bin", 0, None, "not a file inside the model's own folder"),
    ("link.bin", 0, None, "not a file inside the model's own folder"),          # a link pointing outside
    ("weights.bin", 0, 1 << 30, "do not match its shape"),
    ("weights.bin", 30, None, "lie outside the file"),
])
def test_external_data_outside_the_folder_or_the_file_is_refused(tmp_path, location, offset, length, message):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(np.full((4, 2), 2.0, np.float32).tobytes())
    (tmp_path / "outside.bin").write_bytes(bytes(32))
    (folder / "link.bin").symlink_to(tmp_path / "outside.bin")
    path = write(folder, tiny_graph([helper.make_node("Gemm", ["input", "w"], ["out"])],
                                    [external_weight(location, offset, length)]))
    with pytest.raises(gn.GlassnetError, match=message):
        gn.import_onnx(path)


def test_external_data_inside_the_folder_is_read(tmp_path):
    (tmp_path / "weights.bin").write_bytes(bytes(8) + np.full((4, 2), 2.0, np.float32).tobytes())
    path = write(tmp_path, tiny_graph([helper.make_node("Gemm", ["input", "w"], ["out"])],
                                      [external_weight("weights.bin", offset=8)]))
    model = gn.import_onnx(path)
    np.testing.assert_array_equal(model.predict(np.ones((1, 4), np.float32)), [[8.0, 8.0]])


def raw_tensor(name, dims, data):
    """A float tensor declaring ``dims`` whatever ``data`` holds (as a hostile file would)."""
    tensor = TensorProto()
    tensor.name, tensor.data_type, tensor.raw_data = name, TensorProto.FLOAT, data
    tensor.dims.extend(dims)
    return tensor


def test_truncated_huge_unknown_custom_cyclic_and_branching_files_are_refused(tmp_path):
    good = write(tmp_path, tiny_graph([helper.make_node("Gemm", ["input", "w", "b"], ["out"])], dense_weights()))
    (tmp_path / "cut.onnx").write_bytes(good.read_bytes()[:40])
    cases = {"cut.onnx": "not a readable ONNX file"}
    huge = raw_tensor("w", [1 << 20, 1 << 20], b"")
    write(tmp_path, tiny_graph([helper.make_node("Gemm", ["input", "w"], ["out"])], [huge]), "huge.onnx")
    cases["huge.onnx"] = r"declares \[1048576, 1048576\] .* over the limit"
    lying = raw_tensor("w", [4, 2], np.ones(3, np.float32).tobytes())
    write(tmp_path, tiny_graph([helper.make_node("Gemm", ["input", "w"], ["out"])], [lying]), "lying.onnx")
    cases["lying.onnx"] = "tensor 'w' is damaged|holds 3 values"
    write(tmp_path, tiny_graph([helper.make_node("Mish", ["input"], ["out"], name="act")]), "mish.onnx")
    cases["mish.onnx"] = "node 'act' is a Mish, which glassnet cannot import"
    write(tmp_path, tiny_graph([helper.make_node("Relu", ["input"], ["out"], domain="evil.ops")],
                               opsets=(("", 17), ("evil.ops", 1))), "custom.onnx")
    cases["custom.onnx"] = "custom op domain 'evil.ops'"
    cyclic = [helper.make_node("Relu", ["input"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
              helper.make_node("Relu", ["b"], ["a"])]
    write(tmp_path, tiny_graph(cyclic), "cycle.onnx")
    cases["cycle.onnx"] = "writes 'a' a second time \\(a cycle\\)"
    dangling = [helper.make_node("Relu", ["input"], ["a"]), helper.make_node("Add", ["a", "nowhere"], ["out"])]
    write(tmp_path, tiny_graph(dangling), "dangling.onnx")
    cases["dangling.onnx"] = r"node .* \(Add\): arithmetic is supported only as a per-channel scale"
    unread = [helper.make_node("Relu", ["input"], ["a"]), helper.make_node("Sigmoid", ["input"], ["lost"]),
              helper.make_node("Tanh", ["a"], ["out"])]
    write(tmp_path, tiny_graph(unread), "unread.onnx")
    cases["unread.onnx"] = "the value 'lost' is computed but read by nothing"
    symbolic = tiny_graph([helper.make_node("Relu", ["input"], ["out"])],
                          inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", "K"])])
    write(tmp_path, symbolic, "symbolic.onnx")
    cases["symbolic.onnx"] = "must be fixed numbers"
    (tmp_path / "notes.txt").write_text("hello")
    cases["notes.txt"] = "not a readable ONNX file"
    cases["missing.onnx"] = "no such file"
    for name, message in cases.items():
        with pytest.raises(gn.GlassnetError, match=message):
            gn.import_onnx(tmp_path / name)


def test_a_branching_graph_imports_as_a_model(tmp_path):
    """relu(relu(x)) + sigmoid(relu(x)): the value 'a' read by two nodes, joined by an Add."""
    branching = [helper.make_node("Relu", ["input"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
                 helper.make_node("Sigmoid", ["a"], ["c"]), helper.make_node("Add", ["b", "c"], ["out"])]
    model = gn.import_onnx(write(tmp_path, tiny_graph(branching), "branch.onnx"))
    assert isinstance(model, gn.Model) and not isinstance(model, gn.Sequential)
    x = np.linspace(-2, 2, 8, dtype=np.float32).reshape(2, 4)
    a = np.maximum(x, 0)
    np.testing.assert_allclose(model.predict(x), a + 1 / (1 + np.exp(-a)), rtol=1e-6)


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "glassnet.apps.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_cli_export_and_import(tmp_path):
    model = gn.presets.build("lenet", (1, 8, 8), 10, seed=0)
    gn.save(model, tmp_path / "m.glassnet")
    exported = run("export", "m.glassnet", "--onnx", "m.onnx", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    imported = run("import", "m.onnx", "--out", "back.glassnet", "--dataset", "digits", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    back = gn.load(tmp_path / "back.glassnet")
    x = sample((1, 8, 8), np.float64)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    assert back.metadata["class_names"] == [str(d) for d in range(10)]
    bad = run("import", "m.glassnet", "--out", "x.glassnet", cwd=tmp_path)
    assert bad.returncode == 1 and "not a readable ONNX file" in bad.stderr and not (tmp_path / "x.glassnet").exists()
    wrong = run("import", "m.onnx", "--out", "y.glassnet", "--dataset", "mnist5k", cwd=tmp_path)
    assert wrong.returncode == 1 and "takes inputs of shape (1, 8, 8)" in wrong.stderr
