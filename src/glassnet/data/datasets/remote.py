"""MNIST (downloaded, checksummed, cached) and Fashion-MNIST (Debian's package or a folder)."""
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from ...errors import GlassnetError
from .base import Dataset, image_scaling
from .builtin import mnist_preprocessing
from .idx import read_idx

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# MD5 sums of the four files as published with MNIST (and used by torchvision)
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def cache_dir():
    """Where downloads go: $GLASSNET_DATA_DIR, else ~/.cache/glassnet."""
    return Path(os.environ.get("GLASSNET_DATA_DIR") or Path.home() / ".cache" / "glassnet")


def md5_of(path):
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url, destination, md5, timeout=60):
    """Download ``url`` to ``destination`` unless a file with the right checksum is already there.

    The download lands in a temporary file beside the destination and is moved into place
    only after its checksum matched, so a failed or corrupted download leaves nothing behind.
    """
    destination = Path(destination)
    if destination.exists() and md5_of(destination) == md5:
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=destination.name, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        actual = md5_of(temporary)
        if actual != md5:
            raise GlassnetError(f"checksum mismatch for {url}: expected md5 {md5}, received {actual}")
        os.replace(temporary, destination)
    except (urllib.error.URLError, OSError) as error:
        raise GlassnetError(f"cannot download {url}: {error}") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return destination


def mnist(base_url=None, data_dir=None, checksums=None):
    """Full MNIST, 60,000 train / 10,000 test, downloaded once into ``data_dir`` (default
    ``cache_dir()/mnist``) and checked against MD5 sums. Pixels to [-0.5, 0.5]."""
    base_url = base_url or os.environ.get("GLASSNET_MNIST_URL") or MNIST_URL
    folder = Path(data_dir) if data_dir else cache_dir() / "mnist"
    checksums = checksums or MNIST_MD5
    names = [name + ".gz" for name in IDX_NAMES]  # train images, train labels, test images, test labels
    missing = [name for name in names if name not in checksums]
    if missing:
        raise GlassnetError(f"mnist: no checksum given for {missing}")
    paths = [fetch(base_url.rstrip("/") + "/" + name, folder / name, checksums[name]) for name in names]
    return _idx_dataset("mnist", paths, [str(d) for d in range(10)], mnist_preprocessing(), "MNIST")


def find_idx_files(folder):
    """The four IDX files in ``folder`` (each name plain or .gz), or None if any is missing."""
    found = []
    for name in IDX_NAMES:
        candidates = [Path(folder) / (name + suffix) for suffix in (".gz", "")]
        existing = [path for path in candidates if path.is_file()]
        if not existing:
            return None
        found.append(existing[0])
    return found


def fashion_mnist(data_dir=None):
    """Fashion-MNIST, 60,000 train / 10,000 test, from ``data_dir`` or Debian's
    dataset-fashion-mnist (/usr/share/datasets/fashion-mnist). Pixels to [-0.5, 0.5]."""
    folders = [data_dir] if data_dir else list(FASHION_DIRS)
    for folder in folders:
        paths = find_idx_files(folder)
        if paths:
            preprocessing = {**mnist_preprocessing(), "centre": "none", "box": 28}
            return _idx_dataset("fashion_mnist", paths, FASHION_CLASSES, preprocessing, "Fashion-MNIST")
    raise GlassnetError("Fashion-MNIST IDX files not found in " + ", ".join(map(str, folders))
                        + ": apt-get install dataset-fashion-mnist, or pass --data-dir")


def _idx_dataset(name, paths, class_names, preprocessing, title):
    train_images, train_labels, test_images, test_labels = (read_idx(path) for path in paths)
    for images, labels in ((train_images, train_labels), (test_images, test_labels)):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise GlassnetError(f"{title}: image and label files do not match: {images.shape} vs {labels.shape}")
    scale = {"scale": preprocessing["scale"], "offset": preprocessing["offset"]}
    return Dataset(name, image_scaling(train_images, **scale), train_labels.astype(np.int64),
                   image_scaling(test_images, **scale), test_labels.astype(np.int64),
                   class_names=class_names, preprocessing=preprocessing,
                   description=f"{title}, {len(train_labels):,} train / {len(test_labels):,} test")

