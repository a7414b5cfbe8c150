"""Domain types shared by every layer. Plain dataclasses: no ORM, no SDK types."""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Platform = str
"""A platform's name as stored in every row ("x", "facebook"): a key of listener.platforms.SPECS, the
one table of each platform's facts (a plain string, so a new platform needs no change here)."""


class SentimentLabel(str, enum.Enum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Role(str, enum.Enum):
    AGENT = "agent"
    MANAGER = "manager"
    ADMIN = "admin"


class QueueState(str, enum.Enum):
    NEW = "new"
    CLAIMED = "claimed"
    ANSWERED = "answered"
    DISMISSED = "dismissed"


OPEN_QUEUE_STATES: tuple[str, ...] = (QueueState.NEW.value, QueueState.CLAIMED.value)
"""The queue states a mention is still waiting in (the queue, metrics, history, rerank)."""


class ReplyState(str, enum.Enum):
    DRAFT = "draft"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class IllegalTransition(ValueError):
    """A state machine was asked for a move it does not allow."""

    def __init__(self, kind: str, current: str, target: str, allowed: set[str]) -> None:
        self.current, self.target = current, target
        options = ", ".join(sorted(allowed)) or "none (final state)"
        super().__init__(f"{kind} cannot go from {current!r} to {target!r}; allowed from {current!r}: {options}")


QUEUE_TRANSITIONS: dict[QueueState, set[QueueState]] = {
    QueueState.NEW: {QueueState.CLAIMED, QueueState.DISMISSED},
    # claimed -> claimed is a reassignment; claimed -> new is a release or an expired claim.
    QueueState.CLAIMED: {QueueState.CLAIMED, QueueState.NEW, QueueState.ANSWERED, QueueState.DISMISSED},
    # a closed item can only be reopened (for example when the customer writes again).
    QueueState.ANSWERED: {QueueState.NEW},
    QueueState.DISMISSED: {QueueState.NEW},
}

REPLY_TRANSITIONS: dict[ReplyState, set[ReplyState]] = {
    ReplyState.DRAFT: {ReplyState.SENDING},
    ReplyState.SENDING: {ReplyState.SENT, ReplyState.FAILED},
    ReplyState.FAILED: {ReplyState.SENDING},
    ReplyState.SENT: set(),
}


def check_queue_transition(current: QueueState, target: QueueState) -> None:
    allowed = QUEUE_TRANSITIONS[current]
    if target not in allowed:
        raise IllegalTransition("queue item", current.value, target.value, {s.value for s in allowed})


def check_reply_transition(current: ReplyState, target: ReplyState) -> None:
    allowed = REPLY_TRANSITIONS[current]
    if target not in allowed:
        raise IllegalTransition("reply", current.value, target.value, {s.value for s in allowed})


@dataclass(frozen=True)
class AuthorData:
    """A platform identity as an adapter reports it."""

    platform: Platform
    external_id: str
    handle: str | None = None
    display_name: str | None = None
    followers: int | None = None
    profile_url: str | None = None


@dataclass(frozen=True)
class MentionData:
    """One post or comment as an adapter reports it, before it is stored.

    `is_own` marks the brand's own posts and replies: stored as conversation history, never queued.
    `hidden` marks what the platform hides from the public (a comment the page moderated): stored,
    never queued, never answered publicly.

    Edits: where a platform gives an edited post a new id (X), `external_id` stays the id of the
    edit chain's first post (the one the brand answers and the store knows), `revision` is the id of
    the version whose `text` this is and `edited_at` when that version was written. The store keeps
    the newest revision's text on the one row: an edit is never a second mention.
    """

    platform: Platform
    external_id: str
    text: str
    created_at: datetime
    author: AuthorData
    brand: str
    source: str
    language: str | None = None
    conversation_id: str | None = None
    in_reply_to_id: str | None = None
    permalink: str | None = None
    is_own: bool = False
    raw: dict[str, Any] = field(default_factory=dict)
    hidden: bool = False
    revision: str | None = None
    edited_at: datetime | None = None


_REPLACEMENT = "\ufffd"


def aware(moment: datetime) -> datetime:
    """`moment` as an aware datetime: a naive one is taken as UTC (what the store writes)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def clean_text(text: str) -> tuple[str, list[str]]:
    """Make text storable in every backend; return it with the reasons for any change.

    HTML, scripts, RTL marks, emoji and long texts are kept byte for byte (they are escaped on
    output, never on input). Only what no database can hold is replaced by U+FFFD: NUL characters
    (PostgreSQL text rejects them) and lone UTF-16 surrogates (not encodable as UTF-8).
    """
    reasons: list[str] = []
    if "\x00" in text:
        reasons.append(f"{text.count(chr(0))} NUL character(s) replaced by U+FFFD")
        text = text.replace("\x00", _REPLACEMENT)
    try:
        text.encode("utf-8")  # fast, in C: fails only on lone surrogates
    except UnicodeEncodeError:
        count = sum(1 for ch in text if 0xD800 <= ord(ch) <= 0xDFFF)
        reasons.append(f"{count} lone surrogate(s) replaced by U+FFFD")
        text = "".join(_REPLACEMENT if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return unicodedata.normalize("NFC", text) if reasons else text, reasons


def clean_json(value: Any) -> Any:
    """A JSON-like value with every string (keys included) made storable by `clean_text`."""
    if isinstance(value, str):
        return clean_text(value)[0]
    if isinstance(value, dict):
        return {clean_json(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value
