"""The review queue's intake behind a real poll: ranking new mentions with the customer's history,
and re-ranking open items later (responders.queue.intake)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

import responders.queue.intake as intake_module
from models.domain import QueueState
from models.orm import Mention, QueueItem
from responders.queue.intake import Intake
from tests.support import SOURCE, T0, CountingClassifier, ScriptedAdapter, make_poller, post


@pytest.fixture
def classifier() -> CountingClassifier:
    return CountingClassifier()


def test_history_raises_the_rank_of_a_repeat_complaint(sessions: sessionmaker[Session],
                                                       classifier: CountingClassifier) -> None:
    poller = make_poller(sessions, classifier, clock=lambda: T0 + timedelta(hours=2))
    poller.poll_once(ScriptedAdapter([[post(1, author="loyal")]]), SOURCE)
    later = [post(10, author="loyal"), post(11, author="stranger")]
    poller.poll_once(ScriptedAdapter([later]), SOURCE)
    with sessions() as session:
        by_id = {m.external_id: m for m in session.scalars(select(Mention))}
    loyal, stranger = by_id["1010"], by_id["1011"]
    assert loyal.priority is not None and stranger.priority is not None
    assert loyal.priority > stranger.priority
    assert loyal.priority_reasons is not None
    assert "1 earlier conversation" in loyal.priority_reasons
    assert "last complaint unanswered" in loyal.priority_reasons


def test_rerank_moves_a_long_waiting_complaint_up(sessions: sessionmaker[Session],
                                                  classifier: CountingClassifier) -> None:
    clock = {"now": T0 + timedelta(minutes=30)}
    poller = make_poller(sessions, classifier, clock=lambda: clock["now"])
    intake = Intake(sessions, clock=lambda: clock["now"])
    poller.poll_once(ScriptedAdapter([[post(1, "my order never arrived", author="early")]]), SOURCE)
    clock["now"] = T0 + timedelta(hours=20)
    poller.poll_once(ScriptedAdapter([[post(1200, "my order never arrived", author="late")]]), SOURCE)
    with sessions() as session:
        before = {m.external_id: m.priority for m in session.scalars(select(Mention))}
    assert before["1001"] is not None and before["2200"] is not None
    assert intake.rerank_open() == 2
    with sessions() as session:
        after = {m.external_id: (m.priority, m.priority_reasons) for m in session.scalars(select(Mention))}
        items = {i.mention_id: i.priority for i in session.scalars(select(QueueItem))}
    assert after["1001"][0] - before["1001"] > 0.1  # 20 hours of waiting now count
    assert after["1001"][0] > after["2200"][0]
    assert "waiting 20 h" in (after["1001"][1] or [])
    assert sorted(items.values()) == sorted(p for p, _ in after.values())


@pytest.mark.parametrize(("limit", "expected"), [(20_000, 7), (5, 5), (4, 4), (1, 1), (0, 0)])
def test_rerank_pages_through_open_items_oldest_first_up_to_the_limit(
        sessions: sessionmaker[Session], classifier: CountingClassifier, monkeypatch: pytest.MonkeyPatch,
        limit: int, expected: int) -> None:
    monkeypatch.setattr(intake_module, "RERANK_PAGE", 2)
    poller = make_poller(sessions, classifier, clock=lambda: T0 + timedelta(hours=5))
    intake = Intake(sessions, clock=lambda: T0 + timedelta(hours=5))
    poller.poll_once(ScriptedAdapter([[post(n, author=f"u{n % 3}") for n in range(1, 10)]]), SOURCE)
    with sessions.begin() as session:
        items = session.scalars(select(QueueItem).order_by(QueueItem.id)).all()
        for item in items[2:4]:  # closed items are never reranked
            item.transition(QueueState.CLAIMED)
            item.transition(QueueState.ANSWERED)
        open_ids = [i.id for i in items if i.state in (QueueState.NEW.value, QueueState.CLAIMED.value)]
        session.execute(update(QueueItem).values(priority=-1.0))
    assert intake.rerank_open(limit) == expected
    with sessions() as session:
        reranked = session.scalars(select(QueueItem.id).where(QueueItem.priority != -1.0).order_by(QueueItem.id))
        assert list(reranked) == open_ids[:expected]
