"""The review queue service: listing, claims, replies, dismissals, corrections, notes and tags.

No web types here; the web routes (responders/web/) stay thin and call these functions inside one
transaction each. Every state change goes through `QueueItem.transition()` and is flushed with the
optimistic `version` check, so two agents racing for the same item get exactly one winner; the
loser sees `ClaimConflict` naming the holder.

Claims: claiming sets `claimed_at`; the holder's activity (opening the item, notes, tags, the
composer's heartbeat) renews it. A claim idle for longer than `claim_timeout_minutes` is free: the
daemon's `expire_claims` returns it to `new`, and anyone claiming it earlier simply takes it over.

Replies: sending creates `Reply(state=draft)` and moves the item to `answered` at once (the agent's
work is done and nobody else can answer it twice). The dispatcher sends the draft; a failed send
stays visible on the mention page, and the queue page lists failed replies until they are retried.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from models.domain import IllegalTransition, QueueState, ReplyState, Role, SentimentLabel, check_queue_transition
from models.orm import (
    Author,
    Customer,
    Mention,
    MentionTag,
    Note,
    QueueItem,
    Reply,
    SavedReply,
    SentimentCorrection,
    User,
)
from responders import audit
from responders.auth import has_role
from responders.queue_list import QueueFilter, QueuePage, QueueRow, list_queue, updates_since

__all__ = [
    "DISMISS_REASONS", "PLATFORM_LIMITS", "ClaimConflict", "Invalid", "NotAllowed", "NotFound", "QueueError",
    "QueueFilter", "QueuePage", "QueueRow", "add_note", "add_tag", "claim", "correct_sentiment", "delete_saved_reply",
    "dismiss", "expire_claims", "is_expired", "list_queue", "reassign", "release", "remove_tag", "render_template",
    "retry_reply", "save_saved_reply", "submit_reply", "touch", "updates_since",
]

PLATFORM_LIMITS = {"x": 280, "facebook": 8000}
DISMISS_REASONS = {"spam": "spam", "not_relevant": "not relevant", "no_answer_needed": "no answer needed"}
NOTE_MAX = 5000
CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")  # tab/newline allowed
TAG_RE = re.compile(r"^[\w][\w .:/+-]{0,59}$")


class QueueError(Exception):
    """An action the queue refuses; the message is for the agent."""


class NotFound(QueueError):
    pass


class NotAllowed(QueueError):
    pass


class Invalid(QueueError):
    pass


class ClaimConflict(QueueError):
    """Someone else holds the item (or changed it a moment ago)."""

    def __init__(self, message: str, holder: str | None = None, since: datetime | None = None) -> None:
        super().__init__(message)
        self.holder, self.since = holder, since


# --------------------------------------------------------------------------- claims


def is_expired(item: QueueItem, now: datetime, timeout_minutes: int) -> bool:
    """Whether a claimed item's holder has been idle longer than the claim timeout."""
    return (
        item.state == QueueState.CLAIMED.value
        and item.claimed_at is not None
        and item.claimed_at <= now - timedelta(minutes=timeout_minutes)
    )


def _item(session: Session, item_id: int) -> QueueItem:
    item = session.get(QueueItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"queue item {item_id} does not exist")
    return item


def item_for_mention(session: Session, mention_id: int) -> QueueItem:
    item = session.scalar(select(QueueItem).where(QueueItem.mention_id == mention_id))
    if item is None:
        raise NotFound("this mention is not in the queue (the brand's own posts and history are never queued)")
    return item


def _holder_name(session: Session, item: QueueItem) -> str | None:
    if item.assignee_id is None:
        return None
    return session.scalar(select(User.username).where(User.id == item.assignee_id))


def _conflict(session: Session, item: QueueItem, verb: str) -> ClaimConflict:
    holder = _holder_name(session, item) or "someone"
    event = audit.last_event(session, (audit.CLAIM, audit.REASSIGN), "queue_item", item.id)
    started = event.at if event is not None else item.claimed_at
    since = f" since {started:%H:%M} UTC" if started else ""
    return ClaimConflict(f"{holder} is working on this{since}; you cannot {verb} it", holder, started)


def _flush(session: Session, verb: str) -> None:
    """Write the item with the optimistic version check; a concurrent change becomes ClaimConflict.

    After a conflict the transaction is spoiled: the caller's `sessions.begin()` block rolls it back.
    """
    try:
        session.flush()
    except StaleDataError:
        raise ClaimConflict(f"someone else changed this item a moment ago, so you could not {verb} it") from None


def _take(session: Session, item: QueueItem, user: User, now: datetime, timeout_minutes: int, verb: str) -> str:
    """Make `user` the holder (claiming if needed); return the audit action or '' when already held."""
    if item.state in (QueueState.ANSWERED.value, QueueState.DISMISSED.value):
        raise Invalid(f"this item is already {item.state}")
    if item.state == QueueState.CLAIMED.value and item.assignee_id == user.id:
        item.claimed_at = now
        return ""
    if item.state == QueueState.CLAIMED.value and not is_expired(item, now, timeout_minutes):
        raise _conflict(session, item, verb)
    item.transition(QueueState.CLAIMED, now=now)
    item.assignee_id, item.updated_at = user.id, now
    return audit.CLAIM


def claim(session: Session, item_id: int, user: User, *, now: datetime, timeout_minutes: int) -> QueueItem:
    """Claim an open item (or renew one's own claim); an expired claim of someone else is taken over."""
    item = _item(session, item_id)
    previous = item.assignee_id if item.state == QueueState.CLAIMED.value else None
    action = _take(session, item, user, now, timeout_minutes, "claim")
    item.updated_at = now
    _flush(session, "claim")
    if action:
        detail = {"taken_over_from": previous} if previous else {}
        audit.record(session, action, "queue_item", item.id, user_id=user.id, at=now, detail=detail)
    return item


def touch(session: Session, item_id: int, user: User, *, now: datetime) -> bool:
    """Renew the holder's claim (activity); False when `user` does not hold the item."""
    item = _item(session, item_id)
    if item.state != QueueState.CLAIMED.value or item.assignee_id != user.id:
        return False
    item.claimed_at, item.updated_at = now, now
    _flush(session, "keep")
    return True


def release(session: Session, item_id: int, user: User, *, now: datetime) -> QueueItem:
    """Give a claimed item back to the queue: its holder, or a manager."""
    item = _item(session, item_id)
    if item.state != QueueState.CLAIMED.value:
        raise Invalid("only a claimed item can be released")
    if item.assignee_id != user.id and not has_role(user, Role.MANAGER):
        raise NotAllowed("only the holder or a manager can release this item")
    holder = item.assignee_id
    item.transition(QueueState.NEW, now=now)
    item.updated_at = now
    _flush(session, "release")
    audit.record(session, audit.RELEASE, "queue_item", item.id, user_id=user.id, at=now, detail={"holder": holder})
    return item


def reassign(session: Session, item_id: int, manager: User, to_user_id: int, *, now: datetime) -> QueueItem:
    """A manager hands an open item to another (active) team member."""
    if not has_role(manager, Role.MANAGER):
        raise NotAllowed("only managers can reassign")
    target = session.get(User, to_user_id)
    if target is None or not target.active:
        raise Invalid("that user does not exist or is deactivated")
    item = _item(session, item_id)
    if item.state not in (QueueState.NEW.value, QueueState.CLAIMED.value):
        raise Invalid(f"this item is already {item.state}")
    previous = item.assignee_id
    item.transition(QueueState.CLAIMED, now=now)
    item.assignee_id, item.updated_at = target.id, now
    _flush(session, "reassign")
    audit.record(session, audit.REASSIGN, "queue_item", item.id, user_id=manager.id, at=now,
                 detail={"from": previous, "to": target.id, "to_username": target.username})
    return item


def expire_claims(session: Session, now: datetime, timeout_minutes: int) -> list[int]:
    """Return claims idle for longer than the timeout to `new`; the ids of the items freed.

    Each item moves with its own conditional UPDATE (id and version), so a claim renewed or closed
    at the same moment is left alone.
    """
    cutoff = now - timedelta(minutes=timeout_minutes)
    stale = session.execute(
        select(QueueItem.id, QueueItem.version, QueueItem.assignee_id, QueueItem.claimed_at)
        .where(QueueItem.state == QueueState.CLAIMED.value, QueueItem.claimed_at <= cutoff)
        .order_by(QueueItem.id)
    ).all()
    check_queue_transition(QueueState.CLAIMED, QueueState.NEW)
    freed: list[int] = []
    for row in stale:
        result = session.execute(
            update(QueueItem)
            .where(QueueItem.id == row.id, QueueItem.version == row.version,
                   QueueItem.state == QueueState.CLAIMED.value)
            .values(state=QueueState.NEW.value, assignee_id=None, claimed_at=None, updated_at=now,
                    version=row.version + 1)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], result).rowcount != 1:
            continue
        audit.record(session, audit.EXPIRE, "queue_item", row.id, user_id=None, at=now,
                     detail={"holder": row.assignee_id,
                             "idle_since": row.claimed_at.isoformat() if row.claimed_at else None})
        freed.append(row.id)
    return freed


# --------------------------------------------------------------------------- closing an item


def dismiss(
    session: Session, item_id: int, user: User, reason: str, *, now: datetime, timeout_minutes: int
) -> QueueItem:
    """Close an item without answering (spam, not relevant, no answer needed)."""
    if reason not in DISMISS_REASONS:
        raise Invalid(f"choose a reason: {', '.join(DISMISS_REASONS.values())}")
    item = _item(session, item_id)
    if not (item.state == QueueState.CLAIMED.value and has_role(user, Role.MANAGER)):
        _take(session, item, user, now, timeout_minutes, "dismiss")
    try:
        item.transition(QueueState.DISMISSED, now=now)
    except IllegalTransition as exc:
        raise Invalid(str(exc)) from None
    item.dismiss_reason, item.assignee_id, item.updated_at = reason, user.id, now
    _flush(session, "dismiss")
    audit.record(session, audit.DISMISS, "queue_item", item.id, user_id=user.id, at=now,
                 detail={"reason": reason, "mention_id": item.mention_id})
    return item


def check_reply_text(platform: str, text: str) -> str:
    """The reply text as it will be sent; raises Invalid when it is empty, holds control characters or
    unpaired surrogates, or is over the platform limit."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise Invalid("the reply is empty")
    bad = CONTROL_RE.search(text)
    if bad:
        raise Invalid(f"the reply holds a control character (U+{ord(bad.group()):04X}) at position "
                      f"{bad.start() + 1}; remove it and send again")
    limit = PLATFORM_LIMITS.get(platform, 8000)
    if len(text) > limit:
        raise Invalid(f"the reply has {len(text)} characters; {platform} allows {limit}")
    return text


def submit_reply(
    session: Session, item_id: int, user: User, text: str, *, now: datetime, timeout_minutes: int
) -> Reply:
    """Queue a public reply (state draft) and close the item as answered. The caller notifies the dispatcher."""
    item = _item(session, item_id)
    mention = session.get(Mention, item.mention_id)
    if mention is None:
        raise NotFound("the mention is gone")
    text = check_reply_text(mention.platform, text)
    _take(session, item, user, now, timeout_minutes, "answer")
    item.transition(QueueState.ANSWERED, now=now)
    item.assignee_id, item.updated_at = user.id, now
    _flush(session, "answer")
    reply = Reply(mention_id=mention.id, user_id=user.id, platform=mention.platform, text=text,
                  state=ReplyState.DRAFT.value, idempotency_key=uuid.uuid4().hex, created_at=now)
    session.add(reply)
    session.flush()
    audit.record(session, audit.REPLY, "reply", reply.id, user_id=user.id, at=now,
                 detail={"mention_id": mention.id, "queue_item": item.id, "chars": len(text)})
    return reply


def retry_reply(session: Session, reply_id: int, user: User, *, now: datetime) -> Reply:
    """Queue a failed reply again: same row, same idempotency key, due now. The caller notifies the dispatcher."""
    reply = session.get(Reply, reply_id, populate_existing=True)
    if reply is None:
        raise NotFound(f"reply {reply_id} does not exist")
    if reply.state != ReplyState.FAILED.value:
        raise Invalid(f"only a failed reply can be retried; this one is {reply.state}")
    reply.retryable, reply.next_attempt_at = True, now
    session.flush()
    audit.record(session, audit.RETRY, "reply", reply.id, user_id=user.id, at=now,
                 detail={"mention_id": reply.mention_id, "previous_error": reply.error})
    return reply


# --------------------------------------------------------------------------- corrections, notes, tags


def _mention(session: Session, mention_id: int) -> Mention:
    mention = session.get(Mention, mention_id)
    if mention is None:
        raise NotFound(f"mention {mention_id} does not exist")
    return mention


def correct_sentiment(session: Session, mention_id: int, user: User, label: str, *, now: datetime) -> Mention:
    """A human sets the sentiment label; the correction is kept for retraining."""
    try:
        checked = SentimentLabel(label)
    except ValueError:
        raise Invalid("the label must be negative, neutral or positive") from None
    mention = _mention(session, mention_id)
    if mention.sentiment_label == checked.value:
        return mention
    session.add(SentimentCorrection(mention_id=mention.id, user_id=user.id, original_label=mention.sentiment_label,
                                    corrected_label=checked.value, created_at=now))
    audit.record(session, audit.CORRECT, "mention", mention.id, user_id=user.id, at=now,
                 detail={"from": mention.sentiment_label, "to": checked.value})
    mention.sentiment_label = checked.value
    return mention


def add_note(
    session: Session, user: User, text: str, *, now: datetime, mention_id: int | None = None,
    customer_id: int | None = None,
) -> Note:
    """An internal note on a mention or on the customer as a whole (never sent anywhere)."""
    text = text.strip()
    if not text:
        raise Invalid("the note is empty")
    if len(text) > NOTE_MAX:
        raise Invalid(f"notes are limited to {NOTE_MAX} characters")
    if (mention_id is None) == (customer_id is None):
        raise Invalid("a note belongs to a mention or to a customer")
    if mention_id is not None:
        _mention(session, mention_id)
    elif session.get(Customer, customer_id) is None:
        raise NotFound("that customer does not exist")
    note = Note(mention_id=mention_id, customer_id=customer_id, user_id=user.id, text=text, created_at=now)
    session.add(note)
    session.flush()
    audit.record(session, audit.NOTE, "customer" if customer_id else "mention", customer_id or mention_id,
                 user_id=user.id, at=now, detail={"note_id": note.id})
    return note


def normalize_tag(tag: str) -> str:
    tag = " ".join(tag.strip().lower().split())
    if not TAG_RE.match(tag):
        raise Invalid("tags are 1-60 letters, digits, spaces or . : / + - _")
    return tag


def add_tag(session: Session, mention_id: int, user: User, tag: str, *, now: datetime) -> str:
    tag = normalize_tag(tag)
    _mention(session, mention_id)
    exists = session.scalar(select(MentionTag.id).where(MentionTag.mention_id == mention_id, MentionTag.tag == tag))
    if exists is None:
        session.add(MentionTag(mention_id=mention_id, tag=tag))
        audit.record(session, audit.TAG, "mention", mention_id, user_id=user.id, at=now, detail={"tag": tag})
    return tag


def remove_tag(session: Session, mention_id: int, user: User, tag: str, *, now: datetime) -> str:
    """Remove a tag (validated like `add_tag`; NotFound for a missing mention); returns the normalised tag."""
    tag = normalize_tag(tag)
    _mention(session, mention_id)
    row = session.scalar(select(MentionTag).where(MentionTag.mention_id == mention_id, MentionTag.tag == tag))
    if row is not None:
        session.delete(row)
        audit.record(session, audit.UNTAG, "mention", mention_id, user_id=user.id, at=now, detail={"tag": tag})
    return tag


# --------------------------------------------------------------------------- saved replies

PLACEHOLDER_RE = re.compile(r"@?\{(name|handle|agent|brand)\}")


def render_template(text: str, *, author: Author, customer: Customer | None, agent: User, brand: str) -> str:
    """Fill {name}, {handle}, {agent}, {brand}; anything else in braces stays as written.

    {handle} is "@handle" on X (an "@" written before it is not doubled) and the name on Facebook.
    """
    name = (customer.display_name if customer and customer.display_name else None) or author.display_name \
        or author.handle or "there"
    if author.platform == "x" and author.handle:
        handle = "@" + author.handle.removeprefix("@")
    else:
        handle = author.display_name or author.handle or name
    values = {"name": name, "handle": handle, "agent": agent.username, "brand": brand}

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        prefix = "@" if match.group(0).startswith("@") and not values[key].startswith("@") else ""
        return prefix + values[key]

    return PLACEHOLDER_RE.sub(fill, text)


def list_saved_replies(session: Session) -> list[SavedReply]:
    return list(session.scalars(select(SavedReply).order_by(func.lower(SavedReply.name))))


def save_saved_reply(
    session: Session, user: User, *, name: str, text: str, language: str | None, now: datetime,
    saved_reply_id: int | None = None,
) -> SavedReply:
    """Create or edit a saved reply (admins only)."""
    if not has_role(user, Role.ADMIN):
        raise NotAllowed("only admins manage saved replies")
    name, text, language = name.strip(), text.strip(), (language or "").strip() or None
    if not name or len(name) > 100:
        raise Invalid("the name must have 1-100 characters")
    if not text:
        raise Invalid("the text is empty")
    clash = session.scalar(select(SavedReply.id).where(func.lower(SavedReply.name) == name.lower()))
    if clash is not None and clash != saved_reply_id:
        raise Invalid(f"a saved reply named {name!r} exists already")
    if saved_reply_id is None:
        saved = SavedReply(name=name, text=text, language=language, created_by=user.id, created_at=now,
                           updated_at=now)
        session.add(saved)
        action = audit.SAVED_REPLY_CREATE
    else:
        found = session.get(SavedReply, saved_reply_id)
        if found is None:
            raise NotFound("that saved reply does not exist")
        saved = found
        saved.name, saved.text, saved.language, saved.updated_at = name, text, language, now
        action = audit.SAVED_REPLY_UPDATE
    session.flush()
    audit.record(session, action, "saved_reply", saved.id, user_id=user.id, at=now, detail={"name": name})
    return saved


def delete_saved_reply(session: Session, user: User, saved_reply_id: int, *, now: datetime) -> None:
    if not has_role(user, Role.ADMIN):
        raise NotAllowed("only admins manage saved replies")
    saved = session.get(SavedReply, saved_reply_id)
    if saved is None:
        raise NotFound("that saved reply does not exist")
    audit.record(session, audit.SAVED_REPLY_DELETE, "saved_reply", saved.id, user_id=user.id, at=now,
                 detail={"name": saved.name})
    session.delete(saved)
