"""Daily digest benchmark: build + render one day with N mentions (default 100,000) over 30 days of history.

History: 30 earlier days with N/10 mentions each; about 40 % negative, 60 % of mentions queued and a
third of those answered with a sent reply. Rows go in with executemany (pipelined by psycopg on PostgreSQL)
into a database migrated to head. Loading and the digest run in separate subprocesses per backend, so
the peak memory (ru_maxrss, plus the tracemalloc peak of build + render) is the digest's own.
Prints a table, writes bench/results/digest.json.
Target: < 10 s and < 500 MB.

    .venv/bin/python bench/digest.py                      # 100,000 mentions, both backends
    .venv/bin/python bench/digest.py --size 20000 --backend sqlite
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py is named like the standard library's `queue`: never let this folder shadow it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, date, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from models.config import BrandConfig, Config, WebConfig  # noqa: E402
from models.db import make_engine, session_factory, upgrade  # noqa: E402

PG_ADMIN = os.environ.get("OPENEAR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RESULTS = ROOT / "bench" / "results" / "digest.json"
DAY = date(2026, 11, 19)
DAY_START = datetime(2026, 11, 18, 23, 0, tzinfo=UTC)  # Europe/Berlin midnight
NOW = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
_WORDS = ("internet down router rebooting charged twice refund signal outage bill app crashes delivery late "
          "support roaming contract cancel Rechnung doppelt Internet weg Störung Vertrag Kündigung")
WORDS = _WORDS.split()
LABELS = ["negative", "neutral", "positive", None]


def config() -> Config:
    return Config(brands=[BrandConfig(name="Acme Mobile", timezone="Europe/Berlin")],
                  web=WebConfig(secret_key=SecretStr("bench-secret-0123456789abcdef")))


def rows(size: int, history_days: int, seed: int = 1) -> tuple[list[dict[str, Any]], ...]:
    """Authors, mentions, queue items, replies (and users) as plain dicts for bulk inserts."""
    rnd = random.Random(seed)
    users = [{"id": i, "username": f"agent{i}", "password_hash": "x", "role": "agent", "active": True,
              "created_at": NOW} for i in range(1, 9)]
    authors = [{"id": i, "platform": "x", "external_id": f"a{i}", "handle": f"user{i}", "is_brand": False,
                "first_seen_at": NOW, "updated_at": NOW} for i in range(1, size // 4 + 2)]
    mentions, items, replies = [], [], []
    mid = 0
    for back in range(history_days, -1, -1):
        count = size if back == 0 else size // 10
        start = DAY_START - timedelta(days=back)
        for _ in range(count):
            mid += 1
            created = start + timedelta(seconds=rnd.randrange(86_400))
            label = rnd.choices(LABELS, [4, 3, 2, 1])[0]
            mentions.append({"id": mid, "platform": rnd.choice(("x", "x", "facebook")), "external_id": f"m{mid}",
                             "brand": "Acme Mobile", "source": "x:bench",
                             "text": " ".join(rnd.choices(WORDS, k=8)), "language": "en", "created_at": created,
                             "fetched_at": created, "author_id": rnd.randrange(1, len(authors)), "is_own": False,
                             "sentiment_label": label})
            if rnd.random() < 0.6:
                answered = rnd.random() < 0.33
                state = "answered" if answered else rnd.choice(("new", "claimed", "dismissed"))
                items.append({"mention_id": mid, "brand": "Acme Mobile", "state": state, "priority": rnd.random(),
                              "created_at": created, "updated_at": created, "version": 1})
                if answered:
                    sent = created + timedelta(minutes=rnd.randrange(5, 600))
                    replies.append({"mention_id": mid, "user_id": rnd.randrange(1, 9), "platform": "x",
                                    "text": "on it", "state": "sent", "idempotency_key": f"k{mid}", "attempts": 1,
                                    "retryable": False, "created_at": sent, "sent_at": sent})
    return users, authors, mentions, items, replies


def load(engine: Engine, size: int, history_days: int) -> int:
    """Bulk-insert the fixture data; returns the number of mentions."""
    from models.orm import Author, Mention, QueueItem, Reply, User

    tables = [User.__table__, Author.__table__, Mention.__table__, QueueItem.__table__, Reply.__table__]
    data = rows(size, history_days)
    with engine.begin() as conn:
        for table, values in zip(tables, data, strict=True):
            for i in range(0, len(values), 20_000):
                conn.execute(table.insert(), values[i:i + 20_000])  # type: ignore[attr-defined]
        if engine.dialect.name == "postgresql":
            for name in ("users", "authors", "mentions", "queue_items", "replies"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                  f"(SELECT coalesce(max(id), 1) FROM {name}))"))
            conn.execute(text("ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
    return len(data[2])


def measure(url: str, size: int, history_days: int, phase: str) -> dict[str, Any]:
    """Runs in a child process: phase "load" fills the database; "digest" times build + render (then
    repeats them under tracemalloc for the Python peak), so ru_maxrss is the digest's own."""
    from responders.digest.build import build_digest
    from responders.digest.render import render_digest

    engine = make_engine(url)
    if phase == "load":
        upgrade(engine)
        t0 = time.perf_counter()
        total = load(engine, size, history_days)
        engine.dispose()
        return {"mentions_total": total, "load_s": round(time.perf_counter() - t0, 2)}
    sessions = session_factory(engine)
    t0 = time.perf_counter()
    with sessions() as session:
        data = build_digest(session, config(), "Acme Mobile", DAY, now=NOW)
    build_s = time.perf_counter() - t0
    rendered = render_digest(data)
    total_s = time.perf_counter() - t0
    tracemalloc.start()
    with sessions() as session:
        render_digest(build_digest(session, config(), "Acme Mobile", DAY, now=NOW))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    engine.dispose()
    return {"day_volume": data.volume, "build_s": round(build_s, 3), "render_s": round(total_s - build_s, 3),
            "total_s": round(total_s, 3), "traced_peak_mb": round(peak / 2**20, 1),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "html_kb": round(len(rendered.html) / 1024, 1), "topics": [t.term for t in data.topics[:4]]}


def run_backend(backend: str, size: int, history_days: int) -> dict[str, Any]:
    """Start a fresh database and a child process for one backend."""
    tmp = tempfile.mkdtemp(prefix="digest-bench-")
    admin = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp}/bench.db"
    else:
        name = f"openear_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        result: dict[str, Any] = {"backend": backend}
        for phase in ("load", "digest"):
            out = subprocess.run([sys.executable, __file__, "--child", url, "--phase", phase, "--size", str(size),
                                  "--history-days", str(history_days)], capture_output=True, text=True, check=True)
            result.update(json.loads(out.stdout.strip().splitlines()[-1]))
        return result
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"{backend} failed:\n{exc.stderr[-3000:]}") from None
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="mentions on the digest's day")
    parser.add_argument("--history-days", type=int, default=30)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--phase", default="digest", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.size, args.history_days, args.phase)))
        return
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = [run_backend(b, args.size, args.history_days) for b in backends]
    print(f"digest of one day with {args.size:,} mentions, {args.history_days} days of history at "
          f"{args.size // 10:,}/day")
    print(f"{'backend':<11}{'mentions':>10}{'load s':>8}{'build s':>9}{'render s':>10}{'total s':>9}"
          f"{'traced MB':>11}{'rss MB':>8}  ok")
    for r in results:
        ok = r["total_s"] < 10 and r["max_rss_mb"] < 500
        print(f"{r['backend']:<11}{r['mentions_total']:>10,}{r['load_s']:>8}{r['build_s']:>9}{r['render_s']:>10}"
              f"{r['total_s']:>9}{r['traced_peak_mb']:>11}{r['max_rss_mb']:>8}  {'yes' if ok else 'NO'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cpus, py {platform.python_version()}"
    summary = {"size": args.size, "history_days": args.history_days, "machine": machine,
               "target": {"total_s": 10, "max_rss_mb": 500}, "results": results}
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
