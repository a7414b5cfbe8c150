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
