"""Give freed heap memory back to the operating system (glibc), so a long-running daemon's RSS
follows what it uses, not the high-water mark of its busiest minute.

glibc keeps memory that Python and the native libraries (SQLite, torch) free inside its heaps for
reuse; a mix of batch sizes leaves it fragmented, and RSS creeps up although nothing leaks.
`malloc_trim(0)` returns the free pages of every heap. On other C libraries this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def _load_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _load_trim()


def release_free_memory() -> bool:
    """Return free heap pages to the OS; whether anything was released (False where unsupported)."""
    if _TRIM is None:
        return False
    return bool(_TRIM(0))
