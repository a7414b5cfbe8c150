"""Team users: argon2 password hashes, roles (agent < manager < admin), activation.

Agents answer; managers also see reports and the audit log and can reassign; admins also manage
users and saved replies. Every change to a user is audited.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.domain import Role
from models.orm import User
from responders import audit, sessions
from responders.errors import Busy, Invalid
from responders.throttle import LoginThrottler

ROLE_RANK = {Role.AGENT: 0, Role.MANAGER: 1, Role.ADMIN: 2}
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,99}$")
MIN_PASSWORD = 8

_hasher = PasswordHasher()
# Verified when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("openear-dummy-password")


T = TypeVar("T")


class UserError(Invalid):
    """A user change that cannot be made; the message is for the person who asked."""


class SignInBusy(Busy):
    """Too many password hashes are being computed or waited for; try again in a moment."""


class HashingGate:
    """Bounds argon2 work, which is slow and memory-hungry on purpose: a flood of sign-ins must not
    starve every other request. WORKERS hashes run at once, up to QUEUE more wait for at most
    WAIT_SECONDS, and the rest are refused at once (SignInBusy)."""

    WORKERS = 1
    QUEUE = 8
    WAIT_SECONDS = 5.0

    def __init__(self, workers: int = WORKERS, queue: int = QUEUE, wait_seconds: float = WAIT_SECONDS) -> None:
        self._running = threading.BoundedSemaphore(workers)
        self._admitted = threading.BoundedSemaphore(workers + queue)
        self.wait_seconds = wait_seconds

    @contextmanager
    def slot(self) -> Iterator[None]:
        busy = "Signing in is busy right now; try again in a few seconds."
        if not self._admitted.acquire(blocking=False):
            raise SignInBusy(busy)
        try:
            if not self._running.acquire(timeout=self.wait_seconds):
                raise SignInBusy(busy)
            try:
                yield
            finally:
                self._running.release()
        finally:
            self._admitted.release()

    def run(self, work: Callable[[], T]) -> T:
        with self.slot():
            return work()


gate = HashingGate()


def hash_password(password: str) -> str:
    return gate.run(lambda: _hasher.hash(password))


def verify_password(password_hash: str, password: str) -> bool:
    """Constant-time argon2 verification; False for a wrong password or a malformed hash."""

    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return gate.run(verify)


def has_role(user: User, role: Role) -> bool:
    """Whether `user` has `role` or a higher one."""
    try:
        return ROLE_RANK[Role(user.role)] >= ROLE_RANK[role]
    except ValueError:
        return False


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise UserError(f"unknown role {value!r}; use agent, manager or admin") from None


def create_user(
    session: Session, username: str, password: str, role: str, *, now: datetime, actor_id: int | None = None
) -> User:
    """Add an active user; raises UserError for a bad name, a short password or a taken name."""
    username = username.strip()
    if not USERNAME_RE.match(username):
        raise UserError("usernames are 2-100 letters, digits or . _ @ - and start with a letter or digit")
    _check_password(password)
    checked = _role(role)
    if session.scalar(select(User.id).where(func.lower(User.username) == username.lower())) is not None:
        raise UserError(f"the username {username!r} is taken")
    user = User(username=username, password_hash=hash_password(password), role=checked.value, active=True,
                created_at=now)
    session.add(user)
    session.flush()
    audit.record(session, audit.USER_CREATE, "user", user.id, user_id=actor_id, at=now,
                 detail={"username": username, "role": checked.value})
    return user


def authenticate(session: Session, username: str, password: str, *, now: datetime,
                 address: str | None = None, throttler: LoginThrottler | None = None) -> User | None:
    """The active user with this name and password, or None; audits the attempt (never the password).

    With a throttler, a try from a locked or waiting account or address raises Throttled before the
    password is looked at, and a failure counts against both; SignInBusy when hashing is saturated.
    """
    if throttler is not None:
        throttler.check(session, username, address, now=now)
    user = session.scalar(select(User).where(User.username == username.strip()))
    reason = None
    if user is None:
        verify_password(_DUMMY_HASH, password)
        reason = "unknown user"
    elif not verify_password(user.password_hash, password):
        reason = "wrong password"
    elif not user.active:
        reason = "inactive"
    if reason is not None:
        audit.record(session, audit.LOGIN_FAILED, "user", user.id if user else None, user_id=None, at=now,
                     detail={"username": user.username if user else username[:100], "reason": reason})
        for lock in throttler.failed(session, username, address, now=now) if throttler else []:
            audit.record(session, audit.LOGIN_LOCKED, "user" if lock.kind == "account" else "address",
                         user.id if user and lock.kind == "account" else None, user_id=None, at=now,
                         detail={lock.kind: lock.name, "failures": lock.failures, "until": lock.until.isoformat()})
        return None
    assert user is not None
    if throttler is not None:
        throttler.succeeded(session, username, address, now=now)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    audit.record(session, audit.LOGIN, "user", user.id, user_id=user.id, at=now)
    return user


def _active_admins(session: Session) -> int:
    query = select(func.count()).select_from(User).where(User.role == Role.ADMIN.value, User.active.is_(True))
    return int(session.scalar(query) or 0)


def _get(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UserError(f"no user with id {user_id}")
    return user


def update_user(
    session: Session,
    user_id: int,
    *,
    now: datetime,
    actor_id: int | None,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
    keep_session: int | None = None,
) -> User:
    """Change a user's role, activation or password; the last active admin stays an active admin.

    A new password or a deactivation ends every session of the user (but `keep_session`, the acting
    browser's own when users change their own password).
    """
    user = _get(session, user_id)
    changes: dict[str, object] = {}
    new_role = _role(role) if role is not None else Role(user.role)
    new_active = user.active if active is None else active
    losing_admin = user.role == Role.ADMIN.value and user.active and (new_role is not Role.ADMIN or not new_active)
    if losing_admin and _active_admins(session) <= 1:
        raise UserError("this is the last active admin; make someone else admin first")
    if new_role.value != user.role:
        changes["role"] = [user.role, new_role.value]
        user.role = new_role.value
    if new_active != user.active:
        changes["active"] = [user.active, new_active]
        user.active = new_active
    if password is not None:
        _check_password(password)
        user.password_hash = hash_password(password)
        changes["password"] = "changed"
    ended = 0
    if "active" in changes and not new_active:
        ended = sessions.end_user_sessions(session, user.id, now=now, reason=sessions.DEACTIVATED)
    elif password is not None:
        ended = sessions.end_user_sessions(session, user.id, now=now, reason=sessions.PASSWORD_CHANGED,
                                           keep=keep_session)
    if ended:
        changes["sessions_ended"] = ended
    if changes:
        audit.record(session, audit.USER_UPDATE, "user", user.id, user_id=actor_id, at=now,
                     detail={"username": user.username, **changes})
    return user


def sign_out_everywhere(session: Session, user_id: int, *, now: datetime, actor_id: int | None) -> int:
    """End every session of a user (an admin's "sign out everywhere"); audited; returns how many."""
    user = _get(session, user_id)
    ended = sessions.end_user_sessions(session, user.id, now=now, reason=sessions.SIGNED_OUT_EVERYWHERE)
    audit.record(session, audit.SESSIONS_END, "user", user.id, user_id=actor_id, at=now,
                 detail={"username": user.username, "sessions_ended": ended})
    return ended


def list_users(session: Session, *, active_only: bool = False) -> list[User]:
    query = select(User).order_by(User.username)
    if active_only:
        query = query.where(User.active.is_(True))
    return list(session.scalars(query))
