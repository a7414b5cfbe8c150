"""Named locks that keep several openear instances from doing the same work at the same time.

On PostgreSQL these are session-level advisory locks (`pg_try_advisory_lock`), held on a dedicated
connection for the duration of the work: a crashed instance's locks vanish with its connection.
SQLite is single-host by nature: a process-local lock per name does (run one daemon per SQLite
file; the README says so).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lock name (the same in every process and Python version)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class NamedLocks:
    # process-wide, so that every NamedLocks on the same database shares them
    _local: dict[tuple[str, str], threading.Lock] = {}
    _guard = threading.Lock()

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        """Try to take the lock `name` without waiting; yields whether this caller holds it."""
        local = self._local_lock(name)
        if not local.acquire(blocking=False):
            yield False
            return
        try:
            if self.engine.dialect.name != "postgresql":
                yield True
                return
            key = lock_key(name)
            with self.engine.connect() as connection:
                got = bool(connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
                connection.commit()
                try:
                    yield got
                finally:
                    if got:
                        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        connection.commit()
        finally:
            local.release()

    @contextmanager
    def wait(self, name: str) -> Iterator[None]:
        """Take the lock `name`, waiting for whoever holds it (for short, one-off work such as start-up)."""
        with self._local_lock(name):
            if self.engine.dialect.name != "postgresql":
                yield
                return
            key = lock_key(name)
            with self.engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                connection.commit()
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    connection.commit()

    def _local_lock(self, name: str) -> threading.Lock:
        key = (self.engine.url.render_as_string(hide_password=True), name)
        with self._guard:
            return self._local.setdefault(key, threading.Lock())
