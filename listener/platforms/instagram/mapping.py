"""Instagram media and comments as `MentionData`.

Authors: comments name their author by `from` (`id`, the Instagram-scoped id, and `username`); the
account's own comments also by `user`. Media that tag the account name only the owner's `username`
(Graph gives no id for it), so their authors are keyed `username:<name>`: such a person is one
identity across the media that tag the brand, and a separate one from their comments until a link
joins them. Instagram comments have no permalink of their own: the media's permalink with `c/<id>/`,
as the app shares comment links, is used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from listener.platforms.facebook.mapping import moment
from models.domain import AuthorData, MentionData, clean_json, clean_text

log = logging.getLogger(__name__)
NAME = "instagram"  # its key in listener.platforms.SPECS


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def number(object_id: str) -> int:
    """An id as a number (creation order); 0 when it is not one."""
    return int(object_id) if object_id.isdigit() else 0


@dataclass(frozen=True)
class Mapper:
    """Maps the Graph items of one account source (`brand`, `account_id`, its `username`, `source` name)."""

    brand: str
    account_id: str
    username: str | None
    source: str

    def is_own(self, item: dict[str, Any]) -> bool:
        author = item.get("from")
        author_id = author.get("id") if isinstance(author, dict) else None
        user = item.get("user")
        return author_id == self.account_id or (isinstance(user, dict) and user.get("id") == self.account_id) or (
            self.username is not None and item.get("username") == self.username and author_id is None)

    def author(self, item: dict[str, Any]) -> AuthorData:
        given = item.get("from")
        author: dict[str, Any] = given if isinstance(given, dict) else {}
        username = _str(author.get("username")) or _str(item.get("username"))
        if self.is_own(item):
            author_id = self.account_id
            username = username or self.username
        else:
            author_id = _str(author.get("id")) or (f"username:{username}" if username else "unknown")
        handle = clean_text(username)[0] if username else None
        return AuthorData(NAME, author_id, handle, handle, None,
                          f"https://www.instagram.com/{handle}/" if handle else None)

    def media(self, media: dict[str, Any], edge: str) -> MentionData:
        author = self.author(media) if edge == "tags" else AuthorData(
            NAME, self.account_id, self.username, self.username, None,
            f"https://www.instagram.com/{self.username}/" if self.username else None)
        raw = {k: v for k, v in media.items() if k != "comments"}
        return MentionData(
            platform=NAME, external_id=media["id"], text=self.text(media.get("caption"), "media", media["id"]),
            created_at=moment(media.get("timestamp"), f"media {media['id']}"), author=author, brand=self.brand,
            source=self.source, conversation_id=media["id"], permalink=_str(media.get("permalink")),
            is_own=edge == "media", raw=clean_json({"media": raw, "edge": edge, "account_id": self.account_id}))

    def comment(self, comment: dict[str, Any], media: dict[str, Any]) -> MentionData:
        parent = _str(comment.get("parent_id"))
        permalink = _str(media.get("permalink"))
        raw = {k: v for k, v in comment.items() if k != "replies"}
        return MentionData(
            platform=NAME, external_id=comment["id"], text=self.text(comment.get("text"), "comment", comment["id"]),
            created_at=moment(comment.get("timestamp"), f"comment {comment['id']}"), author=self.author(comment),
            brand=self.brand, source=self.source, conversation_id=media["id"],
            in_reply_to_id=parent or media["id"],
            permalink=f"{permalink.rstrip('/')}/c/{comment['id']}/" if permalink else None,
            is_own=self.is_own(comment), hidden=comment.get("hidden") is True,
            raw=clean_json({"comment": raw, "media_id": media["id"], "account_id": self.account_id,
                            "edge": "comments"}))

    @staticmethod
    def text(value: Any, kind: str, object_id: str) -> str:
        text, reasons = clean_text(value if isinstance(value, str) else "")
        if reasons:
            log.warning("Instagram %s %s: text changed for storage: %s", kind, object_id, "; ".join(reasons))
        return text
