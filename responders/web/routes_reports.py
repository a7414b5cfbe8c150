"""Managers: the Reports page (tiles, trend charts, a table of the trends), its charts as PNG and the table as CSV.

Query parameters, shared by the page, the charts and the CSV: `from`, `to` (ISO dates, both included, in
`schedule.timezone`; default the last 28 days), `granularity` (day | week), `by` (overall | platform | agent),
`platform` (empty: all) and, for the tiles only, `days`. A bad value answers 400 with what is wrong.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from listener.platforms import SPECS, display_name
from models.domain import Role
from models.orm import User
from models.vectors import HashEmbedder
from responders.charts import CHARTS
from responders.digest.build import period_topics
from responders.reports import team_report
from responders.trends import GRANULARITIES, GROUPINGS, MAX_BUCKETS, Bucket, Granularity, GroupBy, Trends, trends
from responders.trends import local_midnight as midnight
from responders.web.deps import db, query_int, render, require, web

router = APIRouter()
manager = require(Role.MANAGER)
DEFAULT_DAYS = 28
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# (CSV column, table heading): the page's table and the CSV carry the same cells (`table_rows`)
COLUMNS = (
    ("group", "Group"), ("start", "From"), ("mentions", "Mentions"), ("negative", "Negative"),
    ("neutral", "Neutral"), ("positive", "Positive"), ("unscored", "Unscored"), ("to_answer", "To answer"),
    ("answered", "Answered"), ("response_rate_pct", "Rate %"), ("median_first_response_min", "Median min"),
    ("p90_first_response_min", "p90 min"), ("answered_late", "Late"), ("backlog_over_sla", "Over SLA at end"),
)
CHART_ALT = {
    "volume": "Stacked bars: customer mentions per bucket by sentiment",
    "response-rate": "Lines: response rate per bucket",
    "response-time": "Lines: median and p90 first response per bucket",
    "backlog": "Lines: mentions waiting past the SLA at the end of each bucket",
}


@dataclass(frozen=True)
class TrendQuery:
    """The trend parameters of a request, checked."""

    first: date  # the first local day shown
    last: date  # the last local day shown (included)
    granularity: Granularity
    by: GroupBy
    platform: str | None

    def params(self) -> dict[str, str]:
        """The query string of the page, its charts and its CSV."""
        found = {"from": self.first.isoformat(), "to": self.last.isoformat(), "granularity": self.granularity,
                 "by": self.by}
        return found | ({"platform": self.platform} if self.platform else {})


def _date(value: str | None, name: str, default: date) -> date:
    if not value:
        return default
    try:
        if not DATE_RE.fullmatch(value):
            raise ValueError(value)
        parsed = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name!r} must be a date as YYYY-MM-DD, not {value[:40]!r}.") from None
    if not 1971 <= parsed.year <= 9998:
        raise HTTPException(400, f"{name!r} must be a date between the years 1971 and 9998.")
    return parsed


def _choice(value: str | None, name: str, allowed: tuple[str, ...]) -> str:
    if not value:
        return allowed[0]
    if value not in allowed:
        raise HTTPException(400, f"{name!r} must be one of {', '.join(allowed)}, not {value[:40]!r}.")
    return value


def parse_query(request: Request) -> TrendQuery:
    """The checked trend parameters of the request; HTTPException(400) says which one is wrong."""
    p = request.query_params
    ctx = web(request)
    today = ctx.clock().astimezone(ZoneInfo(ctx.config.schedule.timezone)).date()
    last = _date(p.get("to"), "to", today)
    first = _date(p.get("from"), "from", last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise HTTPException(400, "'from' must not be after 'to'.")
    granularity = cast(Granularity, _choice(p.get("granularity"), "granularity", GRANULARITIES))
    by = cast(GroupBy, _choice(p.get("by"), "by", GROUPINGS))
    platform = p.get("platform") or None
    if platform is not None and platform not in SPECS:
        raise HTTPException(400, f"'platform' must be one of {', '.join(SPECS)} or empty, not {platform[:40]!r}.")
    step = 7 if granularity == "week" else 1
    if (last - first).days // step + 1 > MAX_BUCKETS:
        raise HTTPException(400, f"At most {MAX_BUCKETS} {granularity}s at a time: choose a shorter period"
                                 + (" or weeks." if granularity == "day" else "."))
    return TrendQuery(first, last, granularity, by, platform)


def load_trends(request: Request, session: Session, q: TrendQuery) -> Trends:
    """The trends of the query's period, as known now (responders/trends.py)."""
    ctx = web(request)
    tz = ZoneInfo(ctx.config.schedule.timezone)
    try:
        return trends(session, start=midnight(q.first, tz), end=midnight(q.last + timedelta(days=1), tz),
                      granularity=q.granularity, sla_hours=ctx.config.queue.sla_hours, now=ctx.clock(),
                      platform=q.platform, by=q.by, timezone=ctx.config.schedule.timezone)
    except ValueError as exc:  # too many buckets once widened to whole weeks
        raise HTTPException(400, str(exc)) from None


def _number(value: float | None, scale: float = 1.0) -> str:
    return "" if value is None else f"{value * scale:.1f}"


def table_rows(result: Trends) -> list[list[str]]:
    """One row per group and bucket, in COLUMNS order: the cells of the page's table and of the CSV."""
    rows = []
    for series in result.series:
        group = display_name(series.group) if result.by == "platform" else series.group
        for b in series.buckets:
            rows.append([group, b.start.isoformat(), *(str(v) for v in _counts(b)),
                         _number(b.response_rate, 100), _number(b.median_response_seconds, 1 / 60),
                         _number(b.p90_response_seconds, 1 / 60), str(b.answered_late), str(b.backlog)])
    return rows


def _counts(b: Bucket) -> tuple[int, ...]:
    return b.volume, b.negative, b.neutral, b.positive, b.unscored, b.to_answer, b.answered


@router.get("/reports")
def reports_page(request: Request, user: User = Depends(manager), session: Session = Depends(db)) -> Response:
    ctx = web(request)
    days = query_int(request.query_params.get("days"), 7, 1, 90)
    q = parse_query(request)
    result = load_trends(request, session, q)
    report = team_report(session, now=ctx.clock(), days=days, sla_hours=ctx.config.queue.sla_hours)
    tz = ZoneInfo(ctx.config.schedule.timezone)
    topics = period_topics(session, start=midnight(q.first, tz), end=midnight(q.last + timedelta(days=1), tz),
                           embedder=ctx.embedder or HashEmbedder(), platform=q.platform,
                           stop_words=" ".join(b.name for b in ctx.config.brands))
    return render(request, "reports.html", {
        "report": report, "days": days, "q": q, "params": q.params(), "trends": result,
        "columns": [label for _, label in COLUMNS], "rows": table_rows(result), "charts": CHART_ALT, "topics": topics,
        "granularities": GRANULARITIES, "groupings": GROUPINGS, "platforms": list(SPECS),
        "timezone": ctx.config.schedule.timezone,
    })


@router.get("/reports.csv")
def reports_csv(request: Request, user: User = Depends(manager), session: Session = Depends(db)) -> Response:
    q = parse_query(request)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([key for key, _ in COLUMNS])
    writer.writerows(table_rows(load_trends(request, session, q)))
    name = f"openear-report-{q.first}-{q.last}-{q.granularity}-{q.by}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/reports/charts/{name}.png")
def reports_chart(name: str, request: Request, user: User = Depends(manager),
                  session: Session = Depends(db)) -> Response:
    draw = CHARTS.get(name)
    if draw is None:
        raise HTTPException(404, f"No chart {name[:40]!r}; there are {', '.join(CHARTS)}.")
    png = draw(load_trends(request, session, parse_query(request)))
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})
