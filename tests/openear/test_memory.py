"""Freed heap memory goes back to the OS (glibc's malloc_trim), so the daemon's RSS follows its use."""

from __future__ import annotations

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
