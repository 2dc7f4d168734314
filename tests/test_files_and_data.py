"""Model files, IDX files, the MNIST download (from a local server) and the loaders."""
import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest

import glassnet as gn
from glassnet.data.datasets import idx


def small_model():
    model = gn.Sequential([gn.Conv2D(1, 2, 3, padding=1, rng=0), gn.BatchNorm2D(2), gn.ReLU(), gn.MaxPool2D(2),
                           gn.Dropout(0.1, rng=0), gn.Flatten(), gn.Dense(2 * 3 * 3, 4, rng=1), gn.Softmax()])
    model.metadata = {"class_names": ["a", "b", "c", "d"], "input_shape": [1, 6, 6]}
    model.fit(np.random.default_rng(0).standard_normal((8, 1, 6, 6)), np.arange(8) % 4, epochs=1, batch_size=4,
              loss="cross_entropy", verbose=False)
    return model


def test_round_trip_is_exact(tmp_path):
    model = small_model()
    path = gn.save(model, tmp_path / "m.glassnet")
    loaded = gn.load(path)
    assert loaded.metadata == model.metadata
    for (name, layer, key), (_, other, _) in zip(model.named_parameters(), loaded.named_parameters()):
        np.testing.assert_array_equal(layer.params[key], other.params[key])
    np.testing.assert_array_equal(loaded[1].buffers["running_var"], model[1].buffers["running_var"])
    x = np.random.default_rng(1).standard_normal((3, 1, 6, 6))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [f.name for f in tmp_path.iterdir()] == ["m.glassnet"]  # no temporary left behind


def test_a_pickle_payload_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    import pickle

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.glassnet"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="not a glassnet model file"):
        gn.load(path)
    np.savez(tmp_path / "obj.npz", __glassnet__=np.array([Payload()], dtype=object))
    with pytest.raises(ValueError, match="object, expected"):
        gn.load(tmp_path / "obj.npz")
    assert not marker.exists()


def rewrite_header(path, mutate):
    import json
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(arrays["__glassnet__"].tobytes())
    mutate(header)
    arrays["__glassnet__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda h: h["layers"][0].update(type="os.system"), r"type 'os.system', which is not a glassnet layer"),
    (lambda h: h["layers"][0].update(type="Unknown"), r"not a glassnet layer"),
    (lambda h: h.update(version=99), r"version 99"),
    (lambda h: h["layers"][0]["config"].update(out_channels=3), r"array 0.weight has shape"),
])
def test_hostile_or_inconsistent_headers(tmp_path, mutate, pattern):
    path = gn.save(small_model(), tmp_path / "m.npz")
    rewrite_header(path, mutate)
    with pytest.raises(ValueError, match=pattern):
        gn.load(path)


def test_truncated_and_foreign_files(tmp_path):
    path = gn.save(small_model(), tmp_path / "m.glassnet")
    data = path.read_bytes()
    (tmp_path / "cut").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="glassnet model file|damaged"):
        gn.load(tmp_path / "cut")
    (tmp_path / "text").write_text("hello")
    with pytest.raises(ValueError, match="not a glassnet model file"):
        gn.load(tmp_path / "text")
    with pytest.raises(ValueError, match="no such model file"):
        gn.load(tmp_path / "missing")


def test_nan_weights_are_rejected(tmp_path):
    model = small_model()
    path = gn.save(model, tmp_path / "m.glassnet")
    before = path.read_bytes()
    model[0].params["weight"][0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        gn.save(model, path)
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]
    # a file holding NaN written by other means is refused on load
    from glassnet.archive import write_archive
    from glassnet.files.serialization import FORMAT, VERSION
    arrays = {name: value for name, value in
              ((f"{i}.{k}", v) for i, layer in enumerate(model.layers) for k, v in {**layer.params,
                                                                                    **layer.buffers}.items())}
    write_archive(path, {"format": FORMAT, "version": VERSION, **model.get_config()}, arrays)
    with pytest.raises(ValueError, match="NaN or Inf"):
        gn.load(path)


def test_idx_round_trip_and_bad_files(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    idx.write_idx(tmp_path / "a.gz", images)
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "a.gz"), images)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        idx.read_idx(tmp_path / "bad")
    idx.write_idx(tmp_path / "short", images)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-5])
    with pytest.raises(ValueError, match="promises shape"):
        idx.read_idx(tmp_path / "short")


@pytest.fixture
def mnist_server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving four small MNIST-format IDX files."""
    served = tmp_path / "served"
    served.mkdir()
    rng = np.random.default_rng(0)
    idx.write_idx(served / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (12, 28, 28)))
    idx.write_idx(served / "train-labels-idx1-ubyte.gz", np.arange(12) % 10)
    idx.write_idx(served / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (5, 28, 28)))
    idx.write_idx(served / "t10k-labels-idx1-ubyte.gz", np.arange(5))
    sums = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in served.iterdir()}
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", sums, requests
    server.shutdown()
    server.server_close()


def test_mnist_download_checksum_and_cache(tmp_path, mnist_server):
    url, sums, requests = mnist_server
    cache = tmp_path / "cache"
    data = gn.datasets.mnist(base_url=url, data_dir=cache, checksums=sums)
    assert data.x_train.shape == (12, 1, 28, 28) and data.x_test.shape == (5, 1, 28, 28)
    assert data.x_train.min() >= -0.5 and data.x_train.max() <= 0.5
    assert list(data.y_test) == [0, 1, 2, 3, 4]
    assert len(requests) == 4
    gn.datasets.mnist(base_url=url, data_dir=cache, checksums=sums)
    assert len(requests) == 4  # second load served from the cache


def test_mnist_checksum_failure_leaves_nothing(tmp_path, mnist_server):
    url, sums, _ = mnist_server
    wrong = dict(sums, **{"train-images-idx3-ubyte.gz": "0" * 32})
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum mismatch"):
        gn.datasets.mnist(base_url=url, data_dir=cache, checksums=wrong)
    assert not (cache / "train-images-idx3-ubyte.gz").exists()
    assert not any(p.name.endswith(".part") for p in cache.iterdir())


@pytest.mark.parametrize("name, shape, classes", [
    ("digits", (1, 8, 8), 10), ("iris", (4,), 3), ("mnist5k", (1, 28, 28), 10)])
def test_classification_loaders(name, shape, classes):
    data = gn.datasets.load(name)
    assert data.input_shape == shape
    assert data.x_train.dtype == np.float64 and data.y_train.dtype.kind == "i"
    assert set(np.unique(data.y_train)) == set(range(classes)) == set(np.unique(data.y_test))
    assert len(data.class_names) == classes


def test_mnist5k_split_is_4000_and_1000():
    data = gn.datasets.mnist5k()
    assert len(data.y_train) == 4000 and len(data.y_test) == 1000
    assert np.all(np.bincount(data.y_test) == 100)


def test_boston_is_regression():
    data = gn.datasets.boston()
    assert data.task == "regression" and data.x_train.shape[1] == 13 and data.y_train.shape[1] == 1
