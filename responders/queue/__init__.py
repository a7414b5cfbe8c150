"""The review queue, its whole life in one package: how a mention enters, is claimed, answered or
dismissed, listed and shown. No web types here; the web routes (responders/web/) stay thin and call
these functions inside one transaction each.

    intake.py         entry: rank new mentions, open items, close what the brand answered; re-rank
    items.py          what every action shares: lookups, the holder rule, the versioned write
    claims.py         claim, keep, release, reassign, expire, dismiss
    replies.py        check a reply, queue it for the dispatcher (responders.dispatch), retry a failure
    corrections.py    a person corrects the sentiment label
    saved_replies.py  the team's templates and how they are filled
    listing.py        the queue page: filters, search, ranking order, live updates, failed replies
    detail.py         the mention page: thread, customer timeline, notes, tags, replies

Notes and tags (on mentions and customers alike) follow one rule in responders.notes.
"""

from responders.errors import Invalid, NotAllowed, NotFound, ServiceError
from responders.notes import add_note, add_tag, normalize_tag, remove_tag
from responders.queue.claims import DISMISS_REASONS, claim, dismiss, expire_claims, reassign, release, touch
from responders.queue.corrections import correct_sentiment
from responders.queue.items import ClaimConflict, is_expired, item_for_mention
from responders.queue.listing import QueueFilter, QueuePage, QueueRow, list_queue, updates_since
from responders.queue.moderation import can_hide, set_hidden
from responders.queue.replies import check_reply_text, retry_reply, submit_reply
from responders.queue.saved_replies import delete_saved_reply, list_saved_replies, render_template, save_saved_reply

__all__ = [
    "DISMISS_REASONS",
    "ClaimConflict",
    "Invalid",
    "NotAllowed",
    "NotFound",
    "QueueFilter",
    "QueuePage",
    "QueueRow",
    "ServiceError",
    "add_note",
    "add_tag",
    "can_hide",
    "check_reply_text",
    "claim",
    "correct_sentiment",
    "delete_saved_reply",
    "dismiss",
    "expire_claims",
    "is_expired",
    "item_for_mention",
    "list_queue",
    "list_saved_replies",
    "normalize_tag",
    "reassign",
    "release",
    "remove_tag",
    "render_template",
    "retry_reply",
    "save_saved_reply",
    "set_hidden",
    "submit_reply",
    "touch",
    "updates_since",
]
