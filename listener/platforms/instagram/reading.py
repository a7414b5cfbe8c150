"""One poll of one Instagram account: its media of the look-back window with their new comments and
replies, and the media of other accounts that tag it.

Instagram gives a media no `updated_time` and lists comments in an order it does not document (its
reference shows them oldest first), so a poll works by counts and watermarks, independent of order:

- `/{ig-user-id}/media` is listed newest first down to the window's start (media older than the
  look-back leave the cursor). A media missing from the cursor is new: it is returned itself (as the
  brand's own post) and its comments are read.
- A known media's comments are read again only when its `comments_count` (replies included) moved,
  or when its last full read is older than the sweep interval (a deleted and a new comment can leave
  the count unchanged). A read takes every page of its top-level comments with the first page of
  each comment's replies (`replies{...}`), following `paging.next` where a comment has more. What
  is newer than the media's watermark (the second of the newest comment seen, less the ids read in
  that second) is returned, so nothing is read twice and equal seconds cause neither misses nor
  duplicates.
- `/{ig-user-id}/tags` is listed newest first down to the window's start; media not returned yet
  are returned (posts by others that tag the brand; they cannot be answered).

When Graph refuses part of a poll: a media deleted between listing and reading its comments
(100/33) is skipped, logged and dropped from the cursor, and the poll goes on. A media's comments
count only once read in full: a rate limit part way through a media leaves that media's old mark
(a new media stays out of the cursor and comes again), keeps the media read before it, and stops the
walk (`stopped`); a rate limit before anything was read propagates. Every other error propagates:
the caller keeps the old cursor, nothing is half-read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from listener.platforms.base import RateLimited, TargetGone, Transient
from listener.platforms.facebook.mapping import epoch
from listener.platforms.instagram.cursor import InstagramCursor, MediaMark
from listener.platforms.instagram.mapping import Mapper
from models.domain import MentionData

log = logging.getLogger(__name__)
# (object id, edge, args) -> the answer of one GET; raises the PlatformError family
Request = Callable[[str, str, dict[str, Any]], Any]

MEDIA_FIELDS = "id,caption,timestamp,comments_count,like_count,permalink,username,media_type,media_product_type"
TAG_FIELDS = "id,caption,timestamp,comments_count,like_count,permalink,username,media_type"
REPLY_FIELDS = "id,text,timestamp,username,from{id,username},like_count,hidden,parent_id"
COMMENT_FIELDS = f"{REPLY_FIELDS},replies{{{REPLY_FIELDS}}}"


def pages(request: Request, object_id: str, edge: str, args: dict[str, Any],
          max_pages: int) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """The `data` of each page of an edge, following `paging.next`, up to `max_pages` pages; with each,
    whether a next page exists."""
    for _ in range(max_pages):
        answer = request(object_id, edge, args)
        data, next_url = page_of(answer, f"{object_id}/{edge}")
        yield data, next_url is not None
        if next_url is None:
            return
        args = next_args(next_url)


def page_of(answer: Any, what: str) -> tuple[list[dict[str, Any]], str | None]:
    """A Graph list page's items (each with a string id) and its `paging.next`; Transient when malformed."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or not all(isinstance(i, dict) and isinstance(i.get("id"), str) for i in data):
        raise Transient(f"Instagram answered with a malformed page of {what}")
    paging = answer.get("paging")
    next_url = paging.get("next") if isinstance(paging, dict) else None
    return data, next_url if isinstance(next_url, str) and next_url else None


def next_args(next_url: str) -> dict[str, Any]:
    return {k: v[0] for k, v in parse_qs(urlsplit(next_url).query).items() if k != "access_token"}


def count_of(media: dict[str, Any]) -> int:
    count = media.get("comments_count")
    return count if isinstance(count, int) and not isinstance(count, bool) else -1


class PollRead:
    """Reads one account's new media, comments and tags against its cursor; see the module doc."""

    def __init__(self, request: Request, mapper: Mapper, *, now: int, sweep_s: int, page_size: int,
                 comment_page_size: int, max_pages: int) -> None:
        self.request, self.mapper = request, mapper
        self.now, self.sweep_s = now, sweep_s
        self.page_size, self.comment_page_size, self.max_pages = page_size, comment_page_size, max_pages
        self.stopped: RateLimited | None = None  # the rate limit that ended the walk early
        self.vanished: list[str] = []  # media gone between listing and reading their comments
        self.mentions: list[MentionData] = []
        self.marks: dict[str, MediaMark] = {}
        self.tags: dict[str, int] = {}
        self.read_anything = False

    def run(self, cursor: InstagramCursor, since: int) -> tuple[list[MentionData], InstagramCursor]:
        """New media, comments and tags of the window from `since`, and the next cursor."""
        for media in self._list("media", MEDIA_FIELDS, since, self.page_size):
            self._media(media, cursor.media.get(media["id"]))
        self._tags(cursor, since)
        return self.mentions, InstagramCursor(self.marks, self.tags)

    def _list(self, edge: str, fields: str, since: int, limit: int) -> list[dict[str, Any]]:
        """The account's `edge` (media or tags) newest first, down to `since`."""
        found: list[dict[str, Any]] = []
        args: dict[str, Any] = {"fields": fields, "limit": limit}
        for batch, has_next in pages(self.request, self.mapper.account_id, edge, args, self.max_pages):
            for media in batch:
                if epoch(media.get("timestamp"), f"media {media['id']}") >= since:
                    found.append(media)
            oldest = min((epoch(m.get("timestamp"), f"media {m['id']}") for m in batch), default=since - 1)
            if oldest < since:
                return found
            if has_next and len(found) >= limit * self.max_pages:
                log.warning("Instagram: account %s has more than %d %s in the look-back; the oldest are skipped",
                            self.mapper.account_id, len(found), edge)
        return found

    def _media(self, media: dict[str, Any], known: MediaMark | None) -> None:
        if self.stopped is not None:  # not reached: read next time
            if known is not None:
                self.marks[media["id"]] = known
            return
        count = count_of(media)
        if known is not None and known.comments == count and self.now - known.read_at < self.sweep_s:
            self.marks[media["id"]] = known
            return
        found: list[MentionData] = [] if known is not None else [self.mapper.media(media, "media")]
        watermark, ids = (known.watermark, set(known.ids)) if known is not None else (0, set())
        if known is None and count == 0:
            self._commit(media["id"], found, MediaMark(0, 0, (), self.now))
            return
        try:
            comments = self._comments(media["id"])
        except TargetGone as exc:
            log.warning("Instagram: media %s of account %s vanished between listing and reading its comments "
                        "(deleted); skipped and dropped from the cursor: %s", media["id"], self.mapper.account_id,
                        exc)
            self.vanished.append(media["id"])
            return
        except RateLimited as exc:
            self.stopped = exc
            if known is not None:
                self.marks[media["id"]] = known
            return
        timed = [(c, epoch(c.get("timestamp"), f"comment {c['id']}")) for c in comments]
        fresh = [c for c, at in timed if at > watermark or (at == watermark and c["id"] not in ids)]
        found.extend(self.mapper.comment(c, media) for c in fresh)
        if timed:
            newest = max(at for _, at in timed)
            if newest > watermark:
                watermark, ids = newest, set()
            ids |= {c["id"] for c, at in timed if at == watermark}
        self._commit(media["id"], found, MediaMark(count, watermark, tuple(sorted(ids)), self.now))

    def _commit(self, media_id: str, found: list[MentionData], mark: MediaMark) -> None:
        self.mentions.extend(found)
        self.marks[media_id] = mark
        self.read_anything = True

    def _comments(self, media_id: str) -> list[dict[str, Any]]:
        """Every top-level comment of the media and every reply, in any order."""
        out: list[dict[str, Any]] = []
        args: dict[str, Any] = {"fields": COMMENT_FIELDS, "limit": self.comment_page_size}
        more = False
        for batch, has_next in pages(self.request, media_id, "comments", args, self.max_pages):
            more = has_next
            for comment in batch:
                out.append(comment)
                out.extend(self._replies(comment))
        if more:
            log.warning("Instagram: media %s has more than %d pages of comments; the rest are not read",
                        media_id, self.max_pages)
        return out

    def _replies(self, comment: dict[str, Any]) -> list[dict[str, Any]]:
        """A comment's replies: the expanded first page, then its `paging.next` through /replies."""
        expanded = comment.get("replies")
        if expanded is None:
            return []
        data, next_url = page_of(expanded, f"{comment['id']}/replies")
        replies = list(data)
        if next_url is not None:
            args = {**next_args(next_url), "fields": REPLY_FIELDS}
            try:
                for batch, _ in pages(self.request, comment["id"], "replies", args, self.max_pages):
                    replies.extend(batch)
            except TargetGone:  # the comment was deleted meanwhile: its replies went with it
                log.info("Instagram: comment %s vanished while its replies were read", comment["id"])
        for reply in replies:
            reply.setdefault("parent_id", comment["id"])
        return replies

    def _tags(self, cursor: InstagramCursor, since: int) -> None:
        """Media that tag the account, not returned before; the old list stays when the walk stopped."""
        if self.stopped is not None:
            self.tags = {k: v for k, v in cursor.tags.items() if v >= since}
            return
        try:
            tagged = self._list("tags", TAG_FIELDS, since, self.page_size)
        except RateLimited as exc:
            self.stopped = exc
            self.tags = {k: v for k, v in cursor.tags.items() if v >= since}
            return
        self.read_anything = True
        for media in tagged:
            at = epoch(media.get("timestamp"), f"media {media['id']}")
            if media["id"] not in cursor.tags:
                self.mentions.append(self.mapper.media(media, "tags"))
            self.tags[media["id"]] = at
