"""Images kept as bytes and normalised batch by batch.

A folder of colour images is decoded once into uint8 pixels (in memory or a memory-mapped
cache file, ``datasets/cache.py``); ``ImageSet`` hands ``fit``, ``evaluate`` and ``predict``
float batches ``(pixels / 255 - mean[c]) / std[c]`` only for the samples asked for, so a set
larger than memory trains in bounded memory. ``normalise`` is the one formula; a photo given to
``predict`` goes through the very same function (``preprocessing.py``).
"""
import numpy as np


def normalise(pixels, mean, std, dtype=np.float32):
    """uint8 pixels (..., C, H, W) -> ``(pixels / 255 - mean[c]) / std[c]`` as ``dtype``."""
    mean = np.asarray(mean, dtype=np.float64)[:, None, None]    # (C, 1, 1): one value per channel
    std = np.asarray(std, dtype=np.float64)[:, None, None]
    return ((pixels / 255.0 - mean) / std).astype(dtype)


class ImageSet:
    """(N, C, H, W) images stored as uint8, normalised on access.

    pixels : uint8 array (M, C, H, W), in memory or a ``np.memmap``
    indices : which of the M rows belong to this set (e.g. the training split), or None for all
    mean, std : per-channel statistics (C,) of the training split, in [0, 1] pixel units

    ``images[batch]`` (an int array, a slice or an int) gives float32 arrays; ``np.asarray(images)``
    gives the whole set at once (for small sets and plots).
    """

    def __init__(self, pixels, mean, std, indices=None):
        self.pixels = pixels
        self.indices = np.arange(len(pixels)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.dtype = np.dtype(np.float32)

    @property
    def shape(self):
        return (len(self.indices),) + tuple(self.pixels.shape[1:])

    @property
    def ndim(self):
        return self.pixels.ndim

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, key):
        rows = self.indices[key]
        return normalise(self.pixels[rows], self.mean, self.std, self.dtype)

    def __array__(self, dtype=None, copy=None):
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def uint8(self, key=slice(None)):
        """The stored pixels of ``key`` (for pictures and exports)."""
        return np.asarray(self.pixels[self.indices[key]])

    def __repr__(self):
        return f"ImageSet(shape={self.shape}, mean={self.mean}, std={self.std})"
