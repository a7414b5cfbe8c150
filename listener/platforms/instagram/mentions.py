"""@mentions of the brand on other accounts' media: pushed by webhook, read by the mentions source.

Instagram tells an app about a caption or comment that @mentions the account only by webhook (field
`mentions`: the media id and, for a comment, the comment id); the web app records each one in the
inbox (models/inbox.py). The account's mentions source (`instagram:<brand>:mentions:<id>`, only
with `platforms.instagram.webhooks` set) reads the inbox and looks each one up:

- a comment: GET /{ig-user-id}?fields=mentioned_comment.comment_id(<id>){id,text,timestamp,like_count,media{...}}.
  Instagram names no author here, so such comments share one labelled author ("Instagram user (not
  named by Instagram)"), as Facebook's withheld authors do; the media's owner is in `raw`.
- a caption: GET /{ig-user-id}?fields=mentioned_media.media_id(<id>){id,caption,timestamp,username,...},
  by the media's owner (`username:<name>`, as for tagging media).

A comment mention on the account's own media is skipped: the account source hears that comment
with its author, which the lookup does not name. A lookup that answers 100/33 (deleted meanwhile,
comments turned off) is skipped. The cursor keeps the newest `received_at` read and the ids read
within `models.inbox.SETTLE` before it (see there why ids alone would skip late commits). A rate
limit keeps what was looked up before it.

Replies go through POST /{ig-user-id}/mentions with `media_id` (and `comment_id` for a comment):
Instagram's one way to answer there. `find_reply` (after a crash, before posting again) looks for
the account's comment with the text among the first 50 comments of a caption mention's media (and
their replies), through the `mentioned_media` lookup: the only read Instagram allows on another
account's media. On a busier media a reply further down is not seen and could be repeated. For a
comment mention Instagram offers no read of the replies at all, so `find_reply` does not guess: it
raises `Unverifiable`, and the dispatcher hands the reply back to the agent to check on Instagram
instead of posting it a second time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from listener.platforms.base import Inbox, RateLimited, TargetGone, Transient, Unverifiable
from listener.platforms.facebook.mapping import epoch, moment, norm
from listener.platforms.instagram.mapping import NAME, Mapper
from models.domain import AuthorData, MentionData, clean_json
from models.inbox import SETTLE

log = logging.getLogger(__name__)
UNNAMED_ID = "unnamed-by-instagram"
UNNAMED_NAME = "Instagram user (not named by Instagram)"
PER_POLL = 200
MEDIA_SUB = "id,caption,timestamp,permalink,username,like_count,comments_count,media_type"
COMMENT_FIELDS = f"id,text,timestamp,like_count,media{{{MEDIA_SUB}}}"
REPLY_SEARCH = "comments.limit(50){id,text,timestamp,username,replies{id,text,timestamp,username}}"
Lookup = Callable[[str], Any]  # fields -> the answer of GET /{ig-user-id}?fields=...


@dataclass(frozen=True)
class MentionsCursor:
    newest: int = 0  # the newest received_at read (epoch seconds)
    read: dict[int, int] = field(default_factory=dict)  # notification id -> its received_at, within SETTLE

    @classmethod
    def parse(cls, text: str | None, source: str = "") -> MentionsCursor:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            return cls(int(raw["n"]), {int(k): int(v) for k, v in raw["r"].items()})
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("Instagram: unreadable cursor of %s; reading the whole mentions inbox again", source)
            return cls()

    def dump(self) -> str:
        return json.dumps({"v": 1, "n": self.newest, "r": {str(k): v for k, v in sorted(self.read.items())}},
                          separators=(",", ":"))

    def since(self) -> datetime | None:
        return datetime.fromtimestamp(self.newest - SETTLE.total_seconds(), UTC) if self.newest else None


def read_mentions(inbox: Inbox, lookup: Lookup, mapper: Mapper, cursor: MentionsCursor,
                  ) -> tuple[list[MentionData], MentionsCursor, RateLimited | None]:
    """Look up the inbox's new notifications; the mentions, the next cursor and the limit that stopped it."""
    pending = inbox.pending(NAME, mapper.account_id, cursor.since(), set(cursor.read), PER_POLL)
    found: list[MentionData] = []
    read = dict(cursor.read)
    newest = cursor.newest
    stopped: RateLimited | None = None
    for note in pending:
        try:
            mention = (comment_mention(lookup, mapper, note.comment_id, note.media_id) if note.comment_id
                       else media_mention(lookup, mapper, note.media_id))
        except TargetGone as exc:
            log.warning("Instagram: the mention %s of account %s is gone (deleted, or comments turned off); "
                        "skipped: %s", note.comment_id or note.media_id, mapper.account_id, exc)
            mention = None
        except RateLimited as exc:
            stopped = exc
            break
        if mention is not None:
            found.append(mention)
        at = int(note.received_at.timestamp())
        read[note.id] = at
        newest = max(newest, at)
    keep_from = newest - int(SETTLE.total_seconds())
    return found, MentionsCursor(newest, {k: v for k, v in read.items() if v >= keep_from}), stopped


def _node(answer: Any, name: str, what: str) -> dict[str, Any]:
    node = answer.get(name) if isinstance(answer, dict) else None
    if not isinstance(node, dict) or not isinstance(node.get("id"), str):
        raise Transient(f"Instagram answered the {what} lookup without it")
    return node


def comment_mention(lookup: Lookup, mapper: Mapper, comment_id: str, media_id: str) -> MentionData | None:
    """The comment `comment_id` that @mentions the account on another account's media `media_id` (the
    notification's; the lookup's own `media.id` wins); None when the media is the account's own."""
    node = _node(lookup(f"mentioned_comment.comment_id({comment_id}){{{COMMENT_FIELDS}}}"), "mentioned_comment",
                 f"mentioned comment {comment_id}")
    given = node.get("media")
    media: dict[str, Any] = given if isinstance(given, dict) else {}
    media_id = media["id"] if isinstance(media.get("id"), str) else media_id
    if mapper.username is not None and media.get("username") == mapper.username:
        log.debug("Instagram: mention %s is on the account's own media; its comments source hears it", comment_id)
        return None
    permalink = media.get("permalink") if isinstance(media.get("permalink"), str) else None
    return MentionData(
        platform=NAME, external_id=node["id"], text=mapper.text(node.get("text"), "mentioned comment", node["id"]),
        created_at=moment(node.get("timestamp"), f"comment {node['id']}"),
        author=AuthorData(NAME, UNNAMED_ID, None, UNNAMED_NAME), brand=mapper.brand, source=mapper.source,
        conversation_id=media_id, in_reply_to_id=media_id,
        permalink=f"{permalink.rstrip('/')}/c/{node['id']}/" if permalink else None,
        raw=clean_json({"comment": node, "media_id": media_id, "account_id": mapper.account_id,
                        "edge": "mentioned_comment"}))


def media_mention(lookup: Lookup, mapper: Mapper, media_id: str) -> MentionData:
    """Another account's media `media_id` whose caption @mentions the account, by its owner."""
    node = _node(lookup(f"mentioned_media.media_id({media_id}){{{MEDIA_SUB}}}"), "mentioned_media",
                 f"mentioned media {media_id}")
    mention = mapper.media(node, "tags")  # another account's media: its owner by username
    return MentionData(**{**mention.__dict__, "raw": clean_json(
        {"media": node, "edge": "mentioned_media", "account_id": mapper.account_id})})


def reply_args(mention: MentionData, text: str) -> dict[str, str]:
    """POST /{ig-user-id}/mentions parameters for a reply to `mention`."""
    args = {"media_id": mention.conversation_id or mention.external_id, "message": text}
    if mention.conversation_id not in (None, mention.external_id):
        args["comment_id"] = mention.external_id
    return args


def _data(edge: Any) -> list[Any]:
    """The `data` list of an expanded edge; empty when it is missing or malformed."""
    data = edge.get("data") if isinstance(edge, dict) else None
    return data if isinstance(data, list) else []


def find_reply(lookup: Lookup, mention: MentionData, text: str, username: str | None) -> str | None:
    """The account's comment with `text` on the mention's media, newer than the mention (see the module doc)."""
    media_id = mention.conversation_id or mention.external_id
    if media_id != mention.external_id:
        raise Unverifiable(
            "an earlier attempt may have posted this reply, and Instagram lets openear read no replies under a "
            "comment on another account's post: open the comment on Instagram and send the reply again only if "
            "it is not there")
    node = _node(lookup(f"mentioned_media.media_id({media_id}){{{REPLY_SEARCH}}}"), "mentioned_media",
                 f"mentioned media {media_id}")
    created = mention.created_at if mention.created_at.tzinfo else mention.created_at.replace(tzinfo=UTC)
    wanted, oldest = norm(text), int(created.timestamp())
    for comment in _data(node.get("comments")):
        for item in [comment, *_data(comment.get("replies") if isinstance(comment, dict) else None)]:
            if isinstance(item, dict) and isinstance(item.get("id"), str) and item.get("username") == username \
                    and norm(item.get("text")) == wanted and epoch(item.get("timestamp"), "reply") >= oldest:
                return str(item["id"])
    return None
