"""Encoder memory benchmark: does resident memory stay flat as batches of new shapes keep coming?

A daemon classifies batches of every size and length for months. In bfloat16, oneDNN compiles and
caches a kernel per matrix shape, so a forward whose shapes follow the batch (rows = its token count,
attention width = its longest text) grows RSS with every new shape for hours. models/sentiment/packed.py
rounds the packed rows to 48 buckets and runs attention in float32; this script measures what that buys.

Each configuration runs in its own process: one warm-up batch, then `--batches` batches of 1-64
texts from the sandbox feed (with `--long` of them Facebook-length: several posts joined). Every
`--every` batches it calls malloc_trim and reads RSS. Reports the RSS growth over the first third
(warm-up) and over the remaining two thirds (must be about zero), and texts/s.

    .venv/bin/python bench/shapes.py [--batches 300] [--modes bf16 fp32 int8] [--free-shapes]

`--free-shapes` adds a bf16 run of the forward as it was before (rows rounded to multiples of 64
only, attention in bfloat16 at the batch's exact width). Prints a table and writes
bench/results/shapes.json.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
RESULTS = ROOT / "bench" / "results" / "shapes.json"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def batches(n: int, seed: int, long_share: float) -> list[list[str]]:
    from sandbox.feed import FeedGenerator

    rng = random.Random(seed)
    feed = FeedGenerator(seed=seed).stream()
    out = []
    for _ in range(n):
        texts = []
        for _ in range(rng.randint(1, 64)):
            text = next(feed).text
            if rng.random() < long_share:
                text = " ".join([text, *(next(feed).text for _ in range(rng.randint(2, 12)))])
            texts.append(text)
        out.append(texts)
    return out


def child(mode: str, free_shapes: bool, n: int, every: int, seed: int, long_share: float) -> dict[str, Any]:
    from models.sentiment import packed
    from models.sentiment.encoder import TextEncoder

    if free_shapes:
        packed.packed_rows = lambda total: -(-total // packed.ROW_BUCKET) * packed.ROW_BUCKET
        packed.attention_width = lambda width: width
        packed.FLOAT32_ATTENTION = False
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    work = batches(n, seed, long_share)
    encoder = TextEncoder(mode=mode, batch_size=32)
    encoder.encode(work[0])
    if trim:
        trim(0)
    base, curve, texts = rss_mb(), [], 0
    start = time.perf_counter()
    for i, batch in enumerate(work, 1):
        encoder.encode(batch)
        texts += len(batch)
        if i % every == 0 or i == n:
            if trim:
                trim(0)
            curve.append((i, round(rss_mb() - base, 1)))
    seconds = time.perf_counter() - start
    third = min(curve, key=lambda p: abs(p[0] - n / 3))
    return {"mode": mode + (" (free shapes)" if free_shapes else ""), "batches": n, "texts": texts,
            "texts_per_s": round(texts / seconds, 1), "rss_base_mb": round(base, 1),
            "growth_warmup_mb": third[1], "growth_after_warmup_mb": round(curve[-1][1] - third[1], 1),
            "warmup_batches": third[0], "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--modes", nargs="+", default=["bf16", "fp32", "int8"])
    parser.add_argument("--free-shapes", action="store_true")
    parser.add_argument("--long", type=float, default=0.05, help="share of Facebook-length texts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=str(RESULTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, _, free = args.child.partition(":")
        print(json.dumps(child(mode, free == "free", args.batches, args.every, args.seed, args.long)))
        return

    runs = [(m, False) for m in args.modes] + ([("bf16", True)] if args.free_shapes else [])
    results = []
    for mode, free in runs:
        cmd = [sys.executable, __file__, "--child", f"{mode}:{'free' if free else ''}", "--batches",
               str(args.batches), "--every", str(args.every), "--seed", str(args.seed), "--long", str(args.long)]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    header = f"{'mode':<20} {'texts/s':>8} {'RSS base':>9} {'warm-up growth':>15} {'growth after':>13}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['mode']:<20} {r['texts_per_s']:>8} {r['rss_base_mb']:>6} MB "
              f"{r['growth_warmup_mb']:>+12} MB {r['growth_after_warmup_mb']:>+10} MB")
    print(f"(warm-up: the first {results[0]['warmup_batches']} of {args.batches} batches; growth after "
          "malloc_trim)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
