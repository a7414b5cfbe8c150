"""Give freed heap memory back to the operating system (glibc), so a long-running daemon's RSS is
not inflated by memory it has already freed.

glibc keeps memory that Python and the native libraries (SQLite, torch) free inside its heaps for
reuse; a mix of batch sizes leaves it fragmented, and RSS creeps up although nothing leaks.

- `fix_mmap_threshold()` (once, at daemon start): glibc serves a large allocation with its own
  mmap, returned to the OS on free, but raises that threshold to the size of every such block freed
  (up to 32 MB), so torch's activation buffers of a few MB move into the heap after their first use
  and fragment it. With a fixed 1 MB threshold the heap no longer grows for them (a free chunk
  that is already large enough still serves one): about 150 MB less RSS in bench/soak.py.
- `release_free_memory()` (every minute): `malloc_trim(0)` returns the free pages of every heap
  (about 25 MB less).

On other C libraries both are no-ops.
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
M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)
MMAP_THRESHOLD = 1 << 20


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Serve every allocation of `size` bytes or more with its own mmap, for good (glibc's mallopt:
    setting it turns the dynamic threshold off); whether it took effect."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, size))


def release_free_memory() -> bool:
    """Return free heap pages to the OS; whether anything was released (False where unsupported)."""
    if _TRIM is None:
        return False
    return bool(_TRIM(0))
