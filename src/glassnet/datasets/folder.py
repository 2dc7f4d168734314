"""Image-folder datasets: one sub-folder per class, images inside."""
from pathlib import Path

import numpy as np

from ..errors import GlassnetError
from ..images import load_image
from .base import Dataset, seeded_split
from .builtin import mnist_preprocessing

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def image_folder(root, preprocessing=None, test_fraction=0.2, seed=0):
    """Load ``root/<class name>/<image>`` files; classes sorted by name. Each image goes through
    ``preprocessing`` (default: the MNIST convention, 28x28); split seeded at ``test_fraction``."""
    root = Path(root)
    if not root.is_dir():
        raise GlassnetError(f"image folder {root} does not exist or is not a folder")
    preprocessing = preprocessing or mnist_preprocessing()
    class_dirs = sorted(path for path in root.iterdir() if path.is_dir())
    images, labels = [], []
    for label, folder in enumerate(class_dirs):
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                images.append(load_image(path, preprocessing))
                labels.append(label)
    if len(class_dirs) < 2 or not images:
        raise GlassnetError(f"image folder {root}: expected one sub-folder per class (at least 2) holding "
                            f"images, found {len(class_dirs)} class folder(s) and {len(images)} image(s)")
    x, y = np.stack(images), np.array(labels)
    train, test = seeded_split(len(y), test_fraction, seed)
    return Dataset(root.name, x[train], y[train], x[test], y[test], class_names=[d.name for d in class_dirs],
                   preprocessing=preprocessing, description=f"image folder {root}")
