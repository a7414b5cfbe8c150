"""Polling one source: fetch -> dedupe -> classify -> rank -> store + queue + cursor, atomically.

The mentions of a poll, their queue items and the advanced cursor are written in ONE transaction,
so a crash at any point either keeps all of it or none of it; the next poll then starts from the
stored cursor and `ON CONFLICT DO NOTHING` on (platform, external_id) drops what was already seen.
Classification happens before the write transaction (it is the slow part and needs no lock).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, case, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from listener import metrics
from listener.platforms.base import PlatformAdapter, PlatformError, RateLimited, Source
from models.config import RankingConfig
from models.db import pow2_batches, pow2_padded
from models.domain import OPEN_QUEUE_STATES, MentionData, QueueState, clean_json, clean_text
from models.history import histories, histories_at
from models.orm import AuditEvent, Author, Base, Mention, PollCursor, QueueItem, utcnow
from models.ranking import CustomerHistory, RankInput, rank

log = logging.getLogger(__name__)
CHUNK = 128  # rows per statement at most, in power-of-two batches (models.db.pow2_batches): 8 sizes
RERANK_PAGE = 1_000
OPEN_STATES = OPEN_QUEUE_STATES


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


@dataclass
class PollResult:
    source: str
    fetched: int = 0
    new: int = 0
    duplicates: int = 0
    own: int = 0
    queued: int = 0
    closed_by_own_reply: int = 0
    cursor: str | None = None
    error: str | None = None
    retry_at: datetime | None = None
    warnings: list[str] = field(default_factory=list)


def _insert(session: Session, model: type[Base]) -> Any:
    """A Core INSERT into `model`'s table for the session's backend (with ON CONFLICT support).

    Core, not an ORM bulk insert: the ORM leaves a row's None columns out of its INSERT and splits
    a batch wherever that changes, which makes the batch sizes (and SQL texts) unbounded again.
    """
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(cast(Table, model.__table__))


class Poller:
    """Runs polls of the sources it is given; every dependency comes in through the constructor."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        classifier: ClassifierLike,
        *,
        ranking: RankingConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions, self.classifier, self.clock = sessions, classifier, clock
        self.ranking = ranking or RankingConfig()

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
        fresh = self._unseen(mentions)
        result.duplicates = len(mentions) - len(fresh)
        sentiments = self._classify([m for m in fresh if not m.is_own], result)
        with self.sessions.begin() as session:
            self._store(session, fresh, sentiments, result)
            self._advance(session, source.name, fetched.next_cursor or cursor)
        result.cursor = fetched.next_cursor or cursor
        metrics.MENTIONS_INGESTED.labels(source.name).inc(result.new)
        metrics.DUPLICATES_SKIPPED.labels(source.name).inc(result.duplicates)
        log.info("poll %s: %d fetched, %d new, %d duplicates, %d queued", source.name, result.fetched,
                 result.new, result.duplicates, result.queued)
        return result

    # ------------------------------------------------------------------ steps

    def _clean(self, mentions: list[MentionData], result: PollResult) -> list[MentionData]:
        """Dedupe within the batch (two queries, one post) and make every text storable."""
        seen: dict[tuple[str, str], MentionData] = {}
        for mention in mentions:
            key = (mention.platform.value, mention.external_id)
            if key in seen:
                continue
            text, reasons = clean_text(mention.text)
            if reasons:
                note = f"{mention.platform.value} {mention.external_id}: " + "; ".join(reasons)
                log.warning("stored with changes: %s", note)
                result.warnings.append(note)
                mention = replace(mention, text=text)
            if mention.raw:
                mention = replace(mention, raw=clean_json(mention.raw))
            seen[key] = mention
        return list(seen.values())

    def _unseen(self, mentions: list[MentionData]) -> list[MentionData]:
        if not mentions:
            return []
        known: set[tuple[str, str]] = set()
        with self.sessions() as session:
            for batch in pow2_batches(mentions, CHUNK):
                keys = [(m.platform.value, m.external_id) for m in batch]
                rows = session.execute(
                    select(Mention.platform, Mention.external_id).where(
                        tuple_(Mention.platform, Mention.external_id).in_(keys)
                    )
                )
                known.update((r.platform, r.external_id) for r in rows)
        return [m for m in mentions if (m.platform.value, m.external_id) not in known]

    def _classify(self, inbound: list[MentionData], result: PollResult) -> dict[str, SentimentLike]:
        """Sentiment per external id. A failing classifier leaves mentions unclassified, never unstored."""
        if not inbound:
            return {}
        try:
            with metrics.CLASSIFY_SECONDS.time():
                scored = self.classifier.classify([m.text for m in inbound])
        except Exception as exc:  # the classifier is a plug-in: any failure is contained here
            log.exception("classifier failed; %d mentions stored unclassified", len(inbound))
            result.warnings.append(f"classifier failed: {exc}")
            return {}
        return {m.external_id: s for m, s in zip(inbound, scored, strict=True)}

    def _store(self, session: Session, mentions: list[MentionData], sentiments: dict[str, SentimentLike],
               result: PollResult) -> None:
        if not mentions:
            return
        now = self.clock()
        author_ids = self._upsert_authors(session, mentions, now)

        def author_of(m: MentionData) -> int:
            return author_ids[(m.platform.value, m.author.external_id)]

        inbound_authors = {author_of(m) for m in mentions if not m.is_own}
        known = histories(session, inbound_authors, before=min(m.created_at for m in mentions))
        rows = []
        for m in mentions:
            row = _mention_row(m, author_of(m), sentiments.get(m.external_id), now)
            if not m.is_own:
                row["priority"], row["priority_reasons"] = self._rank(
                m.text, row["score_negative"], row["complaint_score"], m.created_at, m.author.followers,
                known[author_of(m)], now)
            rows.append(row)
        inserted: dict[str, int] = {}
        for batch in pow2_batches(rows, CHUNK):
            statement = (
                _insert(session, Mention)
                .on_conflict_do_nothing(index_elements=["platform", "external_id"])
                .returning(Mention.__table__.c.id, Mention.__table__.c.external_id)
            )
            for hit in session.execute(statement, batch).all():
                inserted[hit.external_id] = hit.id
        result.new = len(inserted)
        result.duplicates += len(mentions) - len(inserted)

        new_rows = [r for r in rows if r["external_id"] in inserted]
        items = [
            {"mention_id": inserted[r["external_id"]], "brand": r["brand"], "state": QueueState.NEW.value,
             "priority": r["priority"], "created_at": now, "updated_at": now, "version": 1}
            for r in new_rows if not r["is_own"]
        ]
        result.own = len(new_rows) - len(items)
        for item_batch in pow2_batches(items, CHUNK):
            session.execute(_insert(session, QueueItem).on_conflict_do_nothing(index_elements=["mention_id"]),
                            item_batch)
        result.queued = len(items)
        new_mentions = [m for m in mentions if m.external_id in inserted]
        result.closed_by_own_reply = self._close_answered(session, [m for m in new_mentions if m.is_own], now)

    def _rank(self, text: str, negative: float | None, complaint: float | None, created_at: datetime,
              followers: int | None, history: CustomerHistory, now: datetime) -> tuple[float, list[str]]:
        ranking = rank(RankInput(text=text, negative=negative or 0.0, complaint=complaint, created_at=created_at,
                                 followers=followers, history=history), now, self.ranking)
        return ranking.priority, ranking.reasons if negative is not None else ["not classified yet", *ranking.reasons]

    def rerank_open(self, limit: int = 20_000) -> int:
        """Recompute the priority of open queue items: waiting time grows, customers' histories change.

        Up to `limit` open items, oldest first, in pages of RERANK_PAGE (keyset on the item id, one
        transaction each), so memory and lock time stay bounded however long the queue is.
        """
        now = self.clock()
        done, after = 0, None
        while done < limit:
            size = min(RERANK_PAGE, limit - done)
            with self.sessions.begin() as session:
                page = self._rerank_page(session, after, size, now)
            done += len(page)
            if len(page) < size:
                break
            after = page[-1]
        return done

    def _rerank_page(self, session: Session, after: int | None, size: int, now: datetime) -> list[int]:
        """Rerank the next `size` open items with an id above `after`; returns their ids."""
        query = (
            select(QueueItem.id.label("item_id"), Mention.id, Mention.text, Mention.score_negative,
                   Mention.complaint_score, Mention.created_at, Mention.author_id, Author.followers)
            .join(Mention, QueueItem.mention_id == Mention.id).join(Author, Mention.author_id == Author.id)
            .where(QueueItem.state.in_(OPEN_STATES)).order_by(QueueItem.id).limit(size)
        )
        if after is not None:
            query = query.where(QueueItem.id > after)
        rows = session.execute(query).all()
        if not rows:
            return []
        known = histories_at(session, {(r.author_id, r.created_at) for r in rows})
        mentions, items = [], []
        for r in rows:
            priority, reasons = self._rank(r.text, r.score_negative, r.complaint_score, r.created_at,
                                           r.followers, known[(r.author_id, r.created_at)], now)
            mentions.append({"m_id": r.id, "priority": priority, "priority_reasons": reasons})
            items.append({"q_id": r.item_id, "priority": priority})
        mention_table, item_table = Base.metadata.tables["mentions"], Base.metadata.tables["queue_items"]
        session.execute(mention_table.update().where(mention_table.c.id == bindparam("m_id"))
                        .values(priority=bindparam("priority"), priority_reasons=bindparam("priority_reasons")),
                        mentions)
        session.execute(item_table.update().where(item_table.c.id == bindparam("q_id"))
                        .values(priority=bindparam("priority")), items)
        return [r.item_id for r in rows]

    def _upsert_authors(
        self, session: Session, mentions: list[MentionData], now: datetime
    ) -> dict[tuple[str, str], int]:
        latest: dict[tuple[str, str], MentionData] = {}
        for m in mentions:
            latest[(m.platform.value, m.author.external_id)] = m
        rows = [
            {"platform": key[0], "external_id": key[1], "handle": m.author.handle,
             "display_name": m.author.display_name, "followers": m.author.followers,
             "profile_url": m.author.profile_url, "is_brand": m.is_own, "first_seen_at": now, "updated_at": now}
            for key, m in latest.items()
        ]
        ids: dict[tuple[str, str], int] = {}
        table = Author.__table__.c
        for batch in pow2_batches(rows, CHUNK):
            statement = _insert(session, Author)
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

    def _close_answered(self, session: Session, own: list[MentionData], now: datetime) -> int:
        """The brand answered on the platform directly: close the answered mentions' queue items."""
        targets = [(m.platform.value, m.in_reply_to_id) for m in own if m.in_reply_to_id]
        if not targets:
            return 0
        items = session.scalars(
            select(QueueItem).join(Mention, QueueItem.mention_id == Mention.id).where(
                tuple_(Mention.platform, Mention.external_id).in_(pow2_padded(targets)),
                QueueItem.state.in_([QueueState.NEW.value, QueueState.CLAIMED.value]),
            )
        ).all()
        for item in items:
            if item.state == QueueState.NEW.value:
                item.transition(QueueState.CLAIMED, now=now)
            item.transition(QueueState.ANSWERED, now=now)
            session.add(AuditEvent(action="answered_on_platform", object_type="queue_item",
                                   object_id=str(item.id), at=now, detail={"mention_id": item.mention_id}))
        return len(items)

    def _advance(self, session: Session, source: str, cursor: str | None) -> None:
        now = self.clock()
        statement = _insert(session, PollCursor).values(
            source=source, cursor=cursor, state={}, last_success_at=now, consecutive_failures=0, updated_at=now
        )
        session.execute(statement.on_conflict_do_update(
            index_elements=["source"],
            set_={"cursor": cursor, "last_success_at": now, "consecutive_failures": 0, "last_error": None,
                  "updated_at": now},
        ))

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


def _mention_row(m: MentionData, author_id: int, sentiment: SentimentLike | None, now: datetime) -> dict[str, Any]:
    return {
        "platform": m.platform.value, "external_id": m.external_id, "brand": m.brand, "source": m.source,
        "text": m.text, "language": m.language, "created_at": m.created_at, "fetched_at": now,
        "author_id": author_id, "conversation_id": m.conversation_id, "in_reply_to_id": m.in_reply_to_id,
        "permalink": m.permalink, "is_own": m.is_own, "raw": m.raw or None,
        "sentiment_label": sentiment.label if sentiment else None,
        "score_negative": sentiment.negative if sentiment else None,
        "score_neutral": sentiment.neutral if sentiment else None,
        "score_positive": sentiment.positive if sentiment else None,
        "complaint_score": sentiment.complaint if sentiment else None,
        "priority": None, "priority_reasons": None,
    }
