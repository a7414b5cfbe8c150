"""The Facebook poll cursor: per post of the look-back window, how far its comments have been read.

Stored as compact JSON text (the wire format of earlier versions, so stored cursors stay valid):

    {"v": 1, "p": {"<post id>": [updated_time, comment_count, watermark, ["<ids at the watermark>"], gaps?]}}

`watermark` is the second of the newest comment seen and `ids` the comments already read in that
second; `gaps` (only when present) lists unread stretches `[bottom, [ids], top, [ids]]` left by a
backlog larger than one poll (see the adapter's module doc).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gap:
    """Comments between second `bottom` (less `bottom_ids`) and second `top` (less `top_ids`) are unread."""

    bottom: int
    bottom_ids: tuple[str, ...]
    top: int
    top_ids: tuple[str, ...]

    @classmethod
    def parse(cls, raw: Any) -> Gap:
        if not (isinstance(raw, list) and len(raw) == 4 and all(isinstance(raw[i], int) for i in (0, 2))
                and all(isinstance(raw[i], list) for i in (1, 3))):
            raise ValueError("not a gap")
        return cls(raw[0], tuple(map(str, raw[1])), raw[2], tuple(map(str, raw[3])))

    def dump(self) -> list[Any]:
        return [self.bottom, sorted(self.bottom_ids), self.top, sorted(self.top_ids)]


@dataclass(frozen=True)
class PostMark:
    """What the last poll saw of one post."""

    updated: int  # the post's updated_time (epoch seconds)
    comments: int  # its stream comment count (-1: unknown)
    watermark: int  # the second of the newest comment read
    ids: tuple[str, ...]  # the comments read in that second
    gaps: tuple[Gap, ...] = field(default=())

    @classmethod
    def parse(cls, raw: Any) -> PostMark:
        if not (isinstance(raw, list) and len(raw) in (4, 5) and isinstance(raw[3], list)
                and all(isinstance(raw[i], int) for i in (0, 1, 2))):
            raise ValueError("not a post mark")
        gaps = tuple(Gap.parse(g) for g in raw[4]) if len(raw) == 5 else ()
        return cls(raw[0], raw[1], raw[2], tuple(map(str, raw[3])), gaps)

    def dump(self) -> list[Any]:
        out: list[Any] = [self.updated, self.comments, self.watermark, sorted(self.ids)]
        return [*out, [g.dump() for g in self.gaps]] if self.gaps else out


@dataclass(frozen=True)
class FacebookCursor:
    posts: dict[str, PostMark] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None, source: str = "") -> FacebookCursor:
        """The cursor stored as `text`; an unreadable one means a fresh start (the store deduplicates)."""
        if not text:
            return cls()
        try:
            posts = json.loads(text)["p"]
            return cls({str(k): PostMark.parse(v) for k, v in posts.items()})
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("Facebook: unreadable cursor of %s; reading the whole look-back window again", source)
            return cls()

    def dump(self) -> str:
        return json.dumps({"v": 1, "p": {k: v.dump() for k, v in self.posts.items()}}, separators=(",", ":"),
                          sort_keys=True)
