"""Render a `DigestData` as an email: HTML (table layout, inline CSS, no JS) with PNG charts + plain text.

Charts are drawn with matplotlib's Agg backend and referenced from the HTML as `cid:<content-id>`;
`inline_images` swaps those references for data: URIs (a file that opens in a browser).
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import jinja2

from listener.platforms import display_name
from responders.answers import DEFINITIONS
from responders.digest.build import DigestData

TEMPLATES = Path(__file__).parent / "templates"
COLORS = {"negative": "#d64545", "neutral": "#9aa5b1", "positive": "#2f9e68", "unclassified": "#d9dee4"}
CID_RE = re.compile(r"cid:([A-Za-z0-9._@-]+)")


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    html: str
    text: str
    images: dict[str, bytes]  # Content-ID (without <>) -> PNG


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if hours < 48 else f"{hours // 24} d {hours % 24} h"


def _pct(value: float | None) -> str:
    return "new" if value is None else f"{value:+.0f}%"


def _rate(value: float | None) -> str:
    """A share (0..1) as a whole percentage; – when there was nothing to count."""
    return "–" if value is None else f"{value * 100:.0f}%"


def _local(iso: str, timezone: str) -> str:
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(iso).astimezone(ZoneInfo(timezone)).strftime("%a %d %b %H:%M")


def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=autoescape,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(duration=_duration, pct=_pct, rate=_rate, local=_local, platform_name=display_name)
    return env


_HTML = _env(True)
_TEXT = _env(False)


def content_id(data: DigestData, name: str) -> str:
    """A stable Content-ID per brand, day and chart."""
    tag = hashlib.sha256(f"{data.brand}|{data.day}".encode()).hexdigest()[:12]
    return f"{name}-{data.day}-{tag}@openear"


def volume_chart(data: DigestData) -> bytes:
    """Stacked sentiment bars for the 8 days, the digest's day emphasised."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 2.4), dpi=110)
    ax = fig.add_subplot()
    labels = [date.fromisoformat(d.day).strftime("%a\n%d %b") for d in data.series]
    bottom = [0] * len(data.series)
    for label in ("negative", "neutral", "positive", "unclassified"):
        values = [getattr(d, label) for d in data.series]
        bars = ax.bar(labels, values, bottom=bottom, color=COLORS[label], width=0.62, label=label)
        for i, bar in enumerate(bars):
            bar.set_alpha(1.0 if i == len(bars) - 1 else 0.55)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    for i, total in enumerate(bottom):
        ax.annotate(f"{total:,}", (i, total), ha="center", va="bottom", fontsize=7, color="#3e4c59",
                    xytext=(0, 2), textcoords="offset points")
    ax.set_ylim(0, max(max(bottom), 1) * 1.18)
    ax.tick_params(labelsize=7, colors="#52606d", length=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color("#cbd2d9")
    ax.yaxis.grid(True, color="#eef1f4")
    ax.set_axisbelow(True)
    ax.set_yticks([])
    ax.legend(ncol=4, fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(0, 1.16))
    fig.subplots_adjust(left=0.02, right=0.98, top=0.86, bottom=0.18)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def render_digest(data: DigestData) -> RenderedDigest:
    """HTML and text bodies plus the chart images of one digest."""
    images: dict[str, bytes] = {}
    cids: dict[str, str] = {}
    if not data.empty:
        cids["volume"] = content_id(data, "volume")
        images[cids["volume"]] = volume_chart(data)
    day = date.fromisoformat(data.day)
    subject = f"{data.brand} daily digest, {day:%a %d %b %Y}: " + (
        "no mentions" if data.empty else
        f"{data.volume:,} mentions, {data.complaints:,} complaints, {data.broadcast_only:,} unanswered, "
        f"{_rate(data.response_rate)} answered overall")
    context = {"d": data, "cids": cids, "subject": subject, "day_label": f"{day:%A %d %B %Y}",
               "trend": {t.label: t for t in data.trends}, "colors": COLORS,
               "defs": DEFINITIONS}
    return RenderedDigest(subject, _HTML.get_template("digest.html").render(context),
                          _TEXT.get_template("digest.txt").render(context), images)


def inline_images(html: str, images: dict[str, bytes]) -> str:
    """The HTML with every `cid:` reference replaced by a data: URI (for a browser or a file)."""
    def replace(match: re.Match[str]) -> str:
        png = images.get(match.group(1))
        return f"data:image/png;base64,{base64.b64encode(png).decode()}" if png else match.group(0)

    return CID_RE.sub(replace, html)
