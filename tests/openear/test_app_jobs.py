"""The composition root's periodic jobs: what each run asks the responders layer for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from listener.locks import NamedLocks
from models.config import parse_config
from openear.app import PROPOSE_MARGIN, OpenEar
from responders import customers

CONFIG = """
brands:
  - name: Acme Mobile
    accounts: {x: [acme_help]}
    queries: {x: ['acme']}
database: {url: "sqlite:///unused.db"}
web: {secret_key: "test-secret-key-0123456789"}
"""


def test_link_proposals_read_two_days_first_then_only_what_is_new(engine: Engine,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]
    asked: list[datetime] = []

    def propose(_session: Any, at: datetime, *, since: datetime, **_kw: Any) -> list[Any]:
        assert at == now[0]
        asked.append(since)
        return []

    monkeypatch.setattr(customers, "propose_links", propose)
    app = OpenEar(parse_config(CONFIG), engine=engine, clock=lambda: now[0])
    job = next(job for job_id, job, _ in app.extra_jobs() if job_id == "propose_links")
    first = now[0]
    job()
    now[0] += timedelta(minutes=30)
    job()
    assert asked == [first - timedelta(days=2), first - PROPOSE_MARGIN]
    with NamedLocks(engine).hold("propose_links") as held:  # another instance is at it
        assert held
        now[0] += timedelta(minutes=30)
        job()
    assert len(asked) == 2


def test_the_daemon_returns_free_memory_every_minute(engine: Engine) -> None:
    daemon = OpenEar(parse_config(CONFIG), engine=engine).build_daemon()
    try:
        job = daemon.scheduler.get_job("release_memory")
        assert job is not None and job.trigger.interval == timedelta(minutes=1)
    finally:
        daemon.shutdown()
