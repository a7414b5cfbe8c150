"""Sign-in throttling: growing delays, locks a right password cannot lift, shared by every instance."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.config import Config, LoginConfig, WebConfig
from models.db import make_engine, session_factory
from models.orm import AuditEvent, LoginThrottle, WebSession
from responders import auth
from responders.throttle import LoginThrottler, Throttled, account_key
from responders.web import create_app
from tests.responders.factories import PASSWORD, SECRET_KEY, csrf_of, make_config, make_user
from tests.support import FakeClock

# Small numbers keep the sequences readable: delays after 2 failures, a lock at the 4th.
RULES = LoginConfig(free_failures=2, max_failures=4, max_failures_per_address=6, window_minutes=15,
                    lockout_minutes=15)


def _config(rules: LoginConfig = RULES) -> Config:
    base = make_config()
    return base.model_copy(update={"web": WebConfig(secret_key=SecretStr(SECRET_KEY), login=rules)})


def _app(sessions: sessionmaker[Session], clock: FakeClock, rules: LoginConfig = RULES) -> FastAPI:
    return create_app(_config(rules), sessions, clock=clock)


def _try(client: TestClient, username: str, password: str) -> int:
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": csrf_of(client)}, follow_redirects=False)
    if response.status_code == 429:
        assert "Too many failed sign-ins" in response.text and int(response.headers["retry-after"]) >= 1
    return response.status_code


@pytest.fixture
def clients() -> Callable[..., TestClient]:
    made: list[TestClient] = []

    def make(app: FastAPI, address: str = "203.0.113.7") -> TestClient:
        client = TestClient(app, client=(address, 40000))
        made.append(client)
        return client

    yield make  # type: ignore[misc]
    for client in made:
        client.close()


def test_delays_grow_then_the_account_locks_even_for_the_right_password(
        sessions: sessionmaker[Session], clock: FakeClock, clients: Callable[..., TestClient]) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
    client = clients(_app(sessions, clock))
    assert _try(client, "alice", "wrong-1") == 401
    assert _try(client, "alice", "wrong-2") == 401  # 2 failures: the next try waits 2**0 = 1 s
    assert _try(client, "alice", PASSWORD) == 429  # refused unchecked, though right
    clock.advance(seconds=1)
    assert _try(client, "Alice ", "wrong-3") == 401  # same account, however typed; now waits 2 s
    clock.advance(seconds=1)
    assert _try(client, "alice", "wrong") == 429
    clock.advance(seconds=1)
    assert _try(client, "alice", "wrong-4") == 401  # the 4th failure locks for 15 minutes
    for minutes in (0, 5, 9):  # 0, 5 and 14 minutes into the lock
        clock.advance(minutes=minutes)
        assert _try(client, "alice", PASSWORD) == 429
    clock.advance(minutes=1, seconds=1)  # 15 minutes and a bit since the lock
    assert _try(client, "alice", PASSWORD) == 303
    with sessions() as s:
        actions = s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        lock = s.scalars(select(AuditEvent).where(AuditEvent.action == "login_locked")).one()
        row = s.get(LoginThrottle, account_key("alice"))
    assert actions == ["login_failed"] * 4 + ["login_locked", "login"]
    assert lock.detail["account"] == "alice" and lock.detail["failures"] == 4
    assert row is not None and row.failures == 0 and row.locked_until is None  # a success clears the account


def test_the_lock_holds_across_two_instances_on_one_database(
        db_url: str, clock: FakeClock, clients: Callable[..., TestClient]) -> None:
    engines = [make_engine(db_url), make_engine(db_url)]
    first, second = (session_factory(e) for e in engines)
    with first.begin() as s:
        make_user(s, "alice")
    a, b = clients(_app(first, clock)), clients(_app(second, clock))
    for n, client in enumerate([a, b, a, b]):  # failures alternate between the instances
        clock.advance(seconds=60)  # always past any delay
        assert _try(client, "alice", f"wrong-{n}") == 401
    assert _try(a, "alice", PASSWORD) == 429 and _try(b, "alice", PASSWORD) == 429
    with second() as s:
        assert s.scalars(select(WebSession)).all() == []
    clock.advance(minutes=16)
    assert _try(b, "alice", PASSWORD) == 303
    for engine in engines:
        engine.dispose()


def test_spraying_many_accounts_locks_the_address_not_the_others(
        sessions: sessionmaker[Session], clock: FakeClock, clients: Callable[..., TestClient]) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
    app = _app(sessions, clock)
    sprayer, colleague = clients(app, "198.51.100.9"), clients(app, "192.0.2.44")
    for n in range(6):  # one try per account: no account reaches a delay, the address does reach its limit
        assert _try(sprayer, f"user{n}", "password1") == 401
    assert _try(sprayer, "alice", PASSWORD) == 429
    assert _try(colleague, "alice", PASSWORD) == 303
    with sessions() as s:
        lock = s.scalars(select(AuditEvent).where(AuditEvent.action == "login_locked")).one()
    assert lock.detail == {"address": "198.51.100.9", "failures": 6, "until": lock.detail["until"]}


def test_the_window_forgets_old_failures(sessions: sessionmaker[Session], clock: FakeClock,
                                         clients: Callable[..., TestClient]) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
    client = clients(_app(sessions, clock))
    for _ in range(3):
        clock.advance(seconds=30)
        assert _try(client, "alice", "wrong") == 401
    clock.advance(minutes=16)  # the window of the first failure is over: counting starts again
    for _ in range(3):
        clock.advance(seconds=30)
        assert _try(client, "alice", "wrong") == 401
    clock.advance(seconds=30)
    assert _try(client, "alice", PASSWORD) == 303


def test_parallel_failures_are_all_counted(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    throttler = LoginThrottler(LoginConfig(free_failures=100, max_failures=1000, max_failures_per_address=1000))
    barrier = threading.Barrier(12)
    errors: list[BaseException] = []

    def fail() -> None:
        try:
            barrier.wait()
            with sessions.begin() as s:
                throttler.failed(s, "alice", "203.0.113.7", now=clock())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fail) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions() as s:
        counts = {row.key: row.failures for row in s.scalars(select(LoginThrottle))}
    assert counts == {"account:alice": 12, "address:203.0.113.7": 12}


def test_a_lock_set_meanwhile_refuses_a_right_password(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    throttler = LoginThrottler(RULES)
    with sessions.begin() as s:
        make_user(s, "alice")
        for _ in range(RULES.max_failures):
            throttler.failed(s, "alice", None, now=clock())
    with sessions.begin() as s, pytest.raises(Throttled, match="locked"):
        throttler.succeeded(s, "alice", None, now=clock())
    with sessions.begin() as s:
        assert throttler.purge(s, now=clock() + timedelta(minutes=14)) == 0
        assert throttler.purge(s, now=clock() + timedelta(minutes=16)) == 1


def test_the_hashing_gate_bounds_running_and_waiting_work() -> None:
    gate = auth.HashingGate(workers=1, queue=1, wait_seconds=5)
    started, release = threading.Event(), threading.Event()
    results: list[str] = []

    def slow() -> str:
        started.set()
        release.wait(5)
        return "first"

    first = threading.Thread(target=lambda: results.append(gate.run(slow)))
    first.start()
    started.wait(5)
    second = threading.Thread(target=lambda: results.append(gate.run(lambda: "second")))
    second.start()
    for _ in range(100):  # until the second caller waits for the slot (admitted, not running)
        if gate._admitted._value == 0:  # type: ignore[attr-defined]
            break
        threading.Event().wait(0.01)
    with pytest.raises(auth.SignInBusy):
        gate.run(lambda: "third")  # no room to wait: refused at once
    release.set()
    first.join()
    second.join()
    assert results == ["first", "second"]
    assert gate.run(lambda: "again") == "again"


def test_a_saturated_gate_answers_503_not_a_hang(sessions: sessionmaker[Session], clock: FakeClock,
                                                 clients: Callable[..., TestClient],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
    full = auth.HashingGate(workers=1, queue=0, wait_seconds=0.1)
    monkeypatch.setattr(auth, "gate", full)
    client = clients(_app(sessions, clock))
    with full.slot():
        response = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                                "csrf_token": csrf_of(client)}, follow_redirects=False)
    assert response.status_code == 503 and "busy" in response.text
    assert _try(client, "alice", PASSWORD) == 303  # nothing was counted against alice
