"""How X counts and cuts post texts, for the emulator.

- `weighted_length`: twitter-text v3 (the `twitter-text-parser` package): most Latin, Greek,
  Cyrillic and common punctuation weigh 1, CJK and emoji sequences 2, every URL 23, NFC first.
  POST /2/tweets refuses more than `LIMIT` (280) with a 403 (`XApiEmulator.weighted_length_check`).
- `cut_long_post`: a long post (X Premium, up to 25,000 characters) comes back with `text` cut to
  what fits in 280 and ending in "…"; the whole text is only in `note_tweet.text`, when asked for.
- `retweet_text`: a retweet's text is "RT @user: " + the original, the whole cut to 140 characters
  ending in "…" (as recorded in tweepy's cassettes/test_client_get_home_timeline.yaml).

The emulator imports nothing of openear, so the pkg_resources stand-in that twitter-text-parser 3.0
needs on setuptools 81+ is lent here the same way `listener.platforms.text_length` lends it.
"""

from __future__ import annotations

import importlib.resources
import sys
import threading
import types
from collections.abc import Callable
from functools import cache

LIMIT = 280  # weighted characters of a post
RETWEET_LIMIT = 140  # characters of a retweet's "RT @user: ..." text
ELLIPSIS = "\u2026"
_import_lock = threading.Lock()


@cache
def _parse_tweet() -> Callable[[str], object]:
    """twitter_text.parse_tweet; lends a `pkg_resources` offering only `resource_string` for the
    duration of the import where setuptools no longer ships one, then takes it away again."""
    with _import_lock:
        try:
            import pkg_resources  # noqa: F401  (older setuptools: the real one serves)
            lent = False
        except ImportError:
            stand_in = types.ModuleType("pkg_resources")

            def resource_string(module: str, name: str) -> bytes:
                package = module.rpartition(".")[0] or module
                return importlib.resources.files(package).joinpath(name).read_bytes()

            stand_in.resource_string = resource_string  # type: ignore[attr-defined]
            sys.modules["pkg_resources"] = stand_in
            lent = True
        try:
            from twitter_text import parse_tweet
        finally:
            if lent:
                del sys.modules["pkg_resources"]
        return parse_tweet


def weighted_length(text: str) -> int:
    """The length X counts for `text` (twitter-text v3 weighted length)."""
    try:
        return int(_parse_tweet()(text).weightedLength)  # type: ignore[attr-defined]
    except (ValueError, UnicodeError):  # lone surrogates and the like: count code points
        return len(text)


def cut_long_post(text: str, limit: int = LIMIT) -> str:
    """`text` as the `text` field shows a long post: unchanged when it fits, else the longest
    prefix that fits with a trailing "…"."""
    if weighted_length(text) <= limit:
        return text
    low, high = 0, len(text)  # weighted_length(text[:low] + "…") <= limit < ... at high
    while low < high:
        mid = (low + high + 1) // 2
        if weighted_length(text[:mid].rstrip() + ELLIPSIS) <= limit:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ELLIPSIS


def retweet_text(username: str, original: str) -> str:
    """The text X gives a retweet of @username's post `original`: cut to 140 with "…"."""
    full = f"RT @{username}: {original}"
    if len(full) <= RETWEET_LIMIT:
        return full
    return full[:RETWEET_LIMIT - 1].rstrip() + ELLIPSIS
