"""XPlatform against the X emulator: the adapter contract plus X specifics."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from adapter_contract import AdapterContract, assert_adapter_error, assert_domain_types

from listener.platforms.base import AuthFailed, PlatformError, RateLimited, Source, TargetGone, Transient
from listener.platforms.http import RewritingAdapter
from listener.platforms.x import XBrand, XPlatform
from listener.platforms.x.reading import to_mention
from sandbox.x_api import XApiEmulator

QUERY = '(acme OR @acme OR @acme_help OR "acme mobile") -is:retweet'
SEARCH = "/2/tweets/search/recent"
CUSTOMER = "hostile_harry"


@pytest.fixture
def emulator(clock: Any) -> Iterator[XApiEmulator]:
    with XApiEmulator(seed=11, clock=clock.timestamp) as server:
        server.add_user(CUSTOMER, "Harry <Hostile> 🚀", followers=321)
        yield server


def make_adapter(emulator: XApiEmulator, clock: Any, brands: list[XBrand] | None = None,
                 **overrides: Any) -> XPlatform:
    creds = {**emulator.credentials.as_dict(), **overrides.pop("creds", {})}
    brands = brands or [XBrand("acme", [QUERY], ["acme", "acme_help"])]
    return XPlatform(brands, **creds, base_url=emulator.url, clock=clock, timeout=0.5, **overrides)


class TestXContract(AdapterContract):
    @pytest.fixture
    def adapter(self, emulator: XApiEmulator, clock: Any) -> XPlatform:
        return make_adapter(emulator, clock)

    @pytest.fixture
    def bad_auth_adapter(self, emulator: XApiEmulator, clock: Any) -> XPlatform:
        return make_adapter(emulator, clock, creds={"bearer_token": "revoked-token"})

    @pytest.fixture
    def secrets(self, emulator: XApiEmulator) -> list[str]:
        return [*emulator.credentials.as_dict().values(), "revoked-token"]

    @pytest.fixture
    def source(self, adapter: XPlatform) -> Source:
        return adapter.sources()[0]

    @pytest.fixture
    def add_post(self, emulator: XApiEmulator) -> Any:
        return lambda text: emulator.add_tweet(CUSTOMER, text)

    @pytest.fixture
    def inject_fault(self, emulator: XApiEmulator) -> Any:
        return lambda spec, after=0: emulator.faults.inject(spec, after=after)

    @pytest.fixture
    def now(self, clock: Any) -> Any:
        return clock


# -- X specifics ---------------------------------------------------------------------------------

def search_requests(emulator: XApiEmulator) -> int:
    return sum(1 for method, path, _ in emulator.log if path == SEARCH)


def test_sources_per_query_and_account(emulator: XApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock, [XBrand("acme", [QUERY, "acme lang:de"], ["acme", "@acme_help"]),
                                             XBrand("other", ["other"], [])])
    assert [(s.name, s.kind, s.target) for s in adapter.sources()] == [
        ("x:acme:search:0", "search", QUERY), ("x:acme:search:1", "search", "acme lang:de"),
        ("x:acme:mentions:acme", "mentions", "acme"), ("x:acme:own:acme", "own", "acme"),
        ("x:acme:mentions:acme_help", "mentions", "acme_help"), ("x:acme:own:acme_help", "own", "acme_help"),
        ("x:other:search:0", "search", "other")]


def test_an_account_listed_twice_gives_its_sources_once(emulator: XApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock, [XBrand("acme", [], ["acme_help", "@ACME_help", "acme_help"])])
    assert [s.name for s in adapter.sources()] == ["x:acme:mentions:acme_help", "x:acme:own:acme_help"]


def test_the_own_source_reads_every_post_of_the_brand_account(emulator: XApiEmulator, clock: Any) -> None:
    """The brand's answers start with the customer's handle and need not name the brand: search with
    `-from:` the brand never sees them, the account's own timeline does, whichever client posted them."""
    adapter = make_adapter(emulator, clock, [XBrand("acme", ["acme -from:acme -from:acme_help"], ["acme_help"])])
    own = next(s for s in adapter.sources() if s.kind == "own")
    assert (own.name, own.target) == ("x:acme:own:acme_help", "acme_help")
    complaint = emulator.add_tweet(CUSTOMER, "acme my bill is wrong")
    clock.advance(seconds=40)
    answer = emulator.add_tweet("acme_help", f"@{CUSTOMER} Sorry! Please send us a DM", in_reply_to=complaint)
    status = emulator.add_tweet("acme_help", "All systems normal again")
    emulator.retweet("acme_help", complaint)  # a share: not the brand speaking
    emulator.add_tweet("acme", "the main account is a source of its own")
    search = adapter.sources()[0]
    assert [m.external_id for m in adapter.fetch(search, None).mentions] == [complaint]
    first = adapter.fetch(own, None)
    assert_domain_types(first)
    assert [m.external_id for m in first.mentions] == [answer, status]
    reply, post = first.mentions
    assert reply.is_own and post.is_own and reply.source == own.name and reply.brand == "acme"
    assert reply.in_reply_to_id == complaint and reply.conversation_id == complaint and post.in_reply_to_id is None
    assert reply.author.handle == "acme_help" and reply.text == f"@{CUSTOMER} Sorry! Please send us a DM"
    assert first.next_cursor == status
    assert adapter.fetch(own, first.next_cursor).mentions == []
    later = emulator.add_tweet("acme_help", f"@{CUSTOMER} Fixed now", in_reply_to=complaint)
    again = adapter.fetch(own, first.next_cursor)
    assert [m.external_id for m in again.mentions] == [later] and again.next_cursor == later
    timeline = [q for _, path, q in emulator.log if path.endswith("/tweets") and path.startswith("/2/users/")]
    assert timeline and all(q.get("exclude") == ["retweets"] for q in timeline)


def test_the_own_source_is_the_brand_even_without_the_author_expansion(emulator: XApiEmulator,
                                                                       clock: Any) -> None:
    adapter = make_adapter(emulator, clock, [XBrand("acme", [], ["acme_help"])])
    own = next(s for s in adapter.sources() if s.kind == "own")
    emulator.add_tweet("acme_help", "hello")
    (post,) = adapter.fetch(own, None).mentions
    bare = to_mention(post.raw["tweet"], {}, brand="acme", accounts=["acme_help"], source=own, clock=clock,
                      own_post=True)
    assert bare.is_own and post.is_own


def test_the_own_source_drains_a_long_timeline_over_several_polls(emulator: XApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock, [XBrand("acme", [], ["acme_help"])], read_per_poll=100)
    own = next(s for s in adapter.sources() if s.kind == "own")
    ids = [emulator.add_tweet("acme_help", f"update {i}") for i in range(250)]
    got: list[str] = []
    cursor = None
    for _ in range(4):
        result = adapter.fetch(own, cursor)
        got += [m.external_id for m in result.mentions]
        cursor = result.next_cursor
    assert sorted(got, key=int) == ids and len(got) == len(set(got)) and cursor == ids[-1]


def test_5000_posts_across_60_pages_once_and_new_ones_next_time(emulator: XApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock, page_size=84, read_per_poll=30_000)  # 5000 / 84 -> 60 pages
    source = adapter.sources()[0]
    ids = [emulator.add_tweet(CUSTOMER, f"acme post {i}") for i in range(5000)]
    added_during_paging: list[str] = []

    def hook(request: Any) -> None:
        if request.path == SEARCH and request.arg("next_token") and not added_during_paging:
            added_during_paging.extend(emulator.add_tweet(CUSTOMER, f"acme late {i}") for i in range(3))

    emulator.add_hook(hook)
    before = search_requests(emulator)
    result = adapter.fetch(source, None)
    assert search_requests(emulator) - before == 60
    got = [m.external_id for m in result.mentions]
    assert got == ids and len(set(got)) == 5000
    assert result.next_cursor == ids[-1]
    later = adapter.fetch(source, result.next_cursor)
    assert [m.external_id for m in later.mentions] == added_during_paging
    assert adapter.fetch(source, later.next_cursor).mentions == []


def test_mapping_of_a_reply(emulator: XApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    root = emulator.add_tweet("acme", "Acme Mobile: new plans are live")
    clock.advance(seconds=5)
    reply = emulator.add_tweet(CUSTOMER, "@acme Tarif zu teuer!", lang="de", in_reply_to=root)
    result = adapter.fetch(adapter.sources()[0], None)
    assert_domain_types(result)
    own, mention = result.mentions
    assert own.external_id == root and own.is_own and own.author.handle == "acme"
    assert mention.external_id == reply and not mention.is_own
    assert mention.text == "@acme Tarif zu teuer!" and mention.language == "de"
    assert mention.conversation_id == root and mention.in_reply_to_id == root
    assert mention.created_at == clock() and mention.created_at.tzinfo is not None
    assert mention.permalink == f"https://x.com/{CUSTOMER}/status/{reply}"
    author = mention.author
    assert (author.handle, author.display_name, author.followers) == (CUSTOMER, "Harry <Hostile> 🚀", 321)
    assert author.profile_url == f"https://x.com/{CUSTOMER}" and author.external_id.isdigit()
    assert set(mention.raw) == {"tweet", "author"} and mention.raw["tweet"]["id"] == reply
    assert mention.raw["author"]["username"] == CUSTOMER


def test_mentions_source(emulator: XApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = next(s for s in adapter.sources() if s.name == "x:acme:mentions:acme_help")
    cursor = adapter.fetch(source, None).next_cursor
    wanted = [emulator.add_tweet(CUSTOMER, f"@acme_help hilfe {i}", lang="de") for i in range(3)]
    emulator.add_tweet(CUSTOMER, "@acme only the main account")
    result = adapter.fetch(source, cursor)
    assert [m.external_id for m in result.mentions] == wanted
    assert all(m.source == source.name for m in result.mentions)


def test_unknown_account_is_target_gone(emulator: XApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock, [XBrand("acme", [], ["ghost_account"])])
    with pytest.raises(TargetGone, match="ghost_account"):
        adapter.fetch(adapter.sources()[0], None)


def test_rate_limit_window_of_the_emulator(clock: Any) -> None:
    with XApiEmulator(clock=clock.timestamp, limits={"search": 2}) as emulator:
        adapter = make_adapter(emulator, clock)
        source = adapter.sources()[0]
        adapter.fetch(source, None)
        adapter.fetch(source, None)
        with pytest.raises(RateLimited) as info:
            adapter.fetch(source, None)
        assert info.value.retry_at == datetime.fromtimestamp(int(clock.timestamp()) + 900, UTC)
        assert "retry after" in str(info.value)
        clock.advance(seconds=900)
        assert adapter.fetch(source, None).mentions == []


def test_invalid_query_is_a_configuration_error(emulator: XApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock, [XBrand("acme", ["(acme"], [])])
    with pytest.raises(PlatformError, match="Unbalanced") as info:
        adapter.fetch(adapter.sources()[0], None)
    assert type(info.value) is PlatformError and "platforms.x" in str(info.value)


def test_cursor_older_than_search_window_reads_the_window(emulator: XApiEmulator, clock: Any,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    emulator.add_tweet(CUSTOMER, "acme old")
    clock.advance(seconds=31)  # past the settle window: the cursor is that post's id
    cursor = adapter.fetch(source, None).next_cursor
    clock.advance(days=8)
    fresh = emulator.add_tweet(CUSTOMER, "acme fresh")
    with caplog.at_level(logging.WARNING, logger="listener.platforms.x"):
        result = adapter.fetch(source, cursor)
    assert [m.external_id for m in result.mentions] == [fresh]
    assert "older than the search window" in caplog.text
    assert result.next_cursor is not None and result.next_cursor != cursor
    caplog.clear()
    clock.advance(seconds=60)
    with caplog.at_level(logging.WARNING, logger="listener.platforms.x"):
        again = adapter.fetch(source, result.next_cursor)
    assert again.mentions == [] and "older than the search window" not in caplog.text


def test_cleaned_text_is_logged(emulator: XApiEmulator, clock: Any, caplog: pytest.LogCaptureFixture) -> None:
    adapter = make_adapter(emulator, clock)
    post = emulator.add_tweet(CUSTOMER, "acme nul\x00here")
    with caplog.at_level(logging.WARNING, logger="listener.platforms.x"):
        (mention,) = adapter.fetch(adapter.sources()[0], None).mentions
    assert mention.text == "acme nul\ufffdhere" and mention.raw["tweet"]["text"] == "acme nul\ufffdhere"
    assert post in caplog.text and "NUL" in caplog.text


def test_replies_need_user_context_credentials(emulator: XApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    emulator.add_tweet(CUSTOMER, "acme help")
    (mention,) = adapter.fetch(adapter.sources()[0], None).mentions
    missing = make_adapter(emulator, clock, creds={"access_token": "", "access_token_secret": ""})
    with pytest.raises(AuthFailed, match=r"platforms\.x\.access_token"):
        missing.post_reply(mention, "hi")
    wrong = make_adapter(emulator, clock, creds={"access_token": "100002-stolen"})
    with pytest.raises(AuthFailed, match=r"platforms\.x\.access_token") as info:
        wrong.post_reply(mention, "hi")
    assert_adapter_error(info.value, ["100002-stolen", *emulator.credentials.as_dict().values()])


def test_reply_limits_and_gone_targets(emulator: XApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    post = emulator.add_tweet(CUSTOMER, "acme help")
    (mention,) = adapter.fetch(adapter.sources()[0], None).mentions
    with pytest.raises(PlatformError, match="280") as info:
        adapter.post_reply(mention, "x" * 281)
    assert not isinstance(info.value, Transient)
    emulator.delete_tweet(post)
    with pytest.raises(TargetGone):
        adapter.post_reply(mention, "too late")


def test_find_reply_survives_entities_and_prefix(emulator: XApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    emulator.add_tweet(CUSTOMER, "acme <3")
    (mention,) = adapter.fetch(adapter.sources()[0], None).mentions
    text = "Tom & Jerry say <hi> to you"
    reply_id = adapter.post_reply(mention, text)
    assert adapter.find_reply(mention, text) == reply_id
    other = emulator.add_tweet(CUSTOMER, "acme again", in_reply_to=mention.external_id)
    assert adapter.find_reply(replace(mention, external_id=other), text) is None


def test_unreachable_api_is_transient(clock: Any) -> None:
    emulator = XApiEmulator(clock=clock.timestamp).start()
    url = emulator.url
    emulator.stop()
    adapter = XPlatform([XBrand("acme", ["acme"], [])], bearer_token="t", base_url=url, clock=clock,
                        timeout=0.5)
    with pytest.raises(Transient):
        adapter.fetch(adapter.sources()[0], None)


def test_rewriting_adapter() -> None:
    rewriter = RewritingAdapter("http://127.0.0.1:9999/prefix/")
    assert rewriter.rewrite("https://api.twitter.com/2/tweets?x=1") == "http://127.0.0.1:9999/prefix/2/tweets?x=1"
    assert RewritingAdapter(None).rewrite("https://api.x.com/2/a") == "https://api.x.com/2/a"
    with pytest.raises(ValueError):
        RewritingAdapter("127.0.0.1:9999")


def test_injected_session_is_used(emulator: XApiEmulator, clock: Any) -> None:
    session = requests.Session()
    adapter = make_adapter(emulator, clock, session=session)
    emulator.add_tweet(CUSTOMER, "acme via session")
    assert len(adapter.fetch(adapter.sources()[0], None).mentions) == 1
    assert isinstance(session.get_adapter("https://api.twitter.com/2/x"), RewritingAdapter)
