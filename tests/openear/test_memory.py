"""Freed heap memory goes back to the OS (glibc), so the daemon's RSS follows its use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from openear import memory
from openear.memory import release_free_memory


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(memory._TRIM is None or not Path("/proc/self/status").exists(), reason="glibc on Linux only")
def test_fragmented_free_memory_is_returned() -> None:
    blocks = [bytes(1000) for _ in range(200_000)]  # ~200 MB of malloc'd blocks
    kept = blocks[::64]  # one in 64 stays: every heap page but a few is free, none at the top
    del blocks
    before = rss_mb()
    assert release_free_memory()
    assert before - rss_mb() > 100
    assert len(kept) == 3125


SCENARIO = """
import ctypes, sys
from openear import memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
big = bytearray(16 << 20)  # mmapped; freeing it raises glibc's dynamic threshold to 16 MB
del big
if sys.argv[1] == "fix":
    assert memory.fix_mmap_threshold()
before = libc.mallinfo2().hblkhd
buffer = bytearray(4 << 20)
during = libc.mallinfo2().hblkhd
del buffer
print(during - before, libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(memory._TRIM is None, reason="glibc only")
def test_large_buffers_stay_mmapped_after_a_larger_one_was_freed() -> None:
    """glibc raises its mmap threshold to 16 MB on the first free and heap-allocates the next 4 MB;
    fixed, the 4 MB buffer gets its own mapping, returned on free. In a fresh process: a heap with
    a free chunk that large serves the request from it either way."""
    def mapped(arg: str) -> tuple[int, int]:
        out = subprocess.run([sys.executable, "-c", SCENARIO, arg], check=True, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[2]).stdout.split()
        return int(out[0]), int(out[1])

    during, after = mapped("fix")
    assert during >= 4 << 20 and after < 1 << 20
    assert mapped("dynamic")[0] < 1 << 20  # the default it works around


ARENAS = """
import ctypes, sys, threading
from openear import memory

if sys.argv[1] == "limit":
    assert memory.limit_arenas(2)
barrier, held = threading.Barrier(8), []

def allocate():
    held.append(bytearray(100_000))  # malloc'd (beyond pymalloc, below the mmap threshold) in this thread
    barrier.wait()  # all eight hold theirs at once: none can inherit a finished thread's heap

threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" section per heap, on stderr
"""


@pytest.mark.skipif(memory._MALLOPT is None, reason="glibc only")
def test_threads_share_a_bounded_number_of_heaps() -> None:
    def heaps(arg: str) -> int:
        err = subprocess.run([sys.executable, "-c", ARENAS, arg], check=True, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[2]).stderr
        return sum(1 for line in err.splitlines() if line.startswith("Arena "))

    assert heaps("limit") <= 2
    assert heaps("default") > 2  # glibc's own: a heap per allocating thread, up to eight per core
