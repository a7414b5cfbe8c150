"""What X API v2 really answers, through the unmodified tweepy inside XPlatform.

Two halves: the emulator with each real-X behaviour switched on (duplicates, weighted length,
search indexing delay, usage caps, 24-hour posting limits, long posts, retweets, edits, read
budgets, preflight), and recorded or documented X answers (fixtures/x/, sources in its README)
replayed over real HTTP. Expected values come from the fixtures, X's documentation and
twitter-text's conformance suite, never from the code under test.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from listener.platforms.base import (
    AuthFailed,
    ContentRejected,
    Duplicate,
    PlatformError,
    RateLimited,
    Source,
    TargetGone,
    Transient,
)
from listener.platforms.x import XBrand, XCursor, XPlatform, from_config
from models.config import BrandAccounts, BrandConfig, Config, PlatformsConfig, ReadBudget, WebConfig, XConfig
from models.domain import AuthorData, MentionData
from models.orm import Mention
from sandbox.httpserver import EmulatorServer, Request, Response
from sandbox.x_api import XApiEmulator
from tests.support import FakeClock, make_poller

FIXTURES = Path(__file__).parent / "fixtures" / "x"
CUSTOMER = "kim_customer"
SEARCH = "/2/tweets/search/recent"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # the FakeClock's start


@pytest.fixture
def emulator(clock: FakeClock) -> Iterator[XApiEmulator]:
    with XApiEmulator(seed=5, clock=clock.timestamp) as server:
        server.add_user(CUSTOMER, "Kim", followers=50)
        yield server


def make_adapter(emulator: XApiEmulator, clock: FakeClock, brands: list[XBrand] | None = None,
                 creds: dict[str, str] | None = None, **options: Any) -> XPlatform:
    credentials = {**emulator.credentials.as_dict(), **(creds or {})}
    brands = brands or [XBrand("acme", ["acme"], ["acme_help"])]
    return XPlatform(brands, **credentials, base_url=emulator.url, clock=clock, timeout=2, **options)


def search_of(adapter: XPlatform) -> Source:
    return next(s for s in adapter.sources() if s.kind == "search")


def mentions_of(adapter: XPlatform) -> Source:
    return next(s for s in adapter.sources() if s.kind == "mentions")


def target(post_id: str, revision: str | None = None) -> MentionData:
    """A stored mention as the dispatcher rebuilds it: what post_reply and find_reply need."""
    return MentionData(platform="x", external_id=post_id, text="", created_at=T0, author=AuthorData("x", "1"),
                       brand="acme", source="x:acme:search:0", revision=revision)


def support_id(emulator: XApiEmulator) -> int:
    user = emulator.store.user_by_username("acme_help")
    assert user is not None
    return user.id


def requests_to(emulator: XApiEmulator, path: str, method: str = "GET") -> list[dict[str, list[str]]]:
    return [query for m, p, query in emulator.log if p == path and m == method]


# -- posting: duplicates, weighted length, 24-hour limits ------------------------------------------

def test_the_same_text_twice_is_a_duplicate_until_the_window_ends(emulator: XApiEmulator, clock: FakeClock) -> None:
    emulator.refuse_duplicates(window_s=3600)
    adapter = make_adapter(emulator, clock)
    first, second = emulator.add_tweet(CUSTOMER, "acme one"), emulator.add_tweet(CUSTOMER, "acme two")
    adapter.post_reply(target(first), "Thanks, we are on it")
    with pytest.raises(Duplicate) as info:
        adapter.post_reply(target(second), "Thanks, we are on it")
    assert "find_reply" in str(info.value) and "word the reply differently" in str(info.value)
    adapter.post_reply(target(second), "Thanks, we are on it!")  # other words: fine
    clock.advance(hours=2)
    adapter.post_reply(target(second), "Thanks, we are on it")


CONFORMANCE = json.loads((FIXTURES / "twitter_text_conformance.json").read_text())["cases"]


@pytest.mark.parametrize("case", CONFORMANCE, ids=[c["description"][:40] for c in CONFORMANCE])
def test_replies_are_measured_as_x_counts_them(emulator: XApiEmulator, clock: FakeClock, case: dict[str, Any]) -> None:
    """twitter-text's own conformance cases: what is valid reaches X (a long link is no reason to refuse
    locally), what is not is refused before any request with X's count in the message."""
    emulator.weighted_length_check = True
    adapter = make_adapter(emulator, clock)
    post = emulator.add_tweet(CUSTOMER, "acme help")
    if case["valid"]:
        reply_id = adapter.post_reply(target(post), case["text"])
        assert emulator.store.tweet(int(reply_id)) is not None
    else:
        with pytest.raises(ContentRejected, match=str(case["weightedLength"])):
            adapter.post_reply(target(post), case["text"])
        assert requests_to(emulator, "/2/tweets", "POST") == []


def test_a_reply_with_a_long_link_is_sent(emulator: XApiEmulator, clock: FakeClock) -> None:
    emulator.weighted_length_check = True
    adapter = make_adapter(emulator, clock)
    post = emulator.add_tweet(CUSTOMER, "acme where is my invoice?")
    text = "Here it is: https://billing.example.com/invoices/" + "a" * 300  # 312 characters, 12 + 23 by X's count
    assert len(text) > 280
    reply_id = adapter.post_reply(target(post), text)
    assert emulator.store.tweet(int(reply_id)) is not None


def test_the_24_hour_posting_limit_waits_for_its_own_reset(emulator: XApiEmulator, clock: FakeClock) -> None:
    emulator.set_daily_post_limits(user=2, app=1667)
    adapter = make_adapter(emulator, clock)
    post = emulator.add_tweet(CUSTOMER, "acme help")
    adapter.post_reply(target(post), "one")
    clock.advance(minutes=20)  # a new 15-minute window: only the 24-hour limit is spent
    adapter.post_reply(target(post), "two")
    with pytest.raises(RateLimited) as info:
        adapter.post_reply(target(post), "three")
    assert info.value.scope == "24-hour posting limit (user)"
    assert info.value.retry_at == T0 + timedelta(hours=24)  # 24 hours after the first post of the window


# -- reading: the search indexing delay -------------------------------------------------------------

def test_a_post_search_indexes_late_is_not_lost(emulator: XApiEmulator, clock: FakeClock) -> None:
    emulator.search_delay_s = 20
    adapter = make_adapter(emulator, clock)
    naive = make_adapter(emulator, clock, settle=timedelta(0))  # stores newest_id as it comes
    late = emulator.add_tweet(CUSTOMER, "acme slow to index", index_delay_s=28)
    clock.advance(seconds=1)
    quick = emulator.add_tweet(CUSTOMER, "acme quick to index")
    clock.advance(seconds=21)  # `quick` is searchable, `late` (older, lower id) is not yet
    first, naive_first = adapter.fetch(search_of(adapter), None), naive.fetch(search_of(naive), None)
    assert [m.external_id for m in first.mentions] == [quick] == [m.external_id for m in naive_first.mentions]
    clock.advance(seconds=10)  # now `late` is searchable too
    second = adapter.fetch(search_of(adapter), first.next_cursor)
    assert [m.external_id for m in second.mentions] == [late]
    assert naive.fetch(search_of(naive), naive_first.next_cursor).mentions == []  # what settling prevents
    assert adapter.fetch(search_of(adapter), second.next_cursor).mentions == []


def test_young_posts_are_read_again_but_returned_once(emulator: XApiEmulator, clock: FakeClock) -> None:
    adapter = make_adapter(emulator, clock)
    ids = [emulator.add_tweet(CUSTOMER, f"acme issue {i}") for i in range(3)]
    first = adapter.fetch(search_of(adapter), None)
    assert [m.external_id for m in first.mentions] == ids
    assert XCursor.parse(first.next_cursor).recent == tuple(ids)
    again = adapter.fetch(search_of(adapter), first.next_cursor)
    assert again.mentions == [] and again.next_cursor == first.next_cursor
    clock.advance(seconds=31)
    settled = adapter.fetch(search_of(adapter), again.next_cursor)
    assert settled.mentions == [] and settled.next_cursor == ids[-1]  # a plain since_id again
    read = emulator.posts_read
    assert adapter.fetch(search_of(adapter), settled.next_cursor).mentions == [] and emulator.posts_read == read


def test_find_reply_reads_the_brand_timeline_not_search(emulator: XApiEmulator, clock: FakeClock) -> None:
    emulator.search_delay_s = 3600  # search would not see the reply for an hour
    adapter = make_adapter(emulator, clock)
    post = emulator.add_tweet(CUSTOMER, "acme my router is dead")
    text = "Sorry & thanks <3, a new router is on its way: https://acme.example/track?id=1"
    reply_id = adapter.post_reply(target(post), text)
    searches = len(requests_to(emulator, SEARCH))
    assert adapter.find_reply(target(post), text) == reply_id
    assert len(requests_to(emulator, SEARCH)) == searches
    timeline = requests_to(emulator, f"/2/users/{support_id(emulator)}/tweets")
    assert timeline and timeline[-1]["since_id"] == [post]
    assert adapter.find_reply(target(post), text + " (other words)") is None


# -- usage caps and rate limits while reading --------------------------------------------------------

def test_a_monthly_usage_cap_waits_for_the_next_month(emulator: XApiEmulator, clock: FakeClock) -> None:
    emulator.set_usage_cap(0, period="Monthly", scope="Product")
    adapter = make_adapter(emulator, clock)
    with pytest.raises(RateLimited) as info:
        adapter.fetch(search_of(adapter), None)
    assert info.value.retry_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert info.value.scope == "monthly usage cap (product)" and "platforms.x.read_budget" in str(info.value)


def test_a_daily_usage_cap_mid_poll_keeps_what_was_read(emulator: XApiEmulator, clock: FakeClock) -> None:
    ids = [emulator.add_tweet(CUSTOMER, f"acme outage {i}") for i in range(250)]
    clock.advance(seconds=31)
    emulator.set_usage_cap(150, period="Daily", scope="Account")
    adapter = make_adapter(emulator, clock)
    first = adapter.fetch(search_of(adapter), None)  # pages of 100: the third finds the cap spent
    assert [m.external_id for m in first.mentions] == ids[-200:]
    assert first.interrupted is not None and first.interrupted.scope == "daily usage cap (account)"
    assert first.interrupted.retry_at == datetime(2026, 11, 21, tzinfo=UTC)
    clock.now_value = datetime(2026, 11, 21, 0, 0, 1, tzinfo=UTC)
    rest = adapter.fetch(search_of(adapter), first.next_cursor)
    assert [m.external_id for m in rest.mentions] == ids[:50] and rest.interrupted is None


def test_a_429_mid_poll_returns_the_pages_read_and_a_cursor_for_the_rest(emulator: XApiEmulator,
                                                                        clock: FakeClock) -> None:
    ids = [emulator.add_tweet(CUSTOMER, f"acme down {i}") for i in range(250)]
    clock.advance(seconds=31)
    adapter = make_adapter(emulator, clock)
    emulator.faults.inject("rate_limit_burst:1", path_prefix=SEARCH, after=1)
    first = adapter.fetch(search_of(adapter), None)
    assert [m.external_id for m in first.mentions] == ids[-100:]
    assert first.interrupted is not None and first.interrupted.scope == "15-minute window"
    assert first.interrupted.retry_at == T0 + timedelta(seconds=31 + 900)
    assert XCursor.parse(first.next_cursor).until == ids[-100]
    rest = adapter.fetch(search_of(adapter), first.next_cursor)
    assert [m.external_id for m in rest.mentions] == ids[:150]


# -- read budgets ------------------------------------------------------------------------------------

def test_the_per_poll_budget_drains_a_backlog_over_several_polls(emulator: XApiEmulator, clock: FakeClock) -> None:
    ids = [emulator.add_tweet(CUSTOMER, f"acme report {i}") for i in range(75)]
    clock.advance(seconds=31)
    adapter = make_adapter(emulator, clock, read_per_poll=30, page_size=10)
    got: list[str] = []
    cursor = None
    for expected in (30, 30, 15, 0):
        before = emulator.posts_read
        result = adapter.fetch(search_of(adapter), cursor)
        assert len(result.mentions) == expected and result.interrupted is None
        assert emulator.posts_read - before == expected
        got += [m.external_id for m in result.mentions]
        cursor = result.next_cursor
    assert sorted(got, key=int) == ids and cursor == ids[-1]


def test_the_day_budget_stops_until_midnight_and_survives_a_restart(emulator: XApiEmulator, clock: FakeClock) -> None:
    ids = [emulator.add_tweet(CUSTOMER, f"acme complaint {i}") for i in range(250)]
    clock.advance(seconds=31)
    adapter = make_adapter(emulator, clock, read_per_day=100, page_size=50)
    first = adapter.fetch(search_of(adapter), None)
    assert len(first.mentions) == 100 and first.interrupted is not None
    stop = first.interrupted
    assert stop.scope == "read budget per day" and stop.retry_at == datetime(2026, 11, 21, tzinfo=UTC)
    assert "platforms.x.read_budget.per_day" in str(stop)
    stored = json.loads(first.next_cursor or "")
    assert (stored["day"], stored["read"]) == ("2026-11-20", 100)
    restarted = make_adapter(emulator, clock, read_per_day=100, page_size=50)
    searches = len(requests_to(emulator, SEARCH))
    again = restarted.fetch(search_of(restarted), first.next_cursor)
    assert again.mentions == [] and again.interrupted is not None and again.next_cursor == first.next_cursor
    assert len(requests_to(emulator, SEARCH)) == searches  # nothing more was read (or billed) today
    got = [m.external_id for m in first.mentions]
    cursor = first.next_cursor
    for day in (21, 22):
        clock.now_value = datetime(2026, 11, day, 0, 0, 5, tzinfo=UTC)
        result = restarted.fetch(search_of(restarted), cursor)
        got += [m.external_id for m in result.mentions]
        cursor = result.next_cursor
    assert sorted(got, key=int) == ids and len(set(got)) == 250


def test_old_cursor_forms_read_and_write_back_unchanged() -> None:
    for stored in ("1861", '{"since": "100", "until": "250", "newest": "900"}',
                   '{"since": null, "until": "250", "newest": "900"}'):
        assert XCursor.parse(stored).dump() == stored
    full = XCursor("100", "250", "900", ("950", "960"), "2026-11-20", 300)
    assert XCursor.parse(full.dump()) == full
    assert XCursor.parse('{"since": "100", "read": "many"}') == XCursor()


def test_from_config_wires_the_read_budget() -> None:
    config = Config(brands=[BrandConfig(name="Acme", accounts=BrandAccounts(x=["acme_help"]))],
                    web=WebConfig(secret_key=SecretStr("test-secret-key-0123456789abcdef")),
                    platforms=PlatformsConfig(x=XConfig(bearer_token=SecretStr("bearer-for-tests"),
                                                        read_budget=ReadBudget(per_poll=50, per_day=200))))
    adapter = from_config(config)
    assert adapter is not None and (adapter.read_per_poll, adapter.read_per_day) == (50, 200)


# -- what a post is: long posts, retweets, edits -----------------------------------------------------

def test_a_long_post_is_stored_whole(emulator: XApiEmulator, clock: FakeClock) -> None:
    emulator.long_posts = True
    adapter = make_adapter(emulator, clock)
    text = "acme " + " ".join(f"word{i}" for i in range(120))  # about 800 characters
    post = emulator.add_tweet(CUSTOMER, text)
    clock.advance(seconds=31)
    (mention,) = adapter.fetch(search_of(adapter), None).mentions
    assert mention.external_id == post and mention.text == text
    shown = mention.raw["tweet"]["text"]
    assert shown.endswith("\u2026") and len(shown) <= 280 and mention.raw["tweet"]["note_tweet"]["text"] == text


def test_retweets_are_skipped_on_both_kinds_of_source(emulator: XApiEmulator, clock: FakeClock) -> None:
    emulator.truncated_retweets = True
    adapter = make_adapter(emulator, clock, brands=[XBrand("acme", ["@acme_help"], ["acme_help"])])
    original = emulator.add_tweet("loud_larry", "@acme_help " + "my bill doubled again and nobody answers " * 5)
    retweet = emulator.retweet(CUSTOMER, original)
    shared = emulator.store.tweet(int(retweet))
    assert shared is not None and shared.text.startswith("RT @loud_larry: @acme_help") and len(shared.text) == 140
    clock.advance(seconds=31)
    read = emulator.posts_read
    assert [m.external_id for m in adapter.fetch(mentions_of(adapter), None).mentions] == [original]
    assert emulator.posts_read - read == 1  # exclude=retweets: X does not even send (or bill) it
    assert requests_to(emulator, f"/2/users/{support_id(emulator)}/mentions")[-1]["exclude"] == ["retweets"]
    assert [m.external_id for m in adapter.fetch(search_of(adapter), None).mentions] == [original]


def test_mentions_without_exclude_support_still_skip_retweets(emulator: XApiEmulator, clock: FakeClock,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    emulator.mentions_exclude = False  # as X's OpenAPI spec has the mentions timeline
    adapter = make_adapter(emulator, clock)
    original = emulator.add_tweet("loud_larry", "@acme_help where is my refund")
    emulator.retweet(CUSTOMER, original)
    with caplog.at_level(logging.WARNING, logger="listener.platforms.x"):
        first = adapter.fetch(mentions_of(adapter), None)
    assert [m.external_id for m in first.mentions] == [original] and "exclude=retweets" in caplog.text
    adapter.fetch(mentions_of(adapter), first.next_cursor)
    assert "exclude" not in requests_to(emulator, f"/2/users/{support_id(emulator)}/mentions")[-1]


def test_an_edit_is_reported_under_the_original_id(emulator: XApiEmulator, clock: FakeClock) -> None:
    adapter = make_adapter(emulator, clock)
    post = emulator.add_tweet(CUSTOMER, "acme my order is late")
    clock.advance(seconds=31)
    first = adapter.fetch(search_of(adapter), None)
    assert [(m.external_id, m.revision, m.edited_at) for m in first.mentions] == [(post, None, None)]
    clock.advance(minutes=5)
    edit = emulator.edit_tweet(post, "acme my order is two weeks late")
    clock.advance(seconds=31)
    (mention,) = adapter.fetch(search_of(adapter), first.next_cursor).mentions
    assert (mention.external_id, mention.revision, mention.text) == (post, edit, "acme my order is two weeks late")
    assert mention.created_at == T0 and mention.edited_at == T0 + timedelta(seconds=31, minutes=5)


def test_both_versions_in_one_read_give_one_mention(emulator: XApiEmulator, clock: FakeClock) -> None:
    emulator.list_superseded_versions = True
    adapter = make_adapter(emulator, clock)
    post = emulator.add_tweet(CUSTOMER, "acme the app crashes")
    clock.advance(minutes=1)
    edit = emulator.edit_tweet(post, "acme the app crashes on login")
    clock.advance(seconds=31)
    result = adapter.fetch(search_of(adapter), None)
    assert [(m.external_id, m.revision) for m in result.mentions] == [(post, edit)]


def test_an_edit_updates_the_stored_mention_and_is_answered_in_its_newest_version(
    sessions: sessionmaker[Session], emulator: XApiEmulator, clock: FakeClock
) -> None:
    from tests.listener.test_x_poll import Stub

    adapter = make_adapter(emulator, clock)
    poller = make_poller(sessions, Stub(), clock=clock)
    post = emulator.add_tweet(CUSTOMER, "acme no signal")
    clock.advance(seconds=31)
    assert poller.poll_once(adapter, search_of(adapter)).new == 1
    edit = emulator.edit_tweet(post, "acme no signal since Monday")
    clock.advance(seconds=31)
    assert poller.poll_once(adapter, search_of(adapter)).new == 0
    with sessions() as session:
        (row,) = session.scalars(select(Mention)).all()
        assert (row.external_id, row.revision_id, row.text) == (post, edit, "acme no signal since Monday")
    reply_id = adapter.post_reply(target(post, revision=edit), "Sorry, we are on it")
    reply = emulator.store.tweet(int(reply_id))
    assert reply is not None and reply.in_reply_to_tweet_id == int(edit)
    assert adapter.find_reply(target(post, revision=edit), "Sorry, we are on it") == reply_id


# -- preflight ---------------------------------------------------------------------------------------

def test_preflight_accepts_the_brands_support_account(emulator: XApiEmulator, clock: FakeClock) -> None:
    adapter = make_adapter(emulator, clock, brands=[XBrand("acme", [], ["acme", "acme_help"])])
    adapter.preflight()
    assert len(requests_to(emulator, "/2/users/by")) == 1 and len(requests_to(emulator, "/2/users/me")) == 1
    adapter.fetch(mentions_of(adapter), None)
    assert requests_to(emulator, "/2/users/by/username/acme_help") == []  # ids came from preflight


def test_preflight_refuses_a_token_of_another_account(emulator: XApiEmulator, clock: FakeClock) -> None:
    adapter = make_adapter(emulator, clock, brands=[XBrand("acme", ["acme"], ["acme"])])
    with pytest.raises(AuthFailed, match=r"platforms\.x\.access_token belongs to @acme_help"):
        adapter.preflight()


def test_preflight_with_a_bearer_token_only(emulator: XApiEmulator, clock: FakeClock) -> None:
    no_user = {"consumer_key": "", "consumer_secret": "", "access_token": "", "access_token_secret": ""}
    make_adapter(emulator, clock, creds=no_user).preflight()
    assert len(requests_to(emulator, "/2/users/by")) == 1 and requests_to(emulator, "/2/users/me") == []
    make_adapter(emulator, clock, brands=[XBrand("acme", ["acme"], [])], creds=no_user).preflight()
    assert len(emulator.log) == 1  # no account to look up: nothing asked
    with pytest.raises(AuthFailed, match=r"platforms\.x\.consumer_key"):
        make_adapter(emulator, clock, creds={**no_user, "access_token": "100002-token"}).preflight()
    with pytest.raises(AuthFailed, match="bearer_token"):
        make_adapter(emulator, clock, creds={"bearer_token": "revoked"}).preflight()


def test_preflight_when_x_cannot_be_asked(clock: FakeClock) -> None:
    emulator = XApiEmulator(clock=clock.timestamp).start()
    url = emulator.url
    emulator.stop()
    adapter = XPlatform([XBrand("acme", [], ["acme_help"])], bearer_token="t", base_url=url, clock=clock, timeout=0.5)
    with pytest.raises(Transient):
        adapter.preflight()


# -- recorded and documented X answers, replayed over HTTP --------------------------------------------

class Replay(EmulatorServer):
    """Answers each request with the next queued fixture, whatever the path; records what was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[dict[str, Any]] = []
        self.asked: list[tuple[str, str]] = []
        self.queries: list[dict[str, list[str]]] = []
        for method in ("GET", "POST"):
            self.route(method, r"/.*", self._answer_next)

    def queue(self, *names: str) -> Replay:
        self.answers += [json.loads((FIXTURES / name).read_text()) for name in names]
        return self

    def _answer_next(self, request: Request) -> Response:
        self.asked.append((request.method, request.path))
        self.queries.append(request.query)
        fixture = self.answers.pop(0)
        headers = {k: v for k, v in fixture["headers"].items() if k.lower() != "content-type"}
        return Response.json(fixture["body"], fixture["status"], headers)


@pytest.fixture
def replay() -> Iterator[Replay]:
    with Replay() as server:
        yield server


def replay_adapter(replay: Replay, clock: FakeClock) -> XPlatform:
    return XPlatform([XBrand("acme", ["acme"], ["acme_help"])], bearer_token="bearer", consumer_key="ck",
                     consumer_secret="cs", access_token="1-at", access_token_secret="ats", base_url=replay.url,
                     clock=clock, timeout=2, settle=timedelta(0))


@pytest.mark.parametrize(("fixture", "error", "words"), [
    ("post_duplicate_403.json", Duplicate, "already posted the same text"),
    ("post_too_long_403.json", ContentRejected, "shorten the reply"),
    ("post_reply_deleted_403.json", TargetGone, "deleted or not visible"),
    ("oauth1_permissions_403.json", AuthFailed, "'Read and write'"),
    ("client_not_enrolled_403.json", AuthFailed, "attached to a Project"),
])
def test_recorded_403s_are_told_apart(replay: Replay, clock: FakeClock, fixture: str, error: type[PlatformError],
                                      words: str) -> None:
    replay.queue(fixture)
    with pytest.raises(error) as info:
        replay_adapter(replay, clock).post_reply(target("1578516068309794817"), "Thanks!")
    assert type(info.value) is error and words in str(info.value)
    assert replay.asked == [("POST", "/2/tweets")]


def test_a_recorded_403_on_search_is_an_auth_problem(replay: Replay, clock: FakeClock) -> None:
    adapter = replay_adapter(replay.queue("client_not_enrolled_403.json"), clock)
    with pytest.raises(AuthFailed, match=r"platforms\.x\.bearer_token"):
        adapter.fetch(search_of(adapter), None)


@pytest.mark.parametrize(("fixture", "retry_at", "scope"), [
    ("usage_cap_monthly_429.json", datetime(2026, 12, 1, tzinfo=UTC), "monthly usage cap (product)"),
    ("usage_cap_daily_429.json", datetime(2026, 11, 21, tzinfo=UTC), "daily usage cap (account)"),
])
def test_recorded_usage_caps_wait_for_their_period(replay: Replay, clock: FakeClock, fixture: str,
                                                   retry_at: datetime, scope: str) -> None:
    adapter = replay_adapter(replay.queue(fixture), clock)
    with pytest.raises(RateLimited) as info:
        adapter.fetch(search_of(adapter), None)
    assert (info.value.retry_at, info.value.scope) == (retry_at, scope)


def test_a_spent_24_hour_limit_waits_for_its_reset(replay: Replay, clock: FakeClock) -> None:
    adapter = replay_adapter(replay.queue("post_24h_limit_429.json"), clock)
    with pytest.raises(RateLimited) as info:
        adapter.post_reply(target("1578516068309794817"), "Thanks!")
    # x-user-limit-24hour-reset: 1795230000 (the 15-minute window still has 96 requests)
    assert info.value.retry_at == datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    assert info.value.scope == "24-hour posting limit (user)"


def test_a_recorded_page_with_an_edit_and_a_retweet(replay: Replay, clock: FakeClock) -> None:
    adapter = replay_adapter(replay.queue("search_edit_and_retweet.json"), clock)
    result = adapter.fetch(search_of(adapter), None)
    assert [(m.external_id, m.revision) for m in result.mentions] == [
        ("1577158996984987648", "1577162244978139137"), ("1578516068309794817", None)]  # the retweet is skipped
    edited = result.mentions[0]
    assert edited.text == "I hope I\u2019m not mistaken. Fixed it. https://t.co/6o0rdokH3t"
    assert edited.created_at == datetime(2022, 10, 4, 4, 49, 41, 735000, tzinfo=UTC)  # from the original's id
    assert edited.edited_at == datetime(2022, 10, 4, 5, 2, 36, 117000, tzinfo=UTC)
    assert edited.author.handle == "Twitter" and result.next_cursor == "1578516068309794817"


def test_both_recorded_versions_of_an_edit_give_one_mention(replay: Replay, clock: FakeClock) -> None:
    adapter = replay_adapter(replay.queue("search_edit_chain_both_versions.json"), clock)
    (mention,) = adapter.fetch(search_of(adapter), None).mentions
    assert (mention.external_id, mention.revision) == ("1577158996984987648", "1577162244978139137")
    assert mention.text.endswith("Fixed it. https://t.co/6o0rdokH3t")


def test_a_documented_note_tweet_is_read_whole(replay: Replay, clock: FakeClock) -> None:
    page = json.loads((FIXTURES / "search_note_tweet.json").read_text())["body"]["data"][0]
    adapter = replay_adapter(replay.queue("search_note_tweet.json"), clock)
    (mention,) = adapter.fetch(search_of(adapter), None).mentions
    assert mention.text == page["note_tweet"]["text"] and len(mention.text) > 280
    assert replay.asked == [("GET", SEARCH)]
    assert "note_tweet" in replay.queries[0]["tweet.fields"][0].split(",")  # X sends it only when asked
