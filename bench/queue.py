"""Review queue benchmark: the queue and mention pages on a big database, SQLite and PostgreSQL.

Builds N mentions (default 1,000,000) with authors, customers, conversations, queue items (about 5 %
open, the rest answered or dismissed) and replies, with bulk inserts (executemany on SQLite, COPY on
PostgreSQL) into a database migrated to head (so every index and the search structures are there).
Then it measures requests through the real app (FastAPI TestClient, signed in): the first queue
page, filtered pages, searches, the mention page, the live-update endpoint. Prints p50/p95 per
request and writes bench/results/queue.json. Target: p95 < 100 ms.

    .venv/bin/python bench/queue.py                  # 1,000,000 mentions, both backends
    .venv/bin/python bench/queue.py --size 100000 --backend sqlite
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's `queue` (which asyncio imports): never shadow it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from models.config import BrandConfig, Config, WebConfig  # noqa: E402
from models.db import make_engine, session_factory, upgrade  # noqa: E402
from responders.auth import hash_password  # noqa: E402
from responders.web import create_app  # noqa: E402

PG_ADMIN = os.environ.get("OPENEAR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RESULTS = ROOT / "bench" / "results" / "queue.json"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PASSWORD = "bench-password"
RARE_ORDER = "ORD-7777777"
CHUNK = 50_000

EN = ["my internet is down again", "the router keeps rebooting", "I was charged twice this month",
      "still waiting for my refund", "no signal in the city centre", "your app crashes when I pay",
      "thanks for the quick help", "how do I cancel my contract?", "love the new 5G plan",
      "delivery of my phone is late", "support never answers", "great service in the shop today",
      "roaming charges on my bill are wrong", "when will the outage be fixed?", "my eSIM does not activate"]
DE = ["mein Internet ist schon wieder weg", "der Router startet ständig neu", "doppelt abgebucht diesen Monat",
      "warte immer noch auf die Erstattung", "kein Netz in der Innenstadt", "die App stürzt beim Bezahlen ab",
      "danke für die schnelle Hilfe", "wie kann ich kündigen?", "Rechnung ist falsch", "Störung seit gestern"]
OPENERS = ["@acme", "@acme_help", "Hey @acme", "Hallo @acme", "", "Ugh,", "Honestly"]
TAILS = ["", "!!", " 😡", " please help", " bitte", "?", " #fail", " 🙏"]


def _sqlite_ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(size: int, seed: int = 7) -> dict[str, list[tuple[Any, ...]]]:
    """Rows for every table, as tuples in the column order of COLUMNS (datetimes as aware UTC)."""
    rnd = random.Random(seed)
    n_authors = max(size // 5, 10)
    n_customers = n_authors // 10
    users = [(i, f"agent{i:02d}", "manager" if i == 1 else "agent") for i in range(1, 21)]
    customers = [(i, f"Customer {i}", NOW - timedelta(days=rnd.randint(30, 2000))) for i in range(1, n_customers + 1)]
    authors = []
    for i in range(1, n_authors + 1):
        platform_name = "x" if rnd.random() < 0.7 else "facebook"
        customer = (i % n_customers) + 1 if 3 < i <= 2 * n_customers else None  # 2 identities per customer
        followers = int(rnd.paretovariate(1.2) * 50)
        authors.append((i, platform_name, f"e{i}", f"user_{i}", f"Person {i}", followers, customer, i <= 3))
    weights = [1.0 / (k ** 0.6) for k in range(1, n_authors - 2)]  # a few very active authors
    author_ids = rnd.choices(range(4, n_authors + 1), weights=weights, k=size)
    mentions, items, replies = [], [], []
    reply_id = 0
    for i in range(1, size + 1):
        author = authors[author_ids[i - 1] - 1] if i % 20 else authors[rnd.randint(0, 2)]  # every 20th: brand
        is_own = author[7]
        german = rnd.random() < 0.35
        body = rnd.choice(DE if german else EN)
        body = f"{rnd.choice(OPENERS)} {body}{rnd.choice(TAILS)}".strip()
        if rnd.random() < 0.2:
            body += f" order #A-{rnd.randint(100000, 9999999)}"
        if i == size - 7:  # one open item carries a unique order number
            body += f" {RARE_ORDER}"
        created = NOW - timedelta(seconds=int((size - i) * 365 * 86400 / size) + rnd.randint(0, 600))
        negative = rnd.random()
        label = "negative" if negative > 0.6 else "positive" if negative < 0.2 else "neutral"
        priority = round(rnd.random(), 4)
        reasons = json.dumps([f"negative {negative:.2f}", f"waiting {rnd.randint(1, 9)} h"])
        mentions.append((i, author[1], f"m{i}", "Acme Mobile", f"{author[1]}:bench", body, "de" if german else "en",
                         created, created, author[0], f"c{i // 3}", None, f"https://x.com/s/{i}", is_own,
                         label, negative, (1 - negative) / 2, (1 - negative) / 2, 0.5, priority, reasons))
        if is_own:
            continue
        recent = i > size - size // 20  # the newest 5 % are still open
        state = ("claimed" if rnd.random() < 0.1 else "new") if recent else (
            "answered" if rnd.random() < 0.8 else "dismissed")
        assignee = rnd.randint(1, 20) if state != "new" else None
        closed = created + timedelta(minutes=rnd.randint(5, 600)) if state in ("answered", "dismissed") else None
        claimed = NOW - timedelta(minutes=rnd.randint(0, 20)) if state == "claimed" else None
        items.append((i, i, "Acme Mobile", state, priority, assignee, claimed, closed,
                      "spam" if state == "dismissed" else None, created, created, 1))
        if state == "answered":
            reply_id += 1
            replies.append((reply_id, i, assignee, author[1], "Sorry about that, we are on it!", "sent",
                            uuid.UUID(int=rnd.getrandbits(128)).hex, f"p{reply_id}", None, 1, False, closed, closed,
                            closed))
    return {"users": users, "customers": customers, "authors": authors, "mentions": mentions,
            "queue_items": items, "replies": replies}


COLUMNS = {
    "users": "id, username, password_hash, role, active, created_at",
    "customers": "id, display_name, first_seen_at, notes, tags, created_at",
    "authors": "id, platform, external_id, handle, display_name, followers, customer_id, is_brand, first_seen_at, "
               "updated_at",
    "mentions": "id, platform, external_id, brand, source, text, language, created_at, fetched_at, author_id, "
                "conversation_id, in_reply_to_id, permalink, is_own, sentiment_label, score_negative, "
                "score_neutral, score_positive, complaint_score, priority, priority_reasons",
    "queue_items": "id, mention_id, brand, state, priority, assignee_id, claimed_at, closed_at, dismiss_reason, "
                   "created_at, updated_at, version",
    "replies": "id, mention_id, user_id, platform, text, state, idempotency_key, platform_reply_id, error, attempts, "
               "retryable, created_at, last_attempt_at, sent_at",
}


def _rows(table: str, data: dict[str, list[tuple[Any, ...]]], password_hash: str) -> Iterator[tuple[Any, ...]]:
    """The rows of `table` in COLUMNS order (aware datetimes; each backend formats them)."""
    for row in data[table]:
        if table == "users":
            yield (row[0], row[1], password_hash, row[2], True, NOW)
        elif table == "customers":
            yield (row[0], row[1], row[2], None, "{}", row[2])
        elif table == "authors":
            yield (*row, NOW - timedelta(days=400), NOW)
        else:
            yield row


def load_sqlite(engine: Engine, data: dict[str, list[tuple[Any, ...]]], password_hash: str) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, columns in COLUMNS.items():
            marks = ", ".join("?" for _ in columns.split(","))
            batch: list[tuple[Any, ...]] = []
            for row in _rows(table, data, password_hash):
                batch.append(tuple(_sqlite_ts(v) if isinstance(v, datetime) else v for v in row))
                if len(batch) >= CHUNK:
                    cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", batch)
                    batch.clear()
            if batch:
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", batch)
            raw.commit()
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def load_postgresql(engine: Engine, data: dict[str, list[tuple[Any, ...]]], password_hash: str) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, columns in COLUMNS.items():
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in _rows(table, data, password_hash):
                    copy.write_row(row)
            if table in ("users", "customers", "authors", "queue_items", "replies"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            raw.commit()
        cursor.execute("SELECT setval(pg_get_serial_sequence('mentions', 'id'), (SELECT max(id) FROM mentions))")
        raw.commit()
        driver = raw.driver_connection
        driver.autocommit = True  # type: ignore[union-attr]
        driver.execute("VACUUM ANALYZE")  # type: ignore[union-attr]
        driver.autocommit = False  # type: ignore[union-attr]
    finally:
        raw.close()


def measure(client: TestClient, path: str, repeat: int) -> dict[str, float]:
    for _ in range(3):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
            "max_ms": round(times[-1], 2)}


def requests_to_time(data: dict[str, list[tuple[Any, ...]]]) -> list[tuple[str, str]]:
    open_items = [row for row in data["queue_items"] if row[3] in ("new", "claimed")]
    busy_author = data["mentions"][open_items[-1][1] - 1][9]
    handle = data["authors"][busy_author - 1][3]
    sample = open_items[-1][1]
    last_id = data["queue_items"][-1][0]
    return [
        ("queue: first page", "/"),
        ("queue: page 20", "/?page=20"),
        ("queue: facebook+negative+de", "/?platform=facebook&sentiment=negative&language=de"),
        ("queue: over SLA", "/?overdue=1"),
        ("queue: filter matching nothing", "/?language=fr"),
        ("queue: answered (closed)", "/?state=answered"),
        ("search: rare order number", f"/?q={RARE_ORDER}"),
        ("search: common word 'router'", "/?q=router"),
        ("search: author handle", f"/?q={handle}"),
        ("search: all states, rare", f"/?state=all&q={RARE_ORDER}"),
        ("search: all states, 'router'", "/?state=all&q=router"),
        ("mention page", f"/mentions/{sample}"),
        ("live updates", f"/api/queue/updates?since={last_id - 50}"),
    ]


def run_backend(backend: str, size: int, repeat: int, data: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    created_db: str | None = None
    tmp = tempfile.TemporaryDirectory()
    if backend == "sqlite":
        url = f"sqlite:///{tmp.name}/bench.db"
    else:
        created_db = f"openear_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{created_db}"'))
        admin.dispose()
        url = make_url(PG_ADMIN).set(database=created_db).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        upgrade(engine)
        start = time.perf_counter()
        (load_sqlite if backend == "sqlite" else load_postgresql)(engine, data, hash_password(PASSWORD))
        load_s = time.perf_counter() - start
        print(f"  {backend}: loaded {size:,} mentions in {load_s:.1f} s", flush=True)
        config = Config(brands=[BrandConfig(name="Acme Mobile")], web=WebConfig(secret_key=SecretStr("b" * 32)))
        app = create_app(config, session_factory(engine), clock=lambda: NOW)
        results: dict[str, Any] = {}
        with TestClient(app) as client:
            token = client.get("/login").text.split('name="csrf-token" content="')[1].split('"')[0]
            response = client.post("/login", data={"username": "agent02", "password": PASSWORD, "csrf_token": token})
            assert response.status_code == 200, response.text[:300]
            for name, path in requests_to_time(data):
                results[name] = {"path": path, **measure(client, path, repeat)}
                print(f"  {backend:10} {name:32} p50 {results[name]['p50_ms']:7.1f} ms   "
                      f"p95 {results[name]['p95_ms']:7.1f} ms", flush=True)
        return {"load_seconds": round(load_s, 1), "requests": results}
    finally:
        engine.dispose()
        tmp.cleanup()
        if created_db:
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{created_db}" WITH (FORCE)'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description="Review queue benchmark (queue and mention pages).")
    parser.add_argument("--size", type=int, default=1_000_000, help="number of mentions (default 1,000,000)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    start = time.perf_counter()
    data = generate(args.size)
    print(f"generated {args.size:,} mentions, {len(data['authors']):,} authors, {len(data['queue_items']):,} "
          f"queue items ({sum(1 for r in data['queue_items'] if r[3] in ('new', 'claimed')):,} open), "
          f"{len(data['replies']):,} replies in {time.perf_counter() - start:.1f} s", flush=True)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    report: dict[str, Any] = {
        "size": args.size, "repeat": args.repeat, "target_p95_ms": 100,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "backends": {},
    }
    for backend in backends:
        report["backends"][backend] = run_backend(backend, args.size, args.repeat, data)
    print()
    print(f"{'request':34}" + "".join(f"{b + ' p50':>16}{b + ' p95':>16}" for b in backends))
    for name in report["backends"][backends[0]]["requests"]:
        cells = "".join(f"{report['backends'][b]['requests'][name]['p50_ms']:>13.1f} ms"
                        f"{report['backends'][b]['requests'][name]['p95_ms']:>13.1f} ms" for b in backends)
        print(f"{name:34}{cells}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
