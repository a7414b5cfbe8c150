"""A new platform is one adapter plus one SPECS entry: "Board" (tests/listener/board_platform.py) passes
the adapter contract, and with only its SPECS entry added the whole system listens and answers on it.

Nothing outside board_platform.py and the entry below knows Board: the composition root builds it by
its loop over SPECS, the daemon polls it at the spec's interval, the queue checks replies against its
limit, saved replies address its @handles, the customer commands resolve `board:@handle`, the pages
show its name and badge, and the dispatcher sends through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from adapter_contract import AdapterContract
from board_platform import ACTIVE, SPEC, BoardEmulator, BoardPlatform
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from listener.platforms import SPECS
from listener.platforms.base import Source
from models.config_loader import parse_config
from models.db import session_factory
from models.orm import Author, Mention, QueueItem, Reply
from openear.app import OpenEar
from responders import queue
from responders.customers.overview import resolve
from responders.web.filters import has_handles, platform_badge, platform_name
from tests.responders.factories import make_user

KEYWORD = "acme"
BRAND_HANDLE = "acme_board"
CONFIG = """
brands:
  - name: Acme
web: {secret_key: "test-secret-key-0123456789"}
"""


@pytest.fixture
def emulator(clock: Any) -> Iterator[BoardEmulator]:
    with BoardEmulator(clock.timestamp, brand_handle=BRAND_HANDLE) as server:
        yield server


def make_adapter(emulator: BoardEmulator, clock: Any, token: str | None = None) -> BoardPlatform:
    return BoardPlatform(emulator.url, emulator.token if token is None else token, brand="Acme", keyword=KEYWORD,
                         handle=BRAND_HANDLE, clock=clock)


class TestBoardContract(AdapterContract):
    @pytest.fixture
    def adapter(self, emulator: BoardEmulator, clock: Any) -> BoardPlatform:
        return make_adapter(emulator, clock)

    @pytest.fixture
    def bad_auth_adapter(self, emulator: BoardEmulator, clock: Any) -> BoardPlatform:
        return make_adapter(emulator, clock, token="revoked-board-token")

    @pytest.fixture
    def secrets(self, emulator: BoardEmulator) -> list[str]:
        return [emulator.token, "revoked-board-token"]

    @pytest.fixture
    def source(self, adapter: BoardPlatform) -> Source:
        return adapter.sources()[0]

    @pytest.fixture
    def add_post(self, emulator: BoardEmulator) -> Any:
        return lambda text: emulator.add_post(text)

    @pytest.fixture
    def inject_fault(self, emulator: BoardEmulator) -> Any:
        return lambda spec, after=0: emulator.faults.inject(spec, after=after)

    @pytest.fixture
    def now(self, clock: Any) -> Any:
        return clock


class _Scores:
    label, negative, neutral, positive, complaint = "negative", 0.9, 0.05, 0.05, 0.8


class _Classifier:
    def classify(self, texts: list[str]) -> list[_Scores]:
        return [_Scores() for _ in texts]


@pytest.fixture
def board(emulator: BoardEmulator, monkeypatch: pytest.MonkeyPatch) -> BoardEmulator:
    """Board registered as openear's third platform: one SPECS entry, nothing else."""
    monkeypatch.setitem(SPECS, SPEC.name, SPEC)
    wiring = {"url": emulator.url, "token": emulator.token, "brand": "Acme", "keyword": KEYWORD,
              "handle": BRAND_HANDLE}
    for key, value in wiring.items():
        monkeypatch.setitem(ACTIVE, key, value)
    return emulator


def test_a_third_platform_is_one_adapter_plus_one_specs_entry(board: BoardEmulator, engine: Engine,
                                                             clock: Any) -> None:
    app = OpenEar(parse_config(CONFIG), engine=engine, classifier=_Classifier(), clock=clock)
    sessions: sessionmaker[Session] = session_factory(engine)
    assert set(app.adapters) == {"board"} and [s.name for _, s in app.sources()] == ["board:Acme:search:0"]

    daemon = app.build_daemon()  # polled at the spec's own interval (no schedule key was set)
    try:
        job = daemon.scheduler.get_job("poll:board:Acme:search:0")
        assert job is not None and job.trigger.interval == timedelta(seconds=SPEC.poll_seconds)
    finally:
        daemon.shutdown()

    first = board.add_post("acme my parcel never arrived", handle="hannah")
    [result] = app.poll_all()
    assert (result.error, result.new, result.queued) == (None, 1, 1)

    with sessions.begin() as s:
        agent = make_user(s, "agent_board")
        mention = s.scalars(select(Mention).where(Mention.external_id == first)).one()
        item = s.scalars(select(QueueItem).where(QueueItem.mention_id == mention.id)).one()
        author = s.get_one(Author, mention.author_id)
        assert queue.render_template("Hi {handle}!", author=author, customer=None, agent=agent,
                                     brand="Acme") == "Hi @hannah!"
        with pytest.raises(queue.Invalid, match="Board allows 500"):
            queue.submit_reply(s, item.id, agent, "x" * 501, now=clock(), timeout_minutes=30)
    with sessions.begin() as s:
        reply = queue.submit_reply(s, item.id, s.get_one(type(agent), agent.id), "Sorry @hannah, on it (acme)",
                                   now=clock(), timeout_minutes=30)
        reply_id = reply.id
    outcome = app.dispatcher.dispatch(reply_id)
    assert outcome is not None and outcome.state == "sent"
    posted = [p for p in board.posts if p["reply_to"] == first]
    assert [p["id"] for p in posted] == [outcome.platform_reply_id]
    [again] = app.poll_all()  # the reply comes back as the brand's own post, stored and never queued
    assert (again.new, again.own, again.queued) == (1, 1, 0)
    with sessions() as s:
        assert s.scalars(select(Reply.state).where(Reply.id == reply_id)).one() == "sent"
    assert (platform_name("board"), platform_badge("board"), has_handles("board")) == ("Board", "B", True)
    app.close()


def test_customer_references_follow_the_platform_table(board: BoardEmulator, engine: Engine, clock: Any) -> None:
    app = OpenEar(parse_config(CONFIG), engine=engine, classifier=_Classifier(), clock=clock)
    board.add_post("acme hello", handle="jana")
    app.poll_all()
    with app.sessions.begin() as s:
        jana = s.scalars(select(Author).where(Author.platform == "board")).one()
        customer_id = resolve(s, "board:@JANA", clock())
        assert s.get_one(Author, jana.id).customer_id == customer_id
        with pytest.raises(queue.Invalid, match="board:@handle"):
            resolve(s, "mastodon:@jana", clock())
    app.close()
