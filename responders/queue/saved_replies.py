"""Saved replies: the team's templates, managed by admins, filled per mention and agent."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from listener.platforms import spec_of
from models.domain import Role
from models.orm import Author, Customer, SavedReply, User
from responders import audit
from responders.auth import has_role
from responders.errors import Invalid, NotAllowed, NotFound

PLACEHOLDER_RE = re.compile(r"@?\{(name|handle|agent|brand|order)\}")


def customer_name(author: Author, customer: Customer | None) -> str:
    """How a reply addresses the customer: the customer's name, the author's, the handle, else "there"."""
    return (customer.display_name if customer and customer.display_name else None) or author.display_name \
        or author.handle or "there"


def render_template(text: str, *, author: Author, customer: Customer | None, agent: User, brand: str,
                    order: str | None = None) -> str:
    """Fill {name}, {handle}, {agent}, {brand}, {order}; anything else in braces stays as written.

    {handle} is "@handle" where the platform has handles (an "@" written before it is not doubled),
    else the author's name (listener.platforms.SPECS: has_handles). {order} is the order number found
    in the mention (responders.suggestions.drafts.order_number); without one it stays "{order}" for the
    agent to fill.
    """
    name = customer_name(author, customer)
    if author.handle and spec_of(author.platform).has_handles:
        handle = "@" + author.handle.removeprefix("@")
    else:
        handle = author.display_name or author.handle or name
    values = {"name": name, "handle": handle, "agent": agent.username, "brand": brand}
    if order:
        values["order"] = order

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            return match.group(0)
        prefix = "@" if match.group(0).startswith("@") and not values[key].startswith("@") else ""
        return prefix + values[key]

    return PLACEHOLDER_RE.sub(fill, text)


def list_saved_replies(session: Session) -> list[SavedReply]:
    return list(session.scalars(select(SavedReply).order_by(func.lower(SavedReply.name))))


def save_saved_reply(
    session: Session, user: User, *, name: str, text: str, language: str | None, now: datetime,
    saved_reply_id: int | None = None,
) -> SavedReply:
    """Create or edit a saved reply (admins only)."""
    if not has_role(user, Role.ADMIN):
        raise NotAllowed("only admins manage saved replies")
    name, text, language = name.strip(), text.strip(), (language or "").strip() or None
    if not name or len(name) > 100:
        raise Invalid("the name must have 1-100 characters")
    if not text:
        raise Invalid("the text is empty")
    clash = session.scalar(select(SavedReply.id).where(func.lower(SavedReply.name) == name.lower()))
    if clash is not None and clash != saved_reply_id:
        raise Invalid(f"a saved reply named {name!r} exists already")
    if saved_reply_id is None:
        saved = SavedReply(name=name, text=text, language=language, created_by=user.id, created_at=now,
                           updated_at=now)
        session.add(saved)
        action = audit.SAVED_REPLY_CREATE
    else:
        found = session.get(SavedReply, saved_reply_id)
        if found is None:
            raise NotFound("that saved reply does not exist")
        saved = found
        saved.name, saved.text, saved.language, saved.updated_at = name, text, language, now
        action = audit.SAVED_REPLY_UPDATE
    session.flush()
    audit.record(session, action, "saved_reply", saved.id, user_id=user.id, at=now, detail={"name": name})
    return saved


def delete_saved_reply(session: Session, user: User, saved_reply_id: int, *, now: datetime) -> None:
    if not has_role(user, Role.ADMIN):
        raise NotAllowed("only admins manage saved replies")
    saved = session.get(SavedReply, saved_reply_id)
    if saved is None:
        raise NotFound("that saved reply does not exist")
    audit.record(session, audit.SAVED_REPLY_DELETE, "saved_reply", saved.id, user_id=user.id, at=now,
                 detail={"name": saved.name})
    session.delete(saved)
