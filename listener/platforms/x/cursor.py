"""The X poll cursor: a since_id, plus what a backlog drain, a settle window and a day budget need.

Stored as text in `poll_cursors.cursor`. The plain since_id (what X's `since_id` takes) while
nothing else is to be kept; otherwise a JSON object, whose keys are all optional:

    since   the watermark: every post up to it is stored (X's since_id for the next read)
    until   draining a backlog larger than one poll: the oldest post read so far (until_id) ...
    newest  ... and the top of the backlog, where the next read starts once it is drained
    recent  search posts above `since` already returned but younger than the settle window: read
            again (a post search indexed late may lie between them) but not returned twice
    day     the UTC day ("2026-11-20") the read count is for, and ...
    read    ... the posts this source read that day (platforms.x.read_budget.per_day)

Every stored form stays readable: a plain since_id and {"since", "until", "newest"} (the only
forms earlier versions wrote) parse to the same cursor and dump back unchanged.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class XCursor:
    since: str | None = None  # the newest post up to which everything is stored: X's since_id
    until: str | None = None  # draining: the oldest post read so far (X's until_id for the next read)
    newest: str | None = None  # draining: the top of the backlog, read on from once it is drained
    recent: tuple[str, ...] = ()  # returned posts above `since` still inside the settle window
    day: str | None = None  # the UTC day of `read`
    read: int = 0  # posts read on `day`

    @classmethod
    def parse(cls, text: str | None) -> XCursor:
        """The cursor stored as `text`; an unreadable one means a fresh start (the store deduplicates)."""
        if not text:
            return cls()
        if not text.startswith("{"):
            return cls(since=text)
        try:
            state = json.loads(text)
            ids = [state.get(k) for k in ("since", "until", "newest", "day")]
            recent = state.get("recent", [])
            read = state.get("read", 0)
            if (all(v is None or isinstance(v, str) for v in ids) and isinstance(recent, list)
                    and all(isinstance(r, str) for r in recent) and type(read) is int):
                since, until, newest, day = ids
                return cls(since, until, newest, tuple(recent), day, read)
        except (ValueError, AttributeError):
            pass
        log.warning("X: unreadable cursor %r; reading the whole search window again", text[:80])
        return cls()

    def dump(self) -> str | None:
        """The text to store: the plain since_id unless there is more to keep."""
        if self.until is None and not self.recent and self.day is None:
            return self.since
        state: dict[str, object] = {"since": self.since}
        if self.until is not None:
            state.update(until=self.until, newest=self.newest)
        if self.recent:
            state["recent"] = list(self.recent)
        if self.day is not None:
            state.update(day=self.day, read=self.read)
        return json.dumps(state)
