"""How mentions enter the review queue and stay ranked: the queue's first step and its re-ranking.

The poller (listener.poller) stores each poll's new mentions and then calls `Intake.admit` inside
the same transaction, so a mention, its queue item and the advanced cursor are written together or
not at all. `admit`:

- ranks every new customer mention (models.ranking, with the customer's history before it) and
  opens a `new` queue item for it;
- keeps one item per customer conversation (the thread with one customer, `items.thread_key`): a
  follow-up joins the open item, a new message reopens an answered one (not a "thanks, sorted"
  closing message, and not a thread dismissed as spam);
- closes the open items that a new post of the brand's own answers (the team replied on the
  platform itself, from any client), audited as `answered_on_platform`.

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

from sqlalchemy import bindparam, func, or_, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from listener.poller import Admitted, NewMention
from models.config import RankingConfig
from models.db import insert_into, pow2_batches, pow2_padded
from models.domain import OPEN_QUEUE_STATES, QueueState, aware
from models.history import Pair, histories, histories_at
from models.orm import Author, Base, Mention, QueueItem, utcnow
from models.ranking import CustomerHistory, RankInput, rank
from responders import audit
from responders.answers import is_closing
from responders.queue.items import thread_key

OPEN_ITEM = QueueItem.state.in_(OPEN_QUEUE_STATES)

CHUNK = 128  # rows per statement at most, in power-of-two batches (models.db.pow2_batches)
RERANK_PAGE = 1_000


@dataclass(frozen=True)
class _Answer:
    """A public post of the brand answering a customer message."""

    platform: str
    in_reply_to_id: str | None
    created_at: datetime
    external_id: str


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
        own = [_Answer(m.data.platform, m.data.in_reply_to_id, m.data.created_at, m.data.external_id)
               for m in new if m.data.is_own and m.data.in_reply_to_id]
        closed = self._close_answered(session, [*own, *self._stored_answers(session, inbound)], now)
        return Admitted(queued=queued, closed=closed)

    def _queue(self, session: Session, inbound: Sequence[NewMention], now: datetime) -> int:
        """Each customer conversation gets one item: a new message joins its thread's open item (which
        then answers the newest message and is re-ranked), reopens its closed one (unless dismissed as
        spam), or opens a new item. Returns the items opened or reopened."""
        known = histories(session, {m.author_id for m in inbound}, before=min(m.data.created_at for m in inbound))
        threads: dict[str, list[NewMention]] = {}
        for m in sorted(inbound, key=lambda m: (m.data.created_at, m.mention_id)):
            key = thread_key(m.data.platform, m.data.conversation_id, m.data.external_id, m.author_id)
            threads.setdefault(key, []).append(m)
        existing = self._latest_items(session, list(threads))
        fresh: list[tuple[str, list[NewMention]]] = []
        opened = 0
        for key, messages in threads.items():
            item = existing.get(key)
            if item is None:
                fresh.append((key, messages))
            elif item.state in OPEN_QUEUE_STATES:
                self._join(session, item, messages, known, now)
            elif item.state == QueueState.DISMISSED.value and item.dismiss_reason == "spam":
                continue  # a spam thread stays closed; its messages are stored as history
            elif all(_closing(m) for m in messages):
                continue  # "thanks, sorted!" after the answer: history, not a new wait
            else:
                self._reopen(session, item, messages, known, now)
                opened += 1
        if not fresh:
            return opened
        newest = [(key, messages[-1], messages[0].data.created_at, len(messages)) for key, messages in fresh]
        rankables = [_Rankable(m.mention_id, m.author_id, m.data.text, m.negative, m.complaint, since,
                               m.data.author.followers) for _, m, since, _ in newest]
        ranked = self._write_ranks(session, rankables, lambda r: known[r.author_id], now, items=False)
        rows = [{"mention_id": m.mention_id, "brand": m.data.brand, "state": QueueState.NEW.value,
                 "priority": ranked[m.mention_id], "created_at": now, "updated_at": now, "version": 1,
                 "thread_key": key, "waiting_since": since, "messages": count}
                for key, m, since, count in newest]
        for batch in pow2_batches(rows, CHUNK):
            session.execute(insert_into(session, QueueItem).on_conflict_do_nothing(index_elements=["mention_id"]),
                            batch)
        return opened + len(rows)

    @staticmethod
    def _latest_items(session: Session, keys: list[str]) -> dict[str, QueueItem]:
        """Each conversation's item: the open one if any, else the newest closed one (items migration
        0011 merged into another are never it)."""
        found: dict[str, QueueItem] = {}
        for batch in pow2_batches(keys, CHUNK):
            for item in session.scalars(select(QueueItem).where(
                    QueueItem.thread_key.in_(pow2_padded(list(batch))),
                    or_(QueueItem.dismiss_reason.is_(None), QueueItem.dismiss_reason != "merged"))
                    .order_by(QueueItem.id)):
                key = item.thread_key or ""
                if key not in found or found[key].state not in OPEN_QUEUE_STATES:
                    found[key] = item
        return found

    def _join(self, session: Session, item: QueueItem, messages: list[NewMention],
              known: dict[int, CustomerHistory], now: datetime) -> None:
        """A follow-up in an open conversation: the item now answers the newest message, ranked on it
        with the waiting time of the first unanswered one; a claim stays with its holder."""
        newest = messages[-1]
        item.mention_id, item.messages = newest.mention_id, (item.messages or 1) + len(messages)
        item.updated_at = now
        waiting = item.waiting_since or messages[0].data.created_at
        item.waiting_since = waiting
        self._rank_item(session, item, newest, waiting, known, now)

    def _reopen(self, session: Session, item: QueueItem, messages: list[NewMention],
                known: dict[int, CustomerHistory], now: datetime) -> None:
        """The customer wrote again in an answered (or dismissed) conversation: it is open again, waiting
        from the new message."""
        previous = item.state
        item.transition(QueueState.NEW, now=now)
        newest = messages[-1]
        item.mention_id, item.messages = newest.mention_id, (item.messages or 1) + len(messages)
        item.waiting_since, item.updated_at = messages[0].data.created_at, now
        self._rank_item(session, item, newest, item.waiting_since, known, now)
        audit.record(session, audit.REOPENED, "queue_item", item.id, user_id=None, at=now,
                     detail={"mention_id": newest.mention_id, "was": previous})

    def _rank_item(self, session: Session, item: QueueItem, newest: NewMention, waiting: datetime,
                   known: dict[int, CustomerHistory], now: datetime) -> None:
        rankable = _Rankable(newest.mention_id, newest.author_id, newest.data.text, newest.negative,
                             newest.complaint, waiting, newest.data.author.followers)
        ranked = self._write_ranks(session, [rankable], lambda r: known[r.author_id], now, items=False)
        item.priority = ranked[newest.mention_id]
        session.flush()

    @staticmethod
    def _stored_answers(session: Session, inbound: Sequence[NewMention]) -> list[_Answer]:
        """The brand's posts already stored that answer these new mentions (the answer's source was
        polled before the complaint's: the own timeline before a search)."""
        if not inbound:
            return []
        keys = sorted({(m.data.platform, m.data.external_id) for m in inbound})
        keys = sorted({*keys, *((m.data.platform, m.data.revision) for m in inbound if m.data.revision)})
        found: list[_Answer] = []
        for batch in pow2_batches(keys, CHUNK):
            found += [_Answer(r.platform, r.in_reply_to_id, r.created_at, r.external_id) for r in session.execute(
                select(Mention.platform, Mention.in_reply_to_id, Mention.created_at, Mention.external_id).where(
                    Mention.is_own.is_(True),
                    tuple_(Mention.platform, Mention.in_reply_to_id).in_(pow2_padded(list(batch)))))]
        return found

    def _close_answered(self, session: Session, own: Sequence[_Answer], now: datetime) -> int:
        """The brand answered on the platform directly (from any client): a public answer to any message
        of a customer's open conversation closes it when it is not older than the conversation's newest
        message; an answer to an earlier message leaves it waiting from the first message after it."""
        answers = [a for a in own if a.in_reply_to_id]
        if not answers:
            return 0
        targets = sorted({(a.platform, a.in_reply_to_id or "") for a in answers})
        keys: dict[tuple[str, str], str] = {}
        for batch in pow2_batches(targets, CHUNK):
            wanted = pow2_padded(list(batch))
            for r in session.execute(  # an X reply goes to the newest revision of an edited post
                select(Mention.platform, Mention.external_id, Mention.revision_id, Mention.conversation_id,
                       Mention.author_id)
                .where(or_(tuple_(Mention.platform, Mention.external_id).in_(wanted),
                           tuple_(Mention.platform, Mention.revision_id).in_(wanted)), Mention.is_own.is_(False))
            ):
                key = thread_key(r.platform, r.conversation_id, r.external_id, r.author_id)
                keys[(r.platform, r.external_id)] = key
                if r.revision_id:
                    keys[(r.platform, r.revision_id)] = key
        items = self._open_items(session, sorted(set(keys.values())))
        closed = 0
        for answer in sorted(answers, key=lambda a: aware(a.created_at)):
            found = items.get(keys.get((answer.platform, answer.in_reply_to_id or ""), ""))
            if found is None or found[0].state not in OPEN_QUEUE_STATES:
                continue
            item, newest = found
            at = aware(answer.created_at)
            if at >= aware(newest.created_at):
                if item.state == QueueState.NEW.value:
                    item.transition(QueueState.CLAIMED, now=now)
                item.transition(QueueState.ANSWERED, now=now)
                audit.record(session, audit.ANSWERED_ON_PLATFORM, "queue_item", item.id, user_id=None, at=now,
                             detail={"mention_id": item.mention_id, "answer": answer.external_id})
                closed += 1
            else:  # rare: an answer to an earlier message; the later ones wait from the first after it
                thread = newest.conversation_id or newest.external_id
                later = session.scalar(select(func.min(Mention.created_at)).where(
                    Mention.platform == answer.platform, Mention.author_id == newest.author_id,
                    func.coalesce(Mention.conversation_id, Mention.external_id) == thread, Mention.created_at > at,
                    Mention.is_own.is_(False)))
                if later is not None:
                    item.waiting_since = later
        session.flush()
        return closed

    @staticmethod
    def _open_items(session: Session, keys: list[str]) -> dict[str, tuple[QueueItem, Mention]]:
        """The open item of each conversation key, with the newest customer message it answers."""
        found: dict[str, tuple[QueueItem, Mention]] = {}
        for batch in pow2_batches(keys, CHUNK):
            for item, mention in session.execute(
                select(QueueItem, Mention).join(Mention, Mention.id == QueueItem.mention_id)
                .where(QueueItem.thread_key.in_(pow2_padded(list(batch))), OPEN_ITEM)
            ).all():
                found[item.thread_key or ""] = (item, mention)
        return found

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
                       Mention.complaint_score, func.coalesce(QueueItem.waiting_since, Mention.created_at)
                       .label("created_at"), Mention.author_id, Author.followers)
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


def _closing(m: NewMention) -> bool:
    """A thank-you or "it is solved" message (responders.answers.is_closing, the digest's rule too)."""
    return is_closing(m.data.text, "negative" if m.negative is not None else None, m.negative)
