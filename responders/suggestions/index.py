"""The in-process index of answered mentions that suggested replies search.

One partition per (brand, vector space): the int8 sentence vectors (models/vectors.py) of the brand's
customer mentions that got a public answer, either a reply sent from openear (`replies`, state sent)
or the brand's own post answering it on the platform (an own mention whose `in_reply_to_id` is the
mention's id). A partition loads on first use and then grows incrementally: each refresh reads only
answers newer than its high-water marks (sent replies by `sent_at`, own answers by row id, each with
an overlap for transactions that committed late; what is re-read is added once), so a search at 1M
answered mentions costs one int8 matrix-vector product: exact up to PREFILTER_ROWS answered mentions,
beyond that a scan of 96-byte principal-component codes whose best CANDIDATES are ranked exactly
(bench/suggest.py measures speed and recall).

Why in process and not pgvector: the embedded default is SQLite, the PostgreSQL servers here have no
`vector` extension, and an exact int8 scan of 1M × 384 takes tens of milliseconds on 2 cores, so one
code path serves both backends. The index holds ids only: every hit is re-read from the store, so a
mention erased since (GDPR erasure, retention) never comes back, whatever the index still holds.
Mentions that have no stored vector yet (stored before migration 0014, or by a classifier without
vectors) are embedded with the app's embedder when their partition loads, and the vectors are stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from models.domain import ReplyState
from models.orm import Mention, MentionVector, Reply
from models.vectors import Embedder, Prefilter, quantize, store_vectors, top_k, two_stage_top_k

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=10)  # sent replies re-read behind the newest one seen (late commits)
OWN_SLACK = 1000  # own answers re-read below the newest id seen (polls of two sources commit out of order)
EMBED_BATCH = 256
TEXT_CACHE = 10_000
PREFILTER_ROWS = 200_000  # from here on a search scans short codes first (models/vectors.py Prefilter)
CANDIDATES = 2048  # rows the prefilter hands to the exact ranking


@dataclass
class Partition:
    """One brand's answered mentions in one vector space (see the module docstring)."""

    brand: str
    key: str
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int8))
    size: int = 0
    sent_mark: datetime | None = None  # newest reply sent_at read
    own_mark: int = 0  # newest mention id when own answers were last read
    refreshed_at: datetime | None = None
    known: set[int] = field(default_factory=set)  # the ids in the partition
    prefilter: Prefilter | None = None  # from PREFILTER_ROWS rows on (models/vectors.py)
    codes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int8))

    def add(self, ids: list[int], rows: np.ndarray) -> None:
        """Append mentions not in the partition yet (capacity doubles, so appends are amortised O(1))."""
        if not ids:
            return
        keep = []
        for row, mention_id in enumerate(ids):  # one row per mention
            if mention_id not in self.known:
                self.known.add(mention_id)
                keep.append(row)
        if not keep:
            return
        new_ids, new_rows = np.asarray(ids, np.int64)[keep], rows[keep]
        need = self.size + len(new_ids)
        if self.matrix.shape[0] < need + 8 or self.matrix.shape[1] != new_rows.shape[1]:
            capacity = max(need + 8, 2 * self.matrix.shape[0], 1024)
            matrix = np.zeros((capacity, new_rows.shape[1]), np.int8)
            ids_buf = np.zeros(capacity, np.int64)
            if self.size and self.matrix.shape[1] == new_rows.shape[1]:
                matrix[:self.size], ids_buf[:self.size] = self.matrix[:self.size], self.ids[:self.size]
            self.matrix, self.ids = matrix, ids_buf
        self.matrix[self.size:need], self.ids[self.size:need] = new_rows, new_ids
        if self.prefilter is not None:
            if self.codes.shape[0] < self.matrix.shape[0]:
                codes = np.zeros((self.matrix.shape[0], self.codes.shape[1]), np.int8)
                codes[:self.size] = self.codes[:self.size]
                self.codes = codes
            self.codes[self.size:need] = self.prefilter.codes(new_rows)
        self.size = need
        if self.prefilter is None and self.size >= PREFILTER_ROWS:
            sample = np.random.default_rng(0).choice(self.size, min(self.size, 50_000), replace=False)
            self.prefilter = Prefilter.fit(self.matrix[np.sort(sample)])
            self.codes = np.zeros((self.matrix.shape[0], self.prefilter.basis.shape[1]), np.int8)
            self.codes[:self.size] = self.prefilter.codes(self.matrix[:self.size])

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The `k` most similar answered mentions: (mention id, cosine), best first."""
        if self.size == 0 or query.shape[0] != self.matrix.shape[1]:
            return []
        padded = -(-self.size // 8) * 8  # zero rows up to a multiple of 8: no copy for the int8 kernel
        if self.prefilter is not None:
            index, sims = two_stage_top_k(query, self.matrix[:padded], self.codes[:padded], self.prefilter, k,
                                          CANDIDATES, rows=self.size)
        else:
            index, sims = top_k(query, self.matrix[:padded], k, rows=self.size)
        return [(int(self.ids[i]), float(s)) for i, s in zip(index, sims, strict=True)]


class AnswerIndex:
    """The partitions of every brand, loaded lazily, refreshed at most every `refresh_seconds`."""

    def __init__(self, embedder: Embedder, *, clock: Callable[[], datetime], refresh_seconds: float = 5.0) -> None:
        self.embedder, self.clock = embedder, clock
        self.refresh_seconds = refresh_seconds
        self._partitions: dict[tuple[str, str], Partition] = {}
        self._texts: dict[tuple[str, str], np.ndarray] = {}
        self._lock = threading.Lock()

    def partition(self, session: Session, brand: str) -> Partition:
        """`brand`'s partition for the embedder's current vector space, up to date within the refresh time.

        Reads (and stores backfilled vectors) through `session`; the caller commits."""
        key = self.embedder.vector_key
        with self._lock:
            part = self._partitions.setdefault((brand, key), Partition(brand, key))
            now = self.clock()
            if part.refreshed_at is None or (now - part.refreshed_at).total_seconds() >= self.refresh_seconds:
                self._refresh(session, part)
                part.refreshed_at = now
            return part

    def text_vectors(self, texts: list[str]) -> np.ndarray:
        """int8 vectors of short texts such as saved replies, cached by text (templates rarely change)."""
        key = self.embedder.vector_key
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if (key, t) not in self._texts]
        if missing:
            made = quantize(np.asarray(self.embedder.embed(missing), np.float32))
            with self._lock:
                if len(self._texts) > TEXT_CACHE:
                    self._texts.clear()
                self._texts.update({(key, t): row for t, row in zip(missing, made, strict=True)})
        with self._lock:
            rows = [self._texts.get((key, t)) for t in texts]
        if any(r is None for r in rows):  # evicted meanwhile: embed again, uncached
            return quantize(np.asarray(self.embedder.embed(texts), np.float32))
        return np.stack([r for r in rows if r is not None]) if rows else np.zeros((0, 0), np.int8)

    def query_vector(self, session: Session, mention: Mention) -> np.ndarray:
        """The int8 vector of `mention` in the embedder's space (stored, or embedded and stored now)."""
        key = self.embedder.vector_key
        stored = session.get(MentionVector, mention.id)
        if stored is not None and stored.model == key:
            return np.frombuffer(stored.data, np.int8)
        vector = np.asarray(self.embedder.embed([mention.text]), np.float32)
        store_vectors(session, key, [(mention.id, vector[0])])
        return quantize(vector)[0]

    # ------------------------------------------------------------------ loading

    def _refresh(self, session: Session, part: Partition) -> None:
        sent_since = part.sent_mark - OVERLAP if part.sent_mark else None
        by_reply = select(Reply.mention_id, Reply.sent_at).join(Mention, Mention.id == Reply.mention_id).where(
            Reply.state == ReplyState.SENT.value, Mention.brand == part.brand, Mention.is_own.is_(False))
        if sent_since is not None:
            by_reply = by_reply.where(Reply.sent_at >= sent_since)
        sent = session.execute(by_reply.order_by(Reply.sent_at)).all()
        own = aliased(Mention)
        by_own = (select(Mention.id, own.id).select_from(own).join(Mention, and_(
            Mention.platform == own.platform, Mention.external_id == own.in_reply_to_id))
            .where(own.id > part.own_mark - OWN_SLACK, own.is_own.is_(True), own.in_reply_to_id.is_not(None),
                   Mention.brand == part.brand, Mention.is_own.is_(False)))
        answered_on_platform = session.execute(by_own).all()
        ids = [int(r[0]) for r in sent if r[0] is not None] + [int(r[0]) for r in answered_on_platform]
        if sent:
            newest = max(r[1] for r in sent if r[1] is not None)
            part.sent_mark = max(part.sent_mark, newest) if part.sent_mark else newest
        if answered_on_platform:
            part.own_mark = max(part.own_mark, max(int(r[1]) for r in answered_on_platform))
        part.own_mark = max(part.own_mark, int(session.scalar(select(func.max(Mention.id))) or 0))
        ids = sorted(set(ids))
        if not ids:
            return
        rows = self._vectors(session, part.key, ids)
        order = [i for i in ids if i in rows]
        if order:
            part.add(order, np.stack([rows[i] for i in order]))

    def _vectors(self, session: Session, key: str, ids: list[int]) -> dict[int, np.ndarray]:
        """int8 vectors of `ids` in space `key`; the missing ones are embedded and stored."""
        found: dict[int, np.ndarray] = {}
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            for mention_id, data in session.execute(select(MentionVector.mention_id, MentionVector.data).where(
                    MentionVector.mention_id.in_(chunk), MentionVector.model == key)):
                found[int(mention_id)] = np.frombuffer(data, np.int8)
        missing = [i for i in ids if i not in found]
        for start in range(0, len(missing), EMBED_BATCH):
            chunk = missing[start:start + EMBED_BATCH]
            texts = dict(session.execute(select(Mention.id, Mention.text).where(Mention.id.in_(chunk))).all())
            present = [i for i in chunk if i in texts]
            if not present:
                continue
            vectors = np.asarray(self.embedder.embed([texts[i] for i in present]), np.float32)
            store_vectors(session, key, zip(present, vectors, strict=True))
            found.update(zip(present, quantize(vectors), strict=True))
        if missing:
            log.info("suggestions: embedded %d answered mentions that had no %s vector", len(missing), key)
        return found
