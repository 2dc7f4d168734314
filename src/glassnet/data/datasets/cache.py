"""Decode a folder of images once: a memory-mapped uint8 ``.npy`` in the data cache folder.

The cache file's name is a hash of everything that decides its content: each file's path,
size and modification time, and the decoding settings (size, channels, fit). A later run with
the same files and settings memory-maps it instead of decoding (every epoch reads the map, so a
folder larger than RAM trains in bounded memory); touching, adding or removing a file changes
the name. The pixels are written to a temporary file, flushed, and only then renamed into place
after the list of skipped files; a decode killed halfway leaves only a temporary file, which is
never read and is removed by the next decode of the same folder.
"""
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ...errors import GlassnetError
from ...atomic import _remove_stale_temporaries, write_text
from .remote import cache_dir

VERSION = 1


def cache_key(files, settings):
    """A hex digest of (path, size, mtime) for every file and the decoding ``settings``."""
    entries = []
    for path in files:
        stat = os.stat(path)
        entries.append([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
    text = json.dumps({"version": VERSION, "settings": settings, "files": entries}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def decoded_folder(files, settings, decode, folder=None, progress=True):
    """uint8 pixels (n_readable, C, H, W) for ``files``, decoded once and then memory-mapped.

    decode(path) -> (C, H, W) uint8, raising GlassnetError for an unreadable file.
    Returns (pixels, readable: list of indices into ``files``, skipped: list of [path, reason],
    decoded_now: bool).
    """
    folder = Path(folder or cache_dir() / "image-folders")
    folder.mkdir(parents=True, exist_ok=True)
    key = cache_key(files, settings)
    pixels_path, index_path = folder / f"{key}.npy", folder / f"{key}.json"
    if pixels_path.exists() and index_path.exists():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            pixels = np.load(pixels_path, mmap_mode="r")
            shape = (len(files), settings["channels"], *settings["size"])
            if pixels.dtype == np.uint8 and pixels.shape == shape and len(index["readable"]) <= len(files):
                readable = index["readable"]
                return pixels[:len(readable)], readable, index["skipped"], False
        except (OSError, ValueError, KeyError, TypeError):
            pass   # a damaged cache is decoded again below
    return _decode(files, settings, decode, folder, key, progress) + (True,)


def _decode(files, settings, decode, folder, key, progress):
    name = f"{key}.npy"
    _remove_stale_temporaries(folder, name)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(handle)
    try:
        shape = (len(files), settings["channels"], *settings["size"])
        pixels = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=shape)
        readable, skipped = [], []
        bar = _bar(len(files), progress)
        for index, path in enumerate(files):
            try:
                pixels[len(readable)] = decode(path)
                readable.append(index)
            except GlassnetError as error:
                skipped.append([str(path), str(error)])
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        pixels.flush()
        del pixels
        write_text(folder / f"{key}.json", json.dumps({"readable": readable, "skipped": skipped}))
        os.replace(temporary, folder / name)       # the cache exists only once it is whole
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    pixels = np.load(folder / name, mmap_mode="r")
    return pixels[:len(readable)], readable, skipped


def _bar(total, enabled):
    """A tqdm bar on a terminal while decoding, else None."""
    import sys
    if not (enabled and sys.stderr.isatty()):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="decoding images", unit="img", leave=False)
