"""The dispatcher's exactly-once protocol, with crashes injected at every step.

A platform double records what it received (the X emulator version is in test_dispatch_x.py);
a crash is a BaseException raised inside the dispatcher, like a kill between two statements.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from listener.platforms.base import AuthFailed, ContentRejected, Duplicate, RateLimited, TargetGone, Transient
from models.domain import MentionData, ReplyState
from models.orm import AuditEvent, Author, Mention, Reply
from responders.dispatch import Dispatcher
from tests.support import FakeClock


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the code catches it."""


@dataclass
class RecordingPlatform:
    posted: list[tuple[str, str]] = field(default_factory=list)  # (mention id, text)
    errors: list[Exception] = field(default_factory=list)
    crash_after_post: bool = False

    def post_reply(self, mention: MentionData, text: str) -> str:
        if self.errors:
            raise self.errors.pop(0)
        self.posted.append((mention.external_id, text))
        if self.crash_after_post:
            self.crash_after_post = False
            raise Crash("killed right after the platform accepted the reply")
        return f"r{len(self.posted)}"

    def find_reply(self, mention: MentionData, text: str) -> str | None:
        for index, (mention_id, posted_text) in enumerate(self.posted, 1):
            if (mention_id, posted_text) == (mention.external_id, text):
                return f"r{index}"
        return None


def make_reply(sessions: sessionmaker[Session], text: str = "Sorry! We are on it.", n: int = 1) -> int:
    with sessions.begin() as session:
        author = session.scalar(select(Author).where(Author.external_id == "a1"))
        if author is None:
            author = Author(platform="x", external_id="a1", handle="cust")
        mention = Mention(platform="x", external_id=f"m{n}", brand="Acme", source="s", text="broken!",
                          created_at=FakeClock().now_value, author=author)
        session.add(mention)
        session.flush()
        reply = Reply(mention_id=mention.id, platform="x", text=text, idempotency_key=f"key-{n}")
        session.add(reply)
        session.flush()
        return reply.id


def state_of(sessions: sessionmaker[Session], reply_id: int) -> Reply:
    with sessions() as session:
        reply = session.get(Reply, reply_id)
        assert reply is not None
        return reply


@pytest.fixture
def platform() -> RecordingPlatform:
    return RecordingPlatform()


def dispatcher(sessions: sessionmaker[Session], platform: RecordingPlatform, clock: FakeClock) -> Dispatcher:
    return Dispatcher(sessions, {"x": platform}, clock=clock, lease=timedelta(minutes=2))


def test_a_draft_is_sent_once_and_audited(sessions: sessionmaker[Session], platform: RecordingPlatform,
                                          clock: FakeClock) -> None:
    reply_id = make_reply(sessions)
    outcome = dispatcher(sessions, platform, clock).dispatch(reply_id)
    assert outcome is not None and outcome.state == "sent" and outcome.platform_reply_id == "r1"
    assert dispatcher(sessions, platform, clock).dispatch(reply_id) is None  # already sent: nothing happens
    assert platform.posted == [("m1", "Sorry! We are on it.")]
    reply = state_of(sessions, reply_id)
    assert reply.state == ReplyState.SENT.value and reply.platform_reply_id == "r1"
    with sessions() as session:
        assert session.scalars(select(AuditEvent.action)).all() == ["reply_sent"]


def test_a_crash_after_the_platform_accepted_is_recovered_without_a_second_post(
    sessions: sessionmaker[Session], platform: RecordingPlatform, clock: FakeClock
) -> None:
    reply_id = make_reply(sessions)
    platform.crash_after_post = True
    with pytest.raises(Crash):
        dispatcher(sessions, platform, clock).dispatch(reply_id)
    assert state_of(sessions, reply_id).state == ReplyState.SENDING.value
    assert dispatcher(sessions, platform, clock).dispatch_due() == []  # lease not expired: hands off
    clock.advance(minutes=3)
    [outcome] = dispatcher(sessions, platform, clock).dispatch_due()
    assert outcome.state == "sent" and outcome.recovered
    assert platform.posted == [("m1", "Sorry! We are on it.")]


def test_a_crash_before_the_platform_call_posts_exactly_once_on_recovery(
    sessions: sessionmaker[Session], platform: RecordingPlatform, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    reply_id = make_reply(sessions)
    first = dispatcher(sessions, platform, clock)

    def die(*_args: object, **_kwargs: object) -> None:
        raise Crash("killed before the platform call")

    monkeypatch.setattr(first, "_send", die)
    with pytest.raises(Crash):
        first.dispatch(reply_id)
    clock.advance(minutes=3)
    [outcome] = dispatcher(sessions, platform, clock).dispatch_due()
    assert outcome.state == "sent" and not outcome.recovered
    assert len(platform.posted) == 1


def test_random_crashes_never_double_post_or_lose_a_reply(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    rng = random.Random(7)
    platform = RecordingPlatform()
    reply_ids = [make_reply(sessions, f"answer {n}", n) for n in range(40)]
    for _ in range(200):
        worker = dispatcher(sessions, platform, clock)
        platform.crash_after_post = rng.random() < 0.3
        if rng.random() < 0.2:
            platform.errors.append(Transient("HTTP 503"))
        with contextlib.suppress(Crash):
            worker.dispatch_due(limit=rng.randint(1, 5))
        clock.advance(minutes=rng.choice([0, 1, 3, 45]))
        if all(state_of(sessions, r).state == ReplyState.SENT.value for r in reply_ids):
            break
    assert all(state_of(sessions, r).state == ReplyState.SENT.value for r in reply_ids)
    texts = [text for _, text in platform.posted]
    assert sorted(texts) == sorted(f"answer {n}" for n in range(40))  # each exactly once


def test_transient_failures_back_off_then_succeed(sessions: sessionmaker[Session], platform: RecordingPlatform,
                                                  clock: FakeClock) -> None:
    reply_id = make_reply(sessions)
    platform.errors = [Transient("HTTP 503 Service Unavailable"), Transient("timeout")]
    worker = dispatcher(sessions, platform, clock)
    first = worker.dispatch(reply_id)
    assert first is not None and first.state == "failed"
    assert first.error is not None and "temporary problem" in first.error
    assert worker.dispatch_due() == []  # not due yet
    clock.advance(seconds=31)
    assert [o.state for o in worker.dispatch_due()] == ["failed"]
    reply = state_of(sessions, reply_id)
    assert reply.next_attempt_at is not None and reply.next_attempt_at - clock() == timedelta(seconds=60)
    clock.advance(seconds=61)
    assert [o.state for o in worker.dispatch_due()] == ["sent"]


def test_rate_limit_retries_at_the_platforms_time(sessions: sessionmaker[Session], platform: RecordingPlatform,
                                                  clock: FakeClock) -> None:
    reply_id = make_reply(sessions)
    platform.errors = [RateLimited("429", clock() + timedelta(minutes=15))]
    dispatcher(sessions, platform, clock).dispatch(reply_id)
    assert state_of(sessions, reply_id).next_attempt_at == clock() + timedelta(minutes=15)


@pytest.mark.parametrize(
    ("error", "words"),
    [(TargetGone("404"), "no longer exists"), (AuthFailed("token expired: set platforms.x.*"), "credentials")],
)
def test_final_failures_are_shown_in_plain_words_and_not_retried(
    sessions: sessionmaker[Session], platform: RecordingPlatform, clock: FakeClock, error: Exception, words: str
) -> None:
    reply_id = make_reply(sessions)
    platform.errors = [error]
    worker = dispatcher(sessions, platform, clock)
    worker.dispatch(reply_id)
    reply = state_of(sessions, reply_id)
    assert reply.state == ReplyState.FAILED.value and not reply.retryable
    assert reply.error is not None and words in reply.error
    clock.advance(hours=5)
    assert worker.dispatch_due() == [] and platform.posted == []


# --------------------------------------------------------------------------- what real platforms answer


@dataclass
class LaggingPlatform(RecordingPlatform):
    """Refuses a second identical post as a duplicate (X 403, Graph 506); its search sees a post only
    `lag` lookups after it was made (X's search index lags behind)."""

    lag: int = 0
    times_out_after_post: bool = False
    lookups: int = 0
    elsewhere: set[str] = field(default_factory=set)  # texts already posted to other threads

    def post_reply(self, mention: MentionData, text: str) -> str:
        if self.errors:
            raise self.errors.pop(0)
        if text in self.elsewhere or any(t == text for _, t in self.posted):
            raise Duplicate("X: You are not allowed to create a Tweet with duplicate content.")
        self.posted.append((mention.external_id, text))
        if self.times_out_after_post:
            self.times_out_after_post = False
            raise Transient("X did not answer in time")
        return f"r{len(self.posted)}"

    def find_reply(self, mention: MentionData, text: str) -> str | None:
        self.lookups += 1
        if self.lookups <= self.lag:
            return None
        return super().find_reply(mention, text)


def _run_until_settled(worker: Dispatcher, clock: FakeClock, reply_id: int, sessions: sessionmaker[Session]) -> Reply:
    for _ in range(20):
        worker.dispatch_due()
        reply = state_of(sessions, reply_id)
        if reply.state == ReplyState.SENT.value or not reply.retryable:
            return reply
        clock.advance(minutes=5)
    return state_of(sessions, reply_id)


@pytest.mark.parametrize("lag", [0, 2])
def test_a_reply_that_timed_out_but_posted_is_settled_by_the_duplicate_refusal(
        sessions: sessionmaker[Session], clock: FakeClock, lag: int) -> None:
    platform = LaggingPlatform(times_out_after_post=True, lag=lag)
    reply_id = make_reply(sessions)
    reply = _run_until_settled(dispatcher(sessions, platform, clock), clock, reply_id, sessions)
    assert reply.state == ReplyState.SENT.value and reply.platform_reply_id == "r1"
    assert platform.posted == [("m1", "Sorry! We are on it.")]  # exactly once, whatever the search lag


def test_the_same_text_posted_elsewhere_goes_back_to_the_agent_to_reword(sessions: sessionmaker[Session],
                                                                       clock: FakeClock) -> None:
    platform = LaggingPlatform(elsewhere={"Sorry! We are on it."})
    reply_id = make_reply(sessions)
    reply = _run_until_settled(dispatcher(sessions, platform, clock), clock, reply_id, sessions)
    assert reply.state == ReplyState.FAILED.value and not reply.retryable
    assert reply.error is not None and "reword" in reply.error and platform.posted == []


def test_a_text_the_platform_refuses_goes_back_to_the_agent(sessions: sessionmaker[Session],
                                                          platform: RecordingPlatform, clock: FakeClock) -> None:
    platform.errors = [ContentRejected("X counts this reply as 291 characters; it allows 280.")]
    reply_id = make_reply(sessions)
    reply = _run_until_settled(dispatcher(sessions, platform, clock), clock, reply_id, sessions)
    assert reply.state == ReplyState.FAILED.value and not reply.retryable
    assert reply.error is not None and "291 characters" in reply.error and "Edit the reply" in reply.error


def test_waiting_out_rate_limits_does_not_use_up_the_attempts(sessions: sessionmaker[Session],
                                                            platform: RecordingPlatform, clock: FakeClock) -> None:
    worker = dispatcher(sessions, platform, clock)
    limits = Dispatcher.MAX_ATTEMPTS + 3
    platform.errors = [RateLimited("24-hour limit", clock() + timedelta(minutes=5 * (n + 1)), scope="24-hour posting "
                                   "limit") for n in range(limits)]
    reply_id = make_reply(sessions)
    reply = _run_until_settled(worker, clock, reply_id, sessions)
    assert reply.state == ReplyState.SENT.value and reply.attempts == 1  # the only real try
    assert platform.posted == [("m1", "Sorry! We are on it.")]


def test_rate_limits_before_a_lost_post_keep_the_duplicate_check(sessions: sessionmaker[Session],
                                                                 clock: FakeClock) -> None:
    """Three 429s, then a post that times out after X took it, then search lags: still one post."""
    platform = LaggingPlatform(times_out_after_post=True, lag=2)
    platform.errors = [RateLimited("429", clock() + timedelta(minutes=1)) for _ in range(3)]
    reply_id = make_reply(sessions)
    reply = _run_until_settled(dispatcher(sessions, platform, clock), clock, reply_id, sessions)
    assert reply.state == ReplyState.SENT.value
    assert platform.posted == [("m1", "Sorry! We are on it.")]


def test_a_cap_names_its_scope_and_full_retry_date(sessions: sessionmaker[Session], platform: RecordingPlatform,
                                                  clock: FakeClock) -> None:
    retry_at = clock() + timedelta(days=11)
    platform.errors = [RateLimited("usage cap", retry_at, scope="monthly usage cap")]
    reply_id = make_reply(sessions)
    dispatcher(sessions, platform, clock).dispatch(reply_id)
    reply = state_of(sessions, reply_id)
    assert reply.next_attempt_at == retry_at and reply.retryable
    assert reply.error is not None and "monthly usage cap" in reply.error
    assert f"{retry_at:%Y-%m-%d %H:%M}" in reply.error
