"""A synthetic colour dataset for teaching and tests: shapes on busy backgrounds.

Five classes (circle, square, triangle, star, cross) in random colours, sizes, positions and
rotations, on a flat, graded or striped background of other colours, with sensor-like noise.
Each image is drawn four times larger with Pillow and reduced (smooth edges). The same seed
gives the same images. ``export_shapes`` writes them as an image folder, so the folder path
(decoding, cache, preprocessing record) is exercised on real PNG or JPEG files.
"""
from pathlib import Path

import numpy as np

from ...errors import GlassnetError
from ..images import pillow
from ..imageset import ImageSet
from ..preprocessing import resize_record
from .base import Dataset
from .folder import channel_statistics, stratified_split

SHAPE_CLASSES = ("circle", "square", "triangle", "star", "cross")
SUPERSAMPLE = 4
NOISE = 6.0          # standard deviation of the added noise, in 0..255 pixel units


def shape_images(n, size=32, seed=0):
    """(uint8 images (n, 3, size, size), labels (n,)): n images, classes in equal shares, shuffled."""
    if not (isinstance(n, int) and n >= len(SHAPE_CLASSES)) or not (isinstance(size, int) and 8 <= size <= 512):
        raise GlassnetError(f"shapes: n must be a whole number >= {len(SHAPE_CLASSES)} and size in [8, 512]. "
                            f"Received: n={n!r}, size={size!r}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPE_CLASSES))
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    for index, label in enumerate(labels):
        images[index] = draw_shape(SHAPE_CLASSES[label], size, rng).transpose(2, 0, 1)   # (H, W, 3) -> (3, H, W)
    return images, labels


def draw_shape(name, size, rng):
    """One (size, size, 3) uint8 picture of shape ``name``."""
    Image = pillow()
    from PIL import ImageDraw
    big = size * SUPERSAMPLE
    background, average = _background(big, rng)
    image = Image.fromarray(background)
    colour = _contrasting_colour(average, rng)
    radius = rng.uniform(0.28, 0.45) * big
    centre = rng.uniform(radius, big - radius, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    pen = ImageDraw.Draw(image)
    if name == "circle":
        pen.ellipse([centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius], fill=colour)
    else:
        pen.polygon([tuple(p) for p in _outline(name, centre, radius, angle)], fill=colour)
    small = np.asarray(image.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float64)
    noisy = small + rng.normal(0.0, NOISE, size=small.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _outline(name, centre, radius, angle):
    """Polygon vertices (k, 2) of a square, triangle, star or cross, rotated by ``angle``."""
    if name == "square":
        points = [(np.cos(a), np.sin(a)) for a in np.pi / 4 + np.arange(4) * np.pi / 2]
    elif name == "triangle":
        points = [(np.cos(a), np.sin(a)) for a in -np.pi / 2 + np.arange(3) * 2 * np.pi / 3]
    elif name == "star":
        points = [((1.0 if k % 2 == 0 else 0.45) * np.cos(a), (1.0 if k % 2 == 0 else 0.45) * np.sin(a))
                  for k, a in enumerate(-np.pi / 2 + np.arange(10) * np.pi / 5)]
    elif name == "cross":
        w = 0.32
        points = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w),
                  (-w, -w)]
    else:
        raise GlassnetError(f"shapes: unknown shape {name!r}; known: {', '.join(SHAPE_CLASSES)}")
    unit = np.array(points, dtype=np.float64)                                   # (k, 2) on the unit circle
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return centre + radius * unit @ rotation.T


def _background(big, rng):
    """(big, big, 3) uint8: a flat colour, a gradient between two colours, or stripes; and its mean colour."""
    first, second = rng.integers(0, 256, size=3), rng.integers(0, 256, size=3)
    style = rng.integers(3)
    if style == 0:
        mix = np.zeros((big, big))
    else:
        rows, cols = np.mgrid[0:big, 0:big] / big
        direction = rng.uniform(0, 2 * np.pi)
        along = rows * np.cos(direction) + cols * np.sin(direction)             # (big, big)
        if style == 1:
            mix = (along - along.min()) / max(along.max() - along.min(), 1e-9)
        else:
            period = rng.uniform(0.1, 0.3)
            mix = (np.floor(along / period) % 2).astype(np.float64)
    pixels = first * (1 - mix[..., None]) + second * mix[..., None]            # (big, big, 3)
    return pixels.astype(np.uint8), pixels.reshape(-1, 3).mean(axis=0)


def _contrasting_colour(average, rng, distance=110.0):
    """A random colour at least ``distance`` away (RGB) from the background's average."""
    for _ in range(100):
        colour = rng.integers(0, 256, size=3)
        if np.linalg.norm(colour - average) >= distance:
            return tuple(int(c) for c in colour)
    return tuple(int(c) for c in np.where(average > 127, 0, 255))


def shapes(n=3000, size=32, seed=0, test_fraction=0.2):
    """The shapes set in memory: ``n`` images (size x size, colour), a stratified split (seed 0).

    x: ``ImageSet`` (N, 3, size, size) normalised with the training split's per-channel mean and std,
    exactly as an exported folder of the same images is (``preprocessing`` kind ``resize``).
    """
    images, labels = shape_images(n, size, seed)
    train, test = stratified_split(labels, test_fraction, 0)
    mean, std = channel_statistics(images, train)
    record = resize_record((size, size), 3, "crop", mean, std)
    return Dataset("shapes", ImageSet(images, mean, std, train), labels[train], ImageSet(images, mean, std, test),
                   labels[test], class_names=list(SHAPE_CLASSES), preprocessing=record,
                   description=f"synthetic colour shapes {size}x{size}, seed {seed}; {len(train):,} train / "
                               f"{len(test):,} test")


def export_shapes(folder, n=3000, size=32, seed=0, image_format="png"):
    """Write the shapes set as ``folder/<class>/<class>-<index>.<png|jpg>``; returns the file count.

    Refuses a folder that already holds files (nothing is overwritten).
    """
    Image = pillow()
    folder = Path(folder)
    if image_format not in ("png", "jpeg"):
        raise GlassnetError(f"format must be 'png' or 'jpeg'. Received: {image_format!r}")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise GlassnetError(f"{folder} already exists and is not an empty folder; choose a new one")
    images, labels = shape_images(n, size, seed)
    suffix = "png" if image_format == "png" else "jpg"
    for name in SHAPE_CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for index, (pixels, label) in enumerate(zip(images, labels)):
        name = SHAPE_CLASSES[label]
        picture = Image.fromarray(pixels.transpose(1, 2, 0))                     # (3, H, W) -> (H, W, 3)
        options = {"quality": 92} if image_format == "jpeg" else {}
        picture.save(folder / name / f"{name}-{index:05d}.{suffix}", format=image_format.upper(), **options)
    return len(images)
