"""The composition root's periodic jobs: what each run asks the responders layer for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from listener.locks import NamedLocks
from models.config_loader import parse_config
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


def test_sign_in_housekeeping_deletes_old_sessions_and_spent_throttle_counts(engine: Engine) -> None:
    from sqlalchemy import func, select

    from models.db import session_factory
    from models.orm import LoginThrottle, User, WebSession
    from responders import sessions as web_sessions
    from responders.throttle import LoginThrottler

    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    now = [start]
    config = parse_config(CONFIG)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        user = User(username="alice", password_hash="x", role="agent", active=True, created_at=start)
        s.add(user)
        s.flush()
        _token, old = web_sessions.open_session(s, user, now=start, client="10.0.0.1")
        web_sessions.end_session(s, old.id, now=start, reason="logout")
        LoginThrottler(config.web.login).failed(s, "alice", "10.0.0.1", now=start)
    now[0] = start + web_sessions.KEEP_ENDED + timedelta(days=1)
    with sessions.begin() as s:
        live = s.get(User, user.id)
        assert live is not None
        web_sessions.open_session(s, live, now=now[0], client="10.0.0.1")
    app = OpenEar(config, engine=engine, clock=lambda: now[0])
    job = next(job for job_id, job, _ in app.extra_jobs() if job_id == "sign_in_housekeeping")

    def counts() -> tuple[int, int]:
        with sessions() as s:
            return (int(s.scalar(select(func.count()).select_from(WebSession)) or 0),
                    int(s.scalar(select(func.count()).select_from(LoginThrottle)) or 0))

    assert counts()[0] == 2 and counts()[1] >= 1
    job()
    assert counts() == (1, 0)  # the live session stays


def test_the_opt_in_retrain_job_swaps_the_model_after_a_switch(engine: Engine, tmp_path: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from responders import learning

    assert "classifier_retrain" not in [job_id for job_id, _, _ in OpenEar(parse_config(CONFIG),
                                                                            engine=engine).extra_jobs()]
    (tmp_path / "tweeteval").mkdir()
    (tmp_path / "tweeteval" / "val.tsv").write_text("text\tlabel\nok\tneutral\n", encoding="utf-8")
    config = parse_config(CONFIG + f"classifier:\n  retrain: {{enabled: true, every_hours: 24, data: '{tmp_path}'}}\n")
    calls: list[dict[str, Any]] = []

    def retrain(sessions: Any, data: Any, **kw: Any) -> learning.RetrainOutcome:
        calls.append({"data": data, **kw})
        return learning.RetrainOutcome(True, "switched", "v1", [], 60, 15)

    monkeypatch.setattr(learning, "retrain", retrain)
    app = OpenEar(config, engine=engine)
    _, job, seconds = next(j for j in app.extra_jobs() if j[0] == "classifier_retrain")
    assert seconds == 24 * 3600
    app._classifier = object()  # type: ignore[assignment]  # a loaded model
    job()
    assert calls and str(calls[0]["data"]) == str(tmp_path) and calls[0]["min_corrections"] == 50
    assert app._classifier is None  # rebuilt with the new version on the next classification
