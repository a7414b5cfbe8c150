"""The contract every platform adapter fulfils, and the typed errors at its boundary.

An adapter wraps one SDK and lets none of its types out: it returns `MentionData` and raises only
the exceptions below (the poller and the dispatcher decide what to do with them):

    PlatformError                 anything else the platform refused; a person reads the message
    ├── RateLimited(retry_at)     not now: a 15-minute window, a 24-hour posting limit, a monthly
    │                             usage cap or openear's own read budget (`scope` says which)
    ├── AuthFailed                credentials wrong, expired, of the wrong kind or lacking a permission
    ├── TargetGone                the post, comment or account no longer exists (or is hidden)
    ├── Transient                 5xx, timeouts, broken bodies, "temporarily blocked": retry later
    ├── Duplicate                 the platform refused a post as a copy of one already there
    ├── ContentRejected           the platform refused the text itself (too long by its count, ...)
    └── Unverifiable              `find_reply` cannot read back whether an earlier attempt posted
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from models.domain import MentionData, Platform
from models.errors import OpenEarError
from models.inbox import Notification


class PlatformError(OpenEarError):
    """Base of every adapter error. Messages say what to do, never contain secrets."""


class RateLimited(PlatformError):
    """The platform refused for now; try again at `retry_at` (UTC).

    `scope` names the limit that applies ("15-minute window", "24-hour posting limit", "monthly usage
    cap", "read budget per day", ...), so `retry_at` is that limit's reset, not the next window.
    """

    def __init__(self, message: str, retry_at: datetime, scope: str = "rate limit") -> None:
        super().__init__(message)
        self.retry_at = retry_at
        self.scope = scope


class AuthFailed(PlatformError):
    """Credentials are wrong, expired or lack a permission; a person must act."""


class TargetGone(PlatformError):
    """The post, comment or account no longer exists (deleted, hidden, suspended)."""


class Transient(PlatformError):
    """5xx, timeouts, broken bodies: retrying later is the right answer."""


class Duplicate(PlatformError):
    """The platform refused to post because the same text is already there (X 403 duplicate content,
    Graph 506). The reply may be ours from an attempt that timed out: `find_reply` settles it."""


class ContentRejected(PlatformError):
    """The platform refused the text itself (too long by its own count, not allowed): a person must
    change the reply; retrying the same text cannot help."""


class Unverifiable(PlatformError):
    """`find_reply` cannot tell whether an earlier attempt posted the reply (the platform offers no read
    of where it would be): posting again could repeat it, so a person must look first."""


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
    """Mentions newer than the cursor, oldest first, and the cursor to store once they are saved.

    `interrupted` is set when the read stopped early at a rate limit or a read budget after some
    pages were read: `mentions` are what was read, `next_cursor` records the unread rest (as a
    backlog drain does), and the source's next poll waits until `interrupted.retry_at`.
    """

    mentions: list[MentionData]
    next_cursor: str | None
    interrupted: RateLimited | None = None


class PlatformAdapter(Protocol):
    platform: Platform

    def sources(self) -> list[Source]:
        """The sources this adapter polls, from its configuration."""
        ...

    def preflight(self) -> None:
        """Check the credentials before the first poll: that they work and are of the right kind (a
        Facebook page token, not a user token). Raises AuthFailed with what to fix; Transient when
        the platform cannot be asked now (the daemon starts anyway and the polls report it)."""
        ...

    def fetch(self, source: Source, cursor: str | None) -> FetchResult:
        """Everything new since `cursor` (None: first poll), oldest first. Raises PlatformError."""
        ...

    def post_reply(self, mention: MentionData, text: str) -> str:
        """Answer `mention` publicly; return the platform id of the reply. Raises PlatformError
        (Duplicate and ContentRejected included)."""
        ...

    def find_reply(self, mention: MentionData, text: str) -> str | None:
        """The id of a reply with `text` already posted to `mention` by us, if any (crash recovery)."""
        ...


class Hides(Protocol):
    """An adapter whose platform lets the brand hide comments from the public (SPECS `hideable`)."""

    def hide(self, mention: MentionData, hidden: bool = True) -> None:
        """Hide (or show again) the comment; ContentRejected for what cannot be hidden."""
        ...


class Inbox(Protocol):
    """Webhook notifications recorded for a source to read (models.inbox.DbInbox): those received at
    `since` or later (all when None), less the ids in `exclude`, oldest first, at most `limit`."""

    def pending(self, platform: str, account_id: str, since: datetime | None, exclude: set[int],
                limit: int) -> list[Notification]:
        ...


def iter_sources(adapters: list[PlatformAdapter]) -> Iterator[Source]:
    for adapter in adapters:
        yield from adapter.sources()
