"""The X API v2 emulator: query language, wire shapes, paging, auth, rate limits and faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import tweepy
from requests.adapters import HTTPAdapter

from sandbox.x_api import XApiEmulator
from sandbox.x_query import QueryError, compile_query, parse
from sandbox.x_store import XStore, snowflake_time

SEARCH = "/2/tweets/search/recent"


@pytest.fixture
def emu(clock: Any) -> Iterator[XApiEmulator]:
    with XApiEmulator(seed=7, clock=clock.timestamp) as server:
        yield server


class Api:
    """Raw HTTP against the emulator, app auth unless told otherwise."""

    def __init__(self, emu: XApiEmulator) -> None:
        self.emu = emu
        self.session = requests.Session()

    def get(self, path: str, auth: str | None = "app", **params: Any) -> requests.Response:
        token = self.emu.credentials.bearer_token if auth == "app" else auth
        headers = {"Authorization": f"Bearer {token}"} if auth else {}
        return self.session.get(self.emu.url + path, params=params, headers=headers, timeout=5)


@pytest.fixture
def api(emu: XApiEmulator) -> Api:
    return Api(emu)


@pytest.fixture
def client(emu: XApiEmulator) -> tweepy.Client:
    """An unmodified tweepy client whose session is redirected to the emulator."""

    class Redirect(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            request.url = request.url.replace("https://api.twitter.com", emu.url)
            return super().send(request, *args, **kwargs)

    c = tweepy.Client(return_type=dict, **emu.credentials.as_dict())
    c.session.mount("https://api.twitter.com", Redirect())
    return c


# -- query language ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def posts() -> dict[str, Any]:
    store = XStore(lambda: 1_790_000_000.0)
    root = store.add_tweet("jane", "My Acme order is late", lang="en")
    return {
        "root": root,
        "mention": store.add_tweet("bob", "Hello @ACME_help, my BILLING is wrong!", lang="en"),
        "de": store.add_tweet("jörg", "Acme Mobile: Lieferung kommt nicht. STRASSE gesperrt?", lang="de"),
        "reply": store.add_tweet("acme_help", "sorry, please DM us", in_reply_to=root.id),
        "rt": store.add_tweet("max", "RT @jane: My Acme order is late", retweet_of=root.id),
        "tag": store.add_tweet("ann", "#AcmeMobile free phone giveaway bit.ly/xyz", lang="en"),
    }


@pytest.mark.parametrize(("query", "expected"), [
    ("acme", {"root", "de", "rt"}),
    ("ACME order", {"root", "rt"}),  # implicit AND, case-insensitive
    ("acmes", set()),  # whole words only
    ('"acme mobile"', {"de"}),
    ('"mobile acme"', set()),
    ("billing OR lieferung", {"mention", "de"}),
    ("late OR billing wrong", {"root", "rt", "mention"}),  # AND binds tighter than OR
    ("(late OR billing) wrong", {"mention"}),
    ("acme -late", {"de"}),
    ('acme -"order is late"', {"de"}),
    ("acme lang:de", {"de"}),
    ("acme -lang:de", {"root", "rt"}),
    ("acme -is:retweet", {"root", "de"}),
    ("acme is:retweet", {"rt"}),
    ("sorry is:reply", {"reply"}),
    ("acme -is:reply", {"root", "de", "rt"}),
    ("from:jane", {"root"}),
    ("from:JANE OR from:bob", {"root", "mention"}),
    ("acme -from:jane", {"de", "rt"}),
    ("@acme_help", {"mention"}),
    ("acme_help", {"mention"}),
    ("@acme", set()),  # @acme_help is not @acme
    ("#acmemobile", {"tag"}),
    ("giveaway has:links", {"tag"}),
    ("Straße", {"de"}),  # case folding: ß == ss
    ("-(late OR billing) acme", {"de"}),
    ("to:jane", {"reply"}),
])
def test_query_matching(posts: dict[str, Any], query: str, expected: set[str]) -> None:
    predicate = compile_query(query)
    assert {name for name, post in posts.items() if predicate(post)} == expected


def test_query_conversation_operator(posts: dict[str, Any]) -> None:
    root = posts["root"]
    predicate = compile_query(f"conversation_id:{root.id} from:acme_help")
    assert [n for n, p in posts.items() if predicate(p)] == ["reply"]


@pytest.mark.parametrize(("query", "message"), [
    ("", "empty"),
    ("   ", "empty"),
    ("(acme", "Unbalanced"),
    ("acme)", "Unbalanced"),
    ("acme OR", "OR"),
    ("OR acme", "before 'OR'"),
    ('"acme', "Unterminated"),
    ('acme ""', "Empty quoted"),
    ("-is:retweet", "positive"),
    ("lang:de", "positive"),
    ("acme foo:bar", "invalid operator"),
    ("acme is:banana", "is:banana"),
    ("acme conversation_id:abc", "numeric"),
    ("acme - x", "Dangling"),
    ("()", "Expected a clause"),
    ("x" * 513, "limit is 512"),
])
def test_query_errors(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse(query)


# -- wire shapes ---------------------------------------------------------------------------------

def test_only_default_fields_unless_asked(emu: XApiEmulator, api: Api) -> None:
    emu.add_tweet("jane", "acme is great")
    body = api.get(SEARCH, query="acme").json()
    assert set(body) == {"data", "meta"}
    assert set(body["data"][0]) == {"id", "text", "edit_history_tweet_ids"}
    assert body["data"][0]["edit_history_tweet_ids"] == [body["data"][0]["id"]]


def test_fields_and_expansions(emu: XApiEmulator, api: Api, clock: Any) -> None:
    root = emu.add_tweet("jane", "acme where is my parcel", lang="en")
    reply = emu.add_tweet("acme_help", "acme here, sorry!", in_reply_to=root)
    resp = api.get(SEARCH, query="acme", **{
        "tweet.fields": "created_at,author_id,conversation_id,lang,public_metrics,referenced_tweets,"
                        "in_reply_to_user_id", "expansions": "author_id",
        "user.fields": "username,name,public_metrics,created_at"})
    body = resp.json()
    newest, oldest = body["data"]
    assert newest["id"] == reply and oldest["id"] == root
    assert newest["conversation_id"] == root
    assert newest["referenced_tweets"] == [{"type": "replied_to", "id": root}]
    assert newest["text"] == "@jane acme here, sorry!"  # X prepends the replied-to handle
    assert newest["in_reply_to_user_id"] == oldest["author_id"]
    assert "referenced_tweets" not in oldest and "in_reply_to_user_id" not in oldest
    assert newest["created_at"] == clock().strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert oldest["public_metrics"]["reply_count"] == 1
    users = {u["username"]: u for u in body["includes"]["users"]}
    assert set(users) == {"jane", "acme_help"}
    assert set(users["jane"]) == {"id", "name", "username", "public_metrics", "created_at"}
    assert body["meta"] == {"result_count": 2, "newest_id": reply, "oldest_id": root}
    assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= set(resp.headers)


def test_empty_result_has_no_data(emu: XApiEmulator, api: Api) -> None:
    assert api.get(SEARCH, query="nothing matches this").json() == {"meta": {"result_count": 0}}


def test_texts_are_entity_escaped(emu: XApiEmulator, api: Api) -> None:
    emu.add_tweet("jane", "acme <b>Tom & Jerry</b>")
    text = api.get(SEARCH, query="acme").json()["data"][0]["text"]
    assert text == "acme &lt;b&gt;Tom &amp; Jerry&lt;/b&gt;"


def test_paging_newest_first_with_since_and_until(emu: XApiEmulator, api: Api) -> None:
    ids = [emu.add_tweet("jane", f"acme post {i}") for i in range(25)]
    emu.add_tweet("jane", "unrelated")
    seen, token, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"query": "acme", "max_results": 10}
        if token:
            params["next_token"] = token
        body = api.get(SEARCH, **params).json()
        seen += [t["id"] for t in body["data"]]
        pages += 1
        token = body["meta"].get("next_token")
        if token is None:
            break
    assert pages == 3 and seen == ids[::-1]
    body = api.get(SEARCH, query="acme", since_id=ids[19], max_results=10).json()
    assert [t["id"] for t in body["data"]] == ids[:19:-1] and "next_token" not in body["meta"]
    body = api.get(SEARCH, query="acme", until_id=ids[3], max_results=10).json()
    assert [t["id"] for t in body["data"]] == ids[2::-1]


def test_ids_grow_with_time(emu: XApiEmulator, clock: Any) -> None:
    first = int(emu.add_tweet("jane", "one"))
    same_ms = int(emu.add_tweet("jane", "two"))
    clock.advance(seconds=10)
    later = int(emu.add_tweet("jane", "three"))
    assert first < same_ms < later
    assert abs(snowflake_time(later) - clock.timestamp()) < 0.01
    assert 10**18 < later < 2**63


def test_search_covers_seven_days(emu: XApiEmulator, api: Api, clock: Any) -> None:
    old = emu.add_tweet("jane", "acme old")
    clock.advance(days=8)
    assert api.get(SEARCH, query="acme").json()["meta"]["result_count"] == 0
    resp = api.get(SEARCH, query="acme", since_id=old)
    assert resp.status_code == 400 and "since_id" in resp.json()["errors"][0]["parameters"]


@pytest.mark.parametrize(("path", "params", "parameter"), [
    (SEARCH, {"query": "acme", "max_results": 9}, "max_results"),
    (SEARCH, {"query": "acme", "max_results": 101}, "max_results"),
    (SEARCH, {"query": "(acme"}, "query"),
    (SEARCH, {"query": "acme", "tweet.fields": "bogus"}, "tweet.fields"),
    (SEARCH, {"query": "acme", "colour": "red"}, "colour"),
    (SEARCH, {"query": "acme", "next_token": "nonsense"}, "next_token"),
    (SEARCH, {"query": "acme", "since_id": "12ab"}, "since_id"),
    ("/2/users/100002/mentions", {"max_results": 4}, "max_results"),
])
def test_bad_requests_answer_400_problem(api: Api, path: str, params: dict[str, Any], parameter: str) -> None:
    resp = api.get(path, **params)
    assert resp.status_code == 400
    body = resp.json()
    assert body["title"] == "Invalid Request"
    assert body["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert parameter in body["errors"][0]["parameters"] and body["errors"][0]["message"]


# -- auth ----------------------------------------------------------------------------------------

UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}


@pytest.mark.parametrize("auth", [None, "wrong-token"])
def test_bad_bearer_is_401(api: Api, auth: str | None) -> None:
    resp = api.get(SEARCH, auth=auth, query="acme")
    assert resp.status_code == 401 and resp.json() == UNAUTHORIZED


def test_user_context(emu: XApiEmulator, client: tweepy.Client) -> None:
    assert client.get_me()["data"]["username"] == "acme_help"
    bad = tweepy.Client(return_type=dict, **{**emu.credentials.as_dict(), "access_token": "1-wrong"})
    bad.session = client.session
    with pytest.raises(tweepy.Unauthorized):
        bad.get_me()
    app_only = tweepy.Client(bearer_token=emu.credentials.bearer_token, return_type=dict)
    app_only.session = client.session
    with pytest.raises(tweepy.Forbidden):
        app_only.get_me(user_auth=False)


# -- endpoints through tweepy --------------------------------------------------------------------

def test_reply_is_stored_in_the_conversation(emu: XApiEmulator, client: tweepy.Client) -> None:
    root = emu.add_tweet("jane", "@acme my order never came")
    answer = client.create_tweet(text="So sorry! Please DM us.", in_reply_to_tweet_id=root)
    assert set(answer["data"]) == {"id", "text", "edit_history_tweet_ids"}
    found = client.search_recent_tweets(f"from:acme_help conversation_id:{root}",
                                        tweet_fields=["referenced_tweets", "conversation_id"])
    assert found["data"][0]["id"] == answer["data"]["id"]
    assert found["data"][0]["text"] == "@jane So sorry! Please DM us."
    assert found["data"][0]["referenced_tweets"] == [{"type": "replied_to", "id": root}]
    looked_up = client.get_tweet(answer["data"]["id"], tweet_fields=["conversation_id"])
    assert looked_up["data"]["conversation_id"] == root
    emu.delete_tweet(root)
    with pytest.raises(tweepy.Forbidden, match="deleted or not visible"):
        client.create_tweet(text="again", in_reply_to_tweet_id=root)


def test_mentions_timeline(emu: XApiEmulator, client: tweepy.Client) -> None:
    ids = [emu.add_tweet("jane", f"@acme_help help {i}") for i in range(7)]
    emu.add_tweet("jane", "@acme not the support account")
    user_id = client.get_user(username="acme_help")["data"]["id"]
    pages = list(tweepy.Paginator(client.get_users_mentions, user_id, max_results=5))
    assert [t["id"] for p in pages for t in p["data"]] == ids[::-1]
    assert "next_token" in pages[0]["meta"] and "next_token" not in pages[1]["meta"]
    newer = client.get_users_mentions(user_id, since_id=ids[4])
    assert [t["id"] for t in newer["data"]] == ids[:4:-1]
    missing = client.get_users_mentions("999")
    assert "data" not in missing and missing["errors"][0]["title"] == "Not Found Error"
    assert client.get_user(username="nobody_here")["errors"][0]["resource_type"] == "user"
    assert client.get_tweet("123")["errors"][0]["resource_type"] == "tweet"


# -- rate limits ---------------------------------------------------------------------------------

def test_rate_limit_window(clock: Any) -> None:
    with XApiEmulator(clock=clock.timestamp, limits={"search": 3}) as emu:
        api = Api(emu)
        remaining = [api.get(SEARCH, query="acme").headers["x-rate-limit-remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        resp = api.get(SEARCH, query="acme")
        assert resp.status_code == 429
        assert resp.json() == {"title": "Too Many Requests", "detail": "Too Many Requests",
                               "type": "about:blank", "status": 429}
        reset = int(resp.headers["x-rate-limit-reset"])
        assert resp.headers["x-rate-limit-limit"] == "3" and reset == int(clock.timestamp()) + 900
        assert api.get("/2/users/by/username/acme").status_code == 200  # other endpoints: own windows
        clock.advance(seconds=900)
        resp = api.get(SEARCH, query="acme")
        assert resp.status_code == 200 and resp.headers["x-rate-limit-remaining"] == "2"


# -- faults --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "status"), [("http_500", 500), ("http_503", 503)])
def test_fault_http_errors(emu: XApiEmulator, api: Api, spec: str, status: int) -> None:
    emu.faults.inject(spec)
    resp = api.get(SEARCH, query="acme")
    assert resp.status_code == status and resp.json()["status"] == status
    assert api.get(SEARCH, query="acme").status_code == 200  # consumed


@pytest.mark.parametrize("spec", ["malformed_json", "truncated_json"])
def test_fault_broken_bodies(emu: XApiEmulator, api: Api, spec: str) -> None:
    emu.add_tweet("jane", "acme hello")
    emu.faults.inject(spec)
    resp = api.get(SEARCH, query="acme")
    assert resp.status_code == 200 and int(resp.headers["Content-Length"]) == len(resp.content)
    with pytest.raises(ValueError):
        resp.json()


def test_fault_rate_limit_burst_and_path_prefix(emu: XApiEmulator, api: Api, clock: Any) -> None:
    emu.faults.inject("rate_limit_burst:2", path_prefix=SEARCH)
    assert api.get("/2/users/by/username/acme").status_code == 200  # other path: untouched
    first = api.get(SEARCH, query="acme")
    assert first.status_code == 429 and int(first.headers["x-rate-limit-reset"]) > clock.timestamp()
    assert api.get(SEARCH, query="acme").status_code == 429
    assert api.get(SEARCH, query="acme").status_code == 200
    assert emu.faults.pending() == []


def test_fault_after_lets_requests_through(emu: XApiEmulator, api: Api) -> None:
    emu.faults.inject("http_503", after=1)
    assert [api.get(SEARCH, query="acme").status_code for _ in range(3)] == [200, 503, 200]


def test_fault_slow(emu: XApiEmulator, api: Api) -> None:
    emu.faults.inject("slow:0.3")
    started = time.perf_counter()
    assert api.get(SEARCH, query="acme").status_code == 200
    assert time.perf_counter() - started >= 0.3
    emu.faults.inject("slow:0.5")
    with pytest.raises(requests.Timeout):
        api.session.get(emu.url + SEARCH, params={"query": "acme"}, timeout=0.1)


# -- store, feed-driven growth, live mode --------------------------------------------------------

def test_grow_is_deterministic_and_builds_conversations(clock: Any) -> None:
    a, b = XStore(clock.timestamp, seed=3), XStore(clock.timestamp, seed=3)
    posts_a, posts_b = a.grow(400), b.grow(400)
    assert [p.text for p in posts_a] == [p.text for p in posts_b]
    assert all(p.created_at <= clock.timestamp() for p in posts_a)
    replies = [p for p in posts_a if p.in_reply_to_tweet_id is not None]
    assert any(p.author.username == "acme_help" for p in replies)
    assert any(p.author.username != "acme_help" for p in replies)
    assert all(p.conversation_id != p.id and a.tweet(p.conversation_id) is not None for p in replies)
    assert any(p.retweet_of is not None for p in posts_a)
    assert {p.lang for p in posts_a} >= {"en", "de"}


def test_live_mode_adds_posts(emu: XApiEmulator) -> None:
    before = len(emu.store)
    emu.start_live(rate=200)
    deadline = time.monotonic() + 3
    while len(emu.store) < before + 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    emu.stop_live()
    assert len(emu.store) >= before + 5


def test_concurrent_writers_keep_ids_unique_and_sorted(emu: XApiEmulator, api: Api) -> None:
    def write() -> None:
        for i in range(200):
            emu.add_tweet("jane", f"acme {i}")

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(5):
        assert api.get(SEARCH, query="acme").status_code == 200
    for t in threads:
        t.join()
    ids = emu.store._ids
    assert len(ids) == len(set(ids)) == 800 and ids == sorted(ids)


def test_100k_posts_search_stays_fast(emu: XApiEmulator, api: Api, clock: Any) -> None:
    emu.grow(100_000)
    newest = emu.store.newest_id()
    assert newest is not None
    clock.advance(seconds=1)
    fresh = emu.add_tweet("jane", "acme brand new")
    started = time.perf_counter()
    body = api.get(SEARCH, query="acme", since_id=str(newest), max_results=100).json()
    assert [t["id"] for t in body["data"]] == [fresh]
    page = api.get(SEARCH, query="acme -is:retweet", max_results=100).json()
    assert page["meta"]["result_count"] == 100 and "next_token" in page["meta"]
    assert time.perf_counter() - started < 1.0, "id-range scans must not touch all posts"
