"""Hiding a comment from the public on the platform (Instagram: POST /{ig-comment-id} with `hide`).

The platform call comes in as `moderate(mention, hidden)` (the composition root passes its adapters'
`hide`; listener.platforms SPECS `hideable` says what each platform lets the brand hide). The mention's `hidden`
flag and an audit event are written in the caller's transaction once the platform confirmed it;
the queue item stays as it is (hiding is not answering: dismiss it, or answer the customer elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from listener.platforms import spec_of
from listener.platforms.base import PlatformError
from models.domain import MentionData
from models.orm import Mention, User
from responders import audit
from responders.dispatch import mention_data
from responders.errors import Invalid
from responders.queue.items import get_mention

Moderate = Callable[[MentionData, bool], None]


def can_hide(mention: Mention) -> bool:
    """Whether the platform lets the brand hide this item: a customer's comment, not a post or its own."""
    hideable = spec_of(mention.platform).hideable
    return hideable is not None and hideable(mention.external_id, mention.conversation_id, mention.is_own,
                                             mention.source)


def set_hidden(session: Session, mention_id: int, user: User, hidden: bool, *, now: datetime,
               moderate: Moderate | None) -> Mention:
    """Hide (or show again) the comment on its platform, then record it; Invalid with the reason otherwise."""
    mention = get_mention(session, mention_id)
    name = spec_of(mention.platform).display_name
    if moderate is None or not can_hide(mention):
        raise Invalid(f"{name} does not let openear hide this (only customers' comments on the brand's own posts)")
    if mention.hidden == hidden:
        raise Invalid("it is hidden already" if hidden else "it is not hidden")
    try:
        moderate(mention_data(mention), hidden)
    except PlatformError as exc:
        raise Invalid(f"{name} did not {'hide' if hidden else 'show'} it: {exc}") from None
    mention.hidden = hidden
    audit.record(session, audit.HIDE, "mention", mention.id, user_id=user.id, at=now,
                 detail={"hidden": hidden, "platform": mention.platform, "external_id": mention.external_id})
    return mention
