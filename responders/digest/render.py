"""Render a `DigestData` as an email: HTML (table layout, inline CSS, no JS) with a PNG chart + plain text.

The chart (mentions per day by sentiment: responders/charts.py over `digest_trend`'s 14 days, or the
digest's own 8 days) is referenced from the HTML as `cid:<content-id>` (deliver.py attaches it as a
related inline part); `inline_images` swaps those references for data: URIs (a file that opens in a
browser) and the web archive for image URLs (responders/web/routes_digests.py). A chart that cannot
be drawn is logged and left out; the digest still renders.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from sqlalchemy.orm import Session

from listener.platforms import display_name
from responders.answers import DEFINITIONS
from responders.charts import volume_chart
from responders.digest.build import DigestData
from responders.trends import OVERALL, Bucket, Series, Trends, local_midnight, trends

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
COLORS = {"negative": "#d64545", "neutral": "#9aa5b1", "positive": "#2f9e68", "unclassified": "#d9dee4"}
CID_RE = re.compile(r"cid:([A-Za-z0-9._@-]+)")
TREND_DAYS = 14


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


def digest_trend(session: Session, data: DigestData, days: int = TREND_DAYS) -> Trends:
    """The brand's customer mentions per local day over the `days` days ending with the digest's day, as known
    when the digest was built (responders/trends.py; erased mentions are not in it)."""
    tz = ZoneInfo(data.timezone)
    first = date.fromisoformat(data.day) - timedelta(days=days - 1)
    return trends(session, start=local_midnight(first, tz), end=datetime.fromisoformat(data.end), granularity="day",
                  sla_hours=data.sla_hours, now=datetime.fromisoformat(data.generated_at), brand=data.brand,
                  timezone=data.timezone)


def _series_trend(data: DigestData) -> Trends:
    """The digest's own day counts (the last 8 days, erased mentions included) as a volume-only `Trends`."""
    starts = tuple(date.fromisoformat(d.day) for d in data.series)
    buckets = tuple(Bucket(day, negative=d.negative, neutral=d.neutral, positive=d.positive, unscored=d.unclassified)
                    for day, d in zip(starts, data.series, strict=True))
    series = Series(OVERALL, buckets)
    return Trends(datetime.fromisoformat(data.start), datetime.fromisoformat(data.end), "day", "overall",
                  data.timezone, data.sla_hours, starts, series, (series,), brand=data.brand)


def trend_chart(data: DigestData, trend: Trends | None = None) -> tuple[bytes, int] | None:
    """The digest's one chart, mentions per day by sentiment (`trend`, else the digest's own 8 days), and how many
    days it shows; None (logged) when it cannot be drawn: the digest goes out without it."""
    shown = trend if trend is not None else _series_trend(data)
    try:
        return volume_chart(shown, title=f"Mentions per day, by sentiment ({data.timezone})"), len(shown.starts)
    except Exception:  # matplotlib missing or broken: never stop the digest
        log.exception("digest %s %s: the trend chart could not be drawn; sending without it", data.brand, data.day)
        return None


def render_digest(data: DigestData, trend: Trends | None = None) -> RenderedDigest:
    """HTML and text bodies plus the chart image of one digest; `trend` (`digest_trend`) draws the chart over
    14 days, without it the chart shows the digest's own 8 days."""
    images: dict[str, bytes] = {}
    cids: dict[str, str] = {}
    chart_days = 0
    chart = None if data.empty else trend_chart(data, trend)
    if chart is not None:
        cids["volume"] = content_id(data, "volume")
        images[cids["volume"]], chart_days = chart
    day = date.fromisoformat(data.day)
    subject = f"{data.brand} daily digest, {day:%a %d %b %Y}: " + (
        "no mentions" if data.empty else
        f"{data.volume:,} mentions, {data.complaints:,} complaints, {data.broadcast_only:,} unanswered, "
        f"{_rate(data.response_rate)} answered overall")
    context = {"d": data, "cids": cids, "subject": subject, "day_label": f"{day:%A %d %B %Y}",
               "trend": {t.label: t for t in data.trends}, "colors": COLORS,
               "defs": DEFINITIONS, "chart_days": chart_days}
    return RenderedDigest(subject, _HTML.get_template("digest.html").render(context),
                          _TEXT.get_template("digest.txt").render(context), images)


def inline_images(html: str, images: dict[str, bytes]) -> str:
    """The HTML with every `cid:` reference replaced by a data: URI (for a browser or a file)."""
    def replace(match: re.Match[str]) -> str:
        png = images.get(match.group(1))
        return f"data:image/png;base64,{base64.b64encode(png).decode()}" if png else match.group(0)

    return CID_RE.sub(replace, html)
