"""Give freed heap memory back to the operating system (glibc), so a long-running daemon's RSS is
not inflated by memory it has already freed.

glibc keeps memory that Python and the native libraries (SQLite, torch) free inside its heaps for
reuse; a mix of batch sizes leaves it fragmented, and RSS creeps up although nothing leaks.

- `limit_arenas()` (once, at daemon start, before its threads start): glibc gives each thread
  that allocates while the others hold theirs a heap of its own, up to eight per core; the daemon's
  pollers, senders and torch's workers then leave free memory scattered over a dozen heaps that
  no single thread reuses. Two heaps serve a daemon on any number of cores.
- `release_free_memory()` (every minute): `malloc_trim(0)` returns the free pages of every heap
  (about 25 MB less).

On other C libraries both are no-ops.

Not done: fixing glibc's mmap threshold (`MALLOC_MMAP_THRESHOLD_=1048576` in the environment) keeps
torch's activation buffers out of the heap and lowers the soak's RSS by about 150 MB, but every
such buffer is then mapped and zero-filled anew: float32 classification ran 27 % slower (77 -> 56
texts/s on two cores), enough to miss the soak's lag target. Set it where memory is scarcer than CPU.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _libc_function(name: str, argtypes: list[type], restype: type) -> Callable[..., int] | None:
    """A glibc function from the symbols already loaded in this process (no library search, no
    subprocess: this runs when openear.app is imported); None on other C libraries (musl, macOS)."""
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = argtypes, restype
    return function


_TRIM = _libc_function("malloc_trim", [ctypes.c_size_t], ctypes.c_int)
_MALLOPT = _libc_function("mallopt", [ctypes.c_int, ctypes.c_int], ctypes.c_int)
M_ARENA_MAX = -8  # mallopt parameter (malloc.h)
ARENA_MAX = 2


def limit_arenas(count: int = ARENA_MAX) -> bool:
    """At most `count` malloc heaps from now on (threads beyond share them); whether it took effect.
    Heaps that threads already own stay theirs, so call it before starting any."""
    return _MALLOPT is not None and bool(_MALLOPT(M_ARENA_MAX, count))


def release_free_memory() -> bool:
    """Return free heap pages to the OS; whether anything was released (False where unsupported)."""
    if _TRIM is None:
        return False
    return bool(_TRIM(0))
