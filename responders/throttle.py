"""Sign-in throttling per account and per client address, kept in the database.

Every instance on one database shares the counts (`login_throttle`), and each failure is one atomic
`UPDATE ... RETURNING`, so parallel guesses are all counted. After `free_failures` failures an
account's next try must wait 1, 2, 4 ... 60 seconds; after `max_failures` within `window_minutes`
the account is locked for `lockout_minutes`, and a client address after `max_failures_per_address`
(password spraying over many accounts). A refused try is not checked at all, so the right password
does not lift a lock; a success clears the account's count, never the address's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.orm import Session

from models.config import LoginConfig
from models.db import insert_into
from models.orm import LoginThrottle
from responders.errors import Busy

MAX_DELAY = timedelta(seconds=60)


class Throttled(Busy):
    """A sign-in refused before its password was looked at; `until` says when to try again (HTTP 429)."""

    status = 429

    def __init__(self, until: datetime, *, locked: bool, now: datetime) -> None:
        self.until, self.locked = until, locked
        retry_after = max(int((until - now).total_seconds() + 0.999), 1)
        if locked:
            minutes = max(round(retry_after / 60), 1)
            message = f"Too many failed sign-ins: signing in is locked for about {minutes} more minute(s)."
        else:
            message = f"Too many failed sign-ins: wait {retry_after} s before the next try."
        super().__init__(message, retry_after)


@dataclass(frozen=True)
class Lock:
    """A lock that a failure just set (for the audit log)."""

    kind: str  # "account" | "address"
    name: str
    until: datetime
    failures: int


def account_key(username: str) -> str:
    return "account:" + username.strip().lower()[:100]


def address_key(address: str) -> str:
    return "address:" + address[:100]


class LoginThrottler:
    """The throttling rules of one config; all state is in the session's database."""

    def __init__(self, config: LoginConfig) -> None:
        self.config = config
        self.window = timedelta(minutes=config.window_minutes)
        self.lockout = timedelta(minutes=config.lockout_minutes)

    def _keys(self, username: str, address: str | None) -> list[tuple[str, str, int]]:
        keys = [("account", account_key(username), self.config.max_failures)]
        if address:
            keys.append(("address", address_key(address), self.config.max_failures_per_address))
        return keys

    def check(self, session: Session, username: str, address: str | None, *, now: datetime,
              for_update: bool = False) -> None:
        """Raise Throttled if this account or address may not try now (`for_update` locks the rows)."""
        keys = [key for _, key, _ in self._keys(username, address)]
        query = select(LoginThrottle).where(LoginThrottle.key.in_(keys))
        refusals: list[Throttled] = []
        for row in session.scalars(query.with_for_update() if for_update else query):
            if row.locked_until is not None and row.locked_until > now:
                refusals.append(Throttled(row.locked_until, locked=True, now=now))
            elif row.next_attempt_at is not None and row.next_attempt_at > now:
                refusals.append(Throttled(row.next_attempt_at, locked=False, now=now))
        if refusals:
            raise max(refusals, key=lambda r: (r.locked, r.until))

    def failed(self, session: Session, username: str, address: str | None, *, now: datetime) -> list[Lock]:
        """Count one failure for the account and the address; returns the locks it set."""
        locks: list[Lock] = []
        for kind, key, limit in self._keys(username, address):
            session.execute(insert_into(session, LoginThrottle)
                            .values(key=key, failures=0, window_started_at=now)
                            .on_conflict_do_nothing(index_elements=["key"]))
            stale = LoginThrottle.window_started_at <= now - self.window
            failures = int(session.execute(
                update(LoginThrottle).where(LoginThrottle.key == key)
                .values(failures=case((stale, 1), else_=LoginThrottle.failures + 1),
                        window_started_at=case((stale, now), else_=LoginThrottle.window_started_at))
                .returning(LoginThrottle.failures)
            ).scalar_one())
            if failures >= limit:  # a new lock (an existing one is never extended by racing failures)
                until = now + self.lockout
                locked = session.execute(
                    update(LoginThrottle).where(LoginThrottle.key == key, or_(
                        LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now))
                    .values(locked_until=until)
                ).rowcount  # type: ignore[attr-defined]
                if locked:
                    locks.append(Lock(kind, key.split(":", 1)[1], until, failures))
            elif kind == "account" and failures >= self.config.free_failures:
                wait = min(timedelta(seconds=2 ** min(failures - self.config.free_failures, 6)), MAX_DELAY)
                session.execute(
                    update(LoginThrottle).where(LoginThrottle.key == key, or_(
                        LoginThrottle.next_attempt_at.is_(None), LoginThrottle.next_attempt_at < now + wait))
                    .values(next_attempt_at=now + wait))
        return locks

    def succeeded(self, session: Session, username: str, address: str | None, *, now: datetime) -> None:
        """A right password: refused all the same if a parallel failure locked it meanwhile, else clear."""
        self.check(session, username, address, now=now, for_update=True)
        session.execute(update(LoginThrottle).where(LoginThrottle.key == account_key(username))
                        .values(failures=0, next_attempt_at=None, locked_until=None, window_started_at=now))

    def purge(self, session: Session, *, now: datetime) -> int:
        """Forget counts whose window and lock are over."""
        query = delete(LoginThrottle).where(
            LoginThrottle.window_started_at <= now - self.window,
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
            or_(LoginThrottle.next_attempt_at.is_(None), LoginThrottle.next_attempt_at <= now),
        )
        return int(session.execute(query).rowcount or 0)  # type: ignore[attr-defined]
