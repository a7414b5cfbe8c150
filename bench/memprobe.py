"""Run the openear CLI with a memory probe beside it (used by `bench/soak.py --trace-memory`).

Every `OPENEAR_MEMPROBE_EVERY` seconds (default 30) one JSON line goes to `OPENEAR_MEMPROBE_OUT`:
RSS split into anonymous and file-backed memory (/proc/self/smaps_rollup), glibc's heap in use and
free (mallinfo2), the bytes Python itself holds (tracemalloc, when `OPENEAR_MEMPROBE_TRACE=1`), the
live-object counts that grew most, and the allocation sites that grew most since the first sample
after `OPENEAR_MEMPROBE_WARMUP` seconds. The split says where growth lives: Python objects,
native heap (torch, SQLite), or heap fragmentation (free but not returned).

    python bench/memprobe.py --config config.yaml run --no-web
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]


def _mallinfo() -> dict[str, float]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    mb = 1024 * 1024
    return {"heap_in_use_mb": round((info.uordblks + info.hblkhd) / mb, 1),
            "heap_free_mb": round(info.fordblks / mb, 1), "mmapped_mb": round(info.hblkhd / mb, 1)}


def _heaps() -> dict[str, int]:
    """How many malloc heaps (arenas) the process has: glibc's malloc_info XML, one <heap> each."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return {}
    with tempfile.NamedTemporaryFile(suffix=".xml") as report:
        stream = libc.fopen(report.name.encode(), b"w")
        if not stream:
            return {}
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        return {"heaps": Path(report.name).read_text().count("<heap nr=")}


def _smaps() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[-1] == "kB":
            fields[name] = int(parts[0]) / 1024
    return {"rss_mb": round(fields.get("Rss", 0), 1), "anon_mb": round(fields.get("Anonymous", 0), 1),
            "file_mb": round(fields.get("Rss", 0) - fields.get("Anonymous", 0) - fields.get("Shmem", 0), 1)}


def _object_counts() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


_NOT_OURS = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__))


def _sites_grown(base: tracemalloc.Snapshot, top: int = 12) -> list[dict[str, Any]]:
    """The allocation sites (innermost frames) that grew most since `base`; the probe's own excluded."""
    now = tracemalloc.take_snapshot().filter_traces(_NOT_OURS)
    stats = now.compare_to(base, "traceback")
    del now
    return [{"kb": round(s.size_diff / 1024, 1), "count": s.count_diff,
             "where": [f"{f.filename.rsplit('site-packages/', 1)[-1]}:{f.lineno}" for f in s.traceback][-4:]}
            for s in stats[:top] if s.size_diff > 0]


def _probe(out: Path, every: float, warmup: float, trace: bool) -> None:
    started = time.monotonic()
    base_snapshot: tracemalloc.Snapshot | None = None
    base_counts: Counter[str] | None = None
    with out.open("a") as sink:
        while True:
            time.sleep(every)
            t = time.monotonic() - started
            record: dict[str, Any] = {"t": round(t, 1), **_smaps(), **_mallinfo(), **_heaps()}
            counts = _object_counts()
            record["objects"] = sum(counts.values())
            if trace:
                record["python_traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
            if t >= warmup:
                if base_counts is None:
                    base_counts = counts
                    if trace:
                        base_snapshot = tracemalloc.take_snapshot().filter_traces(_NOT_OURS)
                else:
                    grown = counts - base_counts
                    record["objects_grown"] = dict(grown.most_common(12))
                    if trace and base_snapshot is not None:
                        record["sites_grown"] = _sites_grown(base_snapshot)
            del counts
            sink.write(json.dumps(record) + "\n")
            sink.flush()


def main() -> None:
    out = Path(os.environ.get("OPENEAR_MEMPROBE_OUT", "memprobe.jsonl"))
    trace = os.environ.get("OPENEAR_MEMPROBE_TRACE") == "1"
    if trace:
        tracemalloc.start(4)
    every = float(os.environ.get("OPENEAR_MEMPROBE_EVERY", "30"))
    warmup = float(os.environ.get("OPENEAR_MEMPROBE_WARMUP", "120"))
    threading.Thread(target=_probe, args=(out, every, warmup, trace), daemon=True, name="memprobe").start()
    from openear.cli import main as cli

    sys.argv = ["openear", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
