"""How an image file becomes a model's input: a named record, saved in the model file.

Two kinds:

- ``digit``: the MNIST / scikit-learn digits convention (grey, ink detected, cropped, fitted and
  centred; ``images.py``). Files saved before the record was named say ``"image"``: the same.
- ``resize``: any picture. RGB or grey (``channels`` 3 or 1), fitted to ``size`` (H, W) keeping
  its aspect ratio and either centre-cropped (``fit="crop"``) or padded with black
  (``fit="pad"``), stored as uint8, then ``(pixels / 255 - mean[c]) / std[c]`` with the
  per-channel mean and std of the training split.

``image_to_input`` applies a record to a file; ``predict``, ``inspect``, ``explain`` and the
studio all go through it, so a photo is prepared exactly as the training images were.
"""
import numpy as np

from ..errors import GlassnetError
from .images import MAX_PIXELS, fit_digit, ink_of, on_white, opened_image, pillow, read_grey
from .imageset import normalise

FITS = ("crop", "pad")


def resize_record(size, channels=3, fit="crop", mean=None, std=None):
    """A ``resize`` record; ``mean``/``std`` (C,) are filled in from the training split."""
    height, width = size
    channels = int(channels)
    if channels not in (1, 3):
        raise GlassnetError(f"channels must be 3 (colour) or 1 (grey). Received: channels={channels!r}")
    if fit not in FITS:
        raise GlassnetError(f"fit must be 'crop' or 'pad'. Received: fit={fit!r}")
    if not (isinstance(height, int) and isinstance(width, int) and 4 <= height <= 1024 and 4 <= width <= 1024):
        raise GlassnetError(f"size must be two whole numbers in [4, 1024]. Received: size={size!r}")
    return {"kind": "resize", "size": [height, width], "channels": channels, "fit": fit,
            "mean": list(mean) if mean is not None else [0.0] * channels,
            "std": list(std) if std is not None else [1.0] * channels}


def kind_of(record):
    """'digit', 'resize', or None for records that do not describe images."""
    kind = (record or {}).get("kind")
    return {"image": "digit", "digit": "digit", "resize": "resize"}.get(kind)


def decode_resized(source, size, channels, fit="crop", max_pixels=MAX_PIXELS, name=None):
    """Image file (path or binary file object) -> (uint8 pixels (C, H, W), note or "").

    Transparent areas become white; 16-bit images keep their top 8 bits; palette, CMYK and
    1-bit images are converted. ``note`` says when a grey image was made colour or the reverse.
    """
    Image = pillow()
    from PIL import ImageOps
    name = str(source) if name is None else name
    with opened_image(source, max_pixels, name) as image:
        colour = image.mode not in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") and not (
            image.mode == "P" and _palette_is_grey(image))
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):     # 16/32-bit: keep the top 8 bits' worth
            values = np.asarray(image, dtype=np.float64)
            top = 65535.0 if values.max() > 255 else 255.0
            image = Image.fromarray(np.clip(np.round(values / top * 255), 0, 255).astype(np.uint8), mode="L")
        image = on_white(image).convert("RGB" if channels == 3 else "L")
        target = (size[1], size[0])                                           # Pillow speaks (W, H)
        if fit == "crop":
            image = ImageOps.fit(image, target, method=Image.Resampling.BICUBIC)
        else:
            image = ImageOps.pad(image, target, method=Image.Resampling.BICUBIC, color=0)
        pixels = np.asarray(image, dtype=np.uint8)
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)   # (H, W, C) -> (C, H, W)
    note = ""
    if channels == 3 and not colour:
        note = f"{name}: a grey image, made colour (R = G = B) for this colour model"
    elif channels == 1 and colour:
        note = f"{name}: a colour image, made grey for this grey model"
    return np.ascontiguousarray(pixels), note


def _palette_is_grey(image):
    palette = np.asarray(image.convert("RGB"))
    return bool(np.all(palette[..., 0] == palette[..., 1]) and np.all(palette[..., 1] == palette[..., 2]))


def image_to_input(source, record, max_pixels=MAX_PIXELS, name=None):
    """Image file -> (model input (C, H, W) following ``record``, note or "")."""
    kind = kind_of(record)
    name = str(source) if name is None else name
    if kind == "digit":
        ink = ink_of(read_grey(source, max_pixels, name), name)
        canvas = fit_digit(ink, tuple(record["size"]), record["box"], record["centre"])
        return (canvas * record["max_value"] * record["scale"] + record["offset"])[None, :, :], ""
    if kind == "resize":
        pixels, note = decode_resized(source, tuple(record["size"]), record["channels"], record.get("fit", "crop"),
                                      max_pixels, name)
        return normalise(pixels, record["mean"], record["std"], np.float32), note
    raise GlassnetError("this model was not trained on images, it cannot predict on an image file")


def load_image(path, preprocessing, max_pixels=MAX_PIXELS, name=None):
    """Image file (path or binary file object) -> model input (C, H, W) following ``preprocessing``
    (see ``image_to_input``, which also says when it converted colour)."""
    return image_to_input(path, preprocessing, max_pixels, name)[0]
