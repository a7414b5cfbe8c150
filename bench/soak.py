"""Soak benchmark: the real daemon against the emulators at 10x a large brand's volume.

The emulators run in this process and post `--rate` mentions per second (split between X and
Facebook); `openear run --no-web` runs as a subprocess for `--minutes`. Reports sustained throughput,
queue lag (platform creation time -> queue item created) p50/p95, the backlog left unclassified at the
end (the lag cannot see it: a daemon that falls behind shows a good lag over what it did queue),
and the daemon's RSS over time:
growth after warm-up, growth over the second half and the least-squares slope after warm-up.
Also reports the rate the emulators really offered (their live feeds keep a timetable) and how many
mentions were stored. Prints a table and writes JSON.

    .venv/bin/python bench/soak.py --minutes 5 --rate 50
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/queue.py would shadow the standard library's `queue`: import from the project root instead
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

QUERY = "(acme OR @acme OR @acme_help OR #AcmeMobile) -is:retweet -from:acme -from:acme_help"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_kind() -> dict[str, object]:
    """What the default model's encoder runs as on this CPU, and any ISA emulation in force."""
    from models.sentiment.encoder import int8_activation_bits, native_bf16, resolve_mode

    emulated = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if k in os.environ}
    return {"native_bf16": native_bf16(), "auto_mode": resolve_mode("auto"), "isa_env": emulated,
            "int8_activation_bits": int8_activation_bits()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (MB per second for RSS samples)."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=50.0, help="mentions per second, all platforms")
    parser.add_argument("--interval", type=int, default=10, help="poll interval in seconds")
    parser.add_argument("--model", default="lexicon", help="classifier (default: lexicon; 'default' = embedded)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up excluded from RSS growth (default: a "
                        "third of the run, at most 300: model load, first re-rank at 5 min, caches filling)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "soak.json"))
    parser.add_argument("--probe", action="store_true", help="run the daemon under bench/memprobe.py: "
                        "anonymous/file RSS, heap in use/free and object growth every 30 s")
    parser.add_argument("--trace-memory", action="store_true", help="with --probe: also tracemalloc "
                        "(slows the daemon) and the allocation sites that grew most")
    args = parser.parse_args()

    from sqlalchemy import func, select

    from models.db import make_engine, session_factory, upgrade
    from models.orm import Mention, QueueItem
    from sandbox.graph_api import GraphApiEmulator
    from sandbox.x_api import XApiEmulator

    work = Path(tempfile.mkdtemp(prefix="openear-soak-"))
    db_url = f"sqlite:///{work / 'soak.db'}"
    upgrade(make_engine(db_url))
    x = XApiEmulator(seed=7, limits={k: 10**9 for k in ("search", "mentions", "tweet")}).start()
    fb = GraphApiEmulator(seed=7, limits={"app": 10**9, "page": 10**9}).start()
    creds = x.credentials
    config = work / "config.yaml"
    config.write_text(f"""
brands:
  - name: Acme Mobile
    accounts: {{x: [acme_help], facebook: ["{fb.page_id}"]}}
    queries: {{x: ['{QUERY}']}}
platforms:
  x: {{base_url: "{x.url}", bearer_token: "{creds.bearer_token}", consumer_key: "{creds.consumer_key}",
      consumer_secret: "{creds.consumer_secret}", access_token: "{creds.access_token}",
      access_token_secret: "{creds.access_token_secret}"}}
  facebook: {{base_url: "{fb.url}", page_tokens: {{"{fb.page_id}": "{fb.page_token()}"}}}}
database: {{url: "{db_url}"}}
classifier: {{model: {args.model}}}
schedule: {{poll_interval_seconds: {{x: {args.interval}, facebook: {args.interval}}}, jitter_seconds: 0}}
web: {{secret_key: "soak-benchmark-secret-key-0123"}}
""")
    x.start_live(args.rate * 0.7)
    fb.start_live(args.rate * 0.3)
    live_since = time.monotonic()
    log = (work / "daemon.log").open("wb")
    env = {**os.environ}
    entry = ["-m", "openear.cli"]
    probe_out = Path(args.json).with_suffix(".memprobe.jsonl")
    if args.probe or args.trace_memory:
        probe_out.parent.mkdir(parents=True, exist_ok=True)
        probe_out.unlink(missing_ok=True)
        entry = [str(ROOT / "bench" / "memprobe.py")]
        env.update(OPENEAR_MEMPROBE_OUT=str(probe_out), OPENEAR_MEMPROBE_TRACE="1" if args.trace_memory else "0",
                   OPENEAR_MEMPROBE_WARMUP=str(args.warmup if args.warmup is not None
                                               else min(300.0, args.minutes * 20)))
    daemon = subprocess.Popen([sys.executable, *entry, "--config", str(config), "run", "--no-web"],
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    started = time.monotonic()
    samples: list[tuple[float, float]] = []
    while time.monotonic() - started < args.minutes * 60:
        time.sleep(5)
        samples.append((time.monotonic() - started, rss_mb(daemon.pid)))
    x.stop_live()
    fb.stop_live()
    offered = x.live_ticks + fb.live_ticks
    offered_per_s = offered / (time.monotonic() - live_since)
    time.sleep(args.interval + 5)  # let the last poll finish
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(60)
    x.stop()
    fb.stop()

    sessions = session_factory(make_engine(db_url))
    with sessions() as session:
        rows = session.execute(select(Mention.created_at, QueueItem.created_at)
                               .join(QueueItem, QueueItem.mention_id == Mention.id)).all()
        stored = session.scalar(select(func.count()).select_from(Mention)) or 0
        # customers' mentions stored but not yet classified: the lag above cannot see them
        unclassified = session.scalar(select(func.count()).select_from(Mention).where(
            Mention.is_own.is_(False), Mention.sentiment_label.is_(None))) or 0
    lags = [(queued - created).total_seconds() for created, queued in rows]
    elapsed = args.minutes * 60
    warm_after = args.warmup if args.warmup is not None else min(300.0, elapsed / 3)
    warm = [(t, mb) for t, mb in samples if t >= warm_after]
    half = [(t, mb) for t, mb in warm if t >= (warm_after + elapsed) / 2]
    result = {
        "benchmark": "soak", "minutes": args.minutes, "rate_asked_per_s": args.rate, "poll_interval_s": args.interval,
        "classifier": args.model, "offered": offered, "offered_per_s": round(offered_per_s, 1),
        "stored": stored, "stored_per_s": round(stored / elapsed, 1),
        "queued": len(rows), "throughput_per_s": round(len(rows) / elapsed, 1),
        "lag_p50_s": round(percentile(lags, 0.5), 2), "lag_p95_s": round(percentile(lags, 0.95), 2),
        "lag_target_s": args.interval + 5,
        "unclassified_at_end": unclassified,
        **({"cpu": cpu_kind()} if args.model.startswith("default") else {}),
        "backlog_s": round(unclassified / max(offered_per_s, 1e-9), 1),
        "warmup_s": warm_after,
        "rss_after_warmup_mb": round(warm[0][1], 1) if warm else None, "rss_end_mb": round(samples[-1][1], 1),
        "rss_max_mb": round(max(mb for _, mb in samples), 1),
        "rss_growth_after_warmup_mb": round(warm[-1][1] - warm[0][1], 1) if warm else None,
        "rss_growth_second_half_mb": round(half[-1][1] - half[0][1], 1) if len(half) > 1 else None,
        "rss_slope_after_warmup_mb_per_min": round(slope(warm) * 60, 2) if len(warm) > 2 else None,
        "rss_median_mb": round(statistics.median(mb for _, mb in samples), 1),
    }
    for key, value in result.items():
        print(f"{key:<36}{value}")
    target = args.interval + 5
    verdict = "meets" if result["lag_p95_s"] <= target and result["backlog_s"] <= target else "MISSES"
    print(f"\nqueue lag p95 {verdict} the target of one poll interval + 5 s "
          f"(with at most that many seconds of traffic left unclassified at the end: {result['backlog_s']} s)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
