"""Freed heap memory goes back to the OS (glibc), so the daemon's RSS follows its use."""

from __future__ import annotations

import ctypes
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


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def mmapped_bytes() -> int:
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    return int(libc.mallinfo2().hblkhd)


@pytest.mark.skipif(memory._TRIM is None, reason="glibc only")
def test_large_buffers_stay_mmapped_after_a_larger_one_was_freed() -> None:
    """glibc would raise its mmap threshold to 16 MB on the first free and heap-allocate the next 4 MB."""
    big = bytearray(16 << 20)
    del big
    assert memory.fix_mmap_threshold()
    before = mmapped_bytes()
    buffer = bytearray(4 << 20)
    assert mmapped_bytes() - before >= 4 << 20
    del buffer
    assert mmapped_bytes() - before < 1 << 20  # and returned on free
