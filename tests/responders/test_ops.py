"""/healthz, /status and /metrics read the shared database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from listener.platforms.base import Transient
from models.db import make_engine, session_factory
from responders.ops import ops_router
from tests.support import SOURCE, CountingClassifier, FakeClock, ScriptedAdapter, make_poller, post


def client(sessions: sessionmaker[Session], engine: Engine, clock: FakeClock) -> TestClient:
    app = FastAPI()
    app.include_router(ops_router(sessions, engine, clock))
    return TestClient(app)


def test_status_and_metrics_report_sources_and_queue(sessions: sessionmaker[Session], engine: Engine,
                                                     clock: FakeClock) -> None:
    poller = make_poller(sessions, CountingClassifier(), clock=clock)
    poller.poll_once(ScriptedAdapter([[post(1), post(2, "great service")]]), SOURCE)
    with pytest.raises(Transient):
        poller.poll_once(ScriptedAdapter([Transient("HTTP 503 from X")]), SOURCE)
    clock.advance(hours=2)
    http = client(sessions, engine, clock)
    assert http.get("/healthz").json() == {"status": "ok"}
    [source] = http.get("/status").json()["sources"]
    assert source["source"] == SOURCE.name and source["backlog"] == 2
    assert source["consecutive_failures"] == 1 and source["healthy"]
    assert "HTTP 503" in source["last_error"] and source["last_success"] is not None
    metrics = http.get("/metrics").text
    assert 'openear_queue_depth{brand="Acme",state="new"} 2.0' in metrics
    oldest = next(line for line in metrics.splitlines() if line.startswith("openear_oldest_unanswered"))
    # post(1) was created at 08:01 UTC on the fixture day; the clock says 11:00
    assert abs(float(oldest.split()[-1]) - timedelta(hours=2, minutes=59).total_seconds()) < 1
    assert f'openear_mentions_ingested_total{{source="{SOURCE.name}"}}' in metrics


def test_healthz_reports_a_dead_database(clock: FakeClock) -> None:
    dead = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    response = client(session_factory(dead), dead, clock).get("/healthz")
    assert response.status_code == 503 and response.json()["status"] == "unhealthy"
