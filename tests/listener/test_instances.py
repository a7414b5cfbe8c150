"""Several openear instances on one database: they start together and lose write races to each other.

The two-daemon soak (tests/openear/test_daemon_faults.py) found both: two daemons starting at once
collided creating the job store's table (one died with exit code 1), and a poll whose queue update
lost an optimistic version check to the other instance was logged as an unexpected error with a
traceback and backed off as if the source were failing.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from listener.locks import NamedLocks
from listener.scheduler import JOB_TABLE, SourceRunner, job_schedule
from models.db import lost_a_race, make_engine, upgrade
from models.domain import QueueState
from models.orm import QueueItem
from tests.listener.test_scheduler import SOURCE, NoAdapter, ScriptedPoller
from tests.responders.factories import item_of, make_mention
from tests.support import FakeClock

ROOT = Path(__file__).resolve().parents[2]

START_ONE = textwrap.dedent("""
    import sys, time
    from listener.scheduler import Daemon
    from models.db import make_engine
    url, at = sys.argv[1], float(sys.argv[2])
    daemon = Daemon(make_engine(url))
    for name in ("poll:a", "poll:b", "dispatch", "digest"):
        daemon.add_interval(name, lambda: None, seconds=3600)
    time.sleep(max(0.0, at - time.time()))  # every instance starts at the same moment
    daemon.start()
    daemon.shutdown()
    print("started")
""")


def test_instances_starting_together_on_a_fresh_postgresql_database_all_start(pg_databases) -> None:  # type: ignore[no-untyped-def]
    url = pg_databases.create()
    engine = make_engine(url)
    upgrade(engine)  # the schema, but not the job store's table: APScheduler creates that at start
    with engine.connect() as connection:
        assert not connection.execute(text("SELECT to_regclass(:t)"), {"t": JOB_TABLE}).scalar()
    at = time.time() + 4  # after every interpreter has imported what it needs
    runs = [subprocess.Popen([sys.executable, "-c", START_ONE, url, str(at)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [run.communicate(timeout=60)[0] for run in runs]
    assert [run.returncode for run in runs] == [0] * 4, outputs
    assert all(out.strip() == "started" for out in outputs), outputs
    assert set(job_schedule(engine)) == {"poll:a", "poll:b", "dispatch", "digest"}
    engine.dispose()


def test_a_stale_version_is_a_lost_race(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        item_id = item_of(s, make_mention(s, "router broken").id).id
    first, second = sessions(), sessions()
    try:
        a_item, b_item = first.get(QueueItem, item_id), second.get(QueueItem, item_id)
        assert a_item is not None and b_item is not None
        a_item.transition(QueueState.DISMISSED)
        first.commit()
        b_item.transition(QueueState.CLAIMED)
        with pytest.raises(StaleDataError) as caught:
            second.flush()
        assert lost_a_race(caught.value)
    finally:
        first.close()
        second.rollback()
        second.close()


def test_a_postgresql_serialization_failure_is_a_lost_race_and_other_errors_are_not(pg_databases) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(pg_databases.create())
    with engine.begin() as c:
        c.execute(text("CREATE TABLE counter (id int PRIMARY KEY, n int)"))
        c.execute(text("INSERT INTO counter VALUES (1, 0)"))
    one, two = engine.connect(), engine.connect()
    try:
        for c in (one, two):
            c.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            c.execute(text("SELECT n FROM counter WHERE id = 1"))  # both take their snapshot
        one.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
        one.commit()
        with pytest.raises(DBAPIError) as caught:
            two.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
        assert lost_a_race(caught.value)
        two.rollback()
        with pytest.raises(DBAPIError) as other:
            two.execute(text("INSERT INTO counter VALUES (1, 5)"))  # a unique violation is a bug, not a race
        assert not lost_a_race(other.value)
        assert not lost_a_race(RuntimeError("bug"))
    finally:
        one.close()
        two.close()
        engine.dispose()


def test_a_poll_that_lost_a_race_runs_again_shortly_and_is_no_failure(
        engine: Engine, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    lost = StaleDataError("UPDATE statement on table 'queue_items' expected to update 7 row(s); 6 were matched.")
    poller = ScriptedPoller([lost, None])
    run = SourceRunner(poller, NoAdapter(), SOURCE, timedelta(seconds=60), NamedLocks(engine), clock)
    with caplog.at_level(logging.INFO, logger="listener.scheduler"):
        assert run() == clock() + SourceRunner.RACE_RETRY
    assert run.failures == 0 and run.healthy
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    assert "another instance" in caplog.text
    assert run() is None and poller.calls == 2


def test_any_job_that_lost_a_race_is_logged_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    from listener import scheduler

    def lost() -> None:
        raise StaleDataError("UPDATE statement on table 'replies' expected to update 1 row(s); 0 were matched.")

    def bug() -> None:
        raise KeyError("bug")

    daemon = scheduler.Daemon.__new__(scheduler.Daemon)  # run_job needs only the registry entry
    with caplog.at_level(logging.INFO, logger="listener.scheduler"):
        for job_id, job in (("race-job", lost), ("bug-job", bug)):
            with scheduler._jobs_guard:
                scheduler._jobs[job_id] = (daemon, job)
            try:
                scheduler.run_job(job_id)
            finally:
                with scheduler._jobs_guard:
                    del scheduler._jobs[job_id]
    by_job = {r.args[0]: r for r in caplog.records if isinstance(r.args, tuple) and r.args}
    assert by_job["race-job"].levelno == logging.INFO and not by_job["race-job"].exc_info
    assert by_job["bug-job"].levelno == logging.ERROR and by_job["bug-job"].exc_info  # bugs keep their traceback


def test_a_race_lost_again_and_again_becomes_a_failure(engine: Engine, clock: FakeClock) -> None:
    """Three lost races in a row are bad luck; the fourth is a bug that must back off and be seen."""
    lost = StaleDataError("UPDATE statement on table 'queue_items' expected to update 1 row(s); 0 were matched.")
    run = SourceRunner(ScriptedPoller([lost] * 5 + [None]), NoAdapter(), SOURCE, timedelta(seconds=60),
                       NamedLocks(engine), clock)
    delays = [(run() - clock()).total_seconds() for _ in range(5)]  # type: ignore[operator]
    assert delays == [1, 1, 1, 120, 240]  # then the usual backoff: twice the 60 s interval, doubling
    assert run.failures == 2
    assert run() is None and run.failures == 0 and run.races == 0
