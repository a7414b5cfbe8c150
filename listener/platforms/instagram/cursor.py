"""The Instagram poll cursor: per media of the look-back window, how far its comments have been read.

Stored as compact JSON text:

    {"v": 1, "m": {"<media id>": [comments_count, watermark, ["<ids at the watermark>"], read_at]},
     "t": {"<tagged media id>": timestamp}}

`comments_count` is the media's count (replies included) when its comments were last read in full,
`watermark` the second of the newest comment or reply seen and `ids` those read in that second,
`read_at` when the media's comments were last read in full (a sweep reads each media again after
`InstagramPlatform.SWEEP`, in case a deletion and a new comment left the count unchanged). `t` holds
the media of the window that tag the account and were already returned.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaMark:
    """What the last full read saw of one media's comments."""

    comments: int  # comments_count then (-1: unknown)
    watermark: int  # the second of the newest comment or reply read
    ids: tuple[str, ...]  # the comments read in that second
    read_at: int  # when (epoch seconds)

    @classmethod
    def parse(cls, raw: Any) -> MediaMark:
        if not (isinstance(raw, list) and len(raw) == 4 and isinstance(raw[2], list)
                and all(isinstance(raw[i], int) and not isinstance(raw[i], bool) for i in (0, 1, 3))):
            raise ValueError("not a media mark")
        return cls(raw[0], raw[1], tuple(map(str, raw[2])), raw[3])

    def dump(self) -> list[Any]:
        return [self.comments, self.watermark, sorted(self.ids), self.read_at]


@dataclass(frozen=True)
class InstagramCursor:
    media: dict[str, MediaMark] = field(default_factory=dict)
    tags: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None, source: str = "") -> InstagramCursor:
        """The cursor stored as `text`; an unreadable one means a fresh start (the store deduplicates)."""
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            media = {str(k): MediaMark.parse(v) for k, v in raw["m"].items()}
            tags = {str(k): int(v) for k, v in raw.get("t", {}).items()}
            return cls(media, tags)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("Instagram: unreadable cursor of %s; reading the whole look-back window again", source)
            return cls()

    def dump(self) -> str:
        return json.dumps({"v": 1, "m": {k: v.dump() for k, v in self.media.items()}, "t": self.tags},
                          separators=(",", ":"), sort_keys=True)
