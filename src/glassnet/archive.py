"""The container behind model files and checkpoints: a zip of ``.npy`` members, never a pickle.

Members: ``__glassnet__.npy`` (UTF-8 JSON as a uint8 vector) and one member per named
array. Reading is defensive, for files from anywhere:

- size limits (file, header, every member, their total) are checked from the zip
  directory *before* anything is decompressed or allocated;
- each array is read only under the shape and dtype the caller expects: its ``.npy``
  preamble is parsed first, then exactly ``prod(shape) * itemsize`` bytes are read,
  so object arrays, overflowing shapes and oversized members are refused unread;
- duplicate member names, trailing bytes, truncation and CRC errors are refused;
- every problem raises ``GlassnetError`` naming the file and what was wrong.
"""
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from .errors import GlassnetError
from .atomic import atomic_write

HEADER = "__glassnet__"
MAX_HEADER_BYTES = 1 << 20          # JSON header
MAX_FILE_BYTES = 2 << 30            # whole file, and the sum of uncompressed members
MAX_MEMBERS = 10_000
NPY_PREAMBLE_BYTES = 4096           # an .npy member's magic + header, generously


def json_ready(value):
    """``value`` with NumPy arrays and scalars turned into lists and Python numbers, for a JSON header."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def refuse_non_finite(arrays, owner):
    """Raise, naming the first array (``owner`` first), if any of ``arrays`` (name -> host array) holds NaN/Inf."""
    for name, value in arrays.items():
        if not np.all(np.isfinite(value)):
            raise GlassnetError(f"{owner}: {name} holds NaN or Inf values; refusing to write them")


def write_archive(path, header, arrays):
    """Write ``header`` (JSON-serialisable dict) and ``arrays`` (name -> ndarray) atomically."""
    payload = json.dumps(header).encode("utf-8")
    with atomic_write(path) as out:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, value in [(HEADER, np.frombuffer(payload, dtype=np.uint8))] + list(arrays.items()):
                with archive.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)
    return Path(path)


class ArchiveReader:
    """Open a glassnet archive for checked reading; use as a context manager.

    >>> gn.save(gn.Sequential([gn.Conv2D(1, 8, 3, rng=0)]), "model.glassnet")
    PosixPath('model.glassnet')
    >>> with ArchiveReader("model.glassnet", "model file") as archive:
    ...     weight = archive.array("0.weight", (8, 1, 3, 3), np.float64)
    >>> weight.shape
    (8, 1, 3, 3)
    """

    def __init__(self, path, kind):
        self.path = Path(path)
        self.kind = kind
        if not self.path.is_file():
            raise GlassnetError(f"{self.path}: no such {kind}")
        self.size = self.path.stat().st_size
        if self.size > MAX_FILE_BYTES:
            raise GlassnetError(f"{self.path}: file of {self.size:,} bytes exceeds the {kind} limit "
                                f"of {MAX_FILE_BYTES:,}")
        if not zipfile.is_zipfile(self.path):
            raise GlassnetError(f"{self.path}: not a glassnet {kind} (not a zip/.npz archive)")
        try:
            self.zip = zipfile.ZipFile(self.path)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as error:
            raise GlassnetError(f"{self.path}: damaged {kind} ({error})") from None
        names = [info.filename for info in infos]
        if len(names) > MAX_MEMBERS or len(set(names)) != len(names):
            self.zip.close()
            raise GlassnetError(f"{self.path}: damaged {kind}: {len(names)} members, "
                                f"{len(names) - len(set(names))} duplicated")
        total = sum(info.file_size for info in infos)
        if total > MAX_FILE_BYTES:
            self.zip.close()
            raise GlassnetError(f"{self.path}: members would decompress to {total:,} bytes, over the limit "
                                f"of {MAX_FILE_BYTES:,}")
        if any(info.flag_bits & 0x1 for info in infos):
            self.zip.close()
            raise GlassnetError(f"{self.path}: not a glassnet {kind} (encrypted members)")
        self.members = {name[:-4]: info for name, info in zip(names, infos) if name.endswith(".npy")}
        if len(self.members) != len(names):
            self.zip.close()
            raise GlassnetError(f"{self.path}: not a glassnet {kind} (holds members other than .npy arrays)")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.zip.close()

    def names(self):
        return set(self.members) - {HEADER}

    def header(self, expected_format):
        """The JSON header as a dict, checked to be of ``expected_format``."""
        if HEADER not in self.members:
            raise GlassnetError(f"{self.path}: not a glassnet {self.kind} (no {HEADER} header)")
        if self.members[HEADER].file_size > MAX_HEADER_BYTES + NPY_PREAMBLE_BYTES:
            raise GlassnetError(f"{self.path}: header of {self.members[HEADER].file_size:,} bytes exceeds "
                                f"{MAX_HEADER_BYTES:,}")
        raw = self._read(HEADER, None, np.dtype(np.uint8), MAX_HEADER_BYTES)
        try:
            header = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise GlassnetError(f"{self.path}: damaged header ({error.__class__.__name__})") from None
        if not isinstance(header, dict) or header.get("format") != expected_format:
            raise GlassnetError(f"{self.path}: not a glassnet {self.kind} (format "
                                f"{header.get('format') if isinstance(header, dict) else None!r}, "
                                f"expected {expected_format!r})")
        return header

    def array(self, name, shape, dtype, finite=True):
        """Member ``name`` as an array of exactly ``shape`` and ``dtype`` (NaN/Inf refused if ``finite``)."""
        if name not in self.members:
            raise GlassnetError(f"{self.path}: missing array {name}")
        value = self._read(name, tuple(shape), np.dtype(dtype), None)
        if finite and value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise GlassnetError(f"{self.path}: array {name} holds NaN or Inf values")
        return value

    def arrays_like(self, expected, other_members=()):
        """``{name: array}`` for every entry of ``expected`` (name -> array of the wanted shape and dtype),
        each read as ``array`` reads; a member neither expected nor in ``other_members`` is refused."""
        extra = self.names() - set(expected) - set(other_members)
        if extra:
            raise GlassnetError(f"{self.path}: unexpected arrays {sorted(extra)[:5]}")
        return {name: self.array(name, like.shape, like.dtype) for name, like in expected.items()}

    def _read(self, name, shape, dtype, max_items):
        """Parse the .npy preamble, check it, then read exactly the bytes it announces."""
        info = self.members[name]
        if shape is not None:
            expected = math.prod(shape) * dtype.itemsize
            if info.file_size > expected + NPY_PREAMBLE_BYTES:
                raise GlassnetError(f"{self.path}: array {name} takes {info.file_size:,} bytes, expected "
                                    f"{expected:,} for shape {shape} {dtype}")
        try:
            with self.zip.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version not in ((1, 0), (2, 0), (3, 0)):
                    raise ValueError(f"unknown .npy version {version}")
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                found_shape, fortran, found_dtype = read_header(member, max_header_size=NPY_PREAMBLE_BYTES)
                if found_dtype != dtype or fortran or (shape is not None and found_shape != shape):
                    raise GlassnetError(f"{self.path}: array {name} has shape {found_shape} {found_dtype}"
                                        f"{' (Fortran order)' if fortran else ''}, expected "
                                        f"{shape if shape is not None else '(n,)'} {dtype}")
                if shape is None and (len(found_shape) != 1 or found_shape[0] > max_items):
                    raise GlassnetError(f"{self.path}: array {name} has shape {found_shape}, expected a vector "
                                        f"of at most {max_items:,} items")
                count = math.prod(found_shape)
                data = member.read(count * dtype.itemsize)
                if len(data) != count * dtype.itemsize:
                    raise GlassnetError(f"{self.path}: array {name} is truncated")
                if member.read(1):
                    raise GlassnetError(f"{self.path}: array {name} has trailing bytes")
        except GlassnetError:
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, SyntaxError, TypeError,
                MemoryError, RecursionError, NotImplementedError, RuntimeError) as error:
            raise GlassnetError(f"{self.path}: damaged array {name} ({error.__class__.__name__}: {error})") from None
        return np.frombuffer(data, dtype=dtype).reshape(found_shape).copy()
