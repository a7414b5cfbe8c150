"""What the Graph API really answers, through the unmodified facebook-sdk and FacebookPlatform.

Two halves: the emulator's switchable real-API behaviours (vanishing posts, 341 / 368 / 506 on
replies, /tagged without `from`, user tokens, hidden comments, rate limits mid-poll), and real-shaped
Graph bodies from fixtures/facebook/ (sources in its README) served over real HTTP by a tiny server.
Expected values come from the emulator's store or the fixture files, never from the adapter.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import facebook
import pytest
import requests
from requests.adapters import HTTPAdapter

from listener.platforms.base import AuthFailed, ContentRejected, Duplicate, RateLimited, Transient
from listener.platforms.facebook import FacebookPage, FacebookPlatform
from sandbox.graph_api import GraphApiEmulator
from sandbox.httpserver import EmulatorServer, Request, Response

FIXTURES = Path(__file__).parent / "fixtures" / "facebook"
CUSTOMER = "Hannah Huber"
DAY = 86400.0


@pytest.fixture
def emulator(clock: Any) -> Iterator[GraphApiEmulator]:
    with GraphApiEmulator(seed=5, clock=clock.timestamp, page_posts=0) as server:
        yield server


def make_adapter(emulator: GraphApiEmulator, clock: Any, token: str | None = None, **kw: Any) -> FacebookPlatform:
    page = FacebookPage("acme", emulator.page_id, emulator.page_token() if token is None else token)
    return FacebookPlatform([page], base_url=emulator.url, clock=clock, timeout=0.5, **kw)


def ids(result: Any) -> list[str]:
    return [m.external_id for m in result.mentions]


def marks(result: Any) -> dict[str, Any]:
    return dict(json.loads(result.next_cursor)["p"])


def thread_ids(emulator: GraphApiEmulator, post: str) -> list[str]:
    return [c.id for c in emulator.store.posts[post].comments]


# -- objects vanishing between listing and reading -------------------------------------------------

def test_a_post_vanishing_mid_poll_is_skipped_and_the_others_are_read(
        emulator: GraphApiEmulator, clock: Any, caplog: pytest.LogCaptureFixture) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    kept, doomed = (emulator.add_post(None, f"post {i}", created=clock.timestamp() - (i + 1) * DAY) for i in range(2))
    first = adapter.fetch(source, None)
    clock.advance(minutes=5)
    for post in (kept, doomed):
        emulator.add_comment(post, CUSTOMER, f"new on {post}")
    emulator.vanish_after_listing(doomed)
    with caplog.at_level(logging.WARNING, logger="listener.platforms.facebook"):
        result = adapter.fetch(source, first.next_cursor)
    assert ids(result) == thread_ids(emulator, kept) and result.interrupted is None
    assert set(marks(result)) == {kept} and doomed in caplog.text and "vanished" in caplog.text
    assert emulator.store.node(doomed) is None  # it is gone for real now
    assert adapter.fetch(source, result.next_cursor).mentions == []


def test_a_new_post_vanishing_before_its_comments_are_read_is_left_out(emulator: GraphApiEmulator,
                                                                         clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    post = emulator.add_post(CUSTOMER, "help")
    emulator.add_comment(post, "Other Person", "me too")
    other = emulator.add_post(CUSTOMER, "and another thing")
    emulator.vanish_after_listing(post)
    result = adapter.fetch(adapter.sources()[0], None)
    assert ids(result) == [other] and set(marks(result)) == {other}


# -- rate limits in the middle of a poll -------------------------------------------------------------

def _three_busy_posts(emulator: GraphApiEmulator, clock: Any, adapter: FacebookPlatform) -> tuple[list[str], str]:
    posts = [emulator.add_post(None, f"post {i}", created=clock.timestamp() - (3 - i) * DAY) for i in range(3)]
    cursor = adapter.fetch(adapter.sources()[0], None).next_cursor or ""
    clock.advance(minutes=3)
    for post in posts:
        for n in range(3):
            emulator.add_comment(post, CUSTOMER, f"{post} {n}")
    return posts[::-1], cursor  # newest first: the order /feed lists them in


def test_a_rate_limit_mid_poll_keeps_what_was_read(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    (first, second, third), cursor = _three_busy_posts(emulator, clock, adapter)
    emulator.faults.inject("rate_limit_burst:1", path_prefix=f"/v25.0/{second}/comments")
    result = adapter.fetch(source, cursor)
    assert ids(result) == thread_ids(emulator, first)
    stopped = result.interrupted
    assert isinstance(stopped, RateLimited) and stopped.scope == "page rate limit (code 32)"
    assert stopped.retry_at == clock() + timedelta(minutes=emulator.burst_regain_minutes)
    old, new = json.loads(cursor)["p"], marks(result)
    assert new[second] == old[second] and new[third] == old[third] and new[first] != old[first]
    rest = adapter.fetch(source, result.next_cursor)
    assert sorted(ids(rest)) == sorted(thread_ids(emulator, second) + thread_ids(emulator, third))
    assert rest.interrupted is None and adapter.fetch(source, rest.next_cursor).mentions == []


def test_a_post_read_part_way_keeps_a_gap_for_the_rest(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock, page_size=10)
    source = adapter.sources()[0]
    post = emulator.add_post(None, "outage", created=clock.timestamp() - DAY)
    cursor = adapter.fetch(source, None).next_cursor
    clock.advance(minutes=1)
    made = []
    for i in range(25):
        made.append(emulator.add_comment(post, CUSTOMER, f"down {i}"))
        clock.advance(seconds=1)
    emulator.faults.inject("rate_limit_burst:1", path_prefix=f"/v25.0/{post}/comments", after=1)
    result = adapter.fetch(source, cursor)
    assert ids(result) == made[15:] and result.interrupted is not None
    assert len(marks(result)[post]) == 5  # a gap for the 15 unread
    rest = adapter.fetch(source, result.next_cursor)
    assert ids(rest) == made[:15] and len(marks(rest)[post]) == 4


def test_new_posts_not_reached_stay_out_of_the_cursor_and_come_again(emulator: GraphApiEmulator,
                                                                      clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    old = emulator.add_post(CUSTOMER, "older", created=clock.timestamp() - 60)
    new = emulator.add_post(CUSTOMER, "newer", created=clock.timestamp() - 30)
    reached = emulator.add_comment(new, "A B", "first")
    emulator.add_comment(old, "C D", "second")
    emulator.faults.inject("rate_limit_burst:1", path_prefix=f"/v25.0/{old}/comments")
    result = adapter.fetch(source, None)
    assert ids(result) == [new, reached] and set(marks(result)) == {new}
    assert result.interrupted is not None
    rest = adapter.fetch(source, result.next_cursor)
    assert ids(rest) == [old, *thread_ids(emulator, old)]


def test_a_rate_limit_before_anything_was_read_raises(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    post = emulator.add_post(None, "quiet", created=clock.timestamp() - DAY)
    cursor = adapter.fetch(source, None).next_cursor
    clock.advance(minutes=1)
    emulator.add_comment(post, CUSTOMER, "hello")
    emulator.faults.inject("rate_limit_burst:1", path_prefix=f"/v25.0/{post}/comments")
    with pytest.raises(RateLimited, match="code 32"):
        adapter.fetch(source, cursor)
    assert ids(adapter.fetch(source, cursor)) == thread_ids(emulator, post)


def test_an_interrupted_poll_through_the_poller_stores_each_item_once(
        emulator: GraphApiEmulator, clock: Any, sessions: Any) -> None:
    from tests.support import make_poller

    class Neutral:
        label, negative, neutral, positive, complaint = "neutral", 0.1, 0.8, 0.1, 0.1

    class Classifier:
        def classify(self, texts: list[str]) -> list[Neutral]:
            return [Neutral() for _ in texts]

    adapter = make_adapter(emulator, clock)
    source = adapter.sources()[0]
    poller = make_poller(sessions, Classifier(), clock=clock)
    (first, second, third), _ = _three_busy_posts(emulator, clock, adapter)  # new to the poller's store
    emulator.faults.inject("rate_limit_burst:1", path_prefix=f"/v25.0/{second}/comments")
    stopped = poller.poll_once(adapter, source)
    assert stopped.retry_at is not None and stopped.new == 1 + len(thread_ids(emulator, first))
    rest = poller.poll_once(adapter, source)
    assert rest.retry_at is None and rest.duplicates == 0
    assert rest.new == 2 + len(thread_ids(emulator, second)) + len(thread_ids(emulator, third))
    assert poller.poll_once(adapter, source).new == 0


# -- refusals of a reply ---------------------------------------------------------------------------------

@pytest.fixture
def mention(emulator: GraphApiEmulator, clock: Any) -> Any:
    emulator.add_post(CUSTOMER, "where is my SIM card?")
    (found,) = make_adapter(emulator, clock).fetch(make_adapter(emulator, clock).sources()[0], None).mentions
    return found


@pytest.mark.parametrize(("code", "regain", "scope"), [
    (341, 25, "application action limit (code 341)"),
    (368, None, "temporary block for policy violations (code 368)"),
])
def test_action_limits_on_replies_wait(emulator: GraphApiEmulator, clock: Any, mention: Any, code: int,
                                       regain: int | None, scope: str) -> None:
    adapter = make_adapter(emulator, clock)
    emulator.refuse_comments(code, regain_minutes=regain)
    with pytest.raises(RateLimited) as info:
        adapter.post_reply(mention, "We are on it")
    assert info.value.scope == scope and f"code {code}" in str(info.value)
    assert info.value.retry_at == clock() + (timedelta(minutes=regain) if regain else timedelta(hours=1))
    assert adapter.post_reply(mention, "We are on it")  # once lifted


def test_the_same_reply_twice_is_a_duplicate_and_found_again(emulator: GraphApiEmulator, clock: Any,
                                                              mention: Any) -> None:
    adapter = make_adapter(emulator, clock)
    emulator.reject_duplicates = True
    posted = adapter.post_reply(mention, "Sorry, we are on it!")
    with pytest.raises(Duplicate, match="506"):
        adapter.post_reply(mention, "Sorry, we are on it!")
    assert adapter.find_reply(mention, "Sorry, we are on it!") == posted
    assert adapter.post_reply(mention, "Something else")


def test_too_long_texts_are_content_rejected(emulator: GraphApiEmulator, clock: Any, mention: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = make_adapter(emulator, clock)
    with pytest.raises(ContentRejected, match="8000"):
        adapter.post_reply(mention, "x" * 8001)
    with pytest.raises(ContentRejected):
        adapter.post_reply(mention, "   ")
    monkeypatch.setattr(FacebookPlatform, "MAX_TEXT", 9000)  # past our check: Graph refuses it itself
    with pytest.raises(ContentRejected, match="code 100"):
        adapter.post_reply(mention, "y" * 8500)


# -- what Graph withholds -----------------------------------------------------------------------------------

def test_a_tagged_post_without_from_uses_the_feed_copy(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    emulator.hide_tagged_authors(("tagged",))
    tagged = emulator.add_post("Tina Tagger", "Thanks @Acme Mobile", kind="tagged")
    (mention,) = adapter.fetch(adapter.sources()[0], None).mentions
    author = emulator.store.posts[tagged].author
    assert mention.external_id == tagged and mention.author.external_id == author.id
    assert mention.author.display_name == "Tina Tagger" and mention.raw["edge"] == "feed"


def test_tagged_posts_without_any_from_get_one_labelled_author(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    emulator.hide_tagged_authors(("tagged", "feed"))
    first = emulator.add_post("Tina Tagger", "Thanks @Acme Mobile", kind="tagged")
    second = emulator.add_post("Tom Tagger", "@Acme Mobile again", kind="tagged")
    clock.advance(seconds=5)
    comment = emulator.add_comment(first, "Sam Someone", "same here")
    result = adapter.fetch(adapter.sources()[0], None)
    by_id = {m.external_id: m for m in result.mentions}
    assert set(by_id) == {first, second, comment}
    assert by_id[first].author == by_id[second].author
    assert by_id[first].author.display_name == "Facebook user (hidden by Facebook)"
    assert by_id[first].author.profile_url is None and not by_id[first].is_own
    assert by_id[comment].author.display_name == "Sam Someone"
    assert by_id[comment].author.external_id == emulator.store.comments[comment].author.id


def test_hidden_comments_come_as_hidden(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    post = emulator.add_post(CUSTOMER, "question")
    spam = emulator.add_comment(post, "Spam Bot", "buy followers")
    fine = emulator.add_comment(post, "A B", "good question")
    emulator.hide_comment(spam)
    hidden = {m.external_id: m.hidden for m in adapter.fetch(adapter.sources()[0], None).mentions}
    assert hidden == {post: False, spam: True, fine: False}


# -- the token check ---------------------------------------------------------------------------------------

def test_a_user_token_is_refused_by_the_preflight_and_the_first_poll(emulator: GraphApiEmulator,
                                                                      clock: Any) -> None:
    token = emulator.user_token(name="Pat Admin")
    post = emulator.add_post(CUSTOMER, "hello")
    emulator.add_comment(post, "A B", "a comment")
    plain = facebook.GraphAPI(access_token=token, version="3.1", session=_redirected(emulator))
    plain.version = "v25.0"
    assert plain.get_connections(post, "comments") == {"data": []}  # what such a token reads: nothing
    adapter = make_adapter(emulator, clock, token=token)
    for attempt in (adapter.preflight, lambda: adapter.fetch(adapter.sources()[0], None)):
        with pytest.raises(AuthFailed) as info:
            attempt()
        message = str(info.value)
        assert "user access token" in message and f'page_tokens["{emulator.page_id}"]' in message
        assert "/me/accounts" in message and "Meta Business Suite" in message and token not in message


def test_the_token_check_runs_once_per_page(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = make_adapter(emulator, clock)
    adapter.preflight()
    adapter.fetch(adapter.sources()[0], None)
    adapter.fetch(adapter.sources()[0], None)
    assert emulator.requests_to("/me") == 1
    lazy = make_adapter(emulator, clock)
    lazy.fetch(lazy.sources()[0], None)
    assert emulator.requests_to("/me") == 2


def test_the_preflight_is_transient_when_graph_cannot_be_asked(clock: Any) -> None:
    emulator = GraphApiEmulator(clock=clock.timestamp, page_posts=0).start()
    adapter = make_adapter(emulator, clock)
    emulator.stop()
    with pytest.raises(Transient):
        adapter.preflight()


def _redirected(emulator: GraphApiEmulator) -> requests.Session:
    class Redirect(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            request.url = request.url.replace("https://graph.facebook.com", emulator.url)
            return super().send(request, *args, **kwargs)

    session = requests.Session()
    session.mount("https://graph.facebook.com", Redirect())
    return session


# -- real-shaped bodies over real HTTP ------------------------------------------------------------------------

def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


PAGE = fixture("me_page_token")["body"]["id"]
POSTS = [p["id"] for p in fixture("feed")["body"]["data"]]
TAGGED = fixture("tagged_without_from")["body"]["data"][0]["id"]


class FixtureGraph(EmulatorServer):
    """Answers (method, path) with a fixture file; anything else with Graph's unknown-path error."""

    def __init__(self, table: dict[tuple[str, str], str]) -> None:
        super().__init__()
        self.table = table
        for method in ("GET", "POST"):
            self.route(method, r"/v\d+\.\d+/.*", self._serve)

    def _serve(self, request: Request) -> Response:
        name = self.table.get((request.method, request.path.split("/", 2)[2]))
        if name is None:
            return Response.json({"error": {"message": f"Unknown path components: {request.path}",
                                            "type": "OAuthException", "code": 2500, "fbtrace_id": "X"}}, 400)
        answer = fixture(name)
        return Response(answer["status"], json.dumps(answer["body"]).encode(),
                        {"Content-Type": "application/json; charset=UTF-8", **answer.get("headers", {})})


def replay(routes: dict[str, str], clock: Any) -> tuple[FixtureGraph, FacebookPlatform]:
    """A fixture server for `routes` ("GET <path under /v25.0/>" -> fixture name; /me answers as the page
    and /feed, /tagged as empty unless told) and an adapter pointed at it."""
    table = {("GET", "me"): "me_page_token", ("GET", f"{PAGE}/feed"): "feed_empty",
             ("GET", f"{PAGE}/tagged"): "feed_empty"}
    for key, name in routes.items():
        method, _, path = key.partition(" ")
        table[(method, path)] = name
    server = FixtureGraph(table).start()
    adapter = FacebookPlatform([FacebookPage("acme", PAGE, "real-shaped-page-token")], base_url=server.url,
                               clock=clock, timeout=2)
    return server, adapter


def test_replay_a_vanished_post_a_hidden_comment_and_a_tagged_post_without_from(clock: Any) -> None:
    server, adapter = replay({f"GET {PAGE}/feed": "feed", f"GET {PAGE}/tagged": "tagged_without_from",
                              f"GET {POSTS[0]}/comments": "comments_with_hidden",
                              f"GET {POSTS[1]}/comments": "error_100_33",
                              f"GET {TAGGED}/comments": "comments_of_tagged"}, clock)
    with server:
        result = adapter.fetch(adapter.sources()[0], None)
    comments = fixture("comments_with_hidden")["body"]["data"]
    tagged_comments = fixture("comments_of_tagged")["body"]["data"]
    expected = {POSTS[0], TAGGED, *(c["id"] for c in comments + tagged_comments)}
    assert {m.external_id for m in result.mentions} == expected and result.interrupted is None
    assert set(marks(result)) == {POSTS[0], TAGGED}  # the vanished post left the cursor
    by_id = {m.external_id: m for m in result.mentions}
    assert {i for i, m in by_id.items() if m.hidden} == {c["id"] for c in comments if c["is_hidden"]}
    assert by_id[TAGGED].author.display_name == "Facebook user (hidden by Facebook)"
    assert by_id[tagged_comments[0]["id"]].author.external_id == tagged_comments[0]["from"]["id"]
    reply = next(c for c in comments if "parent" in c)
    assert by_id[reply["id"]].in_reply_to_id == reply["parent"]["id"] and by_id[reply["id"]].is_own


def test_replay_a_rate_limit_with_its_usage_estimate(clock: Any) -> None:
    server, adapter = replay({f"GET {PAGE}/feed": "feed", f"GET {POSTS[0]}/comments": "comments_with_hidden",
                              f"GET {POSTS[1]}/comments": "error_32_usage"}, clock)
    usage = json.loads(fixture("error_32_usage")["headers"]["X-Business-Use-Case-Usage"])
    minutes = usage[PAGE][0]["estimated_time_to_regain_access"]
    with server:
        result = adapter.fetch(adapter.sources()[0], None)
    assert result.interrupted is not None and result.interrupted.retry_at == clock() + timedelta(minutes=minutes)
    assert result.interrupted.scope == "page rate limit (code 32)" and set(marks(result)) == {POSTS[0]}


@pytest.mark.parametrize(("name", "expected", "scope"), [
    ("error_506", Duplicate, None),
    ("error_368", RateLimited, "temporary block for policy violations (code 368)"),
    ("error_341", RateLimited, "application action limit (code 341)"),
])
def test_replay_refused_replies(clock: Any, name: str, expected: type[Exception], scope: str | None) -> None:
    server, adapter = replay({f"GET {PAGE}/feed": "feed", f"GET {POSTS[0]}/comments": "comments_with_hidden",
                              f"GET {POSTS[1]}/comments": "error_100_33",
                              f"POST {POSTS[0]}/comments": name}, clock)
    with server:
        post = next(m for m in adapter.fetch(adapter.sources()[0], None).mentions if m.external_id == POSTS[0])
        with pytest.raises(expected) as info:
            adapter.post_reply(post, "Yes, roaming is included.")
    code = fixture(name)["body"]["error"]["code"]
    assert f"code {code}" in str(info.value) and "real-shaped-page-token" not in str(info.value)
    if scope is not None:
        assert isinstance(info.value, RateLimited) and info.value.scope == scope
        assert info.value.retry_at == clock() + timedelta(hours=1)  # no estimate in the headers


def test_replay_a_user_token(clock: Any) -> None:
    server, adapter = replay({"GET me": "me_user_token", f"GET {PAGE}/feed": "feed",
                              f"GET {POSTS[0]}/comments": "comments_user_token"}, clock)
    user = fixture("me_user_token")["body"]
    with server, pytest.raises(AuthFailed) as info:
        adapter.preflight()
    assert user["id"] in str(info.value) and "user access token" in str(info.value)
    assert user["id"] != PAGE
