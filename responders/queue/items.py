"""What every queue action shares: finding an item or a mention, the holder rule and the versioned write.

Every state change goes through `QueueItem.transition()` and is flushed with the optimistic
`version` check, so two agents racing for the same item get exactly one winner; the loser sees
`ClaimConflict` naming the holder.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from models.domain import QueueState
from models.orm import Mention, QueueItem, User
from responders import audit
from responders.errors import Conflict, Invalid, NotFound


class ClaimConflict(Conflict):
    """Someone else holds the item (or changed it a moment ago)."""

    def __init__(self, message: str, holder: str | None = None, since: datetime | None = None) -> None:
        super().__init__(message)
        self.holder, self.since = holder, since


def is_expired(item: QueueItem, now: datetime, timeout_minutes: int) -> bool:
    """Whether a claimed item's holder has been idle longer than the claim timeout."""
    return (
        item.state == QueueState.CLAIMED.value
        and item.claimed_at is not None
        and item.claimed_at <= now - timedelta(minutes=timeout_minutes)
    )


def get_item(session: Session, item_id: int) -> QueueItem:
    item = session.get(QueueItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"queue item {item_id} does not exist")
    return item


def thread_key(platform: str, conversation_id: str | None, external_id: str, author_id: int) -> str:
    """The one key of a customer conversation: the platform's thread (X conversation, Facebook post)
    with one customer (author). A queue item holds one such conversation."""
    return f"{platform}:{conversation_id or external_id}:{author_id}"


def key_of(mention: Mention) -> str:
    return thread_key(mention.platform, mention.conversation_id, mention.external_id, mention.author_id)


def conversation_item(session: Session, mention: Mention) -> QueueItem | None:
    """The queue item of the conversation `mention` belongs to: the item answering it, else the newest
    item of its thread with this customer (an earlier message of an open or closed conversation)."""
    item = session.scalar(select(QueueItem).where(QueueItem.mention_id == mention.id))
    if item is None and not mention.is_own:
        item = session.scalar(select(QueueItem).where(QueueItem.thread_key == key_of(mention))
                              .order_by(QueueItem.id.desc()).limit(1))
    return item


def item_for_mention(session: Session, mention_id: int) -> QueueItem:
    mention = session.get(Mention, mention_id)
    item = conversation_item(session, mention) if mention is not None else None
    if item is None:
        raise NotFound("this mention is not in the queue (the brand's own posts and history are never queued)")
    return item


def get_mention(session: Session, mention_id: int) -> Mention:
    mention = session.get(Mention, mention_id)
    if mention is None:
        raise NotFound(f"mention {mention_id} does not exist")
    return mention


def holder_name(session: Session, item: QueueItem) -> str | None:
    if item.assignee_id is None:
        return None
    return session.scalar(select(User.username).where(User.id == item.assignee_id))


def claim_started(session: Session, item: QueueItem) -> datetime | None:
    """When the current holder got the item (its last claim or reassignment)."""
    event = audit.last_event(session, (audit.CLAIM, audit.REASSIGN), "queue_item", item.id)
    return event.at if event is not None else item.claimed_at


def conflict(session: Session, item: QueueItem, verb: str) -> ClaimConflict:
    holder = holder_name(session, item) or "someone"
    started = claim_started(session, item)
    since = f" since {started:%H:%M} UTC" if started else ""
    return ClaimConflict(f"{holder} is working on this{since}; you cannot {verb} it", holder, started)


def flush(session: Session, verb: str) -> None:
    """Write the item with the optimistic version check; a concurrent change becomes ClaimConflict.

    After a conflict the transaction is spoiled: the caller's `sessions.begin()` block rolls it back.
    """
    try:
        session.flush()
    except StaleDataError:
        raise ClaimConflict(f"someone else changed this item a moment ago, so you could not {verb} it") from None


def take(session: Session, item: QueueItem, user: User, now: datetime, timeout_minutes: int, verb: str) -> str:
    """Make `user` the holder (claiming if needed); return the audit action or '' when already held."""
    if item.state in (QueueState.ANSWERED.value, QueueState.DISMISSED.value):
        raise Invalid(f"this item is already {item.state}")
    if item.state == QueueState.CLAIMED.value and item.assignee_id == user.id:
        item.claimed_at = now
        return ""
    if item.state == QueueState.CLAIMED.value and not is_expired(item, now, timeout_minutes):
        raise conflict(session, item, verb)
    item.transition(QueueState.CLAIMED, now=now)
    item.assignee_id, item.updated_at = user.id, now
    return audit.CLAIM
