"""Public replies from the queue: checking the text, queueing it for the dispatcher, retrying a failure.

Sending creates `Reply(state=draft)` and moves the item to `answered` at once (the agent's work is
done and nobody else can answer it twice). The dispatcher (responders.dispatch) sends the draft; a
failed send stays visible on the mention page, and the queue page lists failed replies until they
are retried.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from listener.platforms import spec_of
from models.domain import QueueState, ReplyState
from models.orm import Mention, Reply, SavedReply, User
from responders import audit
from responders.errors import Invalid, NotFound
from responders.queue.items import flush, get_item, take

CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")  # tab/newline allowed


def check_reply_text(platform: str, text: str) -> str:
    """The reply text as it will be sent; raises Invalid when it is empty, holds control characters or
    unpaired surrogates, or is over the platform limit."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise Invalid("the reply is empty")
    bad = CONTROL_RE.search(text)
    if bad:
        raise Invalid(f"the reply holds a control character (U+{ord(bad.group()):04X}) at position "
                      f"{bad.start() + 1}; remove it and send again")
    spec = spec_of(platform)
    length = spec.reply_length(text)
    if length > spec.reply_limit:
        how = f" ({spec.length_rule})" if spec.length_rule else ""
        raise Invalid(f"the reply has {length} characters{how}; {spec.display_name} allows {spec.reply_limit}")
    return text


def submit_reply(
    session: Session, item_id: int, user: User, text: str, *, now: datetime, timeout_minutes: int,
    saved_reply_id: int | None = None,
) -> Reply:
    """Queue a public reply (state draft) and close the item as answered. The caller notifies the dispatcher.

    `saved_reply_id` names the saved reply the draft started from (kept only while it exists), so that
    suggested replies can learn which template answered what."""
    item = get_item(session, item_id)
    mention = session.get(Mention, item.mention_id)
    if mention is None:
        raise NotFound("the mention is gone")
    if mention.hidden:
        raise Invalid(f"{spec_of(mention.platform).display_name} hides this from the public (the page moderated "
                      "it); it is not answered publicly")
    refusal = spec_of(mention.platform).reply_refusal(mention.external_id, mention.conversation_id, mention.is_own,
                                                        mention.source)
    if refusal:
        raise Invalid(refusal)
    text = check_reply_text(mention.platform, text)
    take(session, item, user, now, timeout_minutes, "answer")
    item.transition(QueueState.ANSWERED, now=now)
    item.assignee_id, item.updated_at = user.id, now
    flush(session, "answer")
    if saved_reply_id is not None and session.get(SavedReply, saved_reply_id) is None:
        saved_reply_id = None
    reply = Reply(mention_id=mention.id, user_id=user.id, platform=mention.platform, text=text,
                  state=ReplyState.DRAFT.value, idempotency_key=uuid.uuid4().hex, created_at=now,
                  saved_reply_id=saved_reply_id)
    session.add(reply)
    session.flush()
    audit.record(session, audit.REPLY, "reply", reply.id, user_id=user.id, at=now,
                 detail={"mention_id": mention.id, "queue_item": item.id, "chars": len(text)})
    return reply


def retry_reply(session: Session, reply_id: int, user: User, *, now: datetime) -> Reply:
    """Queue a failed reply again: same row, same idempotency key, due now. The caller notifies the dispatcher."""
    reply = session.get(Reply, reply_id, populate_existing=True)
    if reply is None:
        raise NotFound(f"reply {reply_id} does not exist")
    if reply.state != ReplyState.FAILED.value:
        raise Invalid(f"only a failed reply can be retried; this one is {reply.state}")
    reply.retryable, reply.next_attempt_at = True, now
    session.flush()
    audit.record(session, audit.RETRY, "reply", reply.id, user_id=user.id, at=now,
                 detail={"mention_id": reply.mention_id, "previous_error": reply.error})
    return reply


# --------------------------------------------------------------------------- corrections, notes, tags
