"""Hostile and corrupt model files and checkpoints: each refused with a clear GlassnetError,
before anything large is decompressed or allocated."""
import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

import glassnet as gn
from glassnet import archive as archive_module
from glassnet.files.serialization import load_checkpoint
from fuzzing import fuzz


def small_model():
    return gn.Sequential([gn.Conv2D(1, 2, 3, rng=0), gn.ReLU(), gn.Flatten(), gn.Dense(8, 3, rng=1)])


def npy_bytes(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def members_of(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return path


def header_of(members):
    return json.loads(np.load(io.BytesIO(members["__glassnet__.npy"])).tobytes())


def with_header(members, header):
    members = dict(members)
    members["__glassnet__.npy"] = npy_bytes(np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    return members


def peak_bytes_while(action):
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.fixture
def valid(tmp_path):
    path = gn.save(small_model(), tmp_path / "valid.glassnet")
    return path, members_of(path)


def test_an_oversized_header_is_refused_unread(tmp_path, valid):
    _, members = valid
    members = dict(members)
    members["__glassnet__.npy"] = npy_bytes(np.zeros(3 << 20, dtype=np.uint8))
    path = write_zip(tmp_path / "big-header.glassnet", members.items())
    with pytest.raises(gn.GlassnetError, match=r"header of [\d,]+ bytes exceeds 1,048,576"):
        gn.load(path)


def test_a_shape_whose_product_overflows_is_refused(tmp_path, valid):
    _, members = valid
    members = dict(members)
    preamble = npy_bytes(np.zeros((2, 1, 3, 3)))
    # the same member with a shape of 2**62 x 2**62 x 2**62 float64 in its .npy header
    header_text = "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904, " \
                  "4611686018427387904), }"
    header_text = header_text + " " * (118 - len(header_text)) + "\n"
    members["0.weight.npy"] = b"\x93NUMPY\x01\x00" + len(header_text).to_bytes(2, "little") + \
        header_text.encode() + preamble[128:]
    path = write_zip(tmp_path / "overflow.glassnet", members.items())
    with pytest.raises(gn.GlassnetError, match=r"array 0.weight has shape \(4611686018427387904, .*expected "
                                               r"\(2, 1, 3, 3\) float64"):
        gn.load(path)


def test_a_member_larger_than_expected_is_refused_without_decompressing_it(tmp_path, valid):
    _, members = valid
    members = dict(members)
    members["0.weight.npy"] = npy_bytes(np.zeros(40_000_000))  # 320 MB of zeros, deflated to ~300 kB
    path = write_zip(tmp_path / "bomb.glassnet", members.items(), compression=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2_000_000
    errors = []

    def load():
        with pytest.raises(gn.GlassnetError, match=r"array 0.weight takes 320,000,128 bytes, expected 144") as error:
            gn.load(path)
        errors.append(error)

    assert peak_bytes_while(load) < 5_000_000 and errors


def test_layers_declaring_more_weights_than_the_file_holds_are_refused_before_building(tmp_path, valid):
    _, members = valid
    header = header_of(members)
    header["layers"][3]["config"].update(in_features=200_000, out_features=20_000)  # 32 GB of float64
    path = write_zip(tmp_path / "huge-layer.glassnet", with_header(members, header).items())
    errors = []

    def load():
        with pytest.raises(gn.GlassnetError, match=r"the layers declare 4,000,020,020 values, more than the file"):
            gn.load(path)
        errors.append(1)

    assert peak_bytes_while(load) < 5_000_000 and errors


def test_members_decompressing_past_the_total_limit_are_refused(tmp_path, valid, monkeypatch):
    _, members = valid
    members = dict(members)
    members["padding.npy"] = npy_bytes(np.zeros(2_000_000))
    path = write_zip(tmp_path / "total.glassnet", members.items(), compression=zipfile.ZIP_DEFLATED)
    monkeypatch.setattr(archive_module, "MAX_FILE_BYTES", 10_000_000)
    with pytest.raises(gn.GlassnetError, match=r"members would decompress to [\d,]+ bytes, over the limit"):
        gn.load(path)


@pytest.mark.parametrize("change, pattern", [
    (lambda m: m.update({"0.weight.npy": b"NOTNUMPY" + m["0.weight.npy"][8:]}), r"damaged array 0.weight"),
    (lambda m: m.update({"0.weight.npy": m["0.weight.npy"][:-8]}), r"array 0.weight is truncated"),
    (lambda m: m.update({"0.weight.npy": m["0.weight.npy"] + b"\0" * 8}), r"array 0.weight has trailing bytes"),
    (lambda m: m.update({"0.weight.npy": npy_bytes(np.zeros((2, 1, 3, 3), dtype=np.float32))}),
     r"has shape \(2, 1, 3, 3\) float32, expected \(2, 1, 3, 3\) float64"),
    (lambda m: m.update({"0.weight.npy": npy_bytes(np.asfortranarray(np.zeros((2, 1, 3, 3))))}), r"Fortran"),
    (lambda m: m.update({"extra.npy": npy_bytes(np.zeros(3))}), r"unexpected arrays \['extra'\]"),
    (lambda m: m.update({"notes.txt": b"hello"}), r"holds members other than .npy arrays"),
    (lambda m: m.pop("3.bias.npy"), r"missing array 3.bias"),
])
def test_damaged_members(tmp_path, valid, change, pattern):
    _, members = valid
    members = dict(members)
    change(members)
    with pytest.raises(gn.GlassnetError, match=pattern):
        gn.load(write_zip(tmp_path / "damaged.glassnet", members.items()))


def test_duplicate_member_names_are_refused(tmp_path, valid):
    _, members = valid
    path = tmp_path / "dup.glassnet"
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_zip(path, list(members.items()) + [("0.weight.npy", members["0.weight.npy"])])
    with pytest.raises(gn.GlassnetError, match=r"1 duplicated"):
        gn.load(path)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda h: h["layers"][0].update(type=["Conv2D"]), r"type \['Conv2D'\], which is not a glassnet layer"),
    (lambda h: h["layers"][0].update(type="__import__"), r"not a glassnet layer"),
    (lambda h: h["layers"][0]["config"].update(kernel_size="3"), r"bad kernel_size: '3'"),
    (lambda h: h["layers"][0]["config"].update(dtype="object"), r"layer 0 \(Conv2D\) has a bad config"),
    (lambda h: h.update(dtype="object"), r"dtype 'object', expected 'float32' or 'float64'"),
    (lambda h: h.update(format="keras"), r"format 'keras', expected 'glassnet-model'"),
    (lambda h: h.update(layers=[]), r"header lists no layers"),
])
def test_hostile_architectures(tmp_path, valid, mutate, pattern):
    _, members = valid
    header = header_of(members)
    mutate(header)
    with pytest.raises(gn.GlassnetError, match=pattern):
        gn.load(write_zip(tmp_path / "hostile.glassnet", with_header(members, header).items()))


def test_a_checkpoint_with_a_foreign_random_generator_is_refused(tmp_path):
    path = tmp_path / "run.ckpt"
    rng = np.random.default_rng(0)
    model = gn.Sequential([gn.Flatten(), gn.Dense(4, 2, rng=0)])
    model.fit(rng.standard_normal((6, 4)), rng.integers(0, 2, 6), epochs=1, checkpoint=path, verbose=False)
    members = members_of(path)
    header = header_of(members)
    header["progress"]["rng"]["bit_generator"] = "os.system"
    write_zip(path, with_header(members, header).items())
    path.with_name("run.ckpt.prev").unlink(missing_ok=True)
    with pytest.raises(gn.GlassnetError, match=r"unsupported random generator 'os.system'"):
        model.fit(rng.standard_normal((6, 4)), rng.integers(0, 2, 6), epochs=2, checkpoint=path, resume=True,
                  verbose=False)
    assert load_checkpoint(path).progress["epoch"] == 2  # the file itself is well formed


def test_a_short_fuzz_run_raises_only_glassnet_errors():
    """The loop of tests/fuzzing.py (100,000 inputs for the record) on 2,000 inputs."""
    summary = fuzz(2000, seed=7)
    assert summary["failures"] == [] and summary["slowest_seconds"] < 5.0  # no hang (not a speed check)
    assert summary["outcomes"]["GlassnetError"] > 1500


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    from fuzzing import graph_model
    path = gn.save(graph_model(), tmp_path_factory.mktemp("graph") / "graph.glassnet")
    return members_of(path)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda g: g["nodes"][2][1].__setitem__(0, 5),            # a reference to a later node: a cycle
     r"graph node 2 \(BatchNorm2D\) input: a value id must be an int in \[0, 3\) \(a model input or an earlier "
     r"node\). Received: 5"),
    (lambda g: g["nodes"][2][1].__setitem__(0, 3), r"graph node 2 \(BatchNorm2D\): reads its own output \(value 3\)"),
    (lambda g: g["nodes"][1][1].__setitem__(0, -1), r"graph node 1 \(ReLU\) input: .* Received: -1"),
    (lambda g: g["nodes"][1][1].__setitem__(0, "0"), r"graph node 1 \(ReLU\) input: .* Received: '0'"),
    (lambda g: g["nodes"][0].__setitem__(0, 99), r"graph node 0: layer index must be an int in \[0, 10\). "
                                                 r"Received: 99"),
    (lambda g: g["nodes"][0].__setitem__(0, "Conv2D"), r"graph node 0: layer index must be an int"),
    (lambda g: g["nodes"][4][1].pop(), r"graph node 4 \(Add\): takes 2 or more inputs \(a merge\). "
                                       r"Received: 1 input\(s\)"),
    (lambda g: g["nodes"][1][1].append(0), r"graph node 1 \(ReLU\): takes exactly 1 input. Received: 2"),
    (lambda g: g["nodes"][9][1].append(6), r"graph node 9 \(Concatenate\): Concatenate: inputs must have the same "
                                           r"number of axes. Received: \(4,\), \(4,\), \(2, 6, 6\)"),
    (lambda g: g["inputs"].__setitem__(0, [3, 6, 6]), r"graph node 0 \(Conv2D\): Conv2D: expected one sample of "
                                                     r"shape \(2, H, W\). Received: \(3, 6, 6\)"),
    (lambda g: g["outputs"].__setitem__(0, 4), r"graph node 10 \(Dense\): its output is read by nothing"),
    (lambda g: g["nodes"].pop(8), r"graph node 8 \(Concatenate\): reads its own output \(value 9\)"),  # dangling
    (lambda g: g.update(nodes=[]), r"graph: expected 1 to 10000 nodes. Received: 0"),
    (lambda g: g.update(nodes=[[0, [0]]] * 10_001), r"graph: expected 1 to 10000 nodes. Received: 10001"),
    (lambda g: g.update(outputs=[]), r"graph: expected 1 to 64 outputs"),
    (lambda g: g.update(inputs=[[2, 6, 6]] * 65), r"the graph must have 1 to 64 input shapes"),
    (lambda g: g["inputs"].__setitem__(0, [2, -6, 6]), r"graph input 0 has a bad shape: \[2, -6, 6\]"),
    (lambda g: g["inputs"].__setitem__(0, [2 ** 20, 2 ** 20]), r"graph input 0 has a bad shape"),
    (lambda g: g.update(extra=1), r"the graph entry must be an object with inputs, nodes and outputs"),
    (lambda g: g["nodes"].insert(0, g["nodes"].pop(3)), r"graph node 0 \(Conv2D\) input: a value id must be"),
])
def test_hostile_graphs(tmp_path, graph_file, mutate, pattern):
    header = header_of(graph_file)
    mutate(header["graph"])
    with pytest.raises(gn.GlassnetError, match=pattern):
        gn.load(write_zip(tmp_path / "hostile.glassnet", with_header(graph_file, header).items()))


def test_a_short_graph_header_fuzz_run_raises_only_glassnet_errors():
    """The graph-header mutations of tests/fuzzing.py (100,000 inputs for the record) on 1,000 inputs."""
    summary = fuzz(1000, seed=3, graph_headers=True)
    assert summary["failures"] == [] and summary["outcomes"]["GlassnetError"] > 500
