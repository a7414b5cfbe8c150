"""Webhook notifications waiting for a poll: what a platform pushes (Instagram @mentions on other
accounts' media) is recorded here by the web app and read by that platform's source.

The web app's webhook endpoint calls `record` (once per notification: Meta retries deliveries, and
a repeat is ignored); a source reads `DbInbox.pending(platform, account, since, exclude)` and keeps
in its cursor the newest `received_at` it read and the ids read in the `SETTLE` before it, which the
poller stores in the same transaction as the mentions, so each notification becomes a mention
exactly once. Ids alone would not do: on PostgreSQL a row can commit after a row with a higher id
(each insert draws its id first), and a cursor at "the highest id read" would skip it for good; a
row's `received_at` is set just before its commit, so reading from `SETTLE` before the newest one
read, less the ids already read, misses nothing. `prune` drops old rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models.orm import PlatformNotification

KEEP = timedelta(days=30)  # read long before; kept a while for inspection
SETTLE = timedelta(minutes=5)  # how far before the newest notification read a source reads again


@dataclass(frozen=True)
class Notification:
    """One pushed reference to read: a media, or a comment on it (`comment_id`)."""

    id: int
    platform: str
    account_id: str
    media_id: str
    comment_id: str | None
    received_at: datetime


def record(session: Session, platform: str, account_id: str, media_id: str, comment_id: str | None,
           now: datetime) -> bool:
    """Store one notification; False when it was there already (a repeated delivery)."""
    exists = session.scalar(select(PlatformNotification.id).where(
        PlatformNotification.platform == platform, PlatformNotification.account_id == account_id,
        PlatformNotification.media_id == media_id, PlatformNotification.comment_id == (comment_id or "")))
    if exists is not None:
        return False
    try:
        with session.begin_nested():
            session.add(PlatformNotification(platform=platform, account_id=account_id, media_id=media_id,
                                             comment_id=comment_id or "", received_at=now))
    except IntegrityError:  # the same notification, delivered twice at once
        return False
    return True


def prune(session: Session, now: datetime, keep: timedelta = KEEP) -> int:
    """Delete notifications older than `keep`; how many."""
    result = session.execute(delete(PlatformNotification).where(PlatformNotification.received_at < now - keep))
    return int(getattr(result, "rowcount", 0) or 0)


class DbInbox:
    """The notifications table as a source reads it (an `Inbox` of listener.platforms.base)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def pending(self, platform: str, account_id: str, since: datetime | None, exclude: set[int],
                limit: int) -> list[Notification]:
        """Notifications for `account_id` received at `since` or later (all when None) whose ids are not
        in `exclude`, oldest first, at most `limit`."""
        with self.sessions() as session:
            query = select(PlatformNotification).where(
                PlatformNotification.platform == platform, PlatformNotification.account_id == account_id)
            if since is not None:
                query = query.where(PlatformNotification.received_at >= since)
            if exclude:
                query = query.where(PlatformNotification.id.not_in(sorted(exclude)))
            rows = session.scalars(query.order_by(PlatformNotification.received_at, PlatformNotification.id)
                                   .limit(limit)).all()
            return [Notification(r.id, r.platform, r.account_id, r.media_id, r.comment_id or None, r.received_at)
                    for r in rows]
