"""Suggested replies benchmark: latency at 1M answered mentions, and top-3 accuracy on the demo feed.

Latency: a database migrated to head holds N answered customer mentions (default 1,000,000) with a
sent reply each and an int8 vector each (synthetic: clustered random 384-d vectors, the default
encoder's width), plus 200 new mentions to suggest for. It measures `suggest()` (the mention page's
whole suggestion step: the query vector, the index refresh, the exact int8 search, re-reading the
30 candidates, the outcome check, grouping and drafts) once the brand's partition is loaded, and
the partition's cold load. Target: p95 < 150 ms at 1M, on SQLite and PostgreSQL.

Accuracy: the demo feed (sandbox/feed.py, seed 1) gives customer mentions of five topics in English
and German; the first 80 % are answered with their topic's saved reply (sandbox/saved_replies.py),
the last 20 % are held out and asked for suggestions. Counted: how often the held-out mention's own
topic's saved reply is among the top 3 (target >= 80 %), for the default encoder and, as an
ablation, for the lexical HashEmbedder. The feed is generated from a few wordings per topic, so the
held-out fifth repeats wordings that were answered; the harder "unseen-wording" split holds out every
mention of one wording per language and topic (answered: only the other wordings). Neither is a
figure for real customer text.

    .venv/bin/python bench/suggest.py                          # both parts, both backends, 1M
    .venv/bin/python bench/suggest.py --size 100000 --backend sqlite --skip-accuracy

Prints tables and writes bench/results/suggest.json. Says which CPU kind ran (native bf16/AMX or
not; `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2` emulates a CPU without them).
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py is named like the standard library's `queue` (which torch imports): never shadow it.
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
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from models.db import make_engine, session_factory, upgrade  # noqa: E402
from models.orm import Author, Mention, QueueItem, Reply, SavedReply, User  # noqa: E402
from models.vectors import Embedder, HashEmbedder, Prefilter, quantize, top_k, two_stage_top_k  # noqa: E402
from responders.suggestions import AnswerIndex, suggest  # noqa: E402

PG_ADMIN = os.environ.get("OPENEAR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RESULTS = ROOT / "bench" / "results" / "suggest.json"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BRAND = "Acme Mobile"
DIM = 384
QUERIES = 200
CHUNK = 20_000
TOPICS = ("delivery", "billing", "outage", "praise", "question")


def cpu_kind() -> dict[str, Any]:
    from models.sentiment.encoder import native_bf16

    return {"native_bf16": native_bf16(), "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY", "default"),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "default"), "machine": platform.machine(),
            "cpus": os.cpu_count()}


# ----------------------------------------------------------------------------- latency
class StoredOnly:
    """An embedder for vectors that are all stored already (embedding anything would be a bench bug)."""

    vector_key = "bench-384"

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        """Saved replies only (cached by the index): a vector per text, seeded by the text."""
        self.embedded += texts
        return np.stack([np.random.default_rng(sum(t.encode())).standard_normal(DIM) for t in texts])


def _vectors(n: int, rng: np.random.Generator, centroids: np.ndarray, mixing: np.ndarray) -> np.ndarray:
    """Clustered vectors near a 64-d subspace (as sentence embeddings are), with full-width noise."""
    picks = rng.integers(0, len(centroids), n)
    latent = centroids[picks] + 0.5 * rng.standard_normal((n, mixing.shape[0]), dtype=np.float32)
    return quantize(latent @ mixing + 0.35 * rng.standard_normal((n, DIM), dtype=np.float32))


def _database(backend: str) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/suggest.db", None
    name = f"openear_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False), name


def _drop(name: str | None) -> None:
    if name:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _load(engine: Engine, size: int, seed: int) -> None:
    """Authors, N answered mentions with a sent reply and a vector each, and QUERIES new ones, in bulk."""
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((5000, 64), dtype=np.float32)
    mixing = rng.standard_normal((64, DIM), dtype=np.float32) / 8
    words = ["parcel", "late", "bill", "charged", "network", "down", "router", "refund", "app", "crash", "eSIM",
             "contract", "roaming", "signal", "Paket", "Rechnung", "Störung", "Vertrag"]
    n_authors = max(size // 10, 10)
    total = size + QUERIES
    sqlite = engine.dialect.name == "sqlite"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()

        def put(table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
            if sqlite:
                marks = ", ".join("?" for _ in columns.split(","))
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                                   [tuple(v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v
                                          for v in row) for row in rows])
            else:
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)

        put("users", "id, username, password_hash, role, active, created_at", [(1, "agent", "x", "agent", True, NOW)])
        put("saved_replies", "id, name, text, language, created_at, updated_at",
            [(i + 1, f"Template {i}", f"Hi {{name}}, about {words[i]}: we are on it. ^{{agent}}", None, NOW, NOW)
             for i in range(10)])
        put("authors", "id, platform, external_id, handle, display_name, followers, is_brand, first_seen_at, "
                       "updated_at",
            [(i, "x", f"a{i}", f"user_{i}", f"Person {i}", 10, False, NOW, NOW) for i in range(1, n_authors + 1)])
        pyrng = random.Random(seed)
        for start in range(1, total + 1, CHUNK):
            ids = range(start, min(start + CHUNK, total + 1))
            mentions, replies, items, vectors = [], [], [], []
            block = _vectors(len(ids), rng, centroids, mixing)
            for row, i in enumerate(ids):
                created = NOW - timedelta(seconds=(total - i) * 20)
                body = f"@acme {pyrng.choice(words)} {pyrng.choice(words)} {pyrng.choice(words)} #{i}"
                answered = i <= size
                mentions.append((i, "x", f"m{i}", BRAND, "x:bench", body, "de" if i % 3 == 0 else "en", created,
                                 created, (i % n_authors) + 1, f"c{i}", False, "negative", 0.8, 0.1, 0.1, 0.5, 0.5))
                items.append((i, i, BRAND, "answered" if answered else "new", 0.5, created, created, 1))
                if answered:
                    sent = created + timedelta(minutes=30)
                    replies.append((i, i, 1, "x", "Sorry about that, we are on it!", "sent", uuid.uuid4().hex,
                                    1, False, sent, sent, (i % 10) + 1 if i % 2 else None))
                vectors.append((i, StoredOnly.vector_key, block[row].tobytes()))
            put("mentions", "id, platform, external_id, brand, source, text, language, created_at, fetched_at, "
                            "author_id, conversation_id, is_own, sentiment_label, score_negative, score_neutral, "
                            "score_positive, complaint_score, priority", mentions)
            put("queue_items", "id, mention_id, brand, state, priority, created_at, updated_at, version", items)
            put("replies", "id, mention_id, user_id, platform, text, state, idempotency_key, attempts, retryable, "
                           "created_at, sent_at, saved_reply_id", replies)
            put("mention_vectors", "mention_id, model, data", vectors)
            raw.commit()
        if sqlite:
            cursor.execute("ANALYZE")
        else:
            for table in ("users", "saved_replies", "authors", "mentions", "queue_items", "replies"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        raw.commit()
        if not sqlite:
            driver = raw.driver_connection
            driver.autocommit = True  # type: ignore[union-attr]
            driver.execute("VACUUM ANALYZE")  # type: ignore[union-attr]
    finally:
        raw.close()


def latency(backend: str, size: int, seed: int = 7) -> dict[str, Any]:
    url, created = _database(backend)
    engine = make_engine(url)
    try:
        upgrade(engine)
        start = time.perf_counter()
        _load(engine, size, seed)
        load_s = time.perf_counter() - start
        print(f"  {backend}: stored {size:,} answered mentions with vectors in {load_s:.0f} s", flush=True)
        sessions = session_factory(engine)
        index = AnswerIndex(StoredOnly(), clock=lambda: NOW, refresh_seconds=0)  # every call refreshes: worst case
        with sessions() as session:
            agent = session.get(User, 1)
            assert agent is not None
            start = time.perf_counter()
            part = index.partition(session, BRAND)
            cold_s = time.perf_counter() - start
            assert part.size == size, (part.size, size)
            queries = list(session.scalars(select(Mention).where(Mention.id > size).order_by(Mention.id)))
            times = []
            for round_ in range(2):
                for mention in queries:
                    start = time.perf_counter()
                    found = suggest(session, index, mention, agent, now=NOW)
                    if round_:
                        times.append((time.perf_counter() - start) * 1000)
                    assert found, "no suggestion"
            recall = _recall(part, [index.query_vector(session, m) for m in queries[:50]])
        times.sort()
        result = {"answered": size, "prefilter": part.prefilter is not None, "recall_at_10": recall,
                  "load_seconds": round(load_s, 1), "cold_partition_seconds": round(cold_s, 2),
                  "p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * len(times)) - 1], 1),
                  "max_ms": round(times[-1], 1), "queries": len(times)}
        print(f"  {backend:10} cold load {cold_s:6.1f} s   p50 {result['p50_ms']:6.1f} ms   "
              f"p95 {result['p95_ms']:6.1f} ms   (target p95 < 150 ms)   recall@10 {recall}", flush=True)
        return result
    finally:
        engine.dispose()
        _drop(created)


def _recall(part: Any, queries: list[np.ndarray]) -> float:
    """Share of the exact top 10 that the partition's search (prefiltered beyond PREFILTER_ROWS) returns."""
    found = []
    for query in queries:
        exact, _ = top_k(query, part.matrix[:part.size], 10)
        fast = {i for i, _ in part.search(query, 10)}
        found.append(len({int(part.ids[i]) for i in exact} & fast) / 10)
    return round(float(np.mean(found)), 4)


def real_recall(n: int, share: float = 0.002) -> dict[str, Any]:
    """The prefilter's recall@10 on the default encoder's vectors of `n` real tweets (English and German,
    ../shared/datasets), with the same share of candidates as at 1M (2,048 = 0.2 %)."""
    from models.sentiment.classifier import EmbeddingClassifier

    data = ROOT.parent / "shared" / "datasets"
    texts: list[str] = []
    for name in ("tweeteval/train.tsv", "sb10k_de_full/train.tsv"):
        lines = (data / name).read_text(encoding="utf-8").splitlines()[1:]
        texts += [line.split("\t")[0] for line in lines[: n // 2]]
    start = time.perf_counter()
    matrix = quantize(EmbeddingClassifier().embed(texts))
    embed_s = time.perf_counter() - start
    sample = matrix[np.random.default_rng(0).choice(len(matrix), min(len(matrix), 50_000), replace=False)]
    queries = np.random.default_rng(5).choice(len(matrix), 200, replace=False)
    exact = {int(q): set(top_k(matrix[q], matrix, 10)[0].tolist()) for q in queries}
    rows = []
    for dims in (64, 96, 128):
        prefilter = Prefilter.fit(sample, dims)
        codes = prefilter.codes(matrix)
        for candidates in (max(10, int(len(matrix) * share)), 2048):
            found = [len(exact[int(q)] & set(two_stage_top_k(matrix[q], matrix, codes, prefilter, 10,
                                                              candidates)[0].tolist())) / 10 for q in queries]
            rows.append({"dims": dims, "candidates": candidates, "recall_at_10": round(float(np.mean(found)), 4)})
            print(f"  real tweets: {len(matrix):,} e5 vectors, {dims}-d codes, {candidates:5} candidates: "
                  f"recall@10 {rows[-1]['recall_at_10']}", flush=True)
    return {"texts": len(matrix), "embed_seconds": round(embed_s, 1), "runs": rows}


# ----------------------------------------------------------------------------- accuracy
def accuracy(embedder: Embedder, name: str, split: str, posts: int = 4000, seed: int = 1) -> dict[str, Any]:
    """Top-3 on held-out feed mentions. `split` "last-20%": the newest fifth is held out (its wordings
    were all seen answered); "unseen-wording": per language and topic, every mention generated from one
    wording is held out and only the other wordings are answered (a paraphrase test)."""
    from sandbox.feed import BRAND_NAME, FeedGenerator
    from sandbox.saved_replies import SAVED_REPLIES

    feed = [p for p in FeedGenerator(seed).posts(posts) if p.category in TOPICS and p.customer is not None]
    if split == "unseen-wording":
        held: dict[tuple[str, str], str] = {}
        for p in feed:
            held[p.lang, p.category] = max(held.get((p.lang, p.category), ""), p.template)
        feed = [p for p in feed if p.template != held[p.lang, p.category]] + \
               [p for p in feed if p.template == held[p.lang, p.category]]
        cut = sum(1 for p in feed if p.template != held[p.lang, p.category])
    else:
        cut = int(len(feed) * 0.8)
    url = f"sqlite:///{tempfile.mkdtemp()}/accuracy.db"
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    index = AnswerIndex(embedder, clock=lambda: NOW, refresh_seconds=0)
    hits = top1 = 0
    per_language: dict[str, list[int]] = {"en": [0, 0], "de": [0, 0]}
    with sessions.begin() as session:
        agent = User(username="agent", password_hash="x", role="agent")
        session.add(agent)
        saved = {}
        for (lang, topic), (title, body) in SAVED_REPLIES.items():
            saved[lang, topic] = SavedReply(name=title, text=body, language=lang)
            session.add(saved[lang, topic])
        session.flush()
        authors: dict[str, Author] = {}
        rows = []
        for n, post in enumerate(feed):
            assert post.customer is not None
            author = authors.get(post.author)
            if author is None:
                author = authors[post.author] = Author(platform="x", external_id=f"a-{post.author}",
                                                       handle=post.author, display_name=post.customer.display_name)
                session.add(author)
            created = NOW - timedelta(minutes=len(feed) - n)
            mention = Mention(platform="x", external_id=f"p{post.seq}", brand=BRAND_NAME, source="x:feed",
                              text=post.text, language=post.lang, created_at=created, author=author,
                              conversation_id=f"p{post.seq}", sentiment_label="neutral")
            session.add(mention)
            rows.append((mention, post))
        session.flush()
        for mention, post in rows[:cut]:
            session.add(QueueItem(mention_id=mention.id, brand=BRAND_NAME, state="answered", priority=0.5,
                                  created_at=mention.created_at))
            template = saved[post.lang, post.category]
            session.add(Reply(mention_id=mention.id, user_id=agent.id, platform="x", text=template.text, state="sent",
                              idempotency_key=uuid.uuid4().hex, created_at=mention.created_at,
                              sent_at=mention.created_at + timedelta(seconds=30), saved_reply_id=template.id))
        session.flush()
        start = time.perf_counter()
        index.partition(session, BRAND_NAME)  # embeds the answered mentions (none are stored yet)
        embed_s = time.perf_counter() - start
        for mention, post in rows[cut:]:
            want = saved[post.lang, post.category].id
            found = [c.saved_reply_id for c in suggest(session, index, mention, agent, now=NOW)]
            hits += want in found
            top1 += bool(found) and found[0] == want
            per_language[post.lang][0] += want in found
            per_language[post.lang][1] += 1
    engine.dispose()
    held_out = len(rows) - cut
    result = {"embedder": name, "split": split, "answered": cut, "held_out": held_out,
              "top3": round(hits / held_out, 4),
              "top1": round(top1 / held_out, 4), "embed_seconds": round(embed_s, 1),
              **{f"top3_{lang}": round(h / t, 4) if t else None for lang, (h, t) in per_language.items()}}
    print(f"  {name:14} {split:15} answered {cut:5}  held out {held_out:4}  top-3 {result['top3']:.3f}  top-1 "
          f"{result['top1']:.3f}  (en {result['top3_en']}, de {result['top3_de']}; target top-3 >= 0.80)", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Suggested replies: latency at 1M answered and top-3 accuracy.")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--recall-texts", type=int, default=20_000, help="real tweets for the prefilter's recall "
                        "(0: skip)")
    args = parser.parse_args()
    out: dict[str, Any] = {"cpu": cpu_kind(), "latency": {}, "accuracy": []}
    print(f"CPU: {out['cpu']}")
    if not args.skip_accuracy:
        from models.sentiment.classifier import EmbeddingClassifier

        print("top-3 accuracy on held-out mentions of the demo feed:")
        encoder = EmbeddingClassifier()
        for split in ("last-20%", "unseen-wording"):
            out["accuracy"].append(accuracy(encoder, "default (e5)", split))
            out["accuracy"].append(accuracy(HashEmbedder(), "hash-v1", split))
    if args.recall_texts:
        print("prefilter recall on real sentence vectors:")
        out["real_recall"] = real_recall(args.recall_texts)
    if not args.skip_latency:
        print(f"latency at {args.size:,} answered mentions:")
        for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
            out["latency"][backend] = latency(backend, args.size)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
