"""Keep freed memory for the next training step instead of handing it back to the system (glibc).

A training step allocates the same large arrays every time (im2col columns, activations,
gradients: tens of MB per step) and frees them again. glibc's malloc hands large freed blocks
back to the system, so the next step gets fresh pages, and the kernel faults each one in and
zeroes it on first write. Measured on this machine (float32, ms per training step, page faults
per step): simple b100 15.9 ms with 3,700 faults, lenet b256 63 ms with 6,000 (the batch split's
threads free and allocate the most); with a pad kept, 0 faults after the first step.

``keep_freed_memory()`` asks malloc to keep a pad of free memory at the top of its heaps
(``mallopt(M_TOP_PAD)``) and to serve blocks under 32 MiB from its heaps rather than map them
directly (``M_MMAP_THRESHOLD``): large arrays then come from memory the process already holds. The pad
is address space until a step writes into it; the cost is that up to the pad's size of freed
memory stays with the process instead of going back to the system. ``GLASSNET_MALLOC_PAD_MB``
sets the pad (default 256; 0 leaves malloc alone). On other C libraries (macOS, musl, Windows)
this does nothing. ``Sequential.forward`` calls it once, the first time a model runs.
"""
import ctypes
import os

M_TOP_PAD, M_MMAP_THRESHOLD = -2, -3     # glibc's mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD = 32 * 2**20              # the largest glibc accepts on 64-bit (HEAP_MAX_SIZE / 2)
DEFAULT_PAD_MB = 256
_done = False


def pad_bytes():
    """The pad asked for: ``GLASSNET_MALLOC_PAD_MB`` MiB (default 256), 0 when it is 0 or not a number."""
    setting = os.environ.get("GLASSNET_MALLOC_PAD_MB", str(DEFAULT_PAD_MB)).strip()
    return int(setting) * 2**20 if setting.isdigit() else 0


def set_top_pad(size):
    """``mallopt(M_TOP_PAD, size)`` and ``mallopt(M_MMAP_THRESHOLD, 32 MiB)``; True if the C library took
    them (glibc), False otherwise."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):   # no C library to load (Windows: TypeError), no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # any mallopt call freezes glibc's own threshold for mapping blocks directly (128 KiB at start,
    # raised as large blocks are freed): fixed at its ceiling instead, so that arrays under 32 MiB
    # always come from the heap and its pad
    return (mallopt(M_TOP_PAD, min(size, 2**31 - 1)) == 1
            and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1)


def keep_freed_memory():
    """Set the pad once per process (see the module docstring); later calls return at once."""
    global _done
    if not _done:
        _done = True
        size = pad_bytes()
        if size:
            set_top_pad(size)
