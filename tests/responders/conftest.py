"""Fixtures of the review queue tests: a config, the web app on each backend, clients, cheap argon2."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from models.config import Config
from responders import auth
from responders.web import create_app
from tests.responders.factories import make_config
from tests.support import FakeClock


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real Chromium (/usr/bin/chromium, via Playwright)")


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2, with test-sized cost parameters (production keeps the library defaults)."""
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(auth, "_hasher", hasher)
    monkeypatch.setattr(auth, "_DUMMY_HASH", hasher.hash("dummy"))


@pytest.fixture
def web_config() -> Config:
    return make_config(sla_hours=4.0, claim_timeout_minutes=30)


@pytest.fixture
def queued_replies() -> list[int]:
    """Reply ids the app handed to `on_reply_queued` (the dispatcher's hook)."""
    return []


@pytest.fixture
def web_app(sessions: sessionmaker[Session], clock: FakeClock, web_config: Config,
            queued_replies: list[int]) -> FastAPI:
    return create_app(web_config, sessions, clock=clock, on_reply_queued=queued_replies.append)


@pytest.fixture
def new_client(web_app: FastAPI) -> Iterator[Callable[[], TestClient]]:
    """Makes independent browsers (one per agent), closed at the end."""
    clients: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(web_app)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
