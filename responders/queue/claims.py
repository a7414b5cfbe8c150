"""Claims and closing without an answer: claim, keep, release, reassign, expire, dismiss.

Claiming sets `claimed_at`; the holder's activity (opening the item, notes, tags, the composer's
heartbeat) renews it. A claim idle for longer than `claim_timeout_minutes` is free: the daemon's
`expire_claims` returns it to `new`, and anyone claiming it earlier simply takes it over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from models.domain import IllegalTransition, QueueState, Role, check_queue_transition
from models.orm import QueueItem, User
from responders import audit
from responders.auth import has_role
from responders.errors import Invalid, NotAllowed
from responders.queue.items import flush, get_item, take

DISMISS_REASONS = {"spam": "spam", "not_relevant": "not relevant", "no_answer_needed": "no answer needed"}


def claim(session: Session, item_id: int, user: User, *, now: datetime, timeout_minutes: int) -> QueueItem:
    """Claim an open item (or renew one's own claim); an expired claim of someone else is taken over."""
    item = get_item(session, item_id)
    previous = item.assignee_id if item.state == QueueState.CLAIMED.value else None
    action = take(session, item, user, now, timeout_minutes, "claim")
    item.updated_at = now
    flush(session, "claim")
    if action:
        detail = {"taken_over_from": previous} if previous else {}
        audit.record(session, action, "queue_item", item.id, user_id=user.id, at=now, detail=detail)
    return item


def touch(session: Session, item_id: int, user: User, *, now: datetime) -> bool:
    """Renew the holder's claim (activity); False when `user` does not hold the item."""
    item = get_item(session, item_id)
    if item.state != QueueState.CLAIMED.value or item.assignee_id != user.id:
        return False
    item.claimed_at, item.updated_at = now, now
    flush(session, "keep")
    return True


def release(session: Session, item_id: int, user: User, *, now: datetime) -> QueueItem:
    """Give a claimed item back to the queue: its holder, or a manager."""
    item = get_item(session, item_id)
    if item.state != QueueState.CLAIMED.value:
        raise Invalid("only a claimed item can be released")
    if item.assignee_id != user.id and not has_role(user, Role.MANAGER):
        raise NotAllowed("only the holder or a manager can release this item")
    holder = item.assignee_id
    item.transition(QueueState.NEW, now=now)
    item.updated_at = now
    flush(session, "release")
    audit.record(session, audit.RELEASE, "queue_item", item.id, user_id=user.id, at=now, detail={"holder": holder})
    return item


def reassign(session: Session, item_id: int, manager: User, to_user_id: int, *, now: datetime) -> QueueItem:
    """A manager hands an open item to another (active) team member."""
    if not has_role(manager, Role.MANAGER):
        raise NotAllowed("only managers can reassign")
    target = session.get(User, to_user_id)
    if target is None or not target.active:
        raise Invalid("that user does not exist or is deactivated")
    item = get_item(session, item_id)
    if item.state not in (QueueState.NEW.value, QueueState.CLAIMED.value):
        raise Invalid(f"this item is already {item.state}")
    previous = item.assignee_id
    item.transition(QueueState.CLAIMED, now=now)
    item.assignee_id, item.updated_at = target.id, now
    flush(session, "reassign")
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
    item = get_item(session, item_id)
    if not (item.state == QueueState.CLAIMED.value and has_role(user, Role.MANAGER)):
        take(session, item, user, now, timeout_minutes, "dismiss")
    try:
        item.transition(QueueState.DISMISSED, now=now)
    except IllegalTransition as exc:
        raise Invalid(str(exc)) from None
    item.dismiss_reason, item.assignee_id, item.updated_at = reason, user.id, now
    flush(session, "dismiss")
    audit.record(session, audit.DISMISS, "queue_item", item.id, user_id=user.id, at=now,
                 detail={"reason": reason, "mention_id": item.mention_id})
    return item

