"""The X poll cursor: a since_id, or a backlog being drained downwards.

Stored as text in `poll_cursors.cursor`: the plain since_id (what X's `since_id` takes), or while a
backlog larger than one poll is read, `{"since": S, "until": U, "newest": N}`: posts between S and
U are still to read (with `until_id` = U), and N becomes the since_id once they are.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class XCursor:
    since: str | None = None  # the newest post already stored: X's since_id
    until: str | None = None  # draining: the oldest post read so far (X's until_id for the next read)
    newest: str | None = None  # draining: the since_id once the backlog is read

    @classmethod
    def parse(cls, text: str | None) -> XCursor:
        """The cursor stored as `text`; an unreadable one means a fresh start (the store deduplicates)."""
        if not text:
            return cls()
        if not text.startswith("{"):
            return cls(since=text)
        try:
            state = json.loads(text)
            values = [state.get(k) for k in ("since", "until", "newest")]
            if all(v is None or isinstance(v, str) for v in values):
                return cls(*values)
        except (ValueError, AttributeError):
            pass
        log.warning("X: unreadable cursor %r; reading the whole search window again", text[:80])
        return cls()

    def dump(self) -> str | None:
        """The text to store: the plain since_id unless a backlog is being drained."""
        if self.until is None:
            return self.since
        return json.dumps({"since": self.since, "until": self.until, "newest": self.newest})
