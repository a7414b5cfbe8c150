"""The contract every platform adapter fulfils, and the typed errors at its boundary.

An adapter wraps one SDK and lets none of its types out: it returns `MentionData` and raises only
the exceptions below (the poller and the dispatcher decide what to do with them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from models.domain import MentionData, Platform


class PlatformError(Exception):
    """Base of every adapter error. Messages say what to do, never contain secrets."""


class RateLimited(PlatformError):
    """The platform refused for now; try again at `retry_at` (UTC)."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class AuthFailed(PlatformError):
    """Credentials are wrong, expired or lack a permission; a person must act."""


class TargetGone(PlatformError):
    """The post, comment or account no longer exists (deleted, hidden, suspended)."""


class Transient(PlatformError):
    """5xx, timeouts, broken bodies: retrying later is the right answer."""


@dataclass(frozen=True)
class Source:
    """One thing to poll: a search query or an account's mentions, for one brand."""

    name: str  # stable, unique, used as the cursor key, e.g. "x:acme:search:0"
    platform: Platform
    brand: str
    kind: str  # "search" | "mentions" | "page"
    target: str  # the query text, account handle or page id


@dataclass(frozen=True)
class FetchResult:
    """Mentions newer than the cursor, oldest first, and the cursor to store once they are saved."""

    mentions: list[MentionData]
    next_cursor: str | None


class PlatformAdapter(Protocol):
    platform: Platform

    def sources(self) -> list[Source]:
        """The sources this adapter polls, from its configuration."""
        ...

    def fetch(self, source: Source, cursor: str | None) -> FetchResult:
        """Everything new since `cursor` (None: first poll), oldest first. Raises PlatformError."""
        ...

    def post_reply(self, mention: MentionData, text: str) -> str:
        """Answer `mention` publicly; return the platform id of the reply."""
        ...

    def find_reply(self, mention: MentionData, text: str) -> str | None:
        """The id of a reply with `text` already posted to `mention` by us, if any (crash recovery)."""
        ...


def iter_sources(adapters: list[PlatformAdapter]) -> Iterator[Source]:
    for adapter in adapters:
        yield from adapter.sources()
