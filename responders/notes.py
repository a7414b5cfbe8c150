"""Notes and tags: one rule for both, on a mention or on a customer as a whole.

Notes are internal (never sent anywhere): 1-5,000 characters after trimming, refused (never cut)
when longer. Tags are 1-60 letters, digits, spaces or . : / + - _, trimmed, lower-case, inner
whitespace collapsed; anything else is refused with the rule, on mentions and customers alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.orm import Customer, Mention, MentionTag, Note
from responders import audit
from responders.errors import Invalid, NotFound

NOTE_MAX = 5000
TAG_RE = re.compile(r"^[\w][\w .:/+-]{0,59}$")
TAG_RULE = "tags are 1-60 letters, digits, spaces or . : / + - _"


def add_note(session: Session, text: str, *, user_id: int | None, now: datetime, mention_id: int | None = None,
             customer_id: int | None = None) -> Note:
    """An internal note on a mention or on the customer as a whole."""
    text = text.strip()
    if not text:
        raise Invalid("the note is empty")
    if len(text) > NOTE_MAX:
        raise Invalid(f"notes are limited to {NOTE_MAX} characters; this one has {len(text)}")
    if (mention_id is None) == (customer_id is None):
        raise Invalid("a note belongs to a mention or to a customer")
    if mention_id is not None and session.get(Mention, mention_id) is None:
        raise NotFound(f"mention {mention_id} does not exist")
    if customer_id is not None and session.get(Customer, customer_id) is None:
        raise NotFound(f"there is no customer #{customer_id}")
    note = Note(mention_id=mention_id, customer_id=customer_id, user_id=user_id, text=text, created_at=now)
    session.add(note)
    session.flush()
    if customer_id is not None:
        audit.record(session, audit.CUSTOMER_NOTE, "customer", customer_id, user_id=user_id, at=now,
                     detail={"note_id": note.id})
    else:
        audit.record(session, audit.NOTE, "mention", mention_id, user_id=user_id, at=now, detail={"note_id": note.id})
    return note


def normalize_tag(tag: str) -> str:
    """The tag as stored; Invalid with the rule when it breaks it."""
    tag = " ".join(tag.strip().lower().split())
    if not TAG_RE.match(tag):
        raise Invalid(TAG_RULE)
    return tag


def _mention(session: Session, mention_id: int) -> None:
    if session.get(Mention, mention_id) is None:
        raise NotFound(f"mention {mention_id} does not exist")


def add_tag(session: Session, mention_id: int, tag: str, *, user_id: int | None, now: datetime) -> str:
    """Tag a mention (idempotent); returns the normalised tag."""
    tag = normalize_tag(tag)
    _mention(session, mention_id)
    exists = session.scalar(select(MentionTag.id).where(MentionTag.mention_id == mention_id, MentionTag.tag == tag))
    if exists is None:
        session.add(MentionTag(mention_id=mention_id, tag=tag))
        audit.record(session, audit.TAG, "mention", mention_id, user_id=user_id, at=now, detail={"tag": tag})
    return tag


def remove_tag(session: Session, mention_id: int, tag: str, *, user_id: int | None, now: datetime) -> str:
    """Remove a mention's tag (validated like `add_tag`; NotFound for a missing mention)."""
    tag = normalize_tag(tag)
    _mention(session, mention_id)
    row = session.scalar(select(MentionTag).where(MentionTag.mention_id == mention_id, MentionTag.tag == tag))
    if row is not None:
        session.delete(row)
        audit.record(session, audit.UNTAG, "mention", mention_id, user_id=user_id, at=now, detail={"tag": tag})
    return tag


def tag_list(customer: Customer | None) -> list[str]:
    """A customer's tags, sorted (Customer.tags is JSON: a list, or in older rows a mapping tag -> truthy)."""
    tags: object = customer.tags if customer is not None else None
    if isinstance(tags, dict):
        return sorted(str(k) for k, v in tags.items() if v)
    return sorted(str(t) for t in tags) if isinstance(tags, list) else []


def set_customer_tags(session: Session, customer_id: int, tags: Iterable[str], *, user_id: int | None,
                      now: datetime) -> list[str]:
    """Replace a customer's tags (each checked by the one tag rule; blank entries are skipped)."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"there is no customer #{customer_id}")
    clean = sorted({normalize_tag(t) for t in tags if t.strip()})
    customer.tags = clean  # type: ignore[assignment]
    audit.record(session, audit.CUSTOMER_TAGS, "customer", customer_id, user_id=user_id, at=now,
                 detail={"count": len(clean)})
    return clean
