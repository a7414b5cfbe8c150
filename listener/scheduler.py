"""The daemon's scheduler: APScheduler 3 with its SQLAlchemy job store on the project's database.

It runs the jobs it is given (`openear/` registers polls, the dispatcher, claim expiry, the digest
and retention). Jobs are stored by reference (`listener.scheduler:run_job` + a job id) so the job
store survives restarts, and a job that returns a datetime is rescheduled to run then (a rate
limit's `retry_at`, a failing source's backoff). A job is never run twice at once
(`max_instances=1`), missed runs are coalesced, and each source poll holds a named lock so several
instances on one PostgreSQL database never poll the same source together.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, MetaData, Table, select
from sqlalchemy.exc import NoSuchTableError

from listener.locks import NamedLocks
from listener.platforms.base import PlatformAdapter, PlatformError, RateLimited, Source
from models.db import lost_a_race
from models.orm import utcnow

log = logging.getLogger(__name__)
JOB_TABLE = "apscheduler_jobs"
Job = Callable[[], Any]  # may return a datetime: run again then

_jobs: dict[str, tuple[Daemon, Job]] = {}
_jobs_guard = threading.Lock()


def run_job(job_id: str) -> None:
    """Entry point stored in the job store: looks the job up in this process and runs it."""
    with _jobs_guard:
        entry = _jobs.get(job_id)
    if entry is None:
        log.warning("job %s is in the job store but not registered in this process; skipping", job_id)
        return
    daemon, job = entry
    try:
        result = job()
    except Exception as exc:  # one bad job never stops the scheduler or the other jobs
        if lost_a_race(exc):  # rolled back whole; its next run does the work
            log.info("job %s: another instance changed the same rows; it runs again on schedule", job_id)
        else:
            log.exception("job %s failed", job_id)
        return
    if isinstance(result, datetime):
        daemon.reschedule(job_id, result)


class PollerLike(Protocol):
    def poll_once(self, adapter: PlatformAdapter, source: Source) -> Any: ...


class SourceRunner:
    """Polls one source and decides when the next poll should be.

    Success: the regular interval. Rate limited: at the platform's `retry_at`. Lost a write race to
    another instance: again in RACE_RETRY, not a failure unless it happens more than
    RACES_BEFORE_FAILURE times in a row. Failing: exponential
    backoff from the interval up to MAX_BACKOFF; unhealthy after UNHEALTHY_AFTER failures in a row,
    healthy again on the first success.
    """

    MAX_BACKOFF = timedelta(minutes=30)
    UNHEALTHY_AFTER = 5
    RACE_RETRY = timedelta(seconds=1)  # after losing a write race to another instance (not a failure)
    RACES_BEFORE_FAILURE = 3  # ... unless it loses that many in a row

    def __init__(self, poller: PollerLike, adapter: PlatformAdapter, source: Source, interval: timedelta,
                 locks: NamedLocks, clock: Callable[[], datetime] = utcnow) -> None:
        self.poller, self.adapter, self.source, self.interval = poller, adapter, source, interval
        self.locks, self.clock = locks, clock
        self.failures = self.races = 0

    @property
    def healthy(self) -> bool:
        return self.failures < self.UNHEALTHY_AFTER

    def backoff(self) -> timedelta:
        return min(self.interval * 2 ** min(self.failures, 16), self.MAX_BACKOFF)

    def __call__(self) -> datetime | None:
        with self.locks.hold(f"poll:{self.source.name}") as mine:
            if not mine:
                log.debug("%s is being polled by another instance; skipping", self.source.name)
                return None
            try:
                result = self.poller.poll_once(self.adapter, self.source)
            except RateLimited as exc:
                log.warning("%s rate limited; next poll at %s", self.source.name, exc.retry_at.isoformat())
                return max(exc.retry_at, self.clock())
            except Exception as exc:
                self.races = self.races + 1 if lost_a_race(exc) else 0
                if not 0 < self.races <= self.RACES_BEFORE_FAILURE:
                    return self._failed(exc)  # a race lost again and again is a bug, not bad luck
                # another instance changed the same rows (closed the same queue item) meanwhile; this
                # poll's transaction was rolled back whole, so nothing is lost: read it again shortly
                log.info("%s: another instance changed the same rows; polling again in %s", self.source.name,
                         self.RACE_RETRY)
                return self.clock() + self.RACE_RETRY
            self.races = 0
            if not self.healthy:
                log.info("%s recovered after %d failures", self.source.name, self.failures)
            self.failures = 0
            retry_at: datetime | None = getattr(result, "retry_at", None)
            if retry_at is not None:  # read part, then hit a limit: what was read is stored
                log.warning("%s stopped at a limit; next poll at %s", self.source.name, retry_at.isoformat())
                return max(retry_at, self.clock())
            return None

    def _failed(self, exc: Exception) -> datetime:
        self.failures += 1
        level = logging.ERROR if self.failures == self.UNHEALTHY_AFTER else logging.WARNING
        kind = "platform error" if isinstance(exc, PlatformError) else "unexpected error"
        log.log(level, "%s: %s (%d in a row%s): %s; next try in %s", self.source.name, kind, self.failures,
                ", source marked unhealthy" if not self.healthy else "", exc, self.backoff(),
                exc_info=not isinstance(exc, PlatformError))
        return self.clock() + self.backoff()


class _Scheduler(BackgroundScheduler):
    """APScheduler 3's BackgroundScheduler, minus one more round of due jobs after `shutdown`: it marks
    itself stopped, then waits for the running jobs, and a run falling due meanwhile went to the
    shut-down executor ("cannot schedule new futures after shutdown", an error in the log)."""

    def _process_jobs(self) -> float | None:
        if self.state != STATE_RUNNING:
            return None
        wait: float | None = super()._process_jobs()
        return wait


class Daemon:
    """A thin owner of one APScheduler BackgroundScheduler and the jobs registered with it."""

    def __init__(self, engine: Engine, *, timezone: str = "UTC", workers: int = 4, misfire_grace: int = 60) -> None:
        self.engine = engine
        self.scheduler = _Scheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)},
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": misfire_grace},
            timezone=ZoneInfo(timezone),
        )
        self.job_ids: list[str] = []
        # Where the job store says each job should run next (a rate limit's retry_at survives a
        # restart); a job the store does not know yet runs at once.
        self._stored = job_schedule(engine)

    def _register(self, job_id: str, job: Job) -> None:
        with _jobs_guard:
            _jobs[job_id] = (self, job)
        self.job_ids.append(job_id)

    def add_interval(self, job_id: str, job: Job, seconds: float, *, jitter: int = 0) -> None:
        self._register(job_id, job)
        first = self._stored.get(job_id) or datetime.now(UTC)
        self.scheduler.add_job(run_job, IntervalTrigger(seconds=seconds, jitter=jitter or None), args=[job_id],
                               id=job_id, name=job_id, replace_existing=True, next_run_time=first)

    def add_daily(self, job_id: str, job: Job, at: str, timezone: str) -> None:
        """Run at local time `at` ("HH:MM") in `timezone`, every day, DST switches included."""
        self._register(job_id, job)
        self.scheduler.add_job(run_job, daily_trigger(at, timezone), args=[job_id], id=job_id, name=job_id,
                               replace_existing=True)

    def reschedule(self, job_id: str, when: datetime) -> None:
        try:
            self.scheduler.modify_job(job_id, next_run_time=when)
        except LookupError:
            log.warning("cannot reschedule %s: it is not scheduled", job_id)

    def start(self) -> None:
        """Start the scheduler. Instances sharing a database take turns here: the job store creates its
        table and writes every job at start-up, and two doing that at once collide (PostgreSQL refuses
        the second CREATE TABLE; it used to kill that instance)."""
        with NamedLocks(self.engine).wait("daemon:start"):
            self.scheduler.start()
            for job in self.scheduler.get_jobs():
                if job.id not in self.job_ids:  # left over from an older configuration
                    log.info("removing job %s: no longer configured", job.id)
                    job.remove()

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking new runs; with wait, finish the ones running (the current batch)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        with _jobs_guard:
            for job_id in self.job_ids:
                if _jobs.get(job_id, (None,))[0] is self:
                    del _jobs[job_id]


def daily_trigger(at: str, timezone: str) -> CronTrigger:
    hour, minute = (int(part) for part in at.split(":"))
    return CronTrigger(hour=hour, minute=minute, timezone=ZoneInfo(timezone))


def job_schedule(engine: Engine) -> dict[str, datetime]:
    """Next run time per job id, read from the job store table (works from any process)."""
    try:
        table = Table(JOB_TABLE, MetaData(), autoload_with=engine)
    except NoSuchTableError:
        return {}
    with engine.connect() as connection:
        rows = connection.execute(select(table.c.id, table.c.next_run_time)).all()
    return {row.id: datetime.fromtimestamp(row.next_run_time, UTC) for row in rows if row.next_run_time is not None}
