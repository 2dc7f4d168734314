"""The Dataset record every loader returns, and the splitting/scaling helpers they share."""
from dataclasses import dataclass, field

import numpy as np

from ...errors import GlassnetError


@dataclass
class Dataset:
    """Train/test arrays plus what was done to them.

    x_train, x_test : float arrays, (N, C, H, W) for images or (N, features)
    y_train, y_test : int labels (N,) for classification, float (N, 1) for regression
    task : "classification" or "regression"
    class_names : list of str (classification)
    preprocessing : dict describing how raw inputs became x (saved with a model so that
        ``predict`` on a new image or row applies the same steps)
    notes : lines a user should read (e.g. which unreadable files were skipped)
    """
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str = "classification"
    class_names: list = field(default_factory=list)
    preprocessing: dict = field(default_factory=dict)
    description: str = ""
    notes: list = field(default_factory=list)

    @property
    def input_shape(self):
        return tuple(self.x_train.shape[1:])

    @property
    def num_outputs(self):
        return len(self.class_names) if self.task == "classification" else self.y_train.shape[1]


def missing_extra(package, extra, dataset):
    return GlassnetError(
        f"dataset '{dataset}' needs the optional package {package}: pip install 'glassnet[{extra}]'")


def seeded_split(n, test_fraction, seed):
    """Indices (train, test) from a permutation drawn with ``seed``: a fixed, documented split."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def standardize(x_train, x_test):
    """Scale features by the training mean and std; returns scaled arrays and the statistics."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (x_train - mean) / std, (x_test - mean) / std, {"mean": mean.tolist(), "std": std.tolist()}


def image_scaling(images, scale, offset):
    """uint8-range images (N, H, W) -> float64 (N, 1, H, W) as ``pixel * scale + offset``."""
    if images.ndim != 3:
        raise GlassnetError(f"expected images of shape (N, H, W), received shape {images.shape}")
    return (images.astype(np.float64) * scale + offset)[:, None, :, :]
