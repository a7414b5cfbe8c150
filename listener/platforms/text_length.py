"""How platforms count a post's length: the `reply_length` functions of `listener.platforms.SPECS`.

X counts by twitter-text v3 (weighted length): most Latin, Greek, Cyrillic and common punctuation
characters weigh 1, everything else (CJK, most emoji sequences) weighs 2, every URL counts as 23
whatever its length, and the text is NFC-normalised first. `twitter-text-parser` implements it;
this module only loads it (it is imported on first use, so SPECS imports no SDK).
"""

from __future__ import annotations

import importlib.resources
import sys
import threading
import types
from collections.abc import Callable
from functools import cache

_import_lock = threading.Lock()


@cache
def _parse_tweet() -> Callable[[str], object]:
    """twitter_text.parse_tweet. twitter-text-parser 3.0 reads its emoji table with `pkg_resources`,
    which setuptools 81+ no longer ships: where it is missing, lend a stand-in offering only
    `resource_string` for the duration of that import, then take it away again."""
    with _import_lock:
        try:
            import pkg_resources  # noqa: F401  (older setuptools: the real one serves)
            lent = False
        except ImportError:
            stand_in = types.ModuleType("pkg_resources")

            def resource_string(module: str, name: str) -> bytes:
                package = module.rpartition(".")[0] or module  # the file lies beside the module
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


def x_weighted_length(text: str) -> int:
    """The length X counts for `text` (twitter-text v3 weighted length; the limit is 280)."""
    result = _parse_tweet()(text)
    return int(result.weightedLength)  # type: ignore[attr-defined]
