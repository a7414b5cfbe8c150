"""Operations endpoints: /healthz (liveness), /status (per source) and /metrics (Prometheus).

They read the shared database, so they tell the truth about every daemon instance, whichever
process serves them. Machine endpoints: no session needed, nothing secret in them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from listener.scheduler import SourceRunner, job_schedule
from models.domain import OPEN_QUEUE_STATES, SentimentLabel
from models.orm import Mention, PollCursor, QueueItem, utcnow
from models.secrets import redact

OPEN_STATES = OPEN_QUEUE_STATES


def source_status(sessions: sessionmaker[Session], engine: Engine, now: datetime) -> list[dict[str, Any]]:
    """Per source: health, last success, last error, next run and open queue backlog."""
    schedule = job_schedule(engine)
    with sessions() as session:
        cursors = session.scalars(select(PollCursor).order_by(PollCursor.source)).all()
        backlog: dict[str, int] = {row[0]: row[1] for row in session.execute(
            select(Mention.source, func.count()).join(QueueItem, QueueItem.mention_id == Mention.id)
            .where(QueueItem.state.in_(OPEN_STATES)).group_by(Mention.source)
        )}
    names = sorted({c.source for c in cursors} | {j.removeprefix("poll:") for j in schedule if j.startswith("poll:")})
    by_name = {c.source: c for c in cursors}
    out = []
    for name in names:
        row = by_name.get(name)
        failures = row.consecutive_failures if row else 0
        next_run = schedule.get(f"poll:{name}")
        out.append({
            "source": name,
            "healthy": failures < SourceRunner.UNHEALTHY_AFTER,
            "consecutive_failures": failures,
            "last_success": row.last_success_at.isoformat() if row and row.last_success_at else None,
            "last_error": redact(row.last_error) if row and row.last_error else None,
            "last_error_at": row.last_error_at.isoformat() if row and row.last_error_at else None,
            "next_run": next_run.isoformat() if next_run else None,
            "backlog": backlog.get(name, 0),
            "cursor": row.cursor if row else None,
        })
    return out


class QueueCollector(Collector):
    """Gauges read from the database at scrape time."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.sessions, self.clock = sessions, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("openear_queue_depth", "Open queue items", labels=["brand", "state"])
        oldest = GaugeMetricFamily("openear_oldest_unanswered_complaint_seconds",
                                   "Age of the oldest open negative mention", labels=["brand"])
        with self.sessions() as session:
            for brand, state, count in session.execute(
                select(QueueItem.brand, QueueItem.state, func.count())
                .where(QueueItem.state.in_(OPEN_STATES)).group_by(QueueItem.brand, QueueItem.state)
            ):
                depth.add_metric([brand, state], count)
            for brand, created in session.execute(
                select(QueueItem.brand, func.min(Mention.created_at)).join(Mention, QueueItem.mention_id == Mention.id)
                .where(QueueItem.state.in_(OPEN_STATES), Mention.sentiment_label == SentimentLabel.NEGATIVE.value)
                .group_by(QueueItem.brand)
            ):
                if created is not None:
                    oldest.add_metric([brand], max((self.clock() - created).total_seconds(), 0))
        yield depth
        yield oldest


def ops_router(sessions: sessionmaker[Session], engine: Engine,
               clock: Callable[[], datetime] = utcnow) -> APIRouter:
    router = APIRouter()
    registry = CollectorRegistry()
    registry.register(QueueCollector(sessions, clock))

    @router.api_route("/healthz", methods=["GET", "HEAD"])
    def healthz() -> Response:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "unhealthy", "database": redact(str(exc).splitlines()[0])}, 503)
        return JSONResponse({"status": "ok"})

    @router.api_route("/status", methods=["GET", "HEAD"])
    def status() -> Response:
        sources = source_status(sessions, engine, clock())
        overall = "ok" if all(s["healthy"] for s in sources) else "degraded"
        return JSONResponse({"status": overall, "time": clock().isoformat(), "sources": sources})

    @router.get("/metrics")
    def metrics() -> Response:
        body = generate_latest(REGISTRY) + generate_latest(registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
