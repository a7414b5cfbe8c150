"""Platform adapters, one package per external service, and SPECS: the one table of each platform's facts.

Adding a platform takes three things and nothing else:

1. an adapter package `listener/platforms/<name>/` whose adapter fulfils `base.PlatformAdapter`
   (and passes `tests/listener/adapter_contract.py` against its emulator), with a
   `from_config(config, *, clock, session_factory)` that returns the adapter, or None when the
   config does not enable the platform;
2. one `PlatformSpec` entry in `SPECS` below;
3. its config section: a field of `models.config.PlatformsConfig` (credentials, `enabled`,
   `base_url`) and, if brands name accounts or queries there, a field of `BrandAccounts` /
   `BrandQueries`.

Everything else reads the table: the composition root builds the adapters by a loop over it, the
scheduler takes the poll interval from it (`schedule.poll_interval_seconds.<name>` overrides), the
queue checks reply lengths, saved replies fill `{handle}`, the customer commands resolve references,
and the web pages and digests show the display name and badge. Importing this module imports no
SDK: factories are named as "module:function" and loaded when the platform is configured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from typing import TYPE_CHECKING, Any

from listener.platforms.text_length import x_weighted_length

if TYPE_CHECKING:
    import requests

    from listener.platforms.base import PlatformAdapter
    from models.config import Config


@dataclass(frozen=True)
class PlatformSpec:
    """The facts of one platform that code outside its adapter needs."""

    name: str  # stored in every row (mentions.platform, authors.platform) and used in source names
    display_name: str  # "X", "Facebook"
    badge: str  # a one- or two-letter mark for dense lists
    reply_limit: int  # the longest public reply, measured by `reply_length`
    has_handles: bool  # authors have @handles: replies address "@handle", people are found by handle;
    #                    otherwise authors are named by display name and found by their author id
    poll_seconds: int  # the default poll interval of its sources
    factory: str  # "module:function" -> (config, *, clock, session_factory) -> adapter | None
    reply_length: Callable[[str], int] = len  # how the platform counts a reply's length
    length_rule: str = ""  # that count in words, for people (empty: plain characters)

    def build(self, config: Config, *, clock: Callable[[], datetime],
              session_factory: Callable[[], requests.Session] | None = None) -> PlatformAdapter | None:
        """The adapter for this platform as `config` sets it up, or None when it is not enabled."""
        module, _, function = self.factory.partition(":")
        make: Any = getattr(import_module(module), function)
        adapter: PlatformAdapter | None = make(config, clock=clock, session_factory=session_factory)
        return adapter

    def reference_hint(self) -> str:
        """How a person names one of this platform's authors on the command line."""
        return f"{self.name}:@handle" if self.has_handles else f"{self.name}:<author id>"


SPECS: dict[str, PlatformSpec] = {
    "x": PlatformSpec(name="x", display_name="X", badge="X", reply_limit=280, has_handles=True,
                      poll_seconds=60, factory="listener.platforms.x:from_config",
                      reply_length=x_weighted_length,
                      length_rule="X counts every link as 23, most emoji and CJK characters as 2"),
    "facebook": PlatformSpec(name="facebook", display_name="Facebook", badge="f", reply_limit=8000,
                             has_handles=False, poll_seconds=120, factory="listener.platforms.facebook:from_config"),
}


def spec_of(platform: str) -> PlatformSpec:
    """The spec of a platform by name; ValueError naming the known ones otherwise."""
    try:
        return SPECS[platform]
    except KeyError:
        raise ValueError(f"unknown platform {platform!r}; known: {', '.join(SPECS)}") from None


def display_name(platform: str) -> str:
    """The platform's name for people (also for rows of a platform no longer configured)."""
    spec = SPECS.get(platform)
    return spec.display_name if spec else platform.capitalize()
