"""Crash-safe file writing: every file glassnet writes goes through ``atomic_write``.

The bytes land in a temporary file in the destination's directory, are flushed to
disk, and only then replace the destination with ``os.replace`` (atomic on POSIX and
Windows). An interrupted write leaves the old file intact and no partial file behind.
"""
import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Context manager yielding an open file; on success it becomes ``path``.

    >>> with atomic_write("results.json", "w") as out:
    ...     out.write("{}")
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_write(path, "w") as out:
        out.write(text)
    return Path(path)
