"""Crash-safe file writing: every file glassnet writes goes through ``atomic_write``.

The bytes land in a temporary file in the destination's directory, are flushed to
disk, and only then replace the destination with ``os.replace`` (atomic on POSIX and
Windows). An interrupted write leaves the old file intact and no partial file behind;
a process killed outright (SIGKILL) cannot clean up, so the next successful write to
the same path removes the temporary files such a kill left.
"""
import contextlib
import errno
import glob
import os
import tempfile
from pathlib import Path

from .errors import GlassnetError


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Context manager yielding an open file; on success it becomes ``path``.

    >>> with atomic_write("results.json", "w") as out:
    ...     _ = out.write("{}")
    >>> open("results.json").read()
    '{}'
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    with _naming(path):
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, _permissions_for(path))
        with os.fdopen(handle, mode, encoding=None if "b" in mode else "utf-8") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        with _naming(path):
            os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    _remove_stale_temporaries(folder, path.name)


@contextlib.contextmanager
def _naming(path):
    """Re-raise a system error as the same kind naming ``path``, the user's file, not the temporary one."""
    try:
        yield
    except OSError as error:
        raise type(error)(error.errno, error.strerror, str(path)) from None


def _permissions_for(path):
    """The existing file's permissions, else what a plain open() would give (0666 minus the umask)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _remove_stale_temporaries(folder, name):
    """Temporary files of earlier writes to the same path that were killed before cleaning up."""
    for stale in folder.glob(f".{glob.escape(name)}.*.tmp"):
        try:
            stale.unlink()
        except OSError:
            pass


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_write(path, "w") as out:
        out.write(text)
    return Path(path)


def writable_file(path, example="model.glassnet"):
    """Check, before any work, that a file can be written at ``path``; returns ``Path(path)``.

    A missing parent folder is created; a folder at ``path`` itself, or a parent that cannot be
    made or written to, raises ``GlassnetError`` naming ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise GlassnetError(f"{path} is a folder; give a file name (e.g. {path / example})")
    _usable_folder(path.parent if str(path.parent) else Path("."), path)
    return path


def writable_folder(path):
    """Check, before any work, that files can be written inside folder ``path`` (made if missing)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GlassnetError(f"{path} is a file, not a folder; give a folder for the output")
    _usable_folder(path, path)
    return path


def _usable_folder(folder, named):
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GlassnetError(f"cannot write {named}: the folder {folder} cannot be made ({error.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise GlassnetError(f"cannot write {named}: the folder {folder} is not writable")
