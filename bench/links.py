"""Link-proposal benchmark: the daemon's 30-minute `propose_links` job on a large, old database.

Builds N customers (an X identity each, 40 % also on Facebook under a name variant) first seen 90
days ago, plus M mentions over the last two days, then runs the job the way the daemon does, each
run in a fresh process so the peak memory (VmHWM) is the job's own:

- `first`: after an upgrade every author still needs keys; `since` is two days ago.
- `steady`: then 1 % new customers arrive with their mentions over 20 minutes; `since` is the
  previous run (35 minutes ago). This is what runs every 30 minutes for months.
- `idle`: the same again, with nothing new left to propose.

Reports time, peak RSS and how many of the true new pairs were proposed. Prints a table and writes
bench/results/links.json.

    .venv/bin/python bench/links.py --customers 100000 --mentions 200000
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=90)
TEXTS = ["@acme my internet is down again", "@acme_help charged twice this month, order {n}",
         "Router kaputt, seit Tagen kein Internet @acme", "thanks @acme, works now", "@acme any news? ticket {n}"]


SYLLABLES = ("ka", "ri", "na", "lo", "me", "su", "ta", "en", "ar", "ol", "is", "um", "be", "da", "fi", "go",
             "ha", "jo", "ku", "li", "ma", "ne", "or", "pa", "ro", "sa", "te", "vi", "wa", "ze", "an", "bo",
             "ce", "du", "el", "fa", "gi", "hu", "ir", "yo")


@dataclass
class Person:
    index: int
    handle: str
    display_name: str
    followers: int
    facebook_name: str | None


def cast(size: int, start: int, seed: int) -> list[Person]:
    """`size` people with names from a realistic-sized vocabulary (1,600 first names, 64,000 surnames;
    the sandbox's demo cast has 20 x 16 per language, far too few for a large brand), 40 % also on
    Facebook as the same name, "First L." or without the X display name's decoration."""
    rng = random.Random(seed)
    people = []
    for index in range(start, start + size):
        first = "".join(rng.choice(SYLLABLES) for _ in range(2)).title()
        last = "".join(rng.choice(SYLLABLES) for _ in range(3)).title()
        style = rng.randrange(3)
        handle = (first + last if style == 0 else first + "_" + last[:6] if style == 1 else first[0] + last).lower()
        handle = f"{handle[:11]}{rng.randrange(100)}"
        facebook = None
        if rng.random() < 0.4:
            facebook = rng.choice([f"{first} {last}", f"{first} {last[0]}.", f"{first} {last}"])
        people.append(Person(index, handle, f"{first} {last}" + rng.choice(["", "", " 🌻", " ⚽"]),
                             int(rng.paretovariate(1.1) * 40), facebook))
    return people


def _insert(url: str, customers: list[Person], mentions: int, first_seen: datetime, window: timedelta,
            seed: int) -> int:
    """Authors for `customers` and `mentions` mentions by them within `window`; the true X/Facebook pairs."""
    from sqlalchemy import insert, select

    from models.db import make_engine
    from models.orm import Author, Mention

    authors, pairs = [], 0
    for c in customers:
        common = {"followers": c.followers, "is_brand": False, "first_seen_at": first_seen, "updated_at": first_seen}
        authors.append({"platform": "x", "external_id": f"x{c.index}", "handle": c.handle,
                        "display_name": c.display_name, **common})
        if c.facebook_name:
            authors.append({"platform": "facebook", "external_id": f"fb{c.index}", "handle": None,
                            "display_name": c.facebook_name, **common})
            pairs += 1
    rng = random.Random(seed)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(insert(Author), authors)
        ids = list(connection.scalars(select(Author.id).where(Author.first_seen_at == first_seen)))
        rows = []
        for n in range(mentions):
            created = NOW - timedelta(seconds=rng.randrange(int(window.total_seconds())))
            rows.append({"platform": "x", "external_id": f"m{seed}-{n}", "brand": "Acme Mobile", "source": "bench",
                         "text": rng.choice(TEXTS).format(n=n), "created_at": created, "fetched_at": created,
                         "author_id": rng.choice(ids), "is_own": False})
            if len(rows) == 20_000:
                connection.execute(insert(Mention), rows)
                rows = []
        if rows:
            connection.execute(insert(Mention), rows)
    engine.dispose()
    return pairs


def measure(url: str, mode: str) -> None:
    """One job run in this (fresh) process; prints one JSON line."""
    from sqlalchemy import select

    from models.db import make_engine, session_factory
    from models.orm import Author
    from responders.customers import propose_links

    engine = make_engine(url)
    sessions = session_factory(engine)
    since = NOW - (timedelta(days=2) if mode == "first" else timedelta(minutes=35))  # idle: steady again
    with sessions() as session:  # connect and compile once: the baseline is a warm process
        session.execute(select(Author.id).limit(1)).all()
    base = _high_water_mb()
    started = time.perf_counter()
    with sessions.begin() as session:
        made = propose_links(session, NOW, since=since)
        seconds, peak = time.perf_counter() - started, _high_water_mb()
        external = dict(session.execute(select(Author.id, Author.external_id)).all())
        pairs = {frozenset((external[p.author_a], external[p.author_b])) for p in made}
    true = sum(1 for p in pairs if len({e.lstrip("xfb") for e in p}) == 1)
    print(json.dumps({"mode": mode, "seconds": round(seconds, 2), "proposals": len(made), "true_pairs": true,
                      "rss_before_mb": round(base), "peak_rss_mb": round(peak)}))


def _high_water_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it does not carry the parent's peak over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--mentions", type=int, default=200_000)
    parser.add_argument("--fresh", type=float, default=0.01, help="share of customers that are new")
    parser.add_argument("--url", help="database URL (default: a new SQLite file)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "links.json"))
    parser.add_argument("--measure", nargs=2, metavar=("URL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='openear-links-')) / 'links.db'}"
    from models.db import make_engine, upgrade

    upgrade(make_engine(url))
    old, new = cast(args.customers, 0, seed=11), cast(int(args.customers * args.fresh), args.customers, seed=12)
    started = time.perf_counter()
    _insert(url, old, args.mentions, OLD, timedelta(days=2), seed=1)
    print(f"built {len(old):,} customers, {args.mentions:,} mentions in {time.perf_counter() - started:.0f} s")

    def run(mode: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, __file__, "--measure", url, mode], capture_output=True, text=True,
                             check=True, cwd=ROOT).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))

    runs = [run("first")]
    true_new = _insert(url, new, int(args.mentions * args.fresh), NOW - timedelta(minutes=20),
                       timedelta(minutes=20), seed=2)
    runs += [run("steady"), run("idle")]
    print(f"\n{'run':<8}{'seconds':>9}{'peak RSS MB':>13}{'(start MB)':>12}{'proposals':>11}{'true pairs':>12}")
    for r in runs:
        print(f"{r['mode']:<8}{r['seconds']:>9}{r['peak_rss_mb']:>13}{r['rss_before_mb']:>12}"
              f"{r['proposals']:>11}{r['true_pairs']:>12}")
    print(f"true pairs among the {len(new):,} new customers: {true_new}")
    result = {"benchmark": "links", "customers": args.customers, "mentions": args.mentions,
              "new_customers": len(new), "true_new_pairs": true_new, "runs": runs}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
