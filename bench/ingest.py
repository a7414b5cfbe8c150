"""Ingest benchmark: poll N posts from the X emulator into SQLite and PostgreSQL.

Real parts end to end: the emulator (in its own process, so its memory is not counted), tweepy over
HTTP, the poller's dedupe + ranking + queue + cursor transaction, the database. The classifier is a
stub (the classifier has its own benchmark, bench/classify.py). Reports mentions/second and the
polling process's peak RSS; prints a table and writes JSON.

    .venv/bin/python bench/ingest.py --posts 100000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/queue.py would shadow the standard library's `queue`: import from the project root instead
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

PG_ADMIN = os.environ.get("OPENEAR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
EMULATOR = """
import sys, time
from sandbox.x_api import XApiEmulator
emu = XApiEmulator(seed=1, limits={k: 10**9 for k in ("search", "mentions", "tweet", "user_by_username", "me")})
emu.start()
emu.grow(int(sys.argv[1]), spread=False)
print(emu.url, flush=True)
sys.stdin.read()
"""


@dataclass(frozen=True)
class StubResult:
    label: str = "neutral"
    negative: float = 0.2
    neutral: float = 0.6
    positive: float = 0.2
    complaint: float = 0.3


class StubClassifier:
    def classify(self, texts: list[str]) -> list[StubResult]:
        return [StubResult() for _ in texts]


def run_one(backend: str, posts: int) -> dict[str, object]:
    """Measure one backend in this process (called in a child process per backend)."""
    from sqlalchemy import create_engine, func, select, text

    from listener.platforms.x import XBrand, XPlatform
    from listener.poller import Poller
    from models.db import make_engine, session_factory, upgrade
    from models.orm import Mention
    from responders.queue.intake import Intake
    from sandbox.x_api import XCredentials

    emulator = subprocess.Popen([sys.executable, "-c", EMULATOR, str(posts)], cwd=ROOT, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    assert emulator.stdout is not None
    base_url = emulator.stdout.readline().strip()
    admin = None
    if backend == "sqlite":
        path = Path(f"/tmp/openear-bench-{uuid.uuid4().hex[:8]}.db")
        url = f"sqlite:///{path}"
    else:
        name = f"openear_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    creds = XCredentials()
    adapter = XPlatform([XBrand("Acme Mobile", ["acme OR #AcmeMobile OR @acme OR @acme_help"], [])],
                        base_url=base_url, read_per_poll=30_000,  # the config's maximum: few, large polls
                        **creds.as_dict())
    [source] = adapter.sources()
    poller = Poller(sessions, StubClassifier(), intake=Intake(sessions))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    stored = polls = 0
    while True:  # until a poll brings nothing new
        polls += 1
        result = poller.poll_once(adapter, source)
        stored += result.new
        if result.fetched == 0:
            break
    elapsed = time.perf_counter() - started
    with sessions() as session:
        count = session.scalar(select(func.count()).select_from(Mention))
    engine.dispose()
    emulator.stdin.close()  # type: ignore[union-attr]
    emulator.wait(10)
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{engine.url.database}" WITH (FORCE)'))
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "backend": backend, "posts": posts, "stored": stored, "rows": count, "polls": polls,
        "seconds": round(elapsed, 2), "mentions_per_second": round(stored / elapsed, 1),
        "peak_rss_mb": round(peak_mb, 1), "rss_before_mb": round(rss_before / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "ingest.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.posts)))
        return
    rows = []
    for backend in args.backends.split(","):
        out = subprocess.run([sys.executable, __file__, "--one", backend, "--posts", str(args.posts)],
                             check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    header = f"{'backend':<12}{'posts':>9}{'stored':>9}{'seconds':>9}{'mentions/s':>12}{'peak RSS MB':>13}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['backend']:<12}{r['posts']:>9}{r['stored']:>9}{r['seconds']:>9}{r['mentions_per_second']:>12}"
              f"{r['peak_rss_mb']:>13}")
    target = next((r for r in rows if r["backend"] == "sqlite"), None)
    if target:
        verdict = "meets" if float(target["mentions_per_second"]) >= 2000 else "MISSES"
        print(f"\nSQLite {verdict} the target of >= 2,000 mentions/s")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"benchmark": "ingest", "results": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
