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

A platform whose brands can hide comments from the public sets `hideable` (which items) and gives
its adapter `hide(mention, hidden)` (`base.Hides`); the mention page then offers it
(responders/queue/moderation.py).

A platform that pushes some of what it has by webhook (Instagram's @mentions) sets `uses_inbox`:
its factory then also gets `inbox=` (`base.Inbox`, the notifications the web app's webhook
endpoint recorded), and its source reads them like any other page of results.

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

    from listener.platforms.base import Inbox, PlatformAdapter
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
    thread_rule: str = ""  # how the platform threads a reply to a reply, for the composer (empty: as asked)
    reply_refusal: Callable[[str, str | None, bool, str], str | None] = lambda *_: None  # (external id,
    #   conversation id, is own, source name) -> why the platform takes no public reply to it, or None
    usage_header: str = ""  # the response header that reports how much of the rate budget is used
    calls_per_day: int | None = None  # the documented call budget per account and day (Instagram: x impressions)
    uses_inbox: bool = False  # its factory takes `inbox=` (webhook notifications: listener.platforms.base.Inbox)
    hideable: Callable[[str, str | None, bool, str], bool] | None = None  # (external id, conversation id,
    #   is own, source name) -> whether the brand can hide it; None: the platform has no hiding (base.Hides)

    def build(self, config: Config, *, clock: Callable[[], datetime],
              session_factory: Callable[[], requests.Session] | None = None,
              inbox: Inbox | None = None) -> PlatformAdapter | None:
        """The adapter for this platform as `config` sets it up, or None when it is not enabled."""
        module, _, function = self.factory.partition(":")
        make: Any = getattr(import_module(module), function)
        extra = {"inbox": inbox} if self.uses_inbox else {}
        adapter: PlatformAdapter | None = make(config, clock=clock, session_factory=session_factory, **extra)
        return adapter

    def reference_hint(self) -> str:
        """How a person names one of this platform's authors on the command line."""
        return f"{self.name}:@handle" if self.has_handles else f"{self.name}:<author id>"


def instagram_reply_refusal(external_id: str, conversation_id: str | None, is_own: bool, source: str) -> str | None:
    """Instagram answers comments, and @mentions through /mentions: a media that only tags the brand, or
    its own media itself, takes none."""
    if conversation_id not in (None, external_id) or source.split(":")[-2:-1] == ["mentions"]:
        return None
    if is_own:
        return "this is the brand's own Instagram post; answer the comments under it"
    return ("Instagram does not let the account comment on posts it is tagged in; answer the customer under one "
            "of the brand's own posts or on another channel")


def instagram_hideable(external_id: str, conversation_id: str | None, is_own: bool, source: str) -> bool:
    """Instagram lets the account hide others' comments on its own media only (no media, no @mentions)."""
    return not is_own and conversation_id not in (None, external_id) and source.split(":")[-2:-1] != ["mentions"]


SPECS: dict[str, PlatformSpec] = {
    "x": PlatformSpec(name="x", display_name="X", badge="X", reply_limit=280, has_handles=True,
                      poll_seconds=60, factory="listener.platforms.x:from_config",
                      reply_length=x_weighted_length,
                      length_rule="X counts every link as 23, most emoji and CJK characters as 2"),
    "facebook": PlatformSpec(name="facebook", display_name="Facebook", badge="f", reply_limit=8000,
                             has_handles=False, poll_seconds=120, factory="listener.platforms.facebook:from_config"),
    "instagram": PlatformSpec(name="instagram", display_name="Instagram", badge="IG", reply_limit=2200,
                              has_handles=True, poll_seconds=180, factory="listener.platforms.instagram:from_config",
                              thread_rule="Instagram threads are one level deep: a reply to a reply is posted "
                                          "under its top-level comment, so start it with the @username you answer",
                              reply_refusal=instagram_reply_refusal, usage_header="X-Business-Use-Case-Usage",
                              calls_per_day=4800, uses_inbox=True,
                              hideable=instagram_hideable),
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
