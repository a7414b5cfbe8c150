"""InstagramPlatform against the Graph API emulator, through the unmodified facebook-sdk over HTTP:
the adapter contract plus Instagram specifics (late comments, paging, replies, hidden comments,
tags, vanished media, rate limits, tokens, reply exactly once across crashes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from adapter_contract import AdapterContract, assert_adapter_error, assert_domain_types
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from listener.platforms import SPECS
from listener.platforms.base import AuthFailed, ContentRejected, RateLimited, Source, Transient
from listener.platforms.instagram import InstagramAccount, InstagramCursor, InstagramPlatform, from_config
from models.config_loader import parse_config
from models.orm import Mention, QueueItem
from sandbox.graph_api import GraphApiEmulator
from tests.support import make_poller

DAY = 86400.0
CUSTOMER = "jana_becker"


@pytest.fixture
def emulator(clock: Any) -> Iterator[GraphApiEmulator]:
    with GraphApiEmulator(seed=5, clock=clock.timestamp, page_posts=0, ig_media=0) as server:
        yield server


def make_adapter(emulator: GraphApiEmulator, clock: Any, token: str | None = None,
                 **overrides: Any) -> InstagramPlatform:
    account = InstagramAccount("acme", emulator.ig_user_id, emulator.page_token() if token is None else token)
    return InstagramPlatform([account], base_url=emulator.url, clock=clock, timeout=0.5, **overrides)


def media(emulator: GraphApiEmulator, clock: Any, days: float, caption: str = "Neue Tarife sind da!") -> str:
    return emulator.add_ig_media(caption, created=clock.timestamp() - days * DAY)


def ids(result: Any) -> list[str]:
    return [m.external_id for m in result.mentions]


class TestInstagramContract(AdapterContract):
    @pytest.fixture
    def adapter(self, emulator: GraphApiEmulator, clock: Any) -> InstagramPlatform:
        return make_adapter(emulator, clock)

    @pytest.fixture
    def bad_auth_adapter(self, emulator: GraphApiEmulator, clock: Any) -> InstagramPlatform:
        return make_adapter(emulator, clock, token="revoked-page-token")

    @pytest.fixture
    def secrets(self, emulator: GraphApiEmulator) -> list[str]:
        return [emulator.page_token(), "revoked-page-token"]

    @pytest.fixture
    def source(self, adapter: InstagramPlatform) -> Source:
        return adapter.sources()[0]

    @pytest.fixture
    def add_post(self, emulator: GraphApiEmulator, clock: Any) -> Any:
        target = media(emulator, clock, 3, "Our new plans are live!")
        return lambda text: emulator.add_ig_comment(target, CUSTOMER, text)

    @pytest.fixture
    def inject_fault(self, emulator: GraphApiEmulator) -> Any:
        return lambda spec, after=0: emulator.faults.inject(spec, after=after)

    @pytest.fixture
    def now(self, clock: Any) -> Any:
        return clock


# -- mapping and reading --------------------------------------------------------------------------

def test_media_comments_and_replies_map_to_mentions(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    post = media(emulator, clock, 2)
    comment = emulator.add_ig_comment(post, CUSTOMER, "Zu teuer 😡 @acme_mobile")
    clock.advance(seconds=30)
    answer = emulator.add_ig_comment(post, emulator.ig_username, "@jana_becker Schreib uns gern!", parent=comment)
    back = emulator.add_ig_comment(post, CUSTOMER, "Hab ich schon", parent=answer)  # lands on the top level
    result = adapter.fetch(adapter.sources()[0], None)
    assert_domain_types(result)
    own, first, own_reply, reply = result.mentions
    assert own.external_id == post and own.is_own and own.conversation_id == post and own.in_reply_to_id is None
    assert own.author.external_id == emulator.ig_user_id and own.author.handle == emulator.ig_username
    assert own.permalink and own.permalink.startswith("https://www.instagram.com/p/")
    assert first.external_id == comment and not first.is_own and first.text == "Zu teuer 😡 @acme_mobile"
    assert first.conversation_id == post and first.in_reply_to_id == post
    assert first.author.handle == CUSTOMER and first.author.external_id.isdigit()
    assert first.author.profile_url == f"https://www.instagram.com/{CUSTOMER}/"
    assert first.permalink == f"{own.permalink.rstrip('/')}/c/{comment}/"
    assert first.created_at == clock() - timedelta(seconds=30)
    assert own_reply.external_id == answer and own_reply.is_own and own_reply.in_reply_to_id == comment
    assert reply.external_id == back and reply.in_reply_to_id == comment  # one level deep
    assert reply.raw["media_id"] == post and reply.raw["comment"]["parent_id"] == comment


def test_late_comment_on_a_13_day_old_media_is_found(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    old = media(emulator, clock, 13)
    emulator.add_ig_comment(old, CUSTOMER, "first")
    for day in range(1, 8):
        media(emulator, clock, 13 - day, f"post {day}")
    cursor = adapter.fetch(source, None).next_cursor
    clock.advance(hours=1)
    late = emulator.add_ig_comment(old, "kunde_42", "Immer noch kein Netz?")
    late_reply = emulator.add_ig_comment(old, "kunde_43", "Bei mir auch", parent=late)
    result = adapter.fetch(source, cursor)
    assert ids(result) == [late, late_reply]
    assert adapter.fetch(source, result.next_cursor).mentions == []


def test_unchanged_media_are_not_read_again_until_the_sweep(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    for day in range(5):
        emulator.add_ig_comment(media(emulator, clock, day + 1), CUSTOMER, f"comment {day}")
    cursor = adapter.fetch(source, None).next_cursor
    before = emulator.requests_to("/comments")
    clock.advance(minutes=5)
    assert adapter.fetch(source, cursor).mentions == []
    assert emulator.requests_to("/comments") == before  # counts unchanged: no comment page read
    clock.advance(hours=7)  # past the sweep: every media is read once more, nothing comes twice
    assert adapter.fetch(source, cursor).mentions == []
    assert emulator.requests_to("/comments") == before + 5


def test_a_deleted_and_a_new_comment_with_an_unchanged_count_come_with_the_sweep(
        emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    post = media(emulator, clock, 1)
    doomed = emulator.add_ig_comment(post, CUSTOMER, "old")
    cursor = adapter.fetch(source, None).next_cursor
    clock.advance(minutes=3)
    emulator.delete(doomed)
    fresh = emulator.add_ig_comment(post, CUSTOMER, "new, same count")
    assert adapter.fetch(source, cursor).mentions == []  # the count did not move
    clock.advance(hours=7)
    assert ids(adapter.fetch(source, cursor)) == [fresh]


def test_same_second_comments_are_neither_missed_nor_repeated(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    post = media(emulator, clock, 1)
    a = emulator.add_ig_comment(post, CUSTOMER, "a")
    first = adapter.fetch(source, None)
    b = emulator.add_ig_comment(post, "kunde_2", "b")  # the same second as `a`
    second = adapter.fetch(source, first.next_cursor)
    assert ids(first)[-1] == a and ids(second) == [b]
    assert adapter.fetch(source, second.next_cursor).mentions == []


def test_many_comments_and_long_reply_threads_span_pages(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    post = media(emulator, clock, 1)
    cursor = adapter.fetch(source, None).next_cursor
    expected = []
    for i in range(120):
        expected.append(emulator.add_ig_comment(post, f"person_{i % 9}", f"comment {i}"))
        if i in (3, 77):
            expected += [emulator.add_ig_comment(post, f"person_{j % 5}", f"reply {i}/{j}", parent=expected[-1])
                         for j in range(60)]
    result = adapter.fetch(source, cursor)
    assert sorted(ids(result)) == sorted(expected) and len(expected) == 240
    assert emulator.requests_to("/replies") >= 2  # the second page of each long thread
    assert adapter.fetch(source, result.next_cursor).mentions == []


def test_media_leave_the_cursor_after_the_look_back(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock, lookback_days=14)
    source = adapter.sources()[0]
    old = media(emulator, clock, 13.9)
    emulator.add_ig_comment(old, CUSTOMER, "hi")
    media(emulator, clock, 20, "too old")
    result = adapter.fetch(source, None)
    assert ids(result)[0] == old and len(result.mentions) == 2
    assert set(InstagramCursor.parse(result.next_cursor).media) == {old}
    clock.advance(days=1)
    emulator.add_ig_comment(old, CUSTOMER, "after the window")
    later = adapter.fetch(source, result.next_cursor)
    assert later.mentions == [] and InstagramCursor.parse(later.next_cursor).media == {}


def test_tagging_media_come_once_and_cannot_be_answered(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    tagged = emulator.add_ig_media("Mein neues Handy von @acme_mobile 📱", created=clock.timestamp() - 3600,
                                   owner="lena.k", tagged=True)
    result = adapter.fetch(source, None)
    (mention,) = result.mentions
    assert mention.external_id == tagged and not mention.is_own and mention.conversation_id == tagged
    assert mention.author.handle == "lena.k" and mention.author.external_id == "username:lena.k"
    assert adapter.fetch(source, result.next_cursor).mentions == []
    posts_before = len([r for r in emulator.log if r[0] == "POST"])
    with pytest.raises(ContentRejected, match="tagged"):
        adapter.post_reply(mention, "Danke!")
    assert len([r for r in emulator.log if r[0] == "POST"]) == posts_before
    refusal = SPECS["instagram"].reply_refusal(mention.external_id, mention.conversation_id, mention.is_own,
                                                 mention.source)
    assert refusal is not None and "tagged" in refusal


def test_hidden_comments_come_as_hidden_and_are_not_answered(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    post = media(emulator, clock, 1)
    spam = emulator.add_ig_comment(post, "spam_bot", "cheap followers here")
    emulator.hide_ig_comment(spam)
    (_, mention) = adapter.fetch(source, None).mentions
    assert mention.external_id == spam and mention.hidden
    with pytest.raises(ContentRejected, match="hidden"):
        adapter.post_reply(mention, "Hello")
    assert emulator.requests_to("/replies", method="POST") == 0


def test_a_media_vanishing_mid_poll_is_skipped_and_the_others_are_read(
        emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    keep, doomed = media(emulator, clock, 2, "keep"), media(emulator, clock, 1, "doomed")
    emulator.add_ig_comment(keep, CUSTOMER, "one")
    emulator.add_ig_comment(doomed, CUSTOMER, "two")
    cursor = adapter.fetch(source, None).next_cursor
    clock.advance(minutes=2)
    new_keep = emulator.add_ig_comment(keep, CUSTOMER, "three")
    emulator.add_ig_comment(doomed, CUSTOMER, "four")
    emulator.vanish_after_listing(doomed)
    result = adapter.fetch(source, cursor)
    assert ids(result) == [new_keep] and result.interrupted is None
    assert set(InstagramCursor.parse(result.next_cursor).media) == {keep}


# -- rate limits and tokens --------------------------------------------------------------------

def test_the_business_use_case_limit_says_when_access_comes_back(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    emulator.add_ig_comment(media(emulator, clock, 1), CUSTOMER, "hi")
    adapter.preflight()
    emulator.throttle(80002, minutes=42)
    with pytest.raises(RateLimited) as info:
        adapter.fetch(source, None)
    assert info.value.retry_at >= clock() + timedelta(minutes=41)
    assert "80002" in info.value.scope and "Instagram" in str(info.value)


def test_a_rate_limit_after_one_media_keeps_what_was_read(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    first, second = media(emulator, clock, 2, "first"), media(emulator, clock, 1, "second")
    a = emulator.add_ig_comment(first, CUSTOMER, "a")
    b = emulator.add_ig_comment(second, CUSTOMER, "b")
    adapter.preflight()
    emulator.faults.inject("rate_limit_burst:1", after=2)  # media list, newest media's comments, then this
    partial = adapter.fetch(source, None)
    assert partial.interrupted is not None and partial.interrupted.retry_at > clock()
    assert ids(partial) == [second, b]
    rest = adapter.fetch(source, partial.next_cursor)
    assert ids(rest) == [first, a] and rest.interrupted is None


def test_an_expired_token_names_the_account_and_the_config_key(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    emulator.expire_token()
    with pytest.raises(AuthFailed) as info:
        adapter.fetch(adapter.sources()[0], None)
    message = str(info.value)
    assert emulator.ig_user_id in message and "platforms.instagram.account_tokens" in message
    assert "expired" in message and "OPENEAR_IG_PAGE_TOKEN" in message
    assert_adapter_error(info.value, [emulator.page_token()])


def test_a_token_of_a_page_without_this_account_is_refused(emulator: GraphApiEmulator, clock: Any) -> None:
    other = emulator.add_page("100000000000777", "Another Page")
    adapter = make_adapter(emulator, clock, token=other)
    with pytest.raises(AuthFailed, match="connected") as info:
        adapter.preflight()
    assert_adapter_error(info.value, [other])


def test_a_missing_write_permission_is_auth_failed(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    emulator.add_ig_comment(media(emulator, clock, 1), CUSTOMER, "hi")
    mention = adapter.fetch(source, None).mentions[-1]
    emulator.revoke("instagram_manage_comments")
    with pytest.raises(AuthFailed, match="instagram_manage_comments"):
        adapter.post_reply(mention, "Hello")


def test_missing_token_is_auth_failed_without_a_request(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock, token="")
    before = len(emulator.log)
    with pytest.raises(AuthFailed, match="account_tokens"):
        adapter.fetch(adapter.sources()[0], None)
    assert len(emulator.log) == before


def test_server_trouble_while_listing_is_transient(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    adapter.preflight()
    emulator.faults.inject("malformed_json")
    with pytest.raises(Transient):
        adapter.fetch(adapter.sources()[0], None)


# -- replies ---------------------------------------------------------------------------------------

def test_a_reply_to_a_reply_goes_under_its_top_level_comment(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    post = media(emulator, clock, 1)
    top = emulator.add_ig_comment(post, "kunde_1", "Wann kommt 5G?")
    follow = emulator.add_ig_comment(post, CUSTOMER, "Frage ich mich auch", parent=top)
    first = adapter.fetch(source, None)
    mention = next(m for m in first.mentions if m.external_id == follow)
    reply_id = adapter.post_reply(mention, "@jana_becker Im Frühjahr!")
    (reply,) = adapter.fetch(source, first.next_cursor).mentions
    assert reply.external_id == reply_id and reply.is_own and reply.in_reply_to_id == top
    assert adapter.find_reply(mention, "@jana_becker Im Frühjahr!") == reply_id
    assert SPECS["instagram"].thread_rule  # the composer tells the agent


def test_reply_length_is_checked_before_any_request(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    emulator.add_ig_comment(media(emulator, clock, 1), CUSTOMER, "hi")
    mention = adapter.fetch(adapter.sources()[0], None).mentions[-1]
    with pytest.raises(ContentRejected, match="2200"):
        adapter.post_reply(mention, "x" * 2201)
    assert emulator.requests_to("/replies", method="POST") == 0
    assert adapter.post_reply(mention, "x" * 2200)


def test_from_config_and_config_check(emulator: GraphApiEmulator, clock: Any,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from openear.commands.config_cmd import config_warnings

    monkeypatch.setenv("IG_TOKEN", emulator.page_token())
    config = parse_config(f"""
brands:
  - name: acme
    accounts: {{instagram: ["{emulator.ig_user_id}", "17841400000000999"]}}
platforms:
  instagram: {{base_url: "{emulator.url}", account_tokens: {{"{emulator.ig_user_id}": "${{IG_TOKEN}}"}}}}
web: {{secret_key: "test-secret-key-0123456789"}}
""")
    adapter = from_config(config, clock=clock)
    assert adapter is not None
    assert [s.name for s in adapter.sources()] == [f"instagram:acme:account:{emulator.ig_user_id}",
                                                   "instagram:acme:account:17841400000000999"]
    assert emulator.page_token() not in repr(config) and emulator.page_token() not in repr(adapter.accounts)
    (warning,) = [w for w in config_warnings(config) if "Instagram" in w]
    assert "17841400000000999" in warning and emulator.ig_user_id not in warning
    with pytest.raises(Exception, match="numbers"):
        parse_config("""
platforms:
  instagram: {account_tokens: {"acme_mobile": "x"}}
web: {secret_key: "test-secret-key-0123456789"}
""")


# -- through the poller, the queue and the dispatcher, on both databases ---------------------------

class _Sentiment:
    label, negative, neutral, positive, complaint = "negative", 0.7, 0.2, 0.1, 0.8


class _Classifier:
    def classify(self, texts: list[str]) -> list[_Sentiment]:
        return [_Sentiment() for _ in texts]


class Crash(BaseException):
    """The process dying right after Instagram accepted the reply."""


def test_poll_queue_and_reply_exactly_once_across_a_crash(emulator: GraphApiEmulator, clock: Any,
                                                          sessions: sessionmaker[Session]) -> None:
    from responders import queue
    from responders.dispatch import Dispatcher
    from tests.responders.factories import make_user

    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    poller = make_poller(sessions, _Classifier(), clock=clock)
    post = media(emulator, clock, 2)
    complaint = emulator.add_ig_comment(post, CUSTOMER, "Seit drei Tagen kein Netz!")
    emulator.add_ig_comment(post, CUSTOMER, "Hallo??", parent=complaint)
    first = poller.poll_once(adapter, source)
    assert first.new == 3 and poller.poll_once(adapter, source).new == 0
    with sessions.begin() as session:
        user = make_user(session, "agent", "agent")
        (item,) = session.scalars(select(QueueItem)).all()
        mention = session.get(Mention, item.mention_id)
        assert mention is not None and mention.platform == "instagram"
        queue.claim(session, item.id, user, now=clock(), timeout_minutes=30)
        reply = queue.submit_reply(session, item.id, user, "@jana_becker Das tut uns leid, wir prüfen es.",
                                   now=clock(), timeout_minutes=30)
        reply_id = reply.id
    real_post = adapter.post_reply

    def post_then_die(mention: Any, text: str) -> str:
        real_post(mention, text)
        raise Crash("killed after Instagram accepted the reply")

    crashing = make_adapter(emulator, clock)
    crashing.post_reply = post_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        Dispatcher(sessions, {"instagram": crashing}, clock=clock, lease=timedelta(minutes=2)).dispatch(reply_id)
    clock.advance(minutes=3)
    [outcome] = Dispatcher(sessions, {"instagram": make_adapter(emulator, clock)}, clock=clock,
                           lease=timedelta(minutes=2)).dispatch_due()
    assert outcome.state == "sent" and outcome.recovered
    assert emulator.requests_to("/replies", method="POST") == 1  # one reply on Instagram, found again
    again = poller.poll_once(adapter, source)  # our reply comes back as the brand's own answer
    assert again.new == 1
    with sessions() as session:
        own = session.scalars(select(Mention).where(Mention.is_own.is_(True), Mention.platform == "instagram",
                                                    Mention.external_id != post)).all()
        assert [m.external_id for m in own] == [outcome.platform_reply_id]
        assert session.scalar(select(func.count()).select_from(QueueItem)) == 1


def test_the_cursor_is_plain_json(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    emulator.add_ig_comment(media(emulator, clock, 1), CUSTOMER, "hi")
    cursor = adapter.fetch(adapter.sources()[0], None).next_cursor
    assert cursor is not None and json.loads(cursor)["v"] == 1
    assert InstagramCursor.parse("not json").media == {}
