"""How mentions enter the review queue and stay ranked: the queue's first step and its re-ranking.

The poller (listener.poller) stores each poll's new mentions and then calls `Intake.admit` inside
the same transaction, so a mention, its queue item and the advanced cursor are written together or
not at all. `admit`:

- ranks every new customer mention (models.ranking, with the customer's history before it) and
  opens a `new` queue item for it;
- closes the open items that a new post of the brand's own answers (the team replied on the
  platform itself), audited as `answered_on_platform`.

The brand's own posts and what the platform hides from the public (a comment the page moderated)
are stored but never queued. `revise` re-ranks the open items of mentions an edit changed (the
poller calls it in the poll's transaction). `rerank_open` (a daemon job) and
`rerank_customer` (after a link or merge changes a customer's history) recompute priorities later:
waiting time grows and histories change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from listener.poller import Admitted, NewMention
from models.config import RankingConfig
from models.db import insert_into, pow2_batches, pow2_padded
from models.domain import OPEN_QUEUE_STATES, QueueState
from models.history import Pair, histories, histories_at
from models.orm import Author, Base, Mention, QueueItem, utcnow
from models.ranking import CustomerHistory, RankInput, rank
from responders import audit

CHUNK = 128  # rows per statement at most, in power-of-two batches (models.db.pow2_batches)
RERANK_PAGE = 1_000


@dataclass(frozen=True)
class _Rankable:
    mention_id: int
    author_id: int
    text: str
    negative: float | None
    complaint: float | None
    created_at: datetime
    followers: int | None


class Intake:
    """The queue's intake and ranking; dependencies come in through the constructor."""

    def __init__(self, sessions: sessionmaker[Session], *, ranking: RankingConfig | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.sessions, self.clock = sessions, clock
        self.ranking = ranking or RankingConfig()

    # ------------------------------------------------------------------ intake

    def admit(self, session: Session, new: Sequence[NewMention], now: datetime) -> Admitted:
        """Rank and queue the new customer mentions; close what the new own posts answer."""
        inbound = [m for m in new if not m.data.is_own and not m.data.hidden]
        queued = self._queue(session, inbound, now) if inbound else 0
        closed = self._close_answered(session, [m for m in new if m.data.is_own], now)
        return Admitted(queued=queued, closed=closed)

    def _queue(self, session: Session, inbound: Sequence[NewMention], now: datetime) -> int:
        known = histories(session, {m.author_id for m in inbound}, before=min(m.data.created_at for m in inbound))
        rankables = [_Rankable(m.mention_id, m.author_id, m.data.text, m.negative, m.complaint, m.data.created_at,
                               m.data.author.followers) for m in inbound]
        ranked = self._write_ranks(session, rankables, lambda r: known[r.author_id], now, items=False)
        items = [{"mention_id": m.mention_id, "brand": m.data.brand, "state": QueueState.NEW.value,
                  "priority": ranked[m.mention_id], "created_at": now, "updated_at": now, "version": 1}
                 for m in inbound]
        for batch in pow2_batches(items, CHUNK):
            session.execute(insert_into(session, QueueItem).on_conflict_do_nothing(index_elements=["mention_id"]),
                            batch)
        return len(items)

    def _close_answered(self, session: Session, own: Sequence[NewMention], now: datetime) -> int:
        """The brand answered on the platform directly: close the answered mentions' queue items."""
        targets = [(m.data.platform, m.data.in_reply_to_id) for m in own if m.data.in_reply_to_id]
        if not targets:
            return 0
        items = session.scalars(
            select(QueueItem).join(Mention, QueueItem.mention_id == Mention.id).where(
                tuple_(Mention.platform, Mention.external_id).in_(pow2_padded(targets)),
                QueueItem.state.in_(OPEN_QUEUE_STATES),
            )
        ).all()
        for item in items:
            if item.state == QueueState.NEW.value:
                item.transition(QueueState.CLAIMED, now=now)
            item.transition(QueueState.ANSWERED, now=now)
            audit.record(session, audit.ANSWERED_ON_PLATFORM, "queue_item", item.id, user_id=None, at=now,
                         detail={"mention_id": item.mention_id})
        return len(items)

    # ------------------------------------------------------------------ ranking

    def rank_reasons(self, r: _Rankable, history: CustomerHistory, now: datetime) -> tuple[float, list[str]]:
        ranking = rank(RankInput(text=r.text, negative=r.negative or 0.0, complaint=r.complaint,
                                 created_at=r.created_at, followers=r.followers, history=history), now, self.ranking)
        return ranking.priority, ranking.reasons if r.negative is not None else ["not classified yet",
                                                                                   *ranking.reasons]

    def _write_ranks(self, session: Session, rows: Sequence[_Rankable],
                     history_of: Callable[[_Rankable], CustomerHistory], now: datetime, *,
                     items: bool = True) -> dict[int, float]:
        """Rank each mention, write priority and reasons onto it (and onto its open item when `items`);
        returns mention id -> priority."""
        mentions: list[dict[str, Any]] = []
        for r in rows:
            priority, reasons = self.rank_reasons(r, history_of(r), now)
            mentions.append({"m_id": r.mention_id, "priority": priority, "priority_reasons": reasons})
        mention_table, item_table = Base.metadata.tables["mentions"], Base.metadata.tables["queue_items"]
        for batch in pow2_batches(mentions, CHUNK):
            session.execute(mention_table.update().where(mention_table.c.id == bindparam("m_id"))
                            .values(priority=bindparam("priority"), priority_reasons=bindparam("priority_reasons")),
                            batch)
            if not items:
                continue
            session.execute(item_table.update().where(item_table.c.mention_id == bindparam("m_id"))
                            .values(priority=bindparam("priority")), [
                                {"m_id": m["m_id"], "priority": m["priority"]} for m in batch])
        return {m["m_id"]: m["priority"] for m in mentions}

    def _rerank(self, session: Session, rows: Sequence[Any], now: datetime) -> None:
        rankables = [_Rankable(r.id, r.author_id, r.text, r.score_negative, r.complaint_score, r.created_at,
                               r.followers) for r in rows]
        known = histories_at(session, {(r.author_id, r.created_at) for r in rankables})

        def history_of(r: _Rankable) -> CustomerHistory:
            pair: Pair = (r.author_id, r.created_at)
            return known[pair]

        self._write_ranks(session, rankables, history_of, now)

    @staticmethod
    def _open_rows() -> Any:
        return (select(QueueItem.id.label("item_id"), Mention.id, Mention.text, Mention.score_negative,
                       Mention.complaint_score, Mention.created_at, Mention.author_id, Author.followers)
                .join(Mention, QueueItem.mention_id == Mention.id).join(Author, Mention.author_id == Author.id)
                .where(QueueItem.state.in_(OPEN_QUEUE_STATES)))

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
                query = self._open_rows().order_by(QueueItem.id).limit(size)
                if after is not None:
                    query = query.where(QueueItem.id > after)
                rows = session.execute(query).all()
                if rows:
                    self._rerank(session, rows, now)
            done += len(rows)
            if len(rows) < size:
                break
            after = rows[-1].item_id
        return done

    def revise(self, session: Session, mention_ids: Sequence[int], now: datetime) -> int:
        """Re-rank the open items of mentions whose text an edit just changed; returns how many."""
        rows = session.execute(self._open_rows().where(Mention.id.in_(pow2_padded(list(mention_ids))))).all()
        if rows:
            self._rerank(session, rows, now)
        return len(rows)

    def rerank_customer(self, session: Session, customer_id: int, now: datetime) -> int:
        """Recompute the customer's open items now (after a link, unlink or merge changed their history)."""
        session.flush()
        rows = session.execute(self._open_rows().where(Author.customer_id == customer_id)).all()
        if rows:
            self._rerank(session, rows, now)
        session.expire_all()
        return len(rows)
