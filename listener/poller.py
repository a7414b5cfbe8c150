"""Polling one source: fetch -> dedupe -> classify -> store -> intake -> cursor, atomically.

The mentions of a poll, what the injected intake (`IntakeLike`) does with them (the review queue's intake,
responders.queue.intake: rank, queue, close what the brand answered) and the advanced cursor are
written in ONE transaction, so a crash at any point either keeps all of it or none of it; the next
poll then starts from the stored cursor and `ON CONFLICT DO NOTHING` on (platform, external_id)
drops what was already seen. Classification happens before the write transaction (it is the slow
part and needs no lock). The poller knows nothing of queue items: listening stops at the store.
A classifier with `classify_with_raw` (models/sentiment/adaptive.py: it adapts to each brand's class
mix) is given the mentions' brands and hands back the raw posteriors too, stored beside the scores;
one with `classify_scored` also hands back its sentence vectors, stored (int8, models/vectors.py) in
the same transaction for suggested replies.

Edits: a mention whose `revision` is newer than the stored row's (X gives an edited post a new id;
the adapter reports it under the chain's first id) updates that row's text, raw body and scores in
the same transaction, and the intake re-ranks its open item: an edit is never a second mention.
An `interrupted` fetch (a rate limit or read budget after some pages) is stored like any other; the
result then carries the limit's `retry_at`, which the scheduler waits for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from sqlalchemy import case, or_, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from listener import metrics
from listener.platforms.base import PlatformAdapter, PlatformError, RateLimited, Source
from models.db import insert_into, pow2_batches
from models.domain import MentionData, aware, clean_json, clean_text
from models.orm import Author, Mention, PollCursor, utcnow
from models.vectors import store_vectors

log = logging.getLogger(__name__)
CHUNK = 128  # rows per statement at most, in power-of-two batches (models.db.pow2_batches): 8 sizes


class SentimentLike(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def negative(self) -> float: ...
    @property
    def neutral(self) -> float: ...
    @property
    def positive(self) -> float: ...
    @property
    def complaint(self) -> float: ...


class ClassifierLike(Protocol):
    def classify(self, texts: list[str]) -> Sequence[SentimentLike]: ...


Raw = tuple[float, float, float]  # the classifier's posteriors before a brand's prior shift


@dataclass(frozen=True)
class NewMention:
    """A mention this poll stored for the first time, as the intake receives it."""

    mention_id: int
    author_id: int
    data: MentionData
    negative: float | None  # the classifier's scores; None when it failed
    complaint: float | None


@dataclass(frozen=True)
class Admitted:
    queued: int = 0  # new queue items
    closed: int = 0  # open items the brand's new posts answered


class IntakeLike(Protocol):
    """What happens to newly stored mentions, inside the poll's transaction (responders.queue.intake)."""

    def admit(self, session: Session, new: Sequence[NewMention], now: datetime) -> Admitted: ...

    def revise(self, session: Session, mention_ids: Sequence[int], now: datetime) -> int:
        """Stored mentions whose text an edit changed: re-rank their open items; returns how many."""
        ...


@dataclass
class PollResult:
    source: str
    fetched: int = 0
    new: int = 0
    duplicates: int = 0
    own: int = 0
    queued: int = 0
    closed_by_own_reply: int = 0
    edited: int = 0  # stored mentions whose text a newer revision replaced
    cursor: str | None = None
    error: str | None = None
    retry_at: datetime | None = None
    warnings: list[str] = field(default_factory=list)


class Poller:
    """Runs polls of the sources it is given; every dependency comes in through the constructor."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        classifier: ClassifierLike,
        *,
        intake: IntakeLike,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions, self.classifier, self.intake, self.clock = sessions, classifier, intake, clock

    # ------------------------------------------------------------------ public

    def cursor(self, source: str) -> str | None:
        with self.sessions() as session:
            return session.scalar(select(PollCursor.cursor).where(PollCursor.source == source))

    def poll_once(self, adapter: PlatformAdapter, source: Source) -> PollResult:
        """One poll of `source`. Platform errors are recorded on the source and re-raised."""
        result = PollResult(source=source.name)
        cursor = self.cursor(source.name)
        try:
            fetched = adapter.fetch(source, cursor)
        except PlatformError as exc:
            metrics.POLL_ERRORS.labels(source.name, type(exc).__name__).inc()
            self._record_failure(source.name, exc)
            log.warning("poll %s failed, cursor unchanged at %s: %s", source.name, cursor, exc)
            raise
        result.fetched = len(fetched.mentions)
        mentions = self._clean(fetched.mentions, result)
        fresh, revised = self._unseen(mentions)
        result.duplicates = len(mentions) - len(fresh) - len(revised)
        sentiments, raws, vectors = self._classify([m for m in [*fresh, *revised.values()] if not m.is_own], result)
        stopped = fetched.interrupted
        with self.sessions.begin() as session:
            self._store(session, fresh, sentiments, raws, result)
            self._revise(session, revised, sentiments, raws, result)
            self._store_vectors(session, [*fresh, *revised.values()], vectors)
            self._advance(session, source.name, fetched.next_cursor or cursor, stopped)
        result.cursor = fetched.next_cursor or cursor
        if stopped is not None:
            metrics.POLL_ERRORS.labels(source.name, type(stopped).__name__).inc()
            result.error, result.retry_at = f"{type(stopped).__name__}: {stopped}", stopped.retry_at
            log.warning("poll %s stopped early, what was read is kept (the cursor records the rest): %s",
                        source.name, stopped)
        metrics.MENTIONS_INGESTED.labels(source.name).inc(result.new)
        metrics.DUPLICATES_SKIPPED.labels(source.name).inc(result.duplicates)
        log.info("poll %s: %d fetched, %d new, %d edited, %d duplicates, %d queued", source.name, result.fetched,
                 result.new, result.edited, result.duplicates, result.queued)
        return result

    # ------------------------------------------------------------------ steps

    def _clean(self, mentions: list[MentionData], result: PollResult) -> list[MentionData]:
        """Dedupe within the batch (two queries, one post; an edit chain keeps its newest revision) and
        make every text storable."""
        seen: dict[tuple[str, str], MentionData] = {}
        for mention in mentions:
            key = (mention.platform, mention.external_id)
            if key in seen and not _newer(mention, seen[key].revision, seen[key].edited_at):
                continue
            text, reasons = clean_text(mention.text)
            if reasons:
                note = f"{mention.platform} {mention.external_id}: " + "; ".join(reasons)
                log.warning("stored with changes: %s", note)
                result.warnings.append(note)
                mention = replace(mention, text=text)
            if mention.raw:
                mention = replace(mention, raw=clean_json(mention.raw))
            seen[key] = mention
        return list(seen.values())

    def _unseen(self, mentions: list[MentionData]) -> tuple[list[MentionData], dict[int, MentionData]]:
        """The mentions not stored yet, and stored ones (by row id) that arrive in a newer revision."""
        if not mentions:
            return [], {}
        known: dict[tuple[str, str], Any] = {}
        with self.sessions() as session:
            for batch in pow2_batches(mentions, CHUNK):
                keys = [(m.platform, m.external_id) for m in batch]
                rows = session.execute(
                    select(Mention.id, Mention.platform, Mention.external_id, Mention.revision_id,
                           Mention.edited_at).where(tuple_(Mention.platform, Mention.external_id).in_(keys))
                )
                known.update(((r.platform, r.external_id), r) for r in rows)
        fresh, revised = [], {}
        for m in mentions:
            row = known.get((m.platform, m.external_id))
            if row is None:
                fresh.append(m)
            elif _newer(m, row.revision_id, row.edited_at):
                revised[row.id] = m
        return fresh, revised

    def _classify(self, inbound: list[MentionData], result: PollResult
                  ) -> tuple[dict[str, SentimentLike], dict[str, Raw], dict[str, np.ndarray]]:
        """Sentiment, raw posteriors and sentence vectors per external id, as far as the classifier
        offers them: `classify_scored` (models/sentiment/adaptive.py) gives all three, `classify_with_raw`
        the first two, `classify` only sentiment. A failing classifier leaves mentions unclassified, never
        unstored."""
        if not inbound:
            return {}, {}, {}
        texts, brands = [m.text for m in inbound], [m.brand for m in inbound]
        with_vectors = getattr(self.classifier, "classify_scored", None)
        with_raw = getattr(self.classifier, "classify_with_raw", None)
        raw: Any = None
        vecs: Any = None
        try:
            with metrics.CLASSIFY_SECONDS.time():
                if callable(with_vectors):
                    scored, raw, vecs = with_vectors(texts, brands)
                elif callable(with_raw):
                    scored, raw = with_raw(texts, brands)
                else:
                    scored = self.classifier.classify(texts)
            sentiments = {m.external_id: s for m, s in zip(inbound, scored, strict=True)}
            raws = {} if raw is None else {m.external_id: (float(r[0]), float(r[1]), float(r[2]))
                                           for m, r in zip(inbound, raw, strict=True)}
            vectors = {} if vecs is None else {m.external_id: v for m, v in zip(inbound, vecs, strict=True)}
        except Exception as exc:  # the classifier is a plug-in: any failure is contained here
            log.exception("classifier failed; %d mentions stored unclassified", len(inbound))
            result.warnings.append(f"classifier failed: {exc}")
            return {}, {}, {}
        return sentiments, raws, vectors

    def _store_vectors(self, session: Session, mentions: list[MentionData], vectors: dict[str, np.ndarray]) -> None:
        """The sentence vectors of the mentions just stored or revised (suggested replies search them)."""
        key = getattr(self.classifier, "vector_key", None)
        if not vectors or not key:
            return
        refs = [(m.platform, m.external_id) for m in mentions if m.external_id in vectors]
        ids: dict[str, int] = {}
        for platform in {p for p, _ in refs}:
            wanted = [e for p, e in refs if p == platform]
            for start in range(0, len(wanted), CHUNK):
                ids.update(session.execute(select(Mention.external_id, Mention.id).where(
                    Mention.platform == platform, Mention.external_id.in_(wanted[start:start + CHUNK]))).all())
        store_vectors(session, str(key), ((ids[e], vectors[e]) for _, e in refs if e in ids))

    def _store(self, session: Session, mentions: list[MentionData], sentiments: dict[str, SentimentLike],
               raws: dict[str, Raw], result: PollResult) -> None:
        if not mentions:
            return
        now = self.clock()
        author_ids = self._upsert_authors(session, mentions, now)

        def author_of(m: MentionData) -> int:
            return author_ids[(m.platform, m.author.external_id)]

        rows = [_mention_row(m, author_of(m), sentiments.get(m.external_id), raws.get(m.external_id), now)
                for m in mentions]
        inserted: dict[str, int] = {}
        for batch in pow2_batches(rows, CHUNK):
            statement = (
                insert_into(session, Mention)
                .on_conflict_do_nothing(index_elements=["platform", "external_id"])
                .returning(Mention.__table__.c.id, Mention.__table__.c.external_id)
            )
            for hit in session.execute(statement, batch).all():
                inserted[hit.external_id] = hit.id
        result.new = len(inserted)
        result.duplicates += len(mentions) - len(inserted)
        new = []
        for m in mentions:
            if m.external_id in inserted:
                sentiment = sentiments.get(m.external_id)
                new.append(NewMention(inserted[m.external_id], author_of(m), m,
                                      sentiment.negative if sentiment else None,
                                      sentiment.complaint if sentiment else None))
        result.own = sum(1 for m in new if m.data.is_own)
        if new:
            admitted = self.intake.admit(session, new, now)
            result.queued, result.closed_by_own_reply = admitted.queued, admitted.closed

    def _revise(self, session: Session, revised: dict[int, MentionData], sentiments: dict[str, SentimentLike],
                raws: dict[str, Raw], result: PollResult) -> None:
        """Newer revisions of stored mentions: the row takes their text, body and scores (only if still
        older: a concurrent poll may have stored an even newer one)."""
        if not revised:
            return
        changed = []
        for row_id, m in revised.items():
            row = session.get(Mention, row_id, with_for_update=True)
            if row is None or not _newer(m, row.revision_id, row.edited_at):
                continue
            sentiment = sentiments.get(m.external_id)
            row.text, row.raw, row.revision_id, row.edited_at = m.text, m.raw or None, m.revision, m.edited_at
            row.hidden = m.hidden
            if sentiment is not None:
                row.sentiment_label, row.score_negative = sentiment.label, sentiment.negative
                row.score_neutral, row.score_positive = sentiment.neutral, sentiment.positive
                row.complaint_score = sentiment.complaint
                row.raw_negative, row.raw_neutral, row.raw_positive = raws.get(m.external_id, (None, None, None))
            changed.append(row_id)
        session.flush()
        result.edited = len(changed)
        if changed:
            self.intake.revise(session, changed, self.clock())

    def _upsert_authors(
        self, session: Session, mentions: list[MentionData], now: datetime
    ) -> dict[tuple[str, str], int]:
        latest: dict[tuple[str, str], MentionData] = {}
        for m in mentions:
            latest[(m.platform, m.author.external_id)] = m
        rows = [
            {"platform": key[0], "external_id": key[1], "handle": m.author.handle,
             "display_name": m.author.display_name, "followers": m.author.followers,
             "profile_url": m.author.profile_url, "is_brand": m.is_own, "first_seen_at": now, "updated_at": now}
            for key, m in latest.items()
        ]
        ids: dict[tuple[str, str], int] = {}
        table = Author.__table__.c
        for batch in pow2_batches(rows, CHUNK):
            statement = insert_into(session, Author)
            new = statement.excluded
            # updated_at moves only when the identity changes (the link-proposal job re-keys on it),
            # not with every follower count
            renamed = or_(table.handle.is_distinct_from(new.handle),
                          table.display_name.is_distinct_from(new.display_name))
            statement = statement.on_conflict_do_update(
                index_elements=["platform", "external_id"],
                set_={"handle": new.handle, "display_name": new.display_name, "followers": new.followers,
                      "updated_at": case((renamed, new.updated_at), else_=table.updated_at)},
            ).returning(table.id, table.platform, table.external_id)
            for row in session.execute(statement, batch).all():
                ids[(row.platform, row.external_id)] = row.id
        return ids

    def _advance(self, session: Session, source: str, cursor: str | None, stopped: RateLimited | None) -> None:
        """Store the cursor; a poll that stopped early at a limit records it (and its retry_at) too."""
        now = self.clock()
        state: dict[str, Any] = {"retry_at": stopped.retry_at.isoformat()} if stopped is not None else {}
        error = f"{type(stopped).__name__}: {stopped}"[:2000] if stopped is not None else None
        statement = insert_into(session, PollCursor).values(
            source=source, cursor=cursor, state=state, last_success_at=now, consecutive_failures=0, updated_at=now,
            last_error=error, last_error_at=now if error else None,
        )
        changes: dict[str, Any] = {"cursor": cursor, "last_success_at": now, "consecutive_failures": 0,
                                   "last_error": error, "updated_at": now, "state": state}
        if error:
            changes["last_error_at"] = now
        session.execute(statement.on_conflict_do_update(index_elements=["source"], set_=changes))

    def _record_failure(self, source: str, exc: PlatformError) -> None:
        now = self.clock()
        message = f"{type(exc).__name__}: {exc}"
        state: dict[str, Any] = {"retry_at": exc.retry_at.isoformat()} if isinstance(exc, RateLimited) else {}
        with self.sessions.begin() as session:
            row = session.scalar(select(PollCursor).where(PollCursor.source == source))
            if row is None:
                row = PollCursor(source=source, cursor=None, state={}, consecutive_failures=0)
                session.add(row)
            row.last_error, row.last_error_at = message[:2000], now
            row.consecutive_failures = (row.consecutive_failures or 0) + 1
            row.state = {**(row.state or {}), **state}


def _newer(m: MentionData, stored_revision: str | None, stored_edited_at: datetime | None) -> bool:
    """Whether `m` is a later revision than the stored one (an edit read after the original)."""
    if m.revision is None or m.revision == stored_revision:
        return False
    if stored_edited_at is None or m.edited_at is None:
        return m.edited_at is not None or stored_revision is None
    return aware(m.edited_at) > aware(stored_edited_at)


def _mention_row(m: MentionData, author_id: int, sentiment: SentimentLike | None, raw: Raw | None,
                 now: datetime) -> dict[str, Any]:
    return {
        "platform": m.platform, "external_id": m.external_id, "brand": m.brand, "source": m.source,
        "text": m.text, "language": m.language, "created_at": m.created_at, "fetched_at": now,
        "author_id": author_id, "conversation_id": m.conversation_id, "in_reply_to_id": m.in_reply_to_id,
        "permalink": m.permalink, "is_own": m.is_own, "raw": m.raw or None, "hidden": m.hidden,
        "revision_id": m.revision, "edited_at": m.edited_at,
        "sentiment_label": sentiment.label if sentiment else None,
        "score_negative": sentiment.negative if sentiment else None,
        "score_neutral": sentiment.neutral if sentiment else None,
        "score_positive": sentiment.positive if sentiment else None,
        "complaint_score": sentiment.complaint if sentiment else None,
        "raw_negative": raw[0] if raw else None, "raw_neutral": raw[1] if raw else None,
        "raw_positive": raw[2] if raw else None,
        "priority": None, "priority_reasons": None,
    }
