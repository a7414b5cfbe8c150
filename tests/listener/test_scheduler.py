"""The scheduler with a fake clock: rate-limit rescheduling, backoff, health, DST, locks, job store."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from listener.locks import NamedLocks
from listener.platforms.base import AuthFailed, FetchResult, RateLimited, Source, Transient
from listener.poller import PollResult
from listener.scheduler import Daemon, SourceRunner, daily_trigger, job_schedule
from models.domain import MentionData
from tests.support import FakeClock

SOURCE = Source("x:acme:search:0", "x", "Acme", "search", "acme")


class ScriptedPoller:
    def __init__(self, outcomes: list[Exception | PollResult | None]) -> None:
        self.outcomes, self.calls = outcomes, 0

    def poll_once(self, adapter: object, source: Source) -> PollResult | None:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class NoAdapter:
    platform = "x"

    def sources(self) -> list[Source]:
        return [SOURCE]

    def preflight(self) -> None:
        return None

    def fetch(self, source: Source, cursor: str | None) -> FetchResult:
        raise AssertionError("not used")

    def post_reply(self, mention: MentionData, text: str) -> str:
        raise AssertionError("not used")

    def find_reply(self, mention: MentionData, text: str) -> str | None:
        return None


def runner(poller: ScriptedPoller, engine: Engine, clock: FakeClock) -> SourceRunner:
    return SourceRunner(poller, NoAdapter(), SOURCE, timedelta(seconds=60), NamedLocks(engine), clock)


def test_success_keeps_the_regular_interval(engine: Engine, clock: FakeClock) -> None:
    assert runner(ScriptedPoller([None]), engine, clock)() is None


def test_rate_limit_reschedules_at_retry_at(engine: Engine, clock: FakeClock) -> None:
    retry_at = clock() + timedelta(minutes=14, seconds=3)
    assert runner(ScriptedPoller([RateLimited("429", retry_at)]), engine, clock)() == retry_at


def test_a_poll_that_stored_pages_then_hit_a_limit_waits_for_that_limit(engine: Engine, clock: FakeClock) -> None:
    retry_at = clock() + timedelta(hours=20)
    stopped = PollResult(SOURCE.name, fetched=200, new=200, retry_at=retry_at, error="RateLimited: monthly cap")
    poll = runner(ScriptedPoller([stopped, None]), engine, clock)
    assert poll() == retry_at
    assert poll.failures == 0  # not a failure: the pages read are stored
    assert poll() is None


def test_failures_back_off_exponentially_mark_unhealthy_and_recover(engine: Engine, clock: FakeClock) -> None:
    errors: list[Exception | None] = [Transient("503")] * 4 + [AuthFailed("401"), RuntimeError("bug"), None]
    run = runner(ScriptedPoller(errors), engine, clock)
    delays = []
    for _ in range(6):
        next_at = run()
        assert next_at is not None
        delays.append((next_at - clock()).total_seconds())
    assert delays == [120, 240, 480, 960, 1800, 1800]  # doubles from the interval, capped at 30 min
    assert not run.healthy
    assert run() is None  # one success: healthy again, regular interval
    assert run.healthy and run.failures == 0


def test_a_source_held_by_another_instance_is_skipped(engine: Engine, clock: FakeClock) -> None:
    poller = ScriptedPoller([None])
    locks = NamedLocks(engine)
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with locks.hold(f"poll:{SOURCE.name}") as mine:
            assert mine
            inside.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(5)
    other_instance = SourceRunner(poller, NoAdapter(), SOURCE, timedelta(seconds=60), NamedLocks(engine), clock)
    assert other_instance() is None and poller.calls == 0
    release.set()
    holder.join()
    assert other_instance() is None and poller.calls == 1


@pytest.mark.parametrize(
    ("after", "expected_utc"),
    [
        (datetime(2026, 3, 28, 0, 0, tzinfo=UTC), datetime(2026, 3, 28, 7, 0, tzinfo=UTC)),  # CET (UTC+1)
        (datetime(2026, 3, 28, 8, 0, tzinfo=UTC), datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),  # DST starts: UTC+2
        (datetime(2026, 10, 24, 7, 0, tzinfo=UTC), datetime(2026, 10, 25, 7, 0, tzinfo=UTC)),  # DST ends: UTC+1
    ],
)
def test_daily_digest_runs_at_local_time_across_dst(after: datetime, expected_utc: datetime) -> None:
    trigger = daily_trigger("08:00", "Europe/Berlin")
    fire = trigger.get_next_fire_time(None, after)
    assert fire is not None and fire.astimezone(UTC) == expected_utc


def test_daemon_runs_jobs_reschedules_through_the_job_store_and_survives_a_restart(engine: Engine) -> None:
    ran = threading.Event()
    later = datetime.now(UTC) + timedelta(hours=3)

    def job() -> datetime:
        ran.set()
        return later  # e.g. a rate limit's retry_at

    daemon = Daemon(engine)
    daemon.add_interval("poll:test", job, seconds=3600)  # new to the store: runs at once
    daemon.add_interval("stale", lambda: None, seconds=3600)
    daemon.start()
    assert ran.wait(10)
    deadline = time.monotonic() + 10
    while abs((job_schedule(engine).get("poll:test", later) - later).total_seconds()) > 1:
        assert time.monotonic() < deadline, job_schedule(engine)
        time.sleep(0.05)
    daemon.shutdown()

    restarted = Daemon(engine)  # a new process: same job store, "stale" no longer configured
    restarted.add_interval("poll:test", job, seconds=3600)
    restarted.start()
    try:
        schedule = job_schedule(engine)
        assert set(schedule) == {"poll:test"}
        assert abs((schedule["poll:test"] - later).total_seconds()) < 1  # the retry_at survived the restart
    finally:
        restarted.shutdown()


def test_shutdown_finishes_the_running_batch_and_submits_nothing_after(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """A run falling due while the current batch finishes must not reach the shut-down executor."""
    started, finished, quick_runs = threading.Event(), threading.Event(), []

    def batch() -> None:
        started.set()
        time.sleep(1.5)
        finished.set()

    daemon = Daemon(engine)
    daemon.add_interval("poll:slow", batch, seconds=3600)
    daemon.add_interval("dispatch", lambda: quick_runs.append(1), seconds=0.2)
    daemon.start()
    assert started.wait(10)
    caplog.clear()
    daemon.shutdown(wait=True)
    assert finished.is_set()  # the batch was finished, not cut
    runs = len(quick_runs)
    time.sleep(0.5)
    assert len(quick_runs) == runs and runs > 0
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
