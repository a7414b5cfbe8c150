"""PNG charts of `responders.trends.Trends`: volume by sentiment, response rate, first response, backlog.

Drawn on a bare `matplotlib.figure.Figure` (never pyplot: no global state, safe in the web app's threads;
`savefig` uses the Agg canvas for PNG). The output is deterministic: a fixed size and dpi, no
"Software" metadata, numeric x positions (no categorical units), so the same trends give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from responders.trends import Bucket, Series, Trends

SIZE = (6.0, 2.6)  # inches: 600 x 260 px
DPI = 100
SENTIMENT_COLORS = {"negative": "#d64545", "neutral": "#9aa5b1", "positive": "#2f9e68", "unscored": "#d9dee4"}
PALETTE = ("#2563eb", "#d97706", "#059669", "#9333ea", "#dc2626", "#0891b2", "#65a30d", "#db2777", "#4b5563")
MAX_TICKS = 14


def _figure() -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=DPI)
    ax = fig.add_subplot()
    ax.tick_params(labelsize=7, colors="#52606d", length=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#cbd2d9")
    ax.yaxis.grid(True, color="#eef1f4")
    ax.set_axisbelow(True)
    return fig, ax


def _label(day: date, granularity: str) -> str:
    return f"wk {day:%d %b}" if granularity == "week" else f"{day:%a}\n{day:%d %b}"


def _x_axis(ax: Any, trends: Trends) -> list[int]:
    xs = list(range(len(trends.starts)))
    step = max(math.ceil(len(xs) / MAX_TICKS), 1)
    ax.set_xticks(xs[::step], [_label(d, trends.granularity) for d in trends.starts[::step]])
    ax.set_xlim(-0.6, len(xs) - 0.4)
    return xs


def _png(fig: Any, ax: Any, title: str) -> bytes:
    ax.set_title(title, fontsize=9, color="#1f2933", loc="left", pad=16)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.82, bottom=0.2)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _whole_numbers(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _legend(ax: Any, count: int) -> None:
    if count:
        ax.legend(ncol=min(count, 6), fontsize=7, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0),
                  borderaxespad=0.2, handlelength=1.6, columnspacing=1.2)


def _lines(trends: Trends, value: Callable[[Bucket], float | None], title: str, *, ylim: float | None = None,
           dashed: Callable[[Bucket], float | None] | None = None, unit: str = "", counts: bool = False) -> bytes:
    """One line per series (with a dashed twin for `dashed`); a None value leaves a gap."""
    fig, ax = _figure()
    xs = _x_axis(ax, trends)
    series: Sequence[Series] = trends.series
    several = len(series) > 1
    top = 0.0
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        for get, style, kind in ((value, "-", "median"), (dashed, "--", "p90")):
            if get is None:
                continue
            ys = [math.nan if (v := get(b)) is None else v for b in s.buckets]
            if all(math.isnan(y) for y in ys) and several:
                continue  # nothing to draw for this group (e.g. response times of the unanswered)
            top = max([top, *(y for y in ys if not math.isnan(y))])
            name = s.group if several else None  # several groups: one entry each, solid and dashed alike
            if dashed is not None and not several:
                name = kind
            elif kind == "p90":
                name = None
            ax.plot(xs, ys, style, color=color, linewidth=1.6, marker="o", markersize=2.5, label=name)
    ax.set_ylim(0, ylim if ylim is not None else max(top * 1.15, 1))
    if counts:
        _whole_numbers(ax)
    if unit:
        ax.set_ylabel(unit, fontsize=7, color="#52606d")
    _legend(ax, len(ax.get_legend_handles_labels()[1]))
    return _png(fig, ax, title)


def volume_chart(trends: Trends, title: str | None = None) -> bytes:
    """Stacked bars of all customer mentions by sentiment, per bucket (the overall series)."""
    fig, ax = _figure()
    xs = _x_axis(ax, trends)
    buckets = trends.overall.buckets
    bottom = [0] * len(buckets)
    for label in ("negative", "neutral", "positive", "unscored"):
        values = [getattr(b, label) for b in buckets]
        ax.bar(xs, values, bottom=bottom, color=SENTIMENT_COLORS[label], width=0.7, label=label)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylim(0, max(max(bottom, default=0), 1) * 1.15)
    _whole_numbers(ax)
    _legend(ax, 4)
    per = "week" if trends.granularity == "week" else "day"
    return _png(fig, ax, title or f"Mentions per {per}, by sentiment")


def response_rate_chart(trends: Trends) -> bytes:
    """Answered / expecting an answer, in percent, per bucket and series."""
    return _lines(trends, lambda b: None if b.response_rate is None else b.response_rate * 100,
                  "Response rate (%)", ylim=105)


def response_time_chart(trends: Trends) -> bytes:
    """Median (solid) and p90 (dashed) first response, in hours."""
    def hours(seconds: float | None) -> float | None:
        return None if seconds is None else seconds / 3600

    return _lines(trends, lambda b: hours(b.median_response_seconds),
                  "First response in hours: median (solid) and p90 (dashed)",
                  dashed=lambda b: hours(b.p90_response_seconds), unit="hours")


def backlog_chart(trends: Trends) -> bytes:
    """Mentions waiting past the SLA at each bucket's end."""
    return _lines(trends, lambda b: b.backlog, f"Waiting past the {trends.sla_hours:g}-hour SLA at the end",
                  counts=True)


CHARTS: dict[str, Callable[[Trends], bytes]] = {
    "volume": volume_chart,
    "response-rate": response_rate_chart,
    "response-time": response_time_chart,
    "backlog": backlog_chart,
}
