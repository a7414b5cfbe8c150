"""Give freed heap memory back to the operating system (glibc), so a long-running daemon's RSS is
not inflated by memory it has already freed (about 25 MB less in bench/soak.py).

glibc keeps memory that Python and the native libraries (SQLite, torch) free inside its heaps for
reuse; a mix of batch sizes leaves it fragmented, and RSS creeps up although nothing leaks.
`malloc_trim(0)` returns the free pages of every heap. On other C libraries this is a no-op.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _load_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim from the symbols already loaded in this process (no library search, no
    subprocess: this runs when openear.app is imported)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _load_trim()


def release_free_memory() -> bool:
    """Return free heap pages to the OS; whether anything was released (False where unsupported)."""
    if _TRIM is None:
        return False
    return bool(_TRIM(0))
