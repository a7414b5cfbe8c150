"""Server-side web sessions: a signed-in browser is a row, so ending it is final.

The session cookie carries a random token (and the CSRF token and flash messages); the table holds
the token's SHA-256, never the token. A session ends on logout, when its user's password changes or
the user is deactivated, when an admin signs the user out everywhere, after `web.session_idle_minutes`
without a request, and `web.session_max_hours` after sign-in, whichever comes first. A copied cookie
of an ended session signs nobody in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from models.config import WebConfig
from models.orm import User, WebSession

TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often per session
KEEP_ENDED = timedelta(days=30)  # ended sessions stay this long (who was signed in when), then go

# Why a session ended (WebSession.end_reason).
LOGOUT, PASSWORD_CHANGED, DEACTIVATED, SIGNED_OUT_EVERYWHERE = (
    "logout", "password_changed", "deactivated", "signed_out_everywhere")


@dataclass(frozen=True)
class Lifetimes:
    """How long a session may sit unused, and live at most (web.session_idle_minutes / session_max_hours)."""

    idle: timedelta
    absolute: timedelta

    @classmethod
    def of(cls, web: WebConfig) -> Lifetimes:
        return cls(idle=timedelta(minutes=web.session_idle_minutes), absolute=timedelta(hours=web.session_max_hours))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, user: User, *, now: datetime, client: str | None) -> tuple[str, WebSession]:
    """A new session for `user`; returns the token for the cookie (shown once, stored hashed)."""
    token = secrets.token_urlsafe(32)
    row = WebSession(token_hash=_digest(token), user_id=user.id, created_at=now, last_seen_at=now,
                     client=(client or "")[:100] or None)
    session.add(row)
    session.flush()
    return token, row


def resolve(session: Session, token: object, *, now: datetime, lifetimes: Lifetimes) -> tuple[WebSession, User] | None:
    """The live session and its active user for a cookie's token, or None (unknown, ended, timed out).

    A live session's last_seen_at moves forward (at most once per TOUCH_EVERY); the caller commits.
    """
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    row = session.execute(
        select(WebSession, User).join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _digest(token))
    ).first()
    if row is None:
        return None
    web_session, user = row[0], row[1]
    if (web_session.ended_at is not None or not user.active
            or now - web_session.last_seen_at >= lifetimes.idle
            or now - web_session.created_at >= lifetimes.absolute):
        return None
    if now - web_session.last_seen_at >= TOUCH_EVERY:
        session.execute(update(WebSession).where(WebSession.id == web_session.id, WebSession.ended_at.is_(None))
                        .values(last_seen_at=now))
    return web_session, user


def end_session(session: Session, session_id: int, *, now: datetime, reason: str) -> None:
    session.execute(update(WebSession).where(WebSession.id == session_id, WebSession.ended_at.is_(None))
                    .values(ended_at=now, end_reason=reason))


def end_user_sessions(session: Session, user_id: int, *, now: datetime, reason: str,
                      keep: int | None = None) -> int:
    """End every session of a user (but `keep`, the acting browser's own); returns how many ended."""
    query = update(WebSession).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
    if keep is not None:
        query = query.where(WebSession.id != keep)
    return int(session.execute(query.values(ended_at=now, end_reason=reason)).rowcount or 0)  # type: ignore[attr-defined]


def live_counts(session: Session, *, now: datetime, lifetimes: Lifetimes) -> dict[int, int]:
    """Live sessions per user id (for the admin's user list)."""
    query = (select(WebSession.user_id, func.count())
             .where(WebSession.ended_at.is_(None), WebSession.last_seen_at > now - lifetimes.idle,
                    WebSession.created_at > now - lifetimes.absolute)
             .group_by(WebSession.user_id))
    return {user_id: int(count) for user_id, count in session.execute(query)}


def purge(session: Session, *, now: datetime, lifetimes: Lifetimes) -> int:
    """Delete sessions that ended, or could no longer be used, more than KEEP_ENDED ago."""
    cutoff = now - KEEP_ENDED
    query = delete(WebSession).where(or_(
        WebSession.ended_at < cutoff,
        WebSession.last_seen_at < cutoff - lifetimes.idle,
        WebSession.created_at < cutoff - lifetimes.absolute,
    ))
    return int(session.execute(query).rowcount or 0)  # type: ignore[attr-defined]
