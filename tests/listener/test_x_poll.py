"""Polling X end to end: emulator -> tweepy over HTTP -> poller -> SQLite and PostgreSQL.

No gaps, no duplicates: paging, posts arriving mid-poll, restarts, rate limits on a fake clock,
5xx and broken bodies, wrong tokens, and the reply dispatcher against the same emulator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from listener.platforms.base import AuthFailed, RateLimited, Transient
from listener.platforms.x import XBrand, XPlatform
from models.domain import ReplyState
from models.orm import Mention, PollCursor, QueueItem, Reply
from responders.dispatch import Dispatcher
from sandbox.httpserver import Request, Response
from sandbox.x_api import XApiEmulator
from tests.support import FakeClock, make_poller

QUERY = "acme -is:retweet"
CUSTOMER = "kim_customer"


@pytest.fixture
def emulator(clock: FakeClock) -> Iterator[XApiEmulator]:
    with XApiEmulator(seed=3, clock=clock.timestamp) as server:
        server.add_user(CUSTOMER, "Kim", followers=1200)
        yield server


def adapter_for(emulator: XApiEmulator, clock: FakeClock, page_size: int | None = None,
                read_per_poll: int = 1000, **creds: str) -> XPlatform:
    credentials = {**emulator.credentials.as_dict(), **creds}
    return XPlatform([XBrand("Acme", [QUERY], ["acme_help"])], **credentials, base_url=emulator.url, clock=clock,
                     timeout=2, page_size=page_size, read_per_poll=read_per_poll)


class Stub:
    """A deterministic stand-in for the classifier (its own tests cover the model)."""

    def classify(self, texts: list[str]) -> list[Any]:
        from models.sentiment import LexiconClassifier

        return LexiconClassifier().classify(texts)


def stored_ids(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Mention.external_id)))


def cursor_of(sessions: sessionmaker[Session], source: str) -> str | None:
    with sessions() as session:
        return session.scalar(select(PollCursor.cursor).where(PollCursor.source == source))


def test_5000_posts_across_60_pages_arrive_complete_and_once(sessions: sessionmaker[Session], clock: FakeClock,
                                                             emulator: XApiEmulator) -> None:
    ids = [emulator.add_tweet(CUSTOMER, f"acme problem number {n}") for n in range(5000)]
    adapter = adapter_for(emulator, clock, page_size=84, read_per_poll=30_000)  # 5000 / 84 -> 60 pages
    [search, _mentions, _own] = adapter.sources()
    arrived_mid_poll: list[str] = []

    def during_paging(request: Request) -> None:
        # new posts land while the poll is on its 30th page
        searches = sum(1 for _, path, _ in emulator.log if path.endswith("/search/recent"))
        if request.path.endswith("/search/recent") and searches == 30 and not arrived_mid_poll:
            arrived_mid_poll.extend(emulator.add_tweet(CUSTOMER, f"acme late {i}") for i in range(3))

    emulator.add_hook(during_paging)
    poller = make_poller(sessions, Stub(), clock=clock)
    first = poller.poll_once(adapter, search)
    pages = sum(1 for _, path, _ in emulator.log if path.endswith("/search/recent"))
    assert pages == 60
    assert first.new == 5000 and first.duplicates == 0
    assert sorted(stored_ids(sessions), key=int) == ids
    assert cursor_of(sessions, search.name) == ids[-1]

    # a restart: new poller, new adapter, cursor from the database; only the late posts come
    restarted = make_poller(sessions, Stub(), clock=clock)
    read_before = emulator.posts_read
    second = restarted.poll_once(adapter_for(emulator, clock, page_size=84, read_per_poll=30_000), search)
    assert second.new == 3 and emulator.posts_read - read_before == 3
    assert sorted(stored_ids(sessions), key=int) == sorted(ids + arrived_mid_poll, key=int)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(QueueItem)) == 5003


def test_rate_limit_keeps_the_pages_read_and_resumes_after_the_reset(
    sessions: sessionmaker[Session], clock: FakeClock, emulator: XApiEmulator
) -> None:
    ids = [emulator.add_tweet(CUSTOMER, f"acme issue {n}") for n in range(250)]
    adapter = adapter_for(emulator, clock)
    search = adapter.sources()[0]
    poller = make_poller(sessions, Stub(), clock=clock)
    emulator.faults.inject("rate_limit_burst:1", path_prefix="/2/tweets/search/recent", after=1)  # page 2: 429
    first = poller.poll_once(adapter, search)  # page 1 is kept, the cursor records the unread rest
    assert first.new == 100 and first.retry_at is not None and first.retry_at > clock()
    assert sorted(stored_ids(sessions), key=int) == ids[-100:]
    assert (cursor_of(sessions, search.name) or "").startswith("{")
    clock.now_value = first.retry_at + timedelta(seconds=1)
    result = poller.poll_once(adapter, search)
    assert result.new == 150 and sorted(stored_ids(sessions), key=int) == ids
    assert poller.poll_once(adapter, search).new == 0


def test_a_429_on_the_first_page_keeps_the_cursor(sessions: sessionmaker[Session], clock: FakeClock,
                                                  emulator: XApiEmulator) -> None:
    emulator.add_tweet(CUSTOMER, "acme one")
    adapter = adapter_for(emulator, clock)
    search = adapter.sources()[0]
    poller = make_poller(sessions, Stub(), clock=clock)
    emulator.faults.inject("rate_limit_burst:1", path_prefix="/2/tweets/search/recent")
    with pytest.raises(RateLimited) as info:
        poller.poll_once(adapter, search)
    assert info.value.retry_at > clock()
    assert stored_ids(sessions) == [] and cursor_of(sessions, search.name) is None


@pytest.mark.parametrize("fault", ["http_503", "malformed_json", "truncated_json"])
def test_server_trouble_stores_nothing_half_and_keeps_the_cursor(
    sessions: sessionmaker[Session], clock: FakeClock, emulator: XApiEmulator, fault: str,
    caplog: pytest.LogCaptureFixture
) -> None:
    adapter = adapter_for(emulator, clock, page_size=10)
    search = adapter.sources()[0]
    poller = make_poller(sessions, Stub(), clock=clock)
    emulator.add_tweet(CUSTOMER, "acme first")
    poller.poll_once(adapter, search)
    before = cursor_of(sessions, search.name)
    for n in range(35):
        emulator.add_tweet(CUSTOMER, f"acme broken {n}")
    emulator.faults.inject(fault, path_prefix="/2/tweets/search/recent", after=2)  # the third page breaks
    with caplog.at_level(logging.WARNING), pytest.raises(Transient):
        poller.poll_once(adapter, search)
    assert len(stored_ids(sessions)) == 1 and cursor_of(sessions, search.name) == before
    assert any(search.name in r.getMessage() and "cursor unchanged" in r.getMessage() for r in caplog.records)
    assert poller.poll_once(adapter, search).new == 35


def test_wrong_token_is_an_actionable_auth_error(sessions: sessionmaker[Session], clock: FakeClock,
                                                 emulator: XApiEmulator) -> None:
    adapter = adapter_for(emulator, clock, bearer_token="expired-token-123")
    with pytest.raises(AuthFailed) as info:
        make_poller(sessions, Stub(), clock=clock).poll_once(adapter, adapter.sources()[0])
    message = str(info.value)
    assert "bearer_token" in message and "expired-token-123" not in message


def test_hostile_posts_never_crash_the_poll(sessions: sessionmaker[Session], clock: FakeClock,
                                            emulator: XApiEmulator, caplog: pytest.LogCaptureFixture) -> None:
    texts = ["acme <script>alert(1)</script>", "acme " + "x" * 9_990, "acme \u202eevil\u202c 😡", "acme nul\x00here"]
    for text in texts:
        emulator.add_tweet(CUSTOMER, text)
    adapter = adapter_for(emulator, clock)
    result = make_poller(sessions, Stub(), clock=clock).poll_once(adapter, adapter.sources()[0])
    assert result.new == 4
    with sessions() as session:
        stored = set(session.scalars(select(Mention.text)))
    assert texts[0] in stored and texts[1] in stored and texts[2] in stored
    assert "acme nul\ufffdhere" in stored
    assert any("NUL character(s) replaced" in r.getMessage() for r in caplog.records)  # the logged reason


def real_x(emulator: XApiEmulator, on: bool) -> None:
    """Switch on what real X does and a plain emulator does not: search finds posts 20 s late, the same
    text twice from one account is a 403 duplicate, lengths are counted by twitter-text."""
    if on:
        emulator.search_delay_s = 20
        emulator.refuse_duplicates()
        emulator.weighted_length_check = True


def poll_the_complaint(sessions: sessionmaker[Session], clock: FakeClock, emulator: XApiEmulator,
                       adapter: XPlatform) -> str:
    post_id = emulator.add_tweet(CUSTOMER, "acme my router is dead, please help")
    clock.advance(seconds=21)  # search has indexed it
    make_poller(sessions, Stub(), clock=clock).poll_once(adapter, adapter.sources()[0])
    with sessions.begin() as session:
        mention = session.scalars(select(Mention).where(Mention.external_id == post_id)).one()
        session.add(Reply(mention_id=mention.id, platform="x", text="Sorry Kim, a new router is on its way.",
                          idempotency_key="k1"))
    return post_id


class Crash(BaseException):
    pass


class CrashAfterPost:
    """The adapter, but the worker dies right after X accepted the reply; `misses` find_reply calls
    find nothing (as a search that has not indexed the reply yet would)."""

    def __init__(self, inner: XPlatform, misses: int = 0, crash: bool = True) -> None:
        self.inner, self.misses, self.crash = inner, misses, crash

    def post_reply(self, mention: Any, text: str) -> str:
        posted = self.inner.post_reply(mention, text)
        if self.crash:
            raise Crash
        return posted

    def find_reply(self, mention: Any, text: str) -> str | None:
        if self.misses > 0:
            self.misses -= 1
            return None
        return self.inner.find_reply(mention, text)


def assert_one_reply(emulator: XApiEmulator, post_id: str, outcome: Any) -> None:
    assert outcome.state == ReplyState.SENT.value and outcome.recovered
    posted = emulator.store.tweet(int(post_id))
    assert posted is not None and posted.reply_count == 1
    reply = emulator.store.tweet(int(outcome.platform_reply_id or 0))
    assert reply is not None and reply.in_reply_to_tweet_id == int(post_id)
    assert reply.author.username == "acme_help"


@pytest.mark.parametrize("real", [False, True], ids=["plain", "search-delay+duplicates"])
def test_replies_reach_the_emulator_exactly_once_across_a_crash(sessions: sessionmaker[Session], clock: FakeClock,
                                                                emulator: XApiEmulator, real: bool) -> None:
    real_x(emulator, real)
    adapter = adapter_for(emulator, clock)
    post_id = poll_the_complaint(sessions, clock, emulator, adapter)
    with pytest.raises(Crash):
        Dispatcher(sessions, {"x": CrashAfterPost(adapter)}, clock=clock).dispatch_due()
    clock.advance(minutes=5)
    [outcome] = Dispatcher(sessions, {"x": adapter}, clock=clock).dispatch_due()
    assert_one_reply(emulator, post_id, outcome)


def test_a_crash_whose_reply_is_not_found_at_first_ends_in_one_reply(
    sessions: sessionmaker[Session], clock: FakeClock, emulator: XApiEmulator
) -> None:
    """The recovery's first look finds nothing, so it posts again: X refuses the copy as a duplicate,
    the dispatcher looks again (Duplicate -> find_reply) and settles the reply as sent, once."""
    real_x(emulator, True)
    adapter = adapter_for(emulator, clock)
    post_id = poll_the_complaint(sessions, clock, emulator, adapter)
    with pytest.raises(Crash):
        Dispatcher(sessions, {"x": CrashAfterPost(adapter)}, clock=clock).dispatch_due()
    clock.advance(minutes=5)
    platforms = {"x": CrashAfterPost(adapter, misses=1, crash=False)}
    outcomes = Dispatcher(sessions, platforms, clock=clock).dispatch_due()
    for _ in range(5):  # a "look again later" outcome is retried after its backoff
        if outcomes and outcomes[-1].state == ReplyState.SENT.value:
            break
        clock.advance(minutes=10)
        outcomes = Dispatcher(sessions, platforms, clock=clock).dispatch_due()
    assert_one_reply(emulator, post_id, outcomes[-1])
    posts = [path for method, path, _ in emulator.log if method == "POST" and path == "/2/tweets"]
    assert len(posts) == 2  # the second one was refused as a duplicate


def test_a_backlog_beyond_one_polls_page_cap_is_drained_without_a_gap(
    sessions: sessionmaker[Session], clock: FakeClock, emulator: XApiEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(XPlatform, "MAX_PAGES", 3)
    ids = [emulator.add_tweet(CUSTOMER, f"acme outage report {n}") for n in range(75)]
    clock.advance(seconds=31)  # past the search settle window: the drained cursor is a plain since_id
    adapter = adapter_for(emulator, clock, page_size=10)  # 30 posts per poll
    search = adapter.sources()[0]
    poller = make_poller(sessions, Stub(), clock=clock)
    first = poller.poll_once(adapter, search)
    assert first.new == 30 and (cursor_of(sessions, search.name) or "").startswith("{")
    late = emulator.add_tweet(CUSTOMER, "acme arrived while we were draining")
    assert poller.poll_once(adapter, search).new == 30
    assert poller.poll_once(adapter, search).new == 15  # the rest of the backlog; drained
    assert cursor_of(sessions, search.name) == ids[-1]
    assert poller.poll_once(adapter, search).new == 1  # then everything newer, from the old top
    assert sorted(stored_ids(sessions), key=int) == [*ids, late]


def test_a_refused_stale_cursor_is_replaced_so_the_next_poll_is_valid(
    sessions: sessionmaker[Session], clock: FakeClock, emulator: XApiEmulator
) -> None:
    """X refuses a since_id older than its 7-day search window. The poll that meets the refusal reads
    the window without it and stores a cursor X takes, also when the window holds no post (the
    poller keeps the old cursor when a fetch returns none): one 400, never one per poll."""
    statuses: list[tuple[str, int, dict[str, list[str]]]] = []
    decorate = emulator.decorate_response

    def record(request: Request, response: Response) -> Response:
        statuses.append((request.path, response.status, request.query))
        return decorate(request, response)

    emulator.decorate_response = record  # type: ignore[method-assign]
    adapter = adapter_for(emulator, clock)
    search = adapter.sources()[0]
    poller = make_poller(sessions, Stub(), clock=clock)
    old = emulator.add_tweet(CUSTOMER, "acme old complaint")
    clock.advance(seconds=31)
    poller.poll_once(adapter, search)
    assert cursor_of(sessions, search.name) == old
    clock.advance(days=8)  # a week without a matching post: the stored since_id is now out of the window
    first = poller.poll_once(adapter, search)
    stored = cursor_of(sessions, search.name)
    assert first.new == 0 and first.error is None
    assert stored is not None and stored != old and int(stored) > int(old)
    fresh = emulator.add_tweet(CUSTOMER, "acme new complaint")
    clock.advance(seconds=60)
    second = poller.poll_once(adapter, search)
    assert second.new == 1 and second.error is None
    searches = [(status, query) for path, status, query in statuses if path.endswith("/search/recent")]
    assert [status for status, _ in searches].count(400) == 1
    last_status, last_query = searches[-1]
    assert last_status == 200 and last_query["since_id"] == [stored]
    clock.advance(seconds=60)
    assert poller.poll_once(adapter, search).new == 0
    assert [status for status, _ in searches].count(400) == 1
    assert sorted(stored_ids(sessions), key=int) == [old, fresh]


def test_an_answer_posted_outside_openear_closes_the_complaint(
    sessions: sessionmaker[Session], clock: FakeClock, emulator: XApiEmulator
) -> None:
    """The shipped query style excludes `-from:` the brand, and the brand's answer names only the
    customer: the own source (the account's timeline) brings it, and the intake closes the item."""
    adapter = XPlatform([XBrand("Acme", ["acme -is:retweet -from:acme -from:acme_help"], ["acme_help"])],
                        **emulator.credentials.as_dict(), base_url=emulator.url, clock=clock, timeout=2)
    search, mentions, own = adapter.sources()
    assert own.kind == "own"
    poller = make_poller(sessions, Stub(), clock=clock)
    complaint = emulator.add_tweet(CUSTOMER, "acme my router is broken, nobody helps")
    clock.advance(seconds=31)
    assert poller.poll_once(adapter, search).queued == 1
    clock.advance(minutes=5)
    answer = emulator.add_tweet("acme_help", f"@{CUSTOMER} Sorry! We have sent you a DM", in_reply_to=complaint)
    clock.advance(seconds=31)
    for source in (search, mentions):
        assert poller.poll_once(adapter, source).new == 0  # neither search nor mentions see the answer
    result = poller.poll_once(adapter, own)
    assert result.new == 1 and result.own == 1 and result.closed_by_own_reply == 1
    with sessions() as session:
        stored = session.scalars(select(Mention).where(Mention.external_id == answer)).one()
        assert stored.is_own and stored.in_reply_to_id == complaint
        item = session.scalars(select(QueueItem)).one()
        assert item.state == "answered"
