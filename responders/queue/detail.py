"""What the agent sees around one mention: the thread, the customer's whole cross-channel timeline
(with how each earlier mention ended), notes, tags and replies.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.domain import QueueState, ReplyState
from models.orm import Author, Customer, Mention, MentionTag, Note, QueueItem, Reply, SentimentCorrection, User
from responders.notes import tag_list
from responders.queue.items import claim_started as started_at
from responders.queue.items import conversation_item

HISTORY_TEXT_MAX = 300


@dataclass(frozen=True)
class ThreadEntry:
    mention_id: int
    created_at: datetime
    text: str
    handle: str | None
    display_name: str | None
    is_own: bool
    is_current: bool
    permalink: str | None


@dataclass(frozen=True)
class MentionOutcome:
    """How an earlier mention ended: answered (by whom, how fast), dismissed, open or never queued."""

    state: str  # answered | dismissed | open | claimed | not queued
    by: str | None = None
    response_seconds: float | None = None
    reply_state: str | None = None
    dismiss_reason: str | None = None


@dataclass(frozen=True)
class HistoryEntry:
    mention_id: int
    platform: str
    created_at: datetime
    text: str
    handle: str | None
    sentiment: str | None
    outcome: MentionOutcome
    is_current: bool


@dataclass(frozen=True)
class CustomerTimeline:
    customer: Customer | None
    authors: list[Author]
    entries: list[HistoryEntry]
    total: int
    by_state: dict[str, int]
    median_response_seconds: float | None

    @property
    def platforms(self) -> list[str]:
        return sorted({a.platform for a in self.authors})


def conversation(session: Session, mention: Mention, limit: int = 200) -> list[ThreadEntry]:
    """The mentions of the same platform conversation, oldest first (the brand's own replies marked)."""
    query = select(Mention.id, Mention.created_at, Mention.text, Mention.is_own, Mention.permalink,
                   Author.handle, Author.display_name).join(Author, Author.id == Mention.author_id)
    if mention.conversation_id:
        query = query.where(Mention.platform == mention.platform, Mention.conversation_id == mention.conversation_id)
    else:
        query = query.where(Mention.id == mention.id)
    rows = session.execute(query.order_by(Mention.created_at, Mention.id).limit(limit)).all()
    return [ThreadEntry(r.id, r.created_at, r.text, r.handle, r.display_name, r.is_own, r.id == mention.id,
                        r.permalink) for r in rows]


def _author_ids(session: Session, author: Author) -> list[int]:
    if author.customer_id is None:
        return [author.id]
    return list(session.scalars(select(Author.id).where(Author.customer_id == author.customer_id)))


def outcomes_of(session: Session, mention_ids: list[int], items: dict[int, Any],
              created: dict[int, datetime]) -> dict[int, MentionOutcome]:
    replies = session.execute(
        select(Reply.mention_id, Reply.state, Reply.sent_at, Reply.created_at, User.username)
        .outerjoin(User, User.id == Reply.user_id)
        .where(Reply.mention_id.in_(mention_ids))
        .order_by(Reply.created_at, Reply.id)
    ).all() if mention_ids else []
    first_sent: dict[int, Any] = {}
    latest: dict[int, Any] = {}
    for r in replies:
        latest[r.mention_id] = r
        if r.state == ReplyState.SENT.value and r.sent_at is not None:
            best = first_sent.get(r.mention_id)
            if best is None or r.sent_at < best.sent_at:
                first_sent[r.mention_id] = r
    out: dict[int, MentionOutcome] = {}
    for mention_id in mention_ids:
        item = items.get(mention_id)
        sent = first_sent.get(mention_id)
        if sent is not None:
            seconds = (sent.sent_at - created[mention_id]).total_seconds()
            out[mention_id] = MentionOutcome("answered", sent.username, max(seconds, 0.0), ReplyState.SENT.value)
        elif item is None:
            out[mention_id] = MentionOutcome("not queued")
        elif item.state == QueueState.ANSWERED.value:
            reply = latest.get(mention_id)
            out[mention_id] = MentionOutcome("answered", item.assignee or (reply.username if reply else None), None,
                                      reply.state if reply else None)
        elif item.state == QueueState.DISMISSED.value:
            out[mention_id] = MentionOutcome("dismissed", item.assignee, dismiss_reason=item.dismiss_reason)
        else:
            out[mention_id] = MentionOutcome("open" if item.state == QueueState.NEW.value else "claimed", item.assignee)
    return out


def customer_timeline(session: Session, mention: Mention, limit: int = 50) -> CustomerTimeline:
    """Everything this person wrote, on X and Facebook alike, newest first, with each outcome."""
    author = mention.author
    author_ids = _author_ids(session, author)
    authors = list(session.scalars(select(Author).where(Author.id.in_(author_ids)).order_by(Author.platform)))
    mine = (Mention.author_id.in_(author_ids), Mention.is_own.is_(False))
    total = int(session.scalar(select(func.count()).select_from(Mention).where(*mine)) or 0)
    assignee = select(User.username).where(User.id == QueueItem.assignee_id).scalar_subquery()
    rows = session.execute(
        select(Mention.id, Mention.platform, Mention.created_at, func.substr(Mention.text, 1, HISTORY_TEXT_MAX),
               Mention.sentiment_label, Author.handle, QueueItem.state, QueueItem.dismiss_reason,
               assignee.label("assignee"))
        .join(Author, Author.id == Mention.author_id)
        .outerjoin(QueueItem, QueueItem.mention_id == Mention.id)
        .where(*mine)
        .order_by(Mention.created_at.desc(), Mention.id.desc())
        .limit(limit)
    ).all()
    ids = [r.id for r in rows]
    items = {r.id: r for r in rows if r.state is not None}
    outcomes = outcomes_of(session, ids, items, {r.id: r.created_at for r in rows})
    entries = [HistoryEntry(r.id, r.platform, r.created_at, r[3] or "", r.handle, r.sentiment_label, outcomes[r.id],
                            r.id == mention.id) for r in rows]
    by_state = dict(session.execute(
        select(QueueItem.state, func.count()).join(Mention, Mention.id == QueueItem.mention_id)
        .where(*mine).group_by(QueueItem.state)
    ).all())
    times = [o.response_seconds for o in outcomes.values() if o.response_seconds is not None]
    customer = session.get(Customer, author.customer_id) if author.customer_id else None
    return CustomerTimeline(customer, authors, entries, total, by_state,
                           statistics.median(times) if times else None)


@dataclass(frozen=True)
class NoteView:
    id: int
    text: str
    username: str | None
    created_at: datetime
    on_customer: bool


@dataclass(frozen=True)
class ReplyView:
    id: int
    text: str
    state: str
    username: str | None
    created_at: datetime
    sent_at: datetime | None
    error: str | None
    attempts: int
    retryable: bool
    next_attempt_at: datetime | None
    platform_reply_id: str | None


@dataclass(frozen=True)
class MentionDetail:
    mention: Mention
    author: Author
    customer: Customer | None
    item: QueueItem | None
    holder: str | None
    claim_started: datetime | None
    replies: list[ReplyView]
    notes: list[NoteView]
    tags: list[str]
    customer_tags: list[str]
    corrections: int


def mention_detail(session: Session, mention_id: int) -> MentionDetail | None:
    """The mention with its author, customer, queue item, replies, notes and tags; None if unknown."""
    mention = session.get(Mention, mention_id)
    if mention is None:
        return None
    author = mention.author
    customer = session.get(Customer, author.customer_id) if author.customer_id else None
    item = conversation_item(session, mention)
    holder = claim_started = None
    if item is not None and item.assignee_id is not None:
        holder = session.scalar(select(User.username).where(User.id == item.assignee_id))
        if item.state == QueueState.CLAIMED.value:
            claim_started = started_at(session, item)
    replies = [
        ReplyView(r.id, r.text, r.state, username, r.created_at, r.sent_at, r.error, r.attempts, r.retryable,
                  r.next_attempt_at, r.platform_reply_id)
        for r, username in session.execute(
            select(Reply, User.username).outerjoin(User, User.id == Reply.user_id)
            .where(Reply.mention_id == mention_id).order_by(Reply.created_at, Reply.id)
        ).all()
    ]
    note_filter = Note.mention_id == mention_id
    if customer is not None:
        note_filter = note_filter | (Note.customer_id == customer.id)
    notes = [
        NoteView(n.id, n.text, username, n.created_at, n.customer_id is not None)
        for n, username in session.execute(
            select(Note, User.username).outerjoin(User, User.id == Note.user_id)
            .where(note_filter).order_by(Note.created_at.desc(), Note.id.desc()).limit(100)
        ).all()
    ]
    tags = list(session.scalars(select(MentionTag.tag).where(MentionTag.mention_id == mention_id)
                                .order_by(MentionTag.tag)))
    corrections = int(session.scalar(select(func.count()).select_from(SentimentCorrection)
                                     .where(SentimentCorrection.mention_id == mention_id)) or 0)
    return MentionDetail(mention, author, customer, item, holder, claim_started, replies, notes, tags,
                         tag_list(customer), corrections)
