"""Graph posts and comments as `MentionData`, and Graph times as datetimes.

Authors: `from` names the person or page. Graph withholds it for posts by people that tag the page
(the Page Tagged reference: "For user posts, the from field will only be returned if the user making
the request is the same user who created the post"). Such a post gets one shared, clearly labelled
author, `WITHHELD` ("Facebook user (hidden by Facebook)"), instead of a made-up person per post: the
post is kept and can be answered, but it cannot be told apart from other people's withheld posts,
nor linked to a customer. Comments under it still carry their authors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from listener.platforms.base import Transient
from models.domain import AuthorData, MentionData, clean_json, clean_text

log = logging.getLogger(__name__)
NAME = "facebook"  # its key in listener.platforms.SPECS
WITHHELD_ID = "withheld-by-facebook"
WITHHELD_NAME = "Facebook user (hidden by Facebook)"


def moment(value: Any, what: str) -> datetime:
    """A Graph time (2026-11-20T08:00:00+0000) as an aware UTC datetime; Transient when unreadable."""
    if isinstance(value, str):
        try:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)
        except ValueError:
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
            except ValueError:
                pass
    raise Transient(f"Facebook answered with an unreadable time in {what}: {value!r}")


def epoch(value: Any, what: str) -> int:
    return int(moment(value, what).timestamp())


def norm(text: Any) -> str:
    """A message as compared with a reply text: cleaned and stripped."""
    return clean_text(text)[0].strip() if isinstance(text, str) else ""


def tail(object_id: str) -> int:
    """The number after the last underscore of an id (creation order within a post)."""
    last = object_id.rsplit("_", 1)[-1]
    return int(last) if last.isdigit() else 0


def has_author(item: dict[str, Any]) -> bool:
    author = item.get("from")
    return isinstance(author, dict) and isinstance(author.get("id"), str) and bool(author["id"])


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Mapper:
    """Maps the Graph items of one page source (`brand`, `page_id`, `source` name)."""

    brand: str
    page_id: str
    source: str

    def author(self, item: dict[str, Any]) -> AuthorData:
        if not has_author(item):
            return AuthorData(NAME, WITHHELD_ID, None, WITHHELD_NAME)
        author, name = item["from"], item["from"].get("name")
        return AuthorData(NAME, author["id"], None, clean_text(name)[0] if isinstance(name, str) else None, None,
                          f"https://www.facebook.com/{author['id']}")

    def post(self, post: dict[str, Any], edge: str) -> MentionData:
        author = self.author(post)
        raw = {k: v for k, v in post.items() if k != "comments"}
        return MentionData(
            platform=NAME, external_id=post["id"], text=self.text(post, "post"),
            created_at=moment(post.get("created_time"), f"post {post['id']}"), author=author, brand=self.brand,
            source=self.source, conversation_id=post["id"], permalink=_str(post.get("permalink_url")),
            is_own=author.external_id == self.page_id,
            raw=clean_json({"post": raw, "edge": edge, "page_id": self.page_id}))

    def comment(self, comment: dict[str, Any], post_id: str) -> MentionData:
        author = self.author(comment)
        parent = comment.get("parent")
        parent_id = parent.get("id") if isinstance(parent, dict) else None
        return MentionData(
            platform=NAME, external_id=comment["id"], text=self.text(comment, "comment"),
            created_at=moment(comment.get("created_time"), f"comment {comment['id']}"), author=author,
            brand=self.brand, source=self.source, conversation_id=post_id,
            in_reply_to_id=parent_id if isinstance(parent_id, str) and parent_id else post_id,
            permalink=_str(comment.get("permalink_url")), is_own=author.external_id == self.page_id,
            hidden=comment.get("is_hidden") is True,
            raw=clean_json({"comment": comment, "post_id": post_id, "page_id": self.page_id}))

    @staticmethod
    def text(item: dict[str, Any], kind: str) -> str:
        message = item.get("message")
        text, reasons = clean_text(message if isinstance(message, str) else "")
        if reasons:
            log.warning("Facebook %s %s: text changed for storage: %s", kind, item.get("id"), "; ".join(reasons))
        return text
