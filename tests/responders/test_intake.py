"""The review queue's intake behind a real poll: ranking new mentions with the customer's history,
and re-ranking open items later (responders.queue.intake)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

import responders.queue.intake as intake_module
from models.domain import MentionData, QueueState
from models.orm import AuditEvent, Mention, QueueItem
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


# --------------------------------------------------------------------------- conversations


def _in(n: int, text: str = "my order never arrived, please help", author: str = "jana",
        thread: str = "c1", **kw: object) -> MentionData:
    return replace(post(n, text, author=author), conversation_id=thread, **kw)  # type: ignore[arg-type]


def _brand(n: int, answers: int, thread: str = "c1") -> MentionData:
    return replace(post(n, "@jana sorry, we are on it", author="acme_help"), conversation_id=thread, is_own=True,
                   in_reply_to_id=str(1000 + answers))


def _items(sessions: sessionmaker[Session]) -> list[tuple[str, str, int, object]]:
    """(state, answered mention's external id, messages, waiting_since) per item, oldest first."""
    with sessions() as session:
        rows = session.execute(select(QueueItem.state, Mention.external_id, QueueItem.messages,
                                      QueueItem.waiting_since).join(Mention, Mention.id == QueueItem.mention_id)
                               .order_by(QueueItem.id)).all()
    return [tuple(r) for r in rows]


def test_follow_ups_of_one_customer_in_one_thread_are_one_item(sessions: sessionmaker[Session],
                                                               classifier: CountingClassifier) -> None:
    clock = {"now": T0 + timedelta(minutes=10)}
    poller = make_poller(sessions, classifier, clock=lambda: clock["now"])
    poller.poll_once(ScriptedAdapter([[_in(1), _in(2, "hello??")]]), SOURCE)
    clock["now"] = T0 + timedelta(minutes=30)
    result = poller.poll_once(ScriptedAdapter([[_in(5, "still nothing, third time I ask"),
                                                _in(6, "same here", author="other")]]), SOURCE)
    assert result.queued == 1  # only the other customer's conversation is new
    assert _items(sessions) == [("new", "1005", 3, T0 + timedelta(minutes=1)),
                                ("new", "1006", 1, T0 + timedelta(minutes=6))]
    with sessions() as session:
        item = session.scalars(select(QueueItem).order_by(QueueItem.id)).first()
        assert item is not None
        reasons = session.get(Mention, item.mention_id).priority_reasons  # type: ignore[union-attr]
    assert any(r == "waiting 29 min" for r in reasons or []), reasons  # from the first unanswered message


def test_a_native_answer_closes_the_conversation_and_a_new_message_reopens_it(
        sessions: sessionmaker[Session], classifier: CountingClassifier) -> None:
    clock = {"now": T0 + timedelta(minutes=10)}
    poller = make_poller(sessions, classifier, clock=lambda: clock["now"])
    poller.poll_once(ScriptedAdapter([[_in(1), _in(2, "hello??")]]), SOURCE)
    answered = poller.poll_once(ScriptedAdapter([[_brand(3, answers=1)]]), SOURCE)  # answers the FIRST message
    assert answered.closed_by_own_reply == 1  # written after the newest message: the conversation is answered
    assert _items(sessions)[0][0] == "answered"
    clock["now"] = T0 + timedelta(hours=2)
    again = poller.poll_once(ScriptedAdapter([[_in(90, "it broke again")]]), SOURCE)
    assert again.queued == 1
    assert _items(sessions) == [("new", "1090", 3, T0 + timedelta(minutes=90))]
    with sessions() as session:
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["answered_on_platform", "reopened"]


def test_a_thank_you_after_the_answer_does_not_reopen(sessions: sessionmaker[Session],
                                                      classifier: CountingClassifier) -> None:
    poller = make_poller(sessions, classifier, clock=lambda: T0 + timedelta(hours=1))
    poller.poll_once(ScriptedAdapter([[_in(1), _brand(2, answers=1)]]), SOURCE)
    result = poller.poll_once(ScriptedAdapter([[_in(3, "Danke, hat geklappt!"), _in(4, "thanks, all sorted now",
                                                                                     thread="c1")]]), SOURCE)
    assert (result.new, result.queued) == (2, 0)
    assert [s for s, *_ in _items(sessions)] == ["answered"]
    still = poller.poll_once(ScriptedAdapter([[_in(5, "thanks, but it is broken again")]]), SOURCE)
    assert still.queued == 1 and [s for s, *_ in _items(sessions)] == ["new"]


def test_an_answer_to_an_earlier_message_leaves_the_later_ones_waiting(sessions: sessionmaker[Session],
                                                                      classifier: CountingClassifier) -> None:
    poller = make_poller(sessions, classifier, clock=lambda: T0 + timedelta(hours=1))
    poller.poll_once(ScriptedAdapter([[_in(1), _in(8, "and now the app crashes too")]]), SOURCE)
    poller.poll_once(ScriptedAdapter([[_brand(4, answers=1)]]), SOURCE)  # between message 1 and message 8
    assert _items(sessions) == [("new", "1008", 2, T0 + timedelta(minutes=8))]


def test_a_spam_conversation_stays_closed(sessions: sessionmaker[Session], classifier: CountingClassifier) -> None:
    poller = make_poller(sessions, classifier)
    poller.poll_once(ScriptedAdapter([[_in(1, "buy followers")]]), SOURCE)
    with sessions.begin() as session:
        session.execute(update(QueueItem).values(state="dismissed", dismiss_reason="spam"))
    result = poller.poll_once(ScriptedAdapter([[_in(2, "buy more followers")]]), SOURCE)
    assert (result.new, result.queued) == (1, 0)
    assert [s for s, *_ in _items(sessions)] == ["dismissed"]


def test_hidden_and_own_posts_never_open_a_conversation(sessions: sessionmaker[Session],
                                                       classifier: CountingClassifier) -> None:
    poller = make_poller(sessions, classifier)
    poller.poll_once(ScriptedAdapter([[_in(1, hidden=True), _brand(2, answers=1)]]), SOURCE)
    assert _items(sessions) == []


def test_an_answer_stored_before_its_complaint_still_closes_it(sessions: sessionmaker[Session],
                                                              classifier: CountingClassifier) -> None:
    """The own timeline may be polled before the search that finds the complaint."""
    poller = make_poller(sessions, classifier, clock=lambda: T0 + timedelta(hours=1))
    poller.poll_once(ScriptedAdapter([[_brand(5, answers=1)]]), SOURCE)
    result = poller.poll_once(ScriptedAdapter([[_in(1)]]), SOURCE)
    assert (result.queued, result.closed_by_own_reply) == (1, 1)
    assert [s for s, *_ in _items(sessions)] == ["answered"]


def test_an_answer_to_the_edited_version_closes_the_conversation(sessions: sessionmaker[Session],
                                                                classifier: CountingClassifier) -> None:
    """X replies go to an edited post's newest version; the store knows the chain's first id."""
    poller = make_poller(sessions, classifier, clock=lambda: T0 + timedelta(hours=1))
    edited = _in(1, "my order never arrived (edited)", revision="9001", edited_at=T0 + timedelta(minutes=2))
    poller.poll_once(ScriptedAdapter([[edited]]), SOURCE)
    answer = replace(_brand(5, answers=1), in_reply_to_id="9001")
    assert poller.poll_once(ScriptedAdapter([[answer]]), SOURCE).closed_by_own_reply == 1
    assert [s for s, *_ in _items(sessions)] == ["answered"]


def test_items_merged_by_the_migration_never_open_a_second_item(sessions: sessionmaker[Session],
                                                              classifier: CountingClassifier) -> None:
    """0011 may keep an older claimed item and dismiss a newer one as merged: a follow-up joins the kept one."""
    poller = make_poller(sessions, classifier)
    poller.poll_once(ScriptedAdapter([[_in(1)]]), SOURCE)
    with sessions.begin() as session:
        kept = session.scalars(select(QueueItem)).one()
        newer = Mention(platform="x", external_id="1002", brand="Acme", source=SOURCE.name, text="again",
                        created_at=T0 + timedelta(minutes=2), author_id=session.get(Mention, kept.mention_id)
                        .author_id, conversation_id="c1")  # type: ignore[union-attr]
        session.add(newer)
        session.flush()
        session.add(QueueItem(mention_id=newer.id, brand="Acme", state="dismissed", dismiss_reason="merged",
                              thread_key=kept.thread_key, priority=0.1))
    result = poller.poll_once(ScriptedAdapter([[_in(3, "hello??")]]), SOURCE)
    assert result.queued == 0
    assert [(s, m) for s, _, m, _ in _items(sessions)] == [("new", 2), ("dismissed", 1)]


def test_the_digest_follows_the_conversation_item_of_earlier_messages(sessions: sessionmaker[Session],
                                                                     classifier: CountingClassifier) -> None:
    """A dismissed conversation of two complaints: neither message is listed as waiting."""
    from datetime import date

    from models.config import BrandConfig, Config, DatabaseConfig, WebConfig
    from responders.digest.build import build_digest

    poller = make_poller(sessions, classifier, clock=lambda: T0 + timedelta(hours=1))
    poller.poll_once(ScriptedAdapter([[_in(1), _in(2, "it never came, where is it")]]), SOURCE)
    config = Config(brands=[BrandConfig(name="Acme", timezone="UTC")], database=DatabaseConfig(url="sqlite://"),
                    web=WebConfig(secret_key="digest-test-secret-0123456789"))  # type: ignore[arg-type]
    now = T0 + timedelta(days=1)
    with sessions() as session:
        before = build_digest(session, config, "Acme", date(2026, 11, 20), now=now)
    assert (before.complaints, before.waiting_total, before.dismissed) == (2, 2, 0)
    with sessions.begin() as session:
        session.execute(update(QueueItem).values(state="dismissed", dismiss_reason="not_relevant"))
    with sessions() as session:
        after = build_digest(session, config, "Acme", date(2026, 11, 20), now=now)
    assert (after.complaints, after.waiting_total, after.dismissed) == (2, 0, 2)
