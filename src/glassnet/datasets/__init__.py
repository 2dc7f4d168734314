"""Datasets: each loader returns a ``Dataset`` with train/test arrays, labels, class names
and the preprocessing it applied."""
from ..errors import GlassnetError
from .base import Dataset
from .builtin import boston, digits, iris, mnist5k, xor
from .folder import image_folder
from .idx import read_idx, write_idx
from .remote import cache_dir, fashion_mnist, mnist

LOADERS = {"xor": xor, "iris": iris, "boston": boston, "digits": digits, "mnist5k": mnist5k,
           "fashion_mnist": fashion_mnist, "mnist": mnist}


def load(name, data_dir=None):
    """Load a dataset by name (see ``LOADERS``); ``data_dir`` for fashion_mnist / mnist."""
    if name not in LOADERS:
        raise GlassnetError(f"unknown dataset {name!r}; available: {', '.join(LOADERS)}")
    if name in ("fashion_mnist", "mnist") and data_dir is not None:
        return LOADERS[name](data_dir=data_dir)
    return LOADERS[name]()


__all__ = ["Dataset", "LOADERS", "load", "xor", "iris", "boston", "digits", "mnist5k", "fashion_mnist", "mnist",
           "image_folder", "read_idx", "write_idx", "cache_dir"]
