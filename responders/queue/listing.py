"""Listing the review queue: filters, text search, ranking order, pagination and live updates.

Open items (new, claimed) come ranked by priority through a partial index; closed ones newest
first. Text search is a case-insensitive substring match on the mention text and the author's
handle and name: PostgreSQL uses ILIKE (pg_trgm GIN indexes from migration 0004), SQLite the FTS5
trigram tables from the same migration (LIKE scan when they are missing or the term is shorter than
3 characters).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Integer, Select, and_, any_, column, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from models.domain import OPEN_QUEUE_STATES, QueueState, ReplyState
from models.orm import Author, Mention, QueueItem, Reply, User

OPEN_STATES = OPEN_QUEUE_STATES
STATE_CHOICES = ("open", "new", "claimed", "answered", "dismissed", "all")
PER_PAGE = 50
COUNT_CAP = 10_000  # open items are counted up to this
CLOSED_COUNT_CAP = 1_000  # closed ones (history views) up to this
SEARCH_MAX = 200
LIST_TEXT_MAX = 400
FTS_RARE_LIMIT = 20_000

OPEN_CLAUSE = text("queue_items.state IN ('new', 'claimed')")
waiting_from = func.coalesce(QueueItem.waiting_since, Mention.created_at)  # waiting counts per conversation
_fts_cache: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def format_duration(seconds: float) -> str:
    """Compact human duration: '7 min', '3 h', '2 d' (the style of the ranking reasons)."""
    seconds = max(seconds, 0.0)
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def live_reasons(reasons: list[str] | None, created_at: datetime, now: datetime, *, open_item: bool) -> list[str]:
    """The stored ranking reasons with the 'waiting' part recomputed for `now` (dropped once closed)."""
    waiting = f"waiting {format_duration((now - created_at).total_seconds())}"
    out, seen = [], False
    for reason in reasons or []:
        if reason.startswith("waiting "):
            seen = True
            if open_item:
                out.append(waiting)
        else:
            out.append(reason)
    if open_item and not seen:
        out.append(waiting)
    return out


@dataclass(frozen=True)
class QueueFilter:
    """What the queue page shows; every field comes from the page's query string."""

    brand: str | None = None
    platform: str | None = None
    sentiment: str | None = None
    state: str = "open"
    language: str | None = None
    mine: bool = False
    overdue: bool = False
    q: str = ""
    page: int = 1

    def normalized(self) -> QueueFilter:
        return replace(
            self,
            brand=self.brand or None, platform=self.platform or None, sentiment=self.sentiment or None,
            language=self.language or None, state=self.state if self.state in STATE_CHOICES else "open",
            q=" ".join((self.q or "").split())[:SEARCH_MAX], page=max(int(self.page or 1), 1),
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """Query-string parameters (non-default fields only), with `changes` applied."""
        data = replace(self, **changes)
        out = {k: str(v) for k, v in (("brand", data.brand), ("platform", data.platform),
                                      ("sentiment", data.sentiment), ("language", data.language),
                                      ("q", data.q)) if v}
        if data.state != "open":
            out["state"] = data.state
        if data.mine:
            out["mine"] = "1"
        if data.overdue:
            out["overdue"] = "1"
        if data.page > 1:
            out["page"] = str(data.page)
        return out


@dataclass(frozen=True)
class QueueRow:
    item_id: int
    mention_id: int
    state: str
    priority: float
    text: str
    truncated: bool
    platform: str
    brand: str
    language: str | None
    created_at: datetime
    handle: str | None
    display_name: str | None
    followers: int | None
    sentiment: str | None
    score_negative: float | None
    reasons: list[str]
    assignee: str | None
    claimed_at: datetime | None
    closed_at: datetime | None
    dismiss_reason: str | None
    sla_deadline: datetime
    overdue: bool
    claim_expired: bool
    waiting_since: datetime | None = None  # the conversation's first unanswered customer message
    messages: int = 1  # customer messages in the conversation


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    filter: QueueFilter
    has_next: bool
    total: int
    total_capped: bool
    last_id: int


def _has_fts(session: Session) -> bool:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if engine not in _fts_cache:
        found = session.execute(
            text("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('mentions_fts', 'authors_fts')")
        ).scalar()
        _fts_cache[engine] = found == 2
    return _fts_cache[engine]


def _like_pattern(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _casings(term: str) -> list[str]:
    return list(dict.fromkeys((term, term.lower(), term.upper(), term.capitalize(), term.title())))


def search_condition(session: Session, term: str, *, min_mention_id: int | None = None) -> ColumnElement[bool]:
    """Mentions whose text, or whose author's handle or name, contains `term` (case-insensitive).

    `min_mention_id` bounds the text search to newer mentions (the oldest open item's, when only open
    items are listed): the full-text hits then come from the open part of the table only.
    """
    dialect = session.get_bind().dialect.name
    pattern = _like_pattern(term)
    lowest = min_mention_id or 0
    if dialect == "sqlite" and len(term) >= 3 and _has_fts(session):
        phrase = '"' + term.replace('"', '""') + '"'
        in_author = text("SELECT rowid FROM authors_fts WHERE authors_fts MATCH :fts_author") \
            .bindparams(fts_author=phrase).columns(column("rowid", Integer))
        hits = session.execute(
            text("SELECT count(*) FROM (SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH :q "
                 "AND rowid >= :lowest LIMIT :n)"),
            {"q": phrase, "lowest": lowest, "n": FTS_RARE_LIMIT},
        ).scalar()
        if (hits or 0) < FTS_RARE_LIMIT:  # few hits: start from them
            in_text = text("SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH :fts_text "
                           "AND rowid >= :fts_lowest") \
                .bindparams(fts_text=phrase, fts_lowest=lowest).columns(column("rowid", Integer))
            return or_(Mention.id.in_(in_text), Mention.author_id.in_(in_author))
        # a common term: walking the ranked items and testing each text finds a page sooner than listing
        # every hit; SQLite's LIKE folds ASCII case only, so the usual casings are tried as well
        likes = [Mention.text.like(_like_pattern(c), escape="\\") for c in _casings(term)]
        return or_(*likes, Mention.author_id.in_(in_author))
    author_match = or_(Author.handle.ilike(pattern, escape="\\"), Author.display_name.ilike(pattern, escape="\\"))
    text_match: ColumnElement[bool] = Mention.text.ilike(pattern, escape="\\")
    if dialect == "postgresql":
        # "author_id = ANY(<array>)" keeps both sides indexable (trigram GIN on the text, b-tree on the
        # author), so the planner picks between those indexes and walking the ranking by itself
        authors = func.coalesce(select(func.array_agg(Author.id)).where(author_match).scalar_subquery(),
                                text("'{}'::integer[]"))
        if lowest:
            text_match = and_(text_match, Mention.id >= lowest)
        return or_(text_match, Mention.author_id == any_(authors))
    return or_(text_match, Mention.author_id.in_(select(Author.id).where(author_match)))


def _lowest_open_mention(session: Session, f: QueueFilter) -> int | None:
    """The oldest open item's mention id, when the view filters on mentions and lists only open items.

    Open items are mostly recent, so "mention id >= this" lets the database start from the newest
    mentions instead of probing the mention of every open item.
    """
    if f.state not in ("open", "new", "claimed") or not (f.q or f.platform or f.sentiment or f.language or f.overdue):
        return None
    # "+ 0": read the partial index of open items, not every item's mention_id in order
    return session.scalar(select(func.min(QueueItem.mention_id + 0)).where(OPEN_CLAUSE))


def _states(state: str) -> tuple[str, ...]:
    return {"open": OPEN_STATES, "new": ("new",), "claimed": ("claimed",), "answered": ("answered",),
            "dismissed": ("dismissed",)}.get(state, ())


def _where(
    query: Select[Any], f: QueueFilter, *, now: datetime, sla_hours: float, user_id: int | None,
    search: ColumnElement[bool] | None, lowest: int | None = None,
) -> Select[Any]:
    states = _states(f.state)
    if states and set(states) <= set(OPEN_STATES):
        # literal values (not bound parameters): only then can SQLite (and PostgreSQL's generic plans)
        # prove that the partial index of open items applies
        query = query.where(OPEN_CLAUSE)
        if len(states) == 1:
            query = query.where(QueueItem.state == states[0])
    elif states:
        query = query.where(QueueItem.state == states[0])
    if f.brand:
        query = query.where(QueueItem.brand == f.brand)
    if f.platform:
        query = query.where(Mention.platform == f.platform)
    if f.sentiment:
        query = query.where(Mention.sentiment_label == f.sentiment)
    if f.language:
        query = query.where(Mention.language == f.language)
    if f.mine:
        query = query.where(QueueItem.assignee_id == (user_id if user_id is not None else -1))
    if f.overdue:
        query = query.where(waiting_from <= now - timedelta(hours=sla_hours))
    if search is not None:
        query = query.where(search)
    if lowest is not None:
        query = query.where(Mention.id >= lowest)
    return query


def _order(query: Select[Any], state: str) -> Select[Any]:
    if state in ("open", "new", "claimed"):
        return query.order_by(QueueItem.priority.desc(), QueueItem.id)
    if state in ("answered", "dismissed"):
        return query.order_by(QueueItem.closed_at.desc(), QueueItem.id.desc())
    return query.order_by(QueueItem.id.desc())


def _row_query() -> Select[Any]:
    assignee = aliased(User)
    return (
        select(
            QueueItem.id, QueueItem.mention_id, QueueItem.state, QueueItem.priority, QueueItem.brand,
            QueueItem.claimed_at, QueueItem.closed_at, QueueItem.dismiss_reason,
            func.substr(Mention.text, 1, LIST_TEXT_MAX + 1).label("text"), Mention.platform, Mention.language,
            Mention.created_at, Mention.sentiment_label, Mention.score_negative, Mention.priority_reasons,
            Author.handle, Author.display_name, Author.followers, assignee.username.label("assignee"),
            waiting_from.label("waiting_since"), QueueItem.messages,
        )
        .select_from(QueueItem)
        .join(Mention, Mention.id == QueueItem.mention_id)
        .join(Author, Author.id == Mention.author_id)
        .outerjoin(assignee, assignee.id == QueueItem.assignee_id)
    )


def _to_row(r: Any, now: datetime, sla_hours: float, timeout_minutes: int) -> QueueRow:
    open_item = r.state in OPEN_STATES
    waiting = r.waiting_since or r.created_at
    deadline = waiting + timedelta(hours=sla_hours)
    text_value: str = r.text or ""
    expired = bool(r.state == QueueState.CLAIMED.value and r.claimed_at is not None
                   and r.claimed_at <= now - timedelta(minutes=timeout_minutes))
    return QueueRow(
        item_id=r.id, mention_id=r.mention_id, state=r.state, priority=r.priority or 0.0,
        text=text_value[:LIST_TEXT_MAX], truncated=len(text_value) > LIST_TEXT_MAX, platform=r.platform,
        brand=r.brand, language=r.language, created_at=r.created_at, handle=r.handle,
        display_name=r.display_name, followers=r.followers, sentiment=r.sentiment_label,
        score_negative=r.score_negative,
        reasons=live_reasons(r.priority_reasons, waiting, now, open_item=open_item),
        assignee=r.assignee, claimed_at=r.claimed_at, closed_at=r.closed_at, dismiss_reason=r.dismiss_reason,
        sla_deadline=deadline, overdue=open_item and now >= deadline, claim_expired=expired,
        waiting_since=waiting, messages=r.messages or 1,
    )


def list_queue(
    session: Session, f: QueueFilter, *, now: datetime, sla_hours: float, claim_timeout_minutes: int,
    user_id: int | None = None, per_page: int = PER_PAGE,
) -> QueuePage:
    """One page of the queue with a capped total (counting stops at COUNT_CAP, CLOSED_COUNT_CAP when closed).

    One walk in ranking order collects the ids of up to COUNT_CAP matching items (the total and the
    page come from it); a second query loads the page's rows by id.
    """
    f = f.normalized()
    lowest = _lowest_open_mention(session, f)
    search = search_condition(session, f.q, min_mention_id=lowest) if f.q else None
    ids_query = select(QueueItem.id).select_from(QueueItem)
    if f.platform or f.sentiment or f.language or f.overdue or f.q:
        ids_query = ids_query.join(Mention, Mention.id == QueueItem.mention_id)
    ids_query = _order(_where(ids_query, f, now=now, sla_hours=sla_hours, user_id=user_id, search=search,
                              lowest=lowest), f.state)
    offset = (f.page - 1) * per_page
    cap = COUNT_CAP if f.state in ("open", "new", "claimed") else CLOSED_COUNT_CAP
    if offset + per_page < cap:
        ids = list(session.scalars(ids_query.limit(cap + 1)))
        total, page_ids = len(ids), ids[offset:offset + per_page + 1]
    else:  # beyond the counted range: page directly
        page_ids = list(session.scalars(ids_query.offset(offset).limit(per_page + 1)))
        total = cap + 1
    by_id = {r.id: r for r in session.execute(_row_query().where(QueueItem.id.in_(page_ids[:per_page])))} \
        if page_ids else {}
    rows = [_to_row(by_id[i], now, sla_hours, claim_timeout_minutes) for i in page_ids[:per_page] if i in by_id]
    last_id = int(session.scalar(select(func.max(QueueItem.id))) or 0)
    return QueuePage(rows=rows, filter=f, has_next=len(page_ids) > per_page, total=min(total, cap),
                     total_capped=total > cap, last_id=last_id)


@dataclass(frozen=True)
class Updates:
    count: int
    last_id: int
    rows: list[QueueRow]


def updates_since(
    session: Session, since_id: int, f: QueueFilter, *, now: datetime, sla_hours: float,
    claim_timeout_minutes: int, user_id: int | None = None, limit: int = 20,
) -> Updates:
    """Open items that arrived after queue item `since_id` and match the page's filters."""
    f = f.normalized()
    f = replace(f, state=f.state if f.state in ("open", "new", "claimed") else "open", page=1)
    search = search_condition(session, f.q) if f.q else None
    query = _where(_row_query(), f, now=now, sla_hours=sla_hours, user_id=user_id, search=search)
    query = query.where(QueueItem.id > since_id).order_by(QueueItem.id.desc()).limit(COUNT_CAP + 1)
    result = session.execute(query).all()
    rows = [_to_row(r, now, sla_hours, claim_timeout_minutes) for r in result[:limit]]
    last_id = max([since_id, *(r.id for r in result[:1])])
    return Updates(count=len(result), last_id=last_id, rows=rows)


@dataclass(frozen=True)
class FailedReply:
    reply_id: int
    mention_id: int | None
    error: str | None
    retry_at: datetime | None


def failed_replies(session: Session, limit: int = 20) -> list[FailedReply]:
    """Replies that failed to send and need a human (not retried automatically)."""
    rows = session.execute(
        select(Reply.id, Reply.mention_id, Reply.error, Reply.next_attempt_at, Reply.retryable)
        .where(Reply.state == ReplyState.FAILED.value)
        .order_by(Reply.id.desc())
        .limit(limit)
    ).all()
    return [FailedReply(r.id, r.mention_id, r.error, r.next_attempt_at if r.retryable else None) for r in rows]
