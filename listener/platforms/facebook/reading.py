"""One poll of one Facebook page: the cursor walk over the look-back window's posts and their comments.

See the adapter's module doc for the design. Here also what a poll does when Graph refuses part of it:

- A post that vanished between listing and reading (its `/comments` answer `TargetGone`: code 100,
  subcode 33, deleted or hidden since) is skipped and logged: none of its items are returned, it
  leaves the cursor, and the poll carries on with the other posts.
- A rate limit (`RateLimited`) while listing the posts (one or two requests, before any comment is
  read) propagates. One while reading comments stops the walk: the posts read in full get their new
  marks, a post read part way keeps a `Gap` for its unread rest (as a backlog beyond MAX_PAGES
  does), the posts not reached keep their old marks (or, when new, stay out of the cursor and come
  again), and `stopped` tells the adapter to return what was read with `FetchResult.interrupted`.
- Every other error propagates: the caller keeps the old cursor, nothing is half-read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from listener.platforms.base import RateLimited, TargetGone, Transient
from listener.platforms.facebook.cursor import FacebookCursor, Gap, PostMark
from listener.platforms.facebook.mapping import Mapper, epoch, has_author
from models.domain import MentionData

log = logging.getLogger(__name__)
# (object id, edge, args) -> the answer of one GET; raises the PlatformError family
Request = Callable[[str, str, dict[str, Any]], Any]
Timed = list[tuple[dict[str, Any], int]]  # comments with their creation second, newest first

POST_FIELDS = ("id,message,created_time,updated_time,from{id,name},permalink_url,"
               "comments.filter(stream).summary(true).limit(0)")
COMMENT_FIELDS = "id,message,created_time,from{id,name},parent{id},permalink_url,is_hidden"


def pages(request: Request, object_id: str, edge: str, args: dict[str, Any],
          max_pages: int) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """The `data` of each page of an edge, following `paging.next` as facebook-sdk does, up to
    `max_pages` pages; with each, whether a next page exists."""
    for _ in range(max_pages):
        answer = request(object_id, edge, args)
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or not all(isinstance(i, dict) and isinstance(i.get("id"), str)
                                                 for i in data):
            raise Transient(f"Facebook answered with a malformed page of {object_id}/{edge}")
        paging = answer.get("paging")
        next_url = paging.get("next") if isinstance(paging, dict) else None
        yield data, isinstance(next_url, str) and bool(next_url)
        if not isinstance(next_url, str) or not next_url:
            return
        args = {k: v[0] for k, v in parse_qs(urlsplit(next_url).query).items() if k != "access_token"}


def comment_count(post: dict[str, Any]) -> int:
    comments = post.get("comments")
    summary = comments.get("summary") if isinstance(comments, dict) else None
    count = summary.get("total_count") if isinstance(summary, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else -1  # unknown: updated_time alone


class PollRead:
    """Reads one page's new posts and comments against its cursor; see the module doc."""

    def __init__(self, request: Request, mapper: Mapper, *, page_size: int, max_pages: int) -> None:
        self.request, self.mapper = request, mapper
        self.page_size, self.max_pages = page_size, max_pages
        self.stopped: RateLimited | None = None  # the rate limit that ended the walk early
        self.vanished: list[str] = []  # posts gone between listing and reading their comments
        self.mentions: list[MentionData] = []
        self.marks: dict[str, PostMark] = {}

    def run(self, cursor: FacebookCursor, since: int) -> tuple[list[MentionData], FacebookCursor]:
        """New posts and comments of the window from `since`, and the next cursor (rate limits: see `stopped`)."""
        for post_id, (post, edge) in self._list(since).items():
            self._post(post_id, post, edge, cursor.posts.get(post_id), since)
        return self.mentions, FacebookCursor(self.marks)

    def _list(self, since: int) -> dict[str, tuple[dict[str, Any], str]]:
        """The window's posts of /feed, then /tagged; of two copies the one that names its author wins."""
        posts: dict[str, tuple[dict[str, Any], str]] = {}
        for edge in ("feed", "tagged"):
            args = {"fields": POST_FIELDS, "since": since, "limit": self.page_size}
            more = False
            for batch, has_next in pages(self.request, self.mapper.page_id, edge, args, self.max_pages):
                more = has_next
                for post in batch:
                    known = posts.get(post["id"])
                    if known is None or (not has_author(known[0]) and has_author(post)):
                        posts[post["id"]] = (post, edge)
            if more:
                log.warning("Facebook: page %s has more than %d pages of %s posts in the look-back; the oldest "
                            "are skipped", self.mapper.page_id, self.max_pages, edge)
        return posts

    def _post(self, post_id: str, post: dict[str, Any], edge: str, known: PostMark | None, since: int) -> None:
        created = epoch(post.get("created_time"), f"post {post_id}")
        if created < since:
            return  # out of the look-back: it leaves the cursor
        if self.stopped is not None:  # not reached: read next time
            if known is not None:
                self.marks[post_id] = known
            return
        updated = max(created, epoch(post.get("updated_time") or post["created_time"], f"post {post_id}"))
        count = comment_count(post)
        if known is not None and known.updated == updated and known.comments == count and not known.gaps:
            self.marks[post_id] = known
            return
        found: list[MentionData] = [] if known is not None else [self.mapper.post(post, edge)]
        try:
            mark = self._comments_of(post_id, known, updated, count, created, found)
        except TargetGone as exc:
            log.warning("Facebook: post %s of page %s vanished between listing and reading its comments "
                        "(deleted or hidden); skipped and dropped from the cursor: %s", post_id,
                        self.mapper.page_id, exc)
            self.vanished.append(post_id)
            return
        if mark is None:  # a new post whose comments could not be read yet: it comes again
            return
        self.mentions.extend(found)
        self.marks[post_id] = mark

    def _comments_of(self, post_id: str, known: PostMark | None, updated: int, count: int, created: int,
                     found: list[MentionData]) -> PostMark | None:
        """Drain the post's gaps, then read its new comments into `found`; its new mark (None: not read)."""
        still_open: list[Gap] = []
        for gap in known.gaps if known is not None else ():
            if self.stopped is not None:
                still_open.append(gap)
                continue
            older, complete = self._walk(post_id, gap.bottom, set(gap.bottom_ids), gap.top, set(gap.top_ids))
            found.extend(self.mapper.comment(c, post_id) for c, _ in older)
            if not complete:
                still_open.append(self._narrow(gap, older, post_id) if older or self.stopped is None else gap)
        watermark, ids = (known.watermark, set(known.ids)) if known is not None else (0, set())
        if known is None and count == 0 and updated <= created:
            return PostMark(updated, count, 0, (), ())  # a new post without comments: nothing to read
        fresh: Timed = []
        complete = False
        if self.stopped is None:
            fresh, complete = self._walk(post_id, watermark, ids)
        if not fresh and not complete:  # stopped before any of its new comments: read them next time
            if known is None:
                return None
            return PostMark(known.updated, known.comments, known.watermark, known.ids, tuple(still_open))
        found.extend(self.mapper.comment(c, post_id) for c, _ in fresh)
        gaps = list(still_open)
        if fresh and not complete:
            gaps.append(self._narrow(Gap(watermark, tuple(ids), fresh[0][1], ()), fresh, post_id))
        if fresh:
            newest = max(t for _, t in fresh)
            seen_then = {c["id"] for c, t in fresh if t == newest}
            ids = seen_then | ids if newest == watermark else seen_then
            watermark = newest
        return PostMark(updated, count, watermark, tuple(sorted(ids)), tuple(gaps))

    def _walk(self, post_id: str, watermark: int, ids: set[str], until: int | None = None,
              until_ids: Collection[str] = ()) -> tuple[Timed, bool]:
        """Comments and replies of `post_id` from second `watermark` (less `ids`) up to second `until`
        (less `until_ids`), newest first, with their times; and whether that was all (not cut at
        max_pages, not stopped by a rate limit, which then sets `stopped`)."""
        args: dict[str, Any] = {"fields": COMMENT_FIELDS, "filter": "stream", "order": "reverse_chronological",
                                "limit": self.page_size}
        if watermark:
            args["since"] = watermark - 1  # inclusive or not, the watermark second is in
        if until is not None:
            args["until"] = until + 1  # and so is the top second
        fresh: Timed = []
        more = False
        try:
            for batch, has_next in pages(self.request, post_id, "comments", args, self.max_pages):
                more = has_next
                for comment in batch:
                    at = epoch(comment.get("created_time"), f"comment {comment['id']}")
                    if at < watermark:
                        return fresh, True
                    if at == watermark and comment["id"] in ids:
                        continue
                    if until is not None and (at > until or (at == until and comment["id"] in until_ids)):
                        continue
                    fresh.append((comment, at))
        except RateLimited as exc:
            self.stopped = exc
            return fresh, False
        return fresh, not more

    def _narrow(self, gap: Gap, read: Timed, post_id: str) -> Gap:
        """The gap with its top moved down to the oldest comment just read (they come newest first)."""
        if not read:  # pages of nothing new: the server ignored `until`; the next poll tries again
            log.warning("Facebook: no progress on the comment backlog of %s", post_id)
            return gap
        oldest = read[-1][1]
        below = {c["id"] for c, t in read if t == oldest}
        why = "a rate limit stopped the poll" if self.stopped is not None else f"more than {self.max_pages} pages"
        log.info("Facebook: %s has more comments (%s); the next polls read on below %s", post_id, why,
                 read[-1][0]["id"])
        return Gap(gap.bottom, gap.bottom_ids, oldest,
                   tuple(sorted(below | set(gap.top_ids) if oldest == gap.top else below)))
