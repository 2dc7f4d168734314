"""The IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed).

Layout: 2 zero bytes, a type code (0x08 = uint8, ...), the number of dimensions,
then each dimension as a big-endian uint32, then the data in C order.
"""
import gzip
import struct

import numpy as np

from ...errors import GlassnetError
from ...atomic import atomic_write

TYPE_CODES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_ITEMS = 2 ** 31  # refuse headers that promise absurd sizes before reading data


def read_idx(path):
    """Read an IDX file (plain or .gz) into a NumPy array; bad files raise GlassnetError."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise GlassnetError(f"cannot read IDX file {path}: {error}") from None
    return parse_idx(data, str(path))


def parse_idx(data, name="<bytes>"):
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in TYPE_CODES:
        raise GlassnetError(f"{name} is not an IDX file (bad magic number {data[:4]!r})")
    dtype, ndim = np.dtype(TYPE_CODES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise GlassnetError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(shape, dtype=object))
    if count > MAX_ITEMS or len(data) - header != count * dtype.itemsize:
        raise GlassnetError(f"{name}: IDX header promises shape {shape} ({count * dtype.itemsize} bytes) "
                            f"but the file holds {len(data) - header} data bytes")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Write ``array`` (uint8) as an IDX file, gzip-compressed when the name ends in .gz."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    if str(path).endswith(".gz"):
        payload = gzip.compress(payload)
    with atomic_write(path) as handle:
        handle.write(payload)
