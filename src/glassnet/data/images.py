"""Turn an image file into the input a model was trained on.

For digit models this is the MNIST convention: grey, dark-on-light detected and
inverted (ink is bright), cropped to the ink, fitted into a ``box`` x ``box`` square
keeping the aspect ratio, centred by centre of mass in the ``size`` canvas, then
scaled like the training pixels (``ink * max_value * scale + offset``).
"""
import contextlib

import numpy as np

from ..errors import GlassnetError

MAX_PIXELS = 50_000_000  # larger images are refused before decoding


def pillow():
    try:
        from PIL import Image
    except ImportError:
        raise GlassnetError("reading images needs Pillow: pip install 'glassnet[image]'") from None
    return Image


@contextlib.contextmanager
def opened_image(source, max_pixels=MAX_PIXELS, name=None):
    """Open an image file (path or binary file object) with Pillow, pixels loaded.

    Images over ``max_pixels`` are refused from their header, before any pixel is decoded;
    empty ones too. Every way a file can fail to be an image becomes a ``GlassnetError``
    naming ``name`` (default: the path).
    """
    Image = pillow()
    name = source if name is None else name
    try:
        with Image.open(source) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise GlassnetError(f"{name}: image of {width}x{height} pixels exceeds the limit of "
                                    f"{max_pixels:,} pixels")
            if width == 0 or height == 0:
                raise GlassnetError(f"{name}: image of {width}x{height} pixels holds nothing")
            image.load()
            yield image
    except GlassnetError:
        raise
    except FileNotFoundError:
        raise GlassnetError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise GlassnetError(f"{name}: is a folder, not an image file") from None
    except Image.UnidentifiedImageError:
        raise GlassnetError(f"{name}: not a readable image (not in any image format Pillow knows)") from None
    except Image.DecompressionBombError as error:
        raise GlassnetError(f"{name}: refused as a decompression bomb ({error})") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as error:
        raise GlassnetError(f"{name}: not a readable image ({error.__class__.__name__}: {error})") from None


def on_white(image):
    """Transparent areas composited onto white paper (RGBA); other images unchanged."""
    Image = pillow()
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image


def read_grey(path, max_pixels=MAX_PIXELS, name=None):
    """Image file (a path or a binary file object) -> float array (H, W) in [0, 1].

    Transparent areas become white paper. ``name`` labels the image in error messages
    (default: the path).

    Accepts any mode Pillow reads: 1-bit, grey, 16-bit grey (scaled by 65535), palette
    (with or without transparency), RGB, RGBA, CMYK; an animation's first frame. Images
    over ``max_pixels`` are refused from their header, before any pixel is decoded.
    """
    with opened_image(path, max_pixels, name) as image:
        image = on_white(image)
        if image.mode.startswith("I;16"):
            return np.asarray(image, dtype=np.float64) / 65535.0
        if image.mode == "I":  # 32-bit integers: 16-bit data when any value exceeds 255
            pixels = np.asarray(image, dtype=np.float64)
            return np.clip(pixels / (65535.0 if pixels.max() > 255 else 255.0), 0.0, 1.0)
        return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def ink_of(grey, source="image"):
    """Bright-on-dark ink in [0, 1]: invert dark-on-light images (judged by the border), stretch contrast."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    ink = 1.0 - grey if background > 0.5 else grey.copy()
    ink_background = 1.0 - background if background > 0.5 else background
    peak = float(ink.max())
    if peak - ink_background < 1e-6:
        raise GlassnetError(f"{source}: the image is blank (one flat colour), no digit or object found")
    return np.clip((ink - ink_background) / (peak - ink_background), 0.0, 1.0)


def _resize(array, width, height):
    Image = pillow()
    image = Image.fromarray(array.astype(np.float32), mode="F")
    return np.asarray(image.resize((max(width, 1), max(height, 1)), Image.Resampling.LANCZOS), dtype=np.float64)


def fit_digit(ink, size, box, centre):
    """Crop to the ink, fit into box x box keeping the aspect ratio, place in a size x size canvas.

    centre="mass": shift so the centre of mass sits at the canvas centre (MNIST);
    centre="box": centre the bounding box (scikit-learn digits); "none": resize the whole image.
    """
    height, width = size
    if centre == "none":
        return np.clip(_resize(ink, width, height), 0.0, 1.0)
    rows, cols = np.flatnonzero((ink > 0.2).any(axis=1)), np.flatnonzero((ink > 0.2).any(axis=0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    factor = box / max(crop.shape)
    new_h, new_w = max(1, round(crop.shape[0] * factor)), max(1, round(crop.shape[1] * factor))
    digit = np.clip(_resize(crop, new_w, new_h), 0.0, 1.0)
    canvas = np.zeros((height, width))
    top, left = (height - new_h) // 2, (width - new_w) // 2
    if centre == "mass":
        total = digit.sum()
        mass_row = (digit.sum(axis=1) @ np.arange(new_h)) / total
        mass_col = (digit.sum(axis=0) @ np.arange(new_w)) / total
        top = int(np.clip(round((height - 1) / 2 - mass_row), 0, height - new_h))
        left = int(np.clip(round((width - 1) / 2 - mass_col), 0, width - new_w))
    canvas[top:top + new_h, left:left + new_w] = digit
    return canvas
