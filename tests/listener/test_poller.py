"""The poller's storage logic with a scripted adapter: dedupe, atomicity, queueing, cursors.

End-to-end polls against the X emulator over real HTTP live in test_x_poll.py.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from listener.platforms.base import FetchResult, RateLimited, Transient
from models.domain import AuthorData, MentionData, QueueState
from models.orm import Author, Mention, PollCursor, QueueItem
from models.vectors import load_vectors, quantize
from tests.support import SOURCE, T0, CountingClassifier, Result, ScriptedAdapter, make_poller, post


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def classifier() -> CountingClassifier:
    return CountingClassifier()


def test_new_mentions_are_stored_classified_ranked_and_queued(sessions: sessionmaker[Session],
                                                              classifier: CountingClassifier) -> None:
    adapter = ScriptedAdapter([[post(1), post(2, "love the new plan, thanks!")]])
    result = make_poller(sessions, classifier, clock=lambda: T0 + timedelta(hours=1)).poll_once(adapter, SOURCE)
    assert (result.new, result.queued, result.duplicates) == (2, 2, 0)
    with sessions() as session:
        items = session.scalars(select(QueueItem).order_by(QueueItem.priority.desc())).all()
        top = session.get(Mention, items[0].mention_id)
        assert top is not None and top.external_id == "1001"
        assert top.sentiment_label == "negative" and top.score_negative == 0.8
        assert top.priority_reasons and top.priority_reasons[0].startswith("negative 0.80")
        assert all(i.state == QueueState.NEW.value for i in items)
        cursor = session.scalar(select(PollCursor.cursor).where(PollCursor.source == SOURCE.name))
    assert cursor == "1002"


def test_duplicates_across_polls_and_within_a_batch_are_stored_once(sessions: sessionmaker[Session],
                                                                     classifier: CountingClassifier) -> None:
    adapter = ScriptedAdapter([[post(1), post(2), post(1)], [post(2), post(3)]])
    poller = make_poller(sessions, classifier)
    first = poller.poll_once(adapter, SOURCE)
    second = poller.poll_once(adapter, SOURCE)
    assert (first.new, second.new, second.duplicates) == (2, 1, 1)
    assert count(sessions, Mention) == 3 and count(sessions, QueueItem) == 3
    assert adapter.seen_cursors == [None, "1002"]
    # only unseen texts reach the classifier
    assert [len(call) for call in classifier.calls] == [2, 1]


def test_a_crash_inside_the_transaction_stores_nothing_and_the_retry_stores_everything_once(
    sessions: sessionmaker[Session], classifier: CountingClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    poller = make_poller(sessions, classifier)
    adapter = ScriptedAdapter([[post(1), post(2)], [post(1), post(2), post(3)]])

    def crash(*_args: object) -> None:
        raise RuntimeError("power cut")

    with monkeypatch.context() as patch:
        patch.setattr(poller, "_advance", crash)
        with pytest.raises(RuntimeError):
            poller.poll_once(adapter, SOURCE)
    assert count(sessions, Mention) == 0 and count(sessions, QueueItem) == 0
    assert poller.cursor(SOURCE.name) is None
    poller.poll_once(adapter, SOURCE)
    assert count(sessions, Mention) == 3 and count(sessions, QueueItem) == 3
    assert adapter.seen_cursors == [None, None]


def test_platform_errors_leave_the_cursor_and_are_recorded(sessions: sessionmaker[Session],
                                                           classifier: CountingClassifier) -> None:
    retry_at = T0 + timedelta(minutes=15)
    adapter = ScriptedAdapter([[post(1)], Transient("HTTP 503 from the X API"), RateLimited("slow down", retry_at)])
    poller = make_poller(sessions, classifier, clock=lambda: T0)
    poller.poll_once(adapter, SOURCE)
    with pytest.raises(Transient):
        poller.poll_once(adapter, SOURCE)
    with pytest.raises(RateLimited):
        poller.poll_once(adapter, SOURCE)
    with sessions() as session:
        row = session.scalar(select(PollCursor).where(PollCursor.source == SOURCE.name))
        assert row is not None
        assert row.cursor == "1001" and row.consecutive_failures == 2
        assert row.last_error is not None and row.last_error.startswith("RateLimited")
        assert row.state["retry_at"] == retry_at.isoformat()


def test_the_brands_own_posts_are_history_and_close_the_item_they_answer(sessions: sessionmaker[Session],
                                                                         classifier: CountingClassifier) -> None:
    own = post(5, "Sorry! We sent you a DM.", author="brand", is_own=True, in_reply_to_id="1001")
    adapter = ScriptedAdapter([[post(1)], [own]])
    poller = make_poller(sessions, classifier)
    poller.poll_once(adapter, SOURCE)
    result = poller.poll_once(adapter, SOURCE)
    assert (result.new, result.own, result.queued, result.closed_by_own_reply) == (1, 1, 0, 1)
    with sessions() as session:
        states = session.scalars(select(QueueItem.state)).all()
        brand = session.scalar(select(Author).where(Author.external_id == "brand"))
    assert states == [QueueState.ANSWERED.value]
    assert brand is not None and brand.is_brand
    assert classifier.calls == [[post(1).text]]  # own posts are not classified


def test_a_failing_classifier_stores_mentions_unclassified(sessions: sessionmaker[Session]) -> None:
    class Broken:
        def classify(self, texts: list[str]) -> list[Result]:
            raise MemoryError("model too big")

    result = make_poller(sessions, Broken()).poll_once(ScriptedAdapter([[post(1)]]), SOURCE)
    assert result.new == 1 and result.warnings
    with sessions() as session:
        mention = session.scalars(select(Mention)).one()
    assert mention.sentiment_label is None
    assert mention.priority_reasons is not None and mention.priority_reasons[0] == "not classified yet"


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("<script>alert(1)</script>\"><img src=x onerror=alert(1)>", None),
        ("x" * 10_000, None),
        ("\u202eevil RTL\u202c مرحبا 😡🔥👍🏽", None),
        ("nul\x00inside", "nul\ufffdinside"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
    ],
)
def test_hostile_text_is_stored_intact_or_cleaned_with_a_reason(
    sessions: sessionmaker[Session], classifier: CountingClassifier, text: str, expect: str | None
) -> None:
    mention = post(1, text)
    mention = MentionData(**{**mention.__dict__, "raw": {"text": text, "nested": [text]}})
    result = make_poller(sessions, classifier).poll_once(ScriptedAdapter([[mention]]), SOURCE)
    with sessions() as session:
        stored = session.scalars(select(Mention)).one()
    assert stored.text == (expect or text)
    assert stored.raw is not None and stored.raw["text"] == (expect or text)
    assert bool(result.warnings) == (expect is not None)


def test_polls_of_any_size_run_only_the_sql_texts_of_power_of_two_batches(
        engine: Engine, sessions: sessionmaker[Session], classifier: CountingClassifier) -> None:
    """Every SQL text stays prepared in the driver's per-connection cache: a daemon that ran a new
    text per batch size (a 437-row INSERT, a 438-row one, ...) grew by ~1 MB per size seen."""
    texts: set[str] = set()
    listen = lambda _conn, _cursor, statement, *_rest: texts.add(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    poller, n, rng = make_poller(sessions, classifier), 0, random.Random(7)

    def poll(size: int, nulls: float) -> None:
        """`size` new posts, their optional fields None with probability `nulls` (an ORM bulk insert
        would leave those columns out and split the batch where that changes)."""
        nonlocal n
        def maybe(value: str) -> str | None:
            return None if rng.random() < nulls else value
        batch = [replace(post(k, author=f"a{k}", language=maybe("de"), permalink=maybe("p")),
                         author=AuthorData("x", f"a{k}", display_name=maybe("A"), followers=k))
                 for k in range(n, n + size)]
        n += size
        assert poller.poll_once(ScriptedAdapter([batch]), SOURCE).new == size

    try:
        for size in (1, 2, 4, 8, 16, 32, 64, 128):
            poll(size, nulls=0.0)
        of_powers = set(texts)
        texts.clear()
        for size in range(1, 101):
            poll(size, nulls=0.3)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    extra = sorted(t[:160] for t in texts - of_powers)
    assert texts and not extra, f"{len(extra)} texts beyond those of power-of-two batches: {extra[:3]}"


def test_author_updated_at_moves_on_a_rename_not_on_new_follower_counts(sessions: sessionmaker[Session],
                                                                         classifier: CountingClassifier) -> None:
    """The link-proposal job re-keys authors whose updated_at moved: a follower count must not move it."""
    def by(author: AuthorData, n: int) -> MentionData:
        return replace(post(n), author=author)

    first = AuthorData("x", "u1", handle="anna", display_name="Anna K", followers=100)
    now = [T0 + timedelta(hours=1)]
    poller = make_poller(sessions, classifier, clock=lambda: now[0])
    adapter = ScriptedAdapter([[by(first, 1)], [by(replace(first, followers=250), 2)],
                               [by(replace(first, followers=260, display_name="Anna Kühn"), 3)],
                               [by(replace(first, followers=270, display_name="Anna Kühn", handle="anna_k"), 4)]])

    def poll() -> tuple[str | None, str | None, int | None, object]:
        poller.poll_once(adapter, SOURCE)
        now[0] += timedelta(minutes=5)
        with sessions() as session:
            a = session.scalars(select(Author)).one()
            return a.handle, a.display_name, a.followers, a.updated_at.replace(tzinfo=None)

    created, followers, renamed, rehandled = poll(), poll(), poll(), poll()
    assert followers[:3] == ("anna", "Anna K", 250) and followers[3] == created[3]
    assert renamed[1:3] == ("Anna Kühn", 260) and renamed[3] > followers[3]
    assert rehandled[0] == "anna_k" and rehandled[3] > renamed[3]


# --------------------------------------------------------------------------- edits, hidden posts, early stops


def _row(sessions: sessionmaker[Session], external_id: str) -> Mention:
    with sessions() as session:
        row = session.scalar(select(Mention).where(Mention.external_id == external_id))
        assert row is not None
        session.expunge(row)
        return row


def _priority(sessions: sessionmaker[Session]) -> float:
    with sessions() as session:
        value = session.scalar(select(QueueItem.priority))
        assert value is not None
        return float(value)


def test_an_edit_replaces_the_text_of_the_one_mention_and_reranks_it(sessions: sessionmaker[Session],
                                                                     classifier: CountingClassifier) -> None:
    edited = replace(post(1, "update: it came today, thanks"), revision="1009", edited_at=T0 + timedelta(minutes=9))
    adapter = ScriptedAdapter([[post(1)], [edited], [edited]])
    poller = make_poller(sessions, classifier, clock=lambda: T0 + timedelta(hours=1))
    poller.poll_once(adapter, SOURCE)
    before = _priority(sessions)
    result = poller.poll_once(adapter, SOURCE)
    assert (result.new, result.edited, result.queued) == (0, 1, 0)
    assert count(sessions, Mention) == 1 and count(sessions, QueueItem) == 1
    row = _row(sessions, "1001")
    assert (row.text, row.revision_id, row.sentiment_label) == ("update: it came today, thanks", "1009", "positive")
    assert row.edited_at == T0 + timedelta(minutes=9)
    assert _priority(sessions) < before  # no longer a complaint: ranked down at once
    again = poller.poll_once(adapter, SOURCE)  # the same revision again is a plain duplicate
    assert (again.edited, again.duplicates) == (0, 1) and len(classifier.calls) == 2


def test_an_older_revision_never_overwrites_a_newer_one(sessions: sessionmaker[Session],
                                                       classifier: CountingClassifier) -> None:
    first = replace(post(1, "it never arrived (edit 1)"), revision="1005", edited_at=T0 + timedelta(minutes=5))
    second = replace(post(1, "it never arrived (edit 2)"), revision="1007", edited_at=T0 + timedelta(minutes=7))
    adapter = ScriptedAdapter([[post(1), second, first], [first]])  # one batch: the newest revision wins
    poller = make_poller(sessions, classifier)
    assert poller.poll_once(adapter, SOURCE).new == 1
    assert poller.poll_once(adapter, SOURCE).edited == 0
    assert _row(sessions, "1001").text == "it never arrived (edit 2)"


def test_hidden_posts_are_stored_as_history_but_never_queued(sessions: sessionmaker[Session],
                                                            classifier: CountingClassifier) -> None:
    adapter = ScriptedAdapter([[post(1, "buy cheap followers at spam.example", hidden=True), post(2)]])
    result = make_poller(sessions, classifier).poll_once(adapter, SOURCE)
    assert (result.new, result.queued) == (2, 1)
    assert _row(sessions, "1001").hidden is True and _row(sessions, "1002").hidden is False
    with sessions() as session:
        queued = session.scalars(select(Mention.external_id).join(QueueItem, QueueItem.mention_id == Mention.id)).all()
    assert queued == ["1002"]


def test_a_poll_stopped_at_a_limit_keeps_what_it_read_and_says_when_to_go_on(sessions: sessionmaker[Session],
                                                                            classifier: CountingClassifier) -> None:
    retry_at = T0 + timedelta(hours=16)
    limit = RateLimited("the daily read budget is spent", retry_at, scope="read budget per day")
    adapter = ScriptedAdapter([FetchResult([post(1), post(2)], '{"since":null,"until":"1001","newest":"1002"}',
                                           interrupted=limit), [post(3)]])
    poller = make_poller(sessions, classifier)
    result = poller.poll_once(adapter, SOURCE)
    assert (result.new, result.queued, result.retry_at) == (2, 2, retry_at)
    assert result.error is not None and "read budget" in result.error
    with sessions() as session:
        row = session.scalar(select(PollCursor).where(PollCursor.source == SOURCE.name))
        assert row is not None
        assert row.cursor == '{"since":null,"until":"1001","newest":"1002"}'
        assert row.state == {"retry_at": retry_at.isoformat()} and row.consecutive_failures == 0
        assert row.last_error is not None and "read budget" in row.last_error
    after = poller.poll_once(adapter, SOURCE)  # the next poll goes on from the recorded cursor
    assert adapter.seen_cursors[-1] == '{"since":null,"until":"1001","newest":"1002"}'
    assert after.retry_at is None and count(sessions, Mention) == 3
    with sessions() as session:
        row = session.scalar(select(PollCursor).where(PollCursor.source == SOURCE.name))
        assert row is not None and row.last_error is None and row.state == {}


def test_sentence_vectors_of_a_scoring_classifier_are_stored_with_the_mentions(
        sessions: sessionmaker[Session]) -> None:
    class Scoring(CountingClassifier):
        vector_key = "test-space"

        def classify_scored(self, texts: list[str], brands: list[str]) -> tuple[list[Result], None, list[list[float]]]:
            return self.classify(texts), None, [[float(len(t)), 1.0, 0.0, 0.0] for t in texts]

    edited = replace(post(1, "it never came, edit"), revision="1009", edited_at=T0 + timedelta(minutes=9))
    adapter = ScriptedAdapter([[post(1, "it never came"), post(2, "thanks, all fine"),
                                replace(post(3, "our own answer"), is_own=True)], [edited]])
    poller = make_poller(sessions, Scoring())
    poller.poll_once(adapter, SOURCE)
    with sessions() as session:
        stored = {m.external_id: load_vectors(session, "test-space", [m.id]).get(m.id)
                  for m in session.scalars(select(Mention))}
    # own posts are not classified, so they have no vector; the others are L2-normalised int8
    assert stored["1003"] is None
    first = stored["1001"]
    assert first is not None and list(first) == list(quantize(np.array([13.0, 1, 0, 0]))[0])
    poller.poll_once(adapter, SOURCE)  # an edit replaces the vector
    with sessions() as session:
        row = session.scalar(select(Mention).where(Mention.external_id == "1001"))
        assert row is not None
        again = load_vectors(session, "test-space", [row.id])[row.id]
    assert list(again) == list(quantize(np.array([19.0, 1, 0, 0]))[0])
