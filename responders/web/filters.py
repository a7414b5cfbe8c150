"""Jinja2 filters: inert rendering of hostile text, durations, counts and times."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from markupsafe import Markup, escape

from listener.platforms import SPECS, display_name
from responders.queue.listing import format_duration

# Direction controls (embeddings, overrides, isolates, marks) can reorder the text around them;
# they are shown as visible markers instead of acting on the page.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
BIDI_NAMES = {
    "\u202a": "LRE", "\u202b": "RLE", "\u202c": "PDF", "\u202d": "LRO", "\u202e": "RLO",
    "\u2066": "LRI", "\u2067": "RLI", "\u2068": "FSI", "\u2069": "PDI", "\u200e": "LRM", "\u200f": "RLM",
    "\u061c": "ALM",
}


def inert(value: Any) -> Markup:
    """Escape user text and neutralize direction controls (shown as [RLO] etc.)."""
    escaped = str(escape("" if value is None else value))
    marked = BIDI_CONTROLS.sub(
        lambda m: f'<span class="ctl" title="hidden direction control U+{ord(m.group(0)):04X}">'
                  f"[{BIDI_NAMES.get(m.group(0), 'BIDI')}]</span>",
        escaped,
    )
    return Markup(marked)


def followers(count: int | None) -> str:
    if count is None:
        return "?"
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 10_000:
        return f"{count / 1000:.0f}k"
    if count >= 1000:
        return f"{count / 1000:.1f}k"
    return str(count)


def duration(seconds: float | None) -> str:
    return "–" if seconds is None else format_duration(seconds)


def age(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "–"
    return format_duration((now - then).total_seconds())


def sla(deadline: datetime, now: datetime) -> str:
    left = (deadline - now).total_seconds()
    return f"{format_duration(left)} left" if left > 0 else f"overdue {format_duration(-left)}"


def when(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def quote_path(path: str) -> str:
    return quote(path, safe="/")


def query(params: dict[str, str]) -> str:
    return ("?" + urlencode(params)) if params else ""


def platform_name(platform: str) -> str:
    return display_name(platform)


def platform_badge(platform: str) -> str:
    spec = SPECS.get(platform)
    return spec.badge if spec else platform[:2]


def has_handles(platform: str) -> bool:
    spec = SPECS.get(platform)
    return spec is not None and spec.has_handles


def install(env: jinja2.Environment) -> None:
    env.filters.update(inert=inert, followers=followers, duration=duration, when=when, iso=iso,
                       platform_name=platform_name, platform_badge=platform_badge, has_handles=has_handles)
    env.globals.update(age=age, sla=sla, query=query)
