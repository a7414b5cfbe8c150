"""FacebookPlatform against the Graph API emulator: the adapter contract plus Facebook specifics."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import requests
from adapter_contract import AdapterContract, assert_adapter_error, assert_domain_types
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from listener.platforms.base import AuthFailed, ContentRejected, RateLimited, Source, TargetGone, Transient
from listener.platforms.facebook import FacebookPage, FacebookPlatform, from_config
from listener.platforms.http import RewritingAdapter
from models.config_loader import parse_config
from models.orm import Mention, QueueItem
from sandbox.graph_api import GraphApiEmulator
from tests.support import make_poller

CUSTOMER = "Hannah <Hostile> Huber"
DAY = 86400.0


@pytest.fixture
def emulator(clock: Any) -> Iterator[GraphApiEmulator]:
    with GraphApiEmulator(seed=11, clock=clock.timestamp, page_posts=0) as server:
        yield server


def make_adapter(emulator: GraphApiEmulator, clock: Any, token: str | None = None,
                 **overrides: Any) -> FacebookPlatform:
    page = FacebookPage("acme", emulator.page_id, emulator.page_token() if token is None else token)
    return FacebookPlatform([page], base_url=emulator.url, clock=clock, timeout=0.5, **overrides)


class TestFacebookContract(AdapterContract):
    @pytest.fixture
    def adapter(self, emulator: GraphApiEmulator, clock: Any) -> FacebookPlatform:
        return make_adapter(emulator, clock)

    @pytest.fixture
    def bad_auth_adapter(self, emulator: GraphApiEmulator, clock: Any) -> FacebookPlatform:
        return make_adapter(emulator, clock, token="revoked-page-token")

    @pytest.fixture
    def secrets(self, emulator: GraphApiEmulator) -> list[str]:
        return [emulator.page_token(), "revoked-page-token"]

    @pytest.fixture
    def source(self, adapter: FacebookPlatform) -> Source:
        return adapter.sources()[0]

    @pytest.fixture
    def add_post(self, emulator: GraphApiEmulator, clock: Any) -> Any:
        post = emulator.add_post(None, "Our new plans are live!", created=clock.timestamp() - 3 * DAY)
        return lambda text: emulator.add_comment(post, CUSTOMER, text)

    @pytest.fixture
    def inject_fault(self, emulator: GraphApiEmulator) -> Any:
        return lambda spec, after=0: emulator.faults.inject(spec, after=after)

    @pytest.fixture
    def now(self, clock: Any) -> Any:
        return clock


# -- helpers -------------------------------------------------------------------------------------

def ids(result: Any) -> list[str]:
    return [m.external_id for m in result.mentions]


def old_post(emulator: GraphApiEmulator, clock: Any, days: float, text: str = "Acme news") -> str:
    return emulator.add_post(None, text, created=clock.timestamp() - days * DAY)


# -- Facebook specifics ----------------------------------------------------------------------------

def test_sources_one_per_page_and_brand(emulator: GraphApiEmulator, clock: Any) -> None:
    pages = [FacebookPage("acme", "1", "t1"), FacebookPage("acme", "2", "t2"), FacebookPage("other", "3", "t3")]
    adapter = FacebookPlatform(pages, base_url=emulator.url, clock=clock)
    assert [(s.name, s.kind, s.target, s.brand) for s in adapter.sources()] == [
        ("facebook:acme:page:1", "page", "1", "acme"), ("facebook:acme:page:2", "page", "2", "acme"),
        ("facebook:other:page:3", "page", "3", "other")]


def test_mapping_of_posts_comments_and_replies(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    post = old_post(emulator, clock, 2, "Neuer Tarif!")
    comment = emulator.add_comment(post, CUSTOMER, "Zu teuer 😡")
    clock.advance(seconds=30)
    answer = emulator.add_comment(post, emulator.page_id, "Schreib uns gern!", parent=comment)
    back = emulator.add_comment(post, CUSTOMER, "Hab ich schon", parent=answer)
    result = adapter.fetch(adapter.sources()[0], None)
    assert_domain_types(result)
    own_post, first, own_reply, reply = result.mentions
    assert own_post.external_id == post and own_post.is_own and own_post.in_reply_to_id is None
    assert own_post.author.display_name == "Acme Mobile" and own_post.conversation_id == post
    assert first.external_id == comment and not first.is_own and first.text == "Zu teuer 😡"
    assert first.conversation_id == post and first.in_reply_to_id == post and first.language is None
    assert first.author.display_name == CUSTOMER and first.author.external_id.isdigit()
    assert first.author.profile_url == f"https://www.facebook.com/{first.author.external_id}"
    assert first.permalink and first.permalink.endswith(f"comment_id={comment.split('_')[1]}")
    assert first.created_at == clock() - timedelta(seconds=30)
    assert own_reply.external_id == answer and own_reply.is_own and own_reply.in_reply_to_id == comment
    assert reply.external_id == back and reply.in_reply_to_id == comment  # threads are two levels deep
    assert reply.raw["comment"]["parent"]["id"] == comment and reply.raw["post_id"] == post


def test_late_comment_on_a_13_day_old_post(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    post = old_post(emulator, clock, 13)
    emulator.add_comment(post, CUSTOMER, "first")
    cursor = adapter.fetch(source, None).next_cursor
    clock.advance(hours=5)
    late = emulator.add_comment(post, "Jonas Late", "still broken, two weeks later")
    assert ids(adapter.fetch(source, cursor)) == [late]


def test_poll_with_nothing_new_reads_no_comment_pages(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    emulator.store.seed_page_posts(6, days=12)
    emulator.grow(300)
    first = adapter.fetch(source, None)
    assert len(first.mentions) > 300 and emulator.requests_to("/comments") > 0
    comments, lists = emulator.requests_to("/comments"), len(emulator.log)
    again = adapter.fetch(source, first.next_cursor)
    assert again.mentions == [] and again.next_cursor == first.next_cursor
    assert emulator.requests_to("/comments") == comments and len(emulator.log) - lists == 2  # feed + tagged
    clock.advance(minutes=2)
    new = emulator.add_comment(old_post(emulator, clock, 10), CUSTOMER, "one more")
    assert ids(adapter.fetch(source, again.next_cursor))[-1] == new
    assert emulator.requests_to("/comments") == comments + 1


def test_same_second_comments_neither_missed_nor_repeated(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    post = old_post(emulator, clock, 1)
    first = emulator.add_comment(post, CUSTOMER, "a")
    result = adapter.fetch(source, None)
    second = emulator.add_comment(post, CUSTOMER, "b")  # same second as `first` and as updated_time
    result = adapter.fetch(source, result.next_cursor)
    assert ids(result) == [second] and first != second
    assert adapter.fetch(source, result.next_cursor).mentions == []


def test_comments_arriving_while_paging_come_with_the_next_poll(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock, page_size=20)
    source = adapter.sources()[0]
    busy, other = old_post(emulator, clock, 3), old_post(emulator, clock, 9)
    cursor = adapter.fetch(source, None).next_cursor
    clock.advance(minutes=1)
    wanted = [emulator.add_comment(busy, CUSTOMER, f"comment {i}") for i in range(70)]
    late: list[str] = []

    def hook(request: Any) -> None:
        if request.path.endswith("/comments") and request.arg("after") and not late:
            clock.advance(seconds=1)
            late.extend([emulator.add_comment(busy, "Late Larry", "me too"),
                         emulator.add_comment(other, "Late Larry", "and here")])

    emulator.add_hook(hook)
    result = adapter.fetch(source, cursor)
    assert ids(result) == wanted and late
    following = adapter.fetch(source, result.next_cursor)
    assert sorted(ids(following)) == sorted(late)
    assert adapter.fetch(source, following.next_cursor).mentions == []


def test_visitor_and_tagged_posts_and_their_comments(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    cursor = adapter.fetch(source, None).next_cursor
    visitor = emulator.add_post(CUSTOMER, "Acme, my SIM card never arrived")
    tagged = emulator.add_post("Tina Tagger", "Thanks @Acme Mobile for nothing", kind="tagged")
    clock.advance(seconds=5)
    comment = emulator.add_comment(tagged, "Someone Else", "same here")
    result = adapter.fetch(source, cursor)
    assert ids(result) == [visitor, tagged, comment]
    by_id = {m.external_id: m for m in result.mentions}
    assert not by_id[visitor].is_own and by_id[visitor].raw["edge"] == "feed"
    assert by_id[tagged].permalink == f"https://www.facebook.com/{by_id[tagged].author.external_id}/posts/" \
        + tagged.split("_")[1]
    assert by_id[comment].conversation_id == tagged
    assert emulator.requests_to("/tagged") == 2


def test_page_comments_are_own(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    post = emulator.add_post(CUSTOMER, "help please")
    answer = emulator.add_comment(post, "Acme Mobile", "We are on it")
    own = {m.external_id: m.is_own for m in adapter.fetch(adapter.sources()[0], None).mentions}
    assert own == {post: False, answer: True}


def test_look_back_limits_and_drops_old_posts(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock, lookback_days=14)
    source = adapter.sources()[0]
    too_old = old_post(emulator, clock, 15)
    emulator.add_comment(too_old, CUSTOMER, "old news")
    aging = old_post(emulator, clock, 13.5)
    result = adapter.fetch(source, None)
    assert ids(result) == [aging]
    assert set(json.loads(result.next_cursor or "")["p"]) == {aging}
    clock.advance(days=1)
    emulator.add_comment(aging, CUSTOMER, "too late to be heard")
    later = adapter.fetch(source, result.next_cursor)
    assert later.mentions == [] and json.loads(later.next_cursor or "")["p"] == {}


def test_restart_from_the_stored_cursor_string(emulator: GraphApiEmulator, clock: Any) -> None:
    source = make_adapter(emulator, clock).sources()[0]
    emulator.store.seed_page_posts(5, days=10)
    emulator.grow(120)
    stored = make_adapter(emulator, clock).fetch(source, None).next_cursor
    assert isinstance(stored, str) and len(stored) < 5000
    clock.advance(minutes=3)
    fresh = emulator.grow(40, spread=False)
    result = make_adapter(emulator, clock).fetch(source, stored)  # a new process
    assert sorted(ids(result)) == sorted(fresh)
    assert make_adapter(emulator, clock).fetch(source, result.next_cursor).mentions == []


def test_unreadable_cursor_starts_over(emulator: GraphApiEmulator, clock: Any,
                                       caplog: pytest.LogCaptureFixture) -> None:
    adapter = make_adapter(emulator, clock)
    post = emulator.add_post(CUSTOMER, "hello")
    with caplog.at_level(logging.WARNING, logger="listener.platforms.facebook"):
        assert ids(adapter.fetch(adapter.sources()[0], "not json")) == [post]
    assert "unreadable cursor" in caplog.text


# -- errors ------------------------------------------------------------------------------------------

def test_expired_token_names_the_page_and_the_config_key(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    emulator.expire_token()
    with pytest.raises(AuthFailed) as info:
        adapter.fetch(adapter.sources()[0], None)
    message = str(info.value)
    assert emulator.page_id in message and "platforms.facebook.page_tokens" in message and "expired" in message
    assert "OPENEAR_FB_PAGE_TOKEN" in message
    assert_adapter_error(info.value, [emulator.page_token()])


def test_missing_token_is_auth_failed(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock, token="")
    with pytest.raises(AuthFailed, match=r"page_tokens\[\"100000000000001\"\]"):
        adapter.fetch(adapter.sources()[0], None)


@pytest.mark.parametrize(("permission", "code"), [("pages_read_engagement", 10), ("pages_manage_engagement", 200)])
def test_missing_permission_is_auth_failed(emulator: GraphApiEmulator, clock: Any, permission: str,
                                           code: int) -> None:
    adapter = make_adapter(emulator, clock)
    emulator.add_post(CUSTOMER, "hi")
    (mention,) = adapter.fetch(adapter.sources()[0], None).mentions
    emulator.revoke(permission)
    with pytest.raises(AuthFailed) as info:
        adapter.post_reply(mention, "hello") if code == 200 else adapter.fetch(adapter.sources()[0], None)
    assert f"code {code}" in str(info.value) and permission in str(info.value)
    assert "pages_read_user_content" in str(info.value)
    assert_adapter_error(info.value, [emulator.page_token()])


@pytest.mark.parametrize("code", [4, 17, 32, 613])
def test_rate_limit_codes_with_regain_estimate(emulator: GraphApiEmulator, clock: Any, code: int) -> None:
    adapter = make_adapter(emulator, clock)
    emulator.throttle(code, minutes=7)
    with pytest.raises(RateLimited) as info:
        adapter.fetch(adapter.sources()[0], None)
    assert info.value.retry_at == clock() + timedelta(minutes=7) and f"code {code}" in str(info.value)
    clock.advance(minutes=7)
    adapter.fetch(adapter.sources()[0], None)


def test_rate_limit_windows_and_the_fallback(clock: Any) -> None:
    with GraphApiEmulator(clock=clock.timestamp, page_posts=0, limits={"page": 3}) as emulator:
        adapter = make_adapter(emulator, clock)
        adapter.fetch(adapter.sources()[0], None)  # the token check (/me) + feed + tagged
        with pytest.raises(RateLimited) as info:
            adapter.fetch(adapter.sources()[0], None)
        assert info.value.retry_at == clock() + timedelta(minutes=60)
        clock.advance(minutes=60)
        adapter.fetch(adapter.sources()[0], None)
    with GraphApiEmulator(clock=clock.timestamp, page_posts=0, limits={"app": 1}) as emulator:
        adapter = make_adapter(emulator, clock)
        with pytest.raises(RateLimited) as info:  # app limit: no estimate in the headers
            adapter.fetch(adapter.sources()[0], None)
        assert info.value.retry_at == clock() + FacebookPlatform.RATE_LIMIT_FALLBACK


def test_deleted_targets_are_gone(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    post = emulator.add_post(CUSTOMER, "hi")
    comment = emulator.add_comment(post, CUSTOMER, "hello?")
    _, mention = adapter.fetch(adapter.sources()[0], None).mentions
    emulator.delete(comment)
    with pytest.raises(TargetGone):
        adapter.post_reply(mention, "answer")
    emulator.delete(post)
    with pytest.raises(TargetGone):
        adapter.find_reply(mention, "answer")


def test_unreachable_api_is_transient(clock: Any) -> None:
    emulator = GraphApiEmulator(clock=clock.timestamp, page_posts=0).start()
    adapter = make_adapter(emulator, clock)
    emulator.stop()
    with pytest.raises(Transient) as info:
        adapter.fetch(adapter.sources()[0], None)
    assert_adapter_error(info.value, [emulator.page_token()])


def test_comment_page_failure_keeps_nothing(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock, page_size=10)
    post = old_post(emulator, clock, 2)
    wanted = [post, *(emulator.add_comment(post, CUSTOMER, f"c{i}") for i in range(25))]
    emulator.faults.inject("truncated_json", path_prefix=f"/v25.0/{post}/comments", after=1)
    with pytest.raises(Transient):
        adapter.fetch(adapter.sources()[0], None)
    assert sorted(ids(adapter.fetch(adapter.sources()[0], None))) == sorted(wanted)


# -- replies -----------------------------------------------------------------------------------------

def test_replies_to_posts_and_to_replies(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    visitor = emulator.add_post(CUSTOMER, "where is my order")
    top = emulator.add_comment(visitor, "Other Person", "same")
    nested = emulator.add_comment(visitor, CUSTOMER, "still nothing", parent=top)
    first = adapter.fetch(source, None)
    post_m, _, nested_m = first.mentions
    assert nested_m.external_id == nested
    on_post = adapter.post_reply(post_m, "Sorry! Please check your inbox.")
    on_nested = adapter.post_reply(nested_m, "We are on it & will report back <3")
    post_m, nested_m = replace(post_m, raw={}), replace(nested_m, raw={})  # as the dispatcher rebuilds them
    assert adapter.find_reply(post_m, "Sorry! Please check your inbox.") == on_post
    assert adapter.find_reply(nested_m, "We are on it & will report back <3") == on_nested
    naive = replace(nested_m, created_at=nested_m.created_at.replace(tzinfo=None))  # SQLite gives naive UTC
    assert adapter.find_reply(naive, " We are on it & will report back <3\n") == on_nested
    assert adapter.find_reply(nested_m, "Sorry! Please check your inbox.") is None
    replies = {m.external_id: m for m in adapter.fetch(source, first.next_cursor).mentions}
    assert replies[on_post].in_reply_to_id == visitor and replies[on_post].is_own
    assert replies[on_nested].in_reply_to_id == top and replies[on_nested].is_own


def test_reply_limits(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    emulator.add_post(CUSTOMER, "hi")
    (mention,) = adapter.fetch(adapter.sources()[0], None).mentions
    with pytest.raises(ContentRejected, match="8000"):
        adapter.post_reply(mention, "x" * 8001)
    assert adapter.post_reply(mention, "x" * 8000)
    with pytest.raises(ValueError, match="no configured Facebook page"):
        adapter.post_reply(replace(mention, source="facebook:acme:page:999", raw={}), "hi")


# -- plumbing ---------------------------------------------------------------------------------------

def test_version_and_injected_sessions(emulator: GraphApiEmulator, clock: Any) -> None:
    sessions: list[requests.Session] = []

    def factory() -> requests.Session:
        sessions.append(requests.Session())
        return sessions[-1]

    adapter = make_adapter(emulator, clock, api_version="26.0", session_factory=factory)
    adapter.fetch(adapter.sources()[0], None)
    assert adapter.api_version == "v26.0" and emulator.log[-1][1].startswith("/v26.0/")
    assert len(sessions) == 1
    assert isinstance(sessions[0].get_adapter("https://graph.facebook.com/v26.0/me"), RewritingAdapter)
    with pytest.raises(ValueError, match="api_version"):
        make_adapter(emulator, clock, api_version="latest")


def test_from_config(emulator: GraphApiEmulator, clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_FB_TOKEN", emulator.page_token())
    config = parse_config(f"""\
brands:
  - name: Acme
    accounts:
      facebook: ["{emulator.page_id}", "555"]
platforms:
  facebook:
    base_url: {emulator.url}
    lookback_days: 3
    page_tokens:
      "{emulator.page_id}": ${{T_FB_TOKEN}}
web:
  secret_key: "0123456789abcdef0123"
""")
    adapter = from_config(config, clock=clock)
    assert adapter.platform == "facebook" and adapter.lookback == timedelta(days=3)
    first, second = adapter.sources()
    post = emulator.add_post(CUSTOMER, "hello from config")
    assert ids(adapter.fetch(first, None)) == [post]
    with pytest.raises(AuthFailed, match="555"):
        adapter.fetch(second, None)
    with pytest.raises(AuthFailed, match=r'page_tokens\["555"\]') as info:  # the other page passes
        adapter.preflight()
    assert emulator.page_id not in str(info.value).replace('page_tokens["555"]', "")


# -- through the poller into both databases ---------------------------------------------------------

class _Sentiment:
    label, negative, neutral, positive, complaint = "negative", 0.7, 0.2, 0.1, 0.8


class _Classifier:
    def classify(self, texts: list[str]) -> list[_Sentiment]:
        return [_Sentiment() for _ in texts]


def test_2000_comments_through_the_poller(emulator: GraphApiEmulator, clock: Any,
                                          sessions: sessionmaker[Session]) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    poller = make_poller(sessions, _Classifier(), clock=clock)
    posts = [old_post(emulator, clock, 13 - i * 0.3, f"post {i}") for i in range(40)]
    expected = set(posts)
    for round_ in range(4):
        clock.advance(minutes=2)
        for i in range(500):
            post = posts[(i * 7 + round_) % len(posts)]
            author = CUSTOMER if i % 3 else f"Person {i % 50}"
            thread = emulator.store.posts[post].comments
            if i % 5 == 4 and thread:
                expected.add(emulator.add_comment(post, author, f"reply {round_}/{i}", parent=thread[-1].id))
            else:
                expected.add(emulator.add_comment(post, author, f"comment {round_}/{i}"))
            if i % 100 == 99:
                clock.advance(seconds=1)
        result = poller.poll_once(adapter, source)
        assert result.duplicates == 0
    assert poller.poll_once(adapter, source).new == 0
    with sessions() as session:
        stored = session.scalars(select(Mention.external_id).where(Mention.platform == "facebook")).all()
        queued = session.scalar(select(func.count()).select_from(QueueItem))
    assert len(stored) == len(set(stored)) == len(expected) == 2040 and set(stored) == expected
    # one item per customer conversation: a post's thread with one person (here 51 people on 40
    # posts); the page's own posts are history, not queue items
    conversations = {(post, c.author.id) for post in posts for c in emulator.store.posts[post].comments
                     if not c.author.is_page}
    assert 40 < len(conversations) < 2000 and queued == len(conversations)


def test_a_comment_backlog_beyond_the_page_cap_is_drained_without_a_gap(
        emulator: GraphApiEmulator, clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FacebookPlatform, "MAX_PAGES", 3)
    adapter = make_adapter(emulator, clock, page_size=10)  # 30 comments per listing
    source = adapter.sources()[0]
    post = old_post(emulator, clock, 2)

    def comments(n: int, text: str) -> list[str]:
        made = []
        for i in range(n):
            made.append(emulator.add_comment(post, CUSTOMER, f"{text} {i}"))
            if i % 4 == 3:
                clock.advance(seconds=1)  # four per second: page and cut boundaries fall inside a second
        return made

    early = comments(75, "outage")
    first = adapter.fetch(source, None)
    assert ids(first) == [post, *early[45:]]
    later = comments(35, "still down")  # the first of them in the second of the newest comment read
    second = adapter.fetch(source, first.next_cursor)  # on down the first backlog; a second one opens
    # 30 read below the cut, of which the 3 already read in its second (early 45-47) are skipped
    assert sorted(ids(second)) == sorted(early[18:45] + later[5:])
    assert len(json.loads(second.next_cursor or "")["p"][post][4]) == 2
    third = adapter.fetch(source, second.next_cursor)
    assert sorted(ids(third)) == sorted(early[:18] + later[:5])
    assert len(json.loads(third.next_cursor or "")["p"][post]) == 4  # no gap left
    assert adapter.fetch(source, third.next_cursor).mentions == []
    read = ids(first) + ids(second) + ids(third)
    assert len(read) == len(set(read)) == 111
