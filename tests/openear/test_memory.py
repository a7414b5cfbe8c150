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
