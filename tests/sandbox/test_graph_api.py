"""The Graph API emulator: wire shapes, field expansion, paging, since/until, errors, usage headers, faults."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import facebook
import pytest
import requests
from requests.adapters import HTTPAdapter

from sandbox.feed import customer_pool
from sandbox.graph_api import GraphApiEmulator
from sandbox.graph_wire import parse_fields

V = "/v25.0"
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")
DAY = 86400.0


@pytest.fixture
def emu(clock: Any) -> Iterator[GraphApiEmulator]:
    with GraphApiEmulator(seed=7, clock=clock.timestamp, page_posts=0) as server:
        yield server


class Api:
    """Raw HTTP against the emulator with the page token unless told otherwise."""

    def __init__(self, emu: GraphApiEmulator) -> None:
        self.emu, self.session = emu, requests.Session()

    def get(self, path: str, token: str | None = "page", **params: Any) -> requests.Response:
        if token is not None:
            params["access_token"] = self.emu.page_token() if token == "page" else token
        return self.session.get(self.emu.url + V + path, params=params, timeout=5)

    def post(self, path: str, **data: Any) -> requests.Response:
        data.setdefault("access_token", self.emu.page_token())
        return self.session.post(self.emu.url + V + path, data=data, timeout=5)


@pytest.fixture
def api(emu: GraphApiEmulator) -> Api:
    return Api(emu)


@pytest.fixture
def graph(emu: GraphApiEmulator) -> facebook.GraphAPI:
    """An unmodified facebook-sdk client whose session is redirected to the emulator."""

    class Redirect(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            request.url = request.url.replace("https://graph.facebook.com", emu.url)
            return super().send(request, *args, **kwargs)

    session = requests.Session()
    session.mount("https://graph.facebook.com", Redirect())
    client = facebook.GraphAPI(access_token=emu.page_token(), session=session, version="3.1")
    client.version = "v25.0"
    return client


def error_of(response: requests.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"message", "type", "code", "fbtrace_id"}
    return error


# -- wire shapes -----------------------------------------------------------------------------------

def test_me_and_page_node(api: Api, emu: GraphApiEmulator, graph: facebook.GraphAPI) -> None:
    assert graph.get_object("me") == {"name": "Acme Mobile", "id": "100000000000001"}
    assert api.get(f"/{emu.page_id}", fields="id,name").json() == {"id": emu.page_id, "name": "Acme Mobile"}
    response = emu.url + "/v3.1/me"
    assert requests.get(response, params={"access_token": emu.page_token()}, timeout=5).status_code == 200
    assert graph.get_version() == "25.0"


def test_post_and_comment_shapes(api: Api, emu: GraphApiEmulator, clock: Any) -> None:
    post = emu.add_post(None, "New plans!", created=clock.timestamp() - DAY)
    comment = emu.add_comment(post, "Jana Becker", "Zu teuer")
    reply = emu.add_comment(post, "Acme Mobile", "Schreib uns!", parent=comment)
    fields = ("id,message,created_time,updated_time,from{id},permalink_url,"
              "comments.filter(stream).summary(true).limit(0)")
    (item,) = api.get(f"/{emu.page_id}/feed", fields=fields).json()["data"]
    assert item["id"] == post and item["id"].startswith(emu.page_id + "_") and item["message"] == "New plans!"
    assert TIME_RE.match(item["created_time"]) and item["updated_time"] > item["created_time"]
    assert item["from"] == {"id": emu.page_id}
    assert item["permalink_url"] == f"https://www.facebook.com/{emu.page_id}/posts/{post.split('_')[1]}"
    assert item["comments"] == {"data": [], "summary": {"order": "chronological", "total_count": 2,
                                                        "can_comment": True}}
    toplevel = api.get(f"/{emu.page_id}/feed", fields="comments.summary(true).limit(0)").json()["data"][0]
    assert toplevel["comments"]["summary"]["total_count"] == 1
    got = api.get(f"/{reply}", fields="id,message,created_time,from,parent,permalink_url").json()
    assert got["id"] == reply and got["id"].split("_")[0] == post.split("_")[1]
    assert got["from"] == {"id": emu.page_id, "name": "Acme Mobile"}
    assert got["parent"]["id"] == comment and set(got["parent"]) == {"created_time", "from", "message", "id"}
    assert got["permalink_url"].endswith(f"comment_id={comment.split('_')[1]}&reply_comment_id={reply.split('_')[1]}")
    assert set(api.get(f"/{comment}").json()) == {"created_time", "from", "message", "id"}
    assert api.get(f"/{comment}", fields="comment_count,is_hidden").json() == {
        "comment_count": 1, "is_hidden": False}


def test_field_expansion_parser() -> None:
    (spec, other) = parse_fields("comments.filter(stream).limit(5){id,from{name}},message")
    assert spec.name == "comments" and spec.modifiers == {"filter": "stream", "limit": "5"}
    assert [s.name for s in spec.sub or []] == ["id", "from"] and other.name == "message"


def test_nested_comments_edge(api: Api, emu: GraphApiEmulator) -> None:
    post = emu.add_post("Jana Becker", "hello")
    first = emu.add_comment(post, "A B", "one")
    emu.add_comment(post, "C D", "two")
    item = api.get(f"/{post}", fields="comments.limit(1){id,message}").json()
    assert item["comments"]["data"] == [{"id": first, "message": "one"}]
    assert set(item["comments"]["paging"]["cursors"]) == {"before", "after"}


def test_feed_tagged_posts_and_visitor_posts(api: Api, emu: GraphApiEmulator, clock: Any) -> None:
    own = emu.add_post(None, "ours", created=clock.timestamp() - 30)
    visitor = emu.add_post("Jana Becker", "visitor", created=clock.timestamp() - 20)
    tagged = emu.add_post("Tom Tagger", "tags Acme", kind="tagged", created=clock.timestamp() - 10)

    def listed(edge: str) -> list[str]:
        return [p["id"] for p in api.get(f"/{emu.page_id}/{edge}").json()["data"]]

    assert listed("feed") == [tagged, visitor, own]  # newest first
    assert listed("tagged") == [tagged] and listed("posts") == [own] and listed("visitor_posts") == [visitor]
    assert not tagged.startswith(emu.page_id)


# -- paging, since/until, filter/order -------------------------------------------------------------

def test_cursor_paging_next_and_previous(api: Api, emu: GraphApiEmulator, clock: Any) -> None:
    posts = [emu.add_post(None, f"post {i}", created=clock.timestamp() - 100 + i) for i in range(25)]
    first = api.get(f"/{emu.page_id}/feed", limit=10).json()
    assert [p["id"] for p in first["data"]] == posts[::-1][:10] and "previous" not in first["paging"]
    next_url = first["paging"]["next"]
    assert urlsplit(next_url).netloc == urlsplit(emu.url).netloc and "access_token=" in next_url
    second = requests.get(next_url, timeout=5).json()
    assert [p["id"] for p in second["data"]] == posts[::-1][10:20]
    third = requests.get(second["paging"]["next"], timeout=5).json()
    assert [p["id"] for p in third["data"]] == posts[::-1][20:] and "next" not in third["paging"]
    back = requests.get(third["paging"]["previous"], timeout=5).json()
    assert back["data"] == second["data"]
    after = api.get(f"/{emu.page_id}/feed", limit=10, after=first["paging"]["cursors"]["after"]).json()
    assert after["data"] == second["data"]
    assert api.get(f"/{emu.page_id}/feed", limit=5, after="garbage!").json()["error"]["code"] == 100


def test_sdk_follows_paging(graph: facebook.GraphAPI, emu: GraphApiEmulator) -> None:
    post = emu.add_post("Jana Becker", "busy")
    wanted = [emu.add_comment(post, "Some One", f"c{i}") for i in range(230)]
    got = [c["id"] for c in graph.get_all_connections(post, "comments", limit=100, fields="id")]
    assert got == wanted


def test_since_and_until(api: Api, emu: GraphApiEmulator, clock: Any) -> None:
    now = clock.timestamp()
    posts = [emu.add_post(None, f"day {d}", created=now - d * DAY) for d in (20, 10, 5, 1)]
    listed = lambda **kw: [p["id"] for p in api.get(f"/{emu.page_id}/feed", **kw).json()["data"]]  # noqa: E731
    assert listed(since=int(now - 14 * DAY)) == posts[:0:-1]
    assert listed(since=int(now - 14 * DAY), until=int(now - 2 * DAY)) == [posts[2], posts[1]]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(now - 6 * DAY))
    assert listed(since=iso) == [posts[3], posts[2]]
    assert api.get(f"/{emu.page_id}/feed", since="next tuesday").json()["error"]["code"] == 100
    comments = [emu.add_comment(posts[3], "A B", "x", created=now - h * 3600) for h in (3, 2, 1)]
    assert [c["id"] for c in api.get(f"/{posts[3]}/comments", since=int(now - 2 * 3600)).json()["data"]] == \
        comments[1:]


def test_filter_and_order(api: Api, emu: GraphApiEmulator, clock: Any) -> None:
    post = emu.add_post("Jana Becker", "thread")
    top = emu.add_comment(post, "A B", "top")
    clock.advance(seconds=1)
    reply = emu.add_comment(post, "C D", "reply", parent=top)
    clock.advance(seconds=1)
    second = emu.add_comment(post, "E F", "second")
    ids = lambda **kw: [c["id"] for c in api.get(f"/{post}/comments", **kw).json()["data"]]  # noqa: E731
    assert ids() == [top, second] == ids(filter="toplevel")
    assert ids(filter="stream") == [top, reply, second]
    assert ids(filter="stream", order="reverse_chronological") == [second, reply, top]
    assert error_of(api.get(f"/{post}/comments", filter="x"))["code"] == 100
    assert error_of(api.get(f"/{post}/comments", order="x"))["code"] == 100
    assert [c["id"] for c in api.get(f"/{top}/comments").json()["data"]] == [reply]
    data = api.get(f"/{post}/comments", filter="stream", fields="id,parent{id}").json()["data"]
    assert data[1] == {"id": reply, "parent": {"id": top}} and "parent" not in data[0]


def test_updated_time_follows_comments_and_replies(api: Api, emu: GraphApiEmulator, clock: Any) -> None:
    post = emu.add_post(None, "old", created=clock.timestamp() - 13 * DAY)
    updated = lambda: api.get(f"/{post}", fields="updated_time").json()["updated_time"]  # noqa: E731
    before = updated()
    top = emu.add_comment(post, "A B", "hi")
    after_comment = updated()
    clock.advance(minutes=5)
    emu.add_comment(post, "C D", "re", parent=top)
    assert before < after_comment < updated()


# -- writes ----------------------------------------------------------------------------------------

def test_reply_as_the_page(api: Api, emu: GraphApiEmulator, graph: facebook.GraphAPI) -> None:
    post = emu.add_post("Jana Becker", "help")
    comment = emu.add_comment(post, "A B", "me too")
    nested = emu.add_comment(post, "C D", "same", parent=comment)
    on_post = graph.put_comment(post, "Wir helfen gern ✓")["id"]
    on_nested = api.post(f"/{nested}/comments", message="Reply & more <b>").json()["id"]
    by_query = requests.post(f"{emu.url}{V}/{comment}/comments", timeout=5,
                             params={"message": "via query", "access_token": emu.page_token()}).json()["id"]
    got = api.get(f"/{on_nested}", fields="message,from,parent{id}").json()
    assert got == {"message": "Reply & more <b>", "from": {"id": emu.page_id, "name": "Acme Mobile"},
                   "parent": {"id": comment}}
    assert api.get(f"/{on_post}", fields="message").json()["message"] == "Wir helfen gern ✓"
    assert api.get(f"/{by_query}", fields="parent{id}").json()["parent"]["id"] == comment
    assert error_of(api.post(f"/{post}/comments", message="x" * 8001))["code"] == 100
    assert error_of(api.post(f"/{post}/comments"))["code"] == 100
    emu.delete(comment)
    gone = error_of(api.post(f"/{comment}/comments", message="late"))
    assert (gone["code"], gone["error_subcode"], gone["type"]) == (100, 33, "GraphMethodException")
    assert error_of(api.get(f"/{nested}"))["code"] == 100  # replies go with their comment


def test_hide_a_comment(api: Api, emu: GraphApiEmulator) -> None:
    post = emu.add_post("Jana Becker", "spam below")
    comment = emu.add_comment(post, "Spam Bot", "buy followers")
    assert api.post(f"/{comment}", is_hidden="true").json() == {"success": True}
    assert api.get(f"/{comment}", fields="is_hidden").json() == {"is_hidden": True}
    assert api.post(f"/{comment}", is_hidden="false").json() == {"success": True}
    assert error_of(api.post(f"/{post}", message="edit"))["code"] == 100


# -- errors and usage ------------------------------------------------------------------------------

@pytest.mark.parametrize(("setup", "status", "code", "subcode", "kind"), [
    ("no_token", 400, 104, None, "OAuthException"),
    ("bad_token", 400, 190, None, "OAuthException"),
    ("expired", 401, 190, 463, "OAuthException"),
    ("no_permission", 403, 10, None, "OAuthException"),
    ("gone", 400, 100, 33, "GraphMethodException"),
    ("unknown_edge", 400, 100, None, "OAuthException"),
    ("bad_fields", 400, 100, None, "OAuthException"),
    ("unknown_path", 400, 2500, None, "OAuthException"),
])
def test_errors(api: Api, emu: GraphApiEmulator, setup: str, status: int, code: int, subcode: int | None,
                kind: str) -> None:
    path, token, params = f"/{emu.page_id}/feed", "page", {}
    if setup == "no_token":
        token = None  # type: ignore[assignment]
    elif setup == "bad_token":
        token = "stolen"
    elif setup == "expired":
        emu.expire_token()
    elif setup == "no_permission":
        emu.revoke("pages_read_engagement")
    elif setup == "gone":
        path = "/123_456"
    elif setup == "unknown_edge":
        path = f"/{emu.page_id}/friends"
    elif setup == "bad_fields":
        params = {"fields": "id,shoe_size"}
    elif setup == "unknown_path":
        path = f"/{emu.page_id}/feed/x/y"
    response = api.get(path, token=token, **params)
    error = error_of(response)
    assert (response.status_code, error["code"], error.get("error_subcode"), error["type"]) == \
        (status, code, subcode, kind)
    assert "X-App-Usage" in response.headers


def test_unversioned_path(emu: GraphApiEmulator) -> None:
    response = requests.get(f"{emu.url}/me", params={"access_token": emu.page_token()}, timeout=5)
    assert response.status_code == 400 and error_of(response)["code"] == 2500


def test_usage_headers_and_page_budget(api: Api, emu: GraphApiEmulator, clock: Any) -> None:
    emu.limits["page"] = 4
    for expected in (25, 50, 75, 100):
        response = api.get("/me")
        usage = json.loads(response.headers["X-Business-Use-Case-Usage"])[emu.page_id][0]
        assert usage["call_count"] == expected and usage["type"] == "pages"
        assert set(usage) >= {"total_time", "total_cputime", "estimated_time_to_regain_access"}
        assert set(json.loads(response.headers["X-App-Usage"])) == {"call_count", "total_time", "total_cputime"}
    clock.advance(minutes=20)
    limited = api.get("/me")
    assert error_of(limited)["code"] == 32
    usage = json.loads(limited.headers["X-Business-Use-Case-Usage"])[emu.page_id][0]
    assert usage["estimated_time_to_regain_access"] == 40
    clock.advance(minutes=40)
    assert api.get("/me").status_code == 200


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80001])
def test_throttle(api: Api, emu: GraphApiEmulator, clock: Any, code: int) -> None:
    emu.throttle(code, minutes=12)
    response = api.get("/me")
    assert error_of(response)["code"] == code
    assert json.loads(response.headers["X-Business-Use-Case-Usage"])[emu.page_id][0][
        "estimated_time_to_regain_access"] == 12
    clock.advance(minutes=12)
    assert api.get("/me").status_code == 200


def test_app_budget(clock: Any) -> None:
    with GraphApiEmulator(clock=clock.timestamp, page_posts=0, limits={"app": 1}) as emu:
        api = Api(emu)
        assert api.get("/me").status_code == 200
        response = api.get("/me")
        assert error_of(response)["code"] == 4
        assert json.loads(response.headers["X-App-Usage"])["call_count"] == 100


# -- faults ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "status", "code"), [("http_500", 500, 1), ("http_503", 503, 2)])
def test_server_errors(api: Api, emu: GraphApiEmulator, spec: str, status: int, code: int) -> None:
    emu.faults.inject(spec, path_prefix=f"{V}/me")
    response = api.get("/me")
    error = error_of(response)
    assert (response.status_code, error["code"], error["is_transient"]) == (status, code, True)
    assert "X-App-Usage" in response.headers and api.get("/me").status_code == 200


def test_broken_bodies_and_slow_answers(api: Api, emu: GraphApiEmulator) -> None:
    emu.faults.inject("malformed_json")
    with pytest.raises(ValueError):
        api.get("/me").json()
    emu.faults.inject("truncated_json")
    with pytest.raises(ValueError):
        api.get("/me").json()
    emu.faults.inject("slow:0.3")
    started = time.monotonic()
    assert api.get("/me").status_code == 200 and time.monotonic() - started >= 0.3


def test_rate_limit_burst(api: Api, emu: GraphApiEmulator, graph: facebook.GraphAPI) -> None:
    emu.faults.inject("rate_limit_burst:2")
    for _ in range(2):
        response = api.get("/me")
        assert error_of(response)["code"] == 32
        usage = json.loads(response.headers["X-Business-Use-Case-Usage"])[emu.page_id][0]
        assert usage["estimated_time_to_regain_access"] == emu.burst_regain_minutes
    emu.faults.inject("rate_limit_burst:1")
    with pytest.raises(facebook.GraphAPIError) as info:
        graph.get_object("me")
    assert info.value.code == 32
    assert api.get("/me").status_code == 200


# -- data ---------------------------------------------------------------------------------------------

def test_generated_activity_is_deterministic_and_shares_the_customer_pool(clock: Any) -> None:
    def run() -> list[tuple[str, str, str]]:
        with GraphApiEmulator(seed=3, clock=clock.timestamp) as emu:
            emu.grow(200)
            return [(p.author.name, p.message, p.id) for p in emu.store.posts.values()] + \
                [(c.author.name, c.message, c.id) for c in emu.store.comments.values()]

    first = run()
    assert first == run() and len(first) > 200
    facebook_names = {c.facebook_name for c in customer_pool(3) if c.facebook_name}
    people = {name for name, _, _ in first if name != "Acme Mobile"}
    assert len(people & facebook_names) > 20
    assert not any(text.startswith("@") for _, text, _ in first)


def test_grow_spreads_over_old_and_new_posts(emu: GraphApiEmulator, clock: Any) -> None:
    emu.store.seed_page_posts(8)
    ids = emu.grow(400)
    now = clock.timestamp()
    comments = [emu.store.comments[i] for i in ids if i in emu.store.comments]
    assert all(c.created <= now for c in comments) and len(comments) > 200
    assert any(now - c.post.created > 7 * DAY for c in comments)  # late comments on old posts
    assert any(c.parent is not None for c in comments) and any(c.author.is_page for c in comments)
    kinds = {p.kind for p in emu.store.posts.values()}
    assert kinds == {"page", "visitor", "tagged"}
    assert all(p.updated >= max((c.created for c in p.comments), default=p.created) for p in emu.store.posts.values())


def test_live_mode_keeps_adding() -> None:
    with GraphApiEmulator(seed=1, page_posts=2) as emu:
        before = len(emu.store.comments) + len(emu.store.posts)
        emu.start_live(rate=200)
        deadline = time.monotonic() + 5
        while len(emu.store.comments) + len(emu.store.posts) < before + 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        emu.stop_live()
        assert len(emu.store.comments) + len(emu.store.posts) >= before + 5


def test_add_comment_needs_a_target(emu: GraphApiEmulator) -> None:
    with pytest.raises(KeyError):
        emu.add_comment("1_2", "A B", "nowhere")


# -- real-API behaviours, off by default --------------------------------------------------------------

def test_user_tokens_read_comments_as_empty_and_cannot_reply(api: Api, emu: GraphApiEmulator) -> None:
    token = emu.user_token(name="Pat Admin")
    post = emu.add_post("Jana Becker", "hello")
    emu.add_comment(post, "A B", "hi")
    me = api.get("/me", token=token, fields="id,name").json()
    assert me["name"] == "Pat Admin" and me["id"] != emu.page_id and me["id"].isdigit()
    assert api.get(f"/{post}/comments", token=token).json() == {"data": []}
    assert len(api.get(f"/{post}/comments").json()["data"]) == 1  # the page token sees it
    refused = error_of(api.post(f"/{post}/comments", message="hi", access_token=token))
    assert (refused["code"], refused["message"]) == (200, "(#200) Permissions error")
    assert token not in emu.page_tokens().values()


def test_a_post_vanishes_when_its_comments_are_read(api: Api, emu: GraphApiEmulator) -> None:
    post = emu.add_post("Jana Becker", "soon gone")
    emu.vanish_after_listing(post)
    assert [p["id"] for p in api.get(f"/{emu.page_id}/feed").json()["data"]] == [post]
    response = api.get(f"/{post}/comments")
    error = error_of(response)
    assert (response.status_code, error["code"], error["error_subcode"], error["type"]) == \
        (400, 100, 33, "GraphMethodException")
    assert error["message"].startswith(f"Unsupported get request. Object with ID '{post}' does not exist")
    assert api.get(f"/{emu.page_id}/feed").json()["data"] == []


@pytest.mark.parametrize(("code", "message"), [
    (341, "(#341) Feed action request limit reached"),
    (368, "(#368) The action attempted has been deemed abusive or is otherwise disallowed"),
])
def test_refused_replies(api: Api, emu: GraphApiEmulator, code: int, message: str) -> None:
    post = emu.add_post("Jana Becker", "help")
    emu.refuse_comments(code, times=2, regain_minutes=30)
    for _ in range(2):
        response = api.post(f"/{post}/comments", message="on it")
        assert (error_of(response)["code"], error_of(response)["message"]) == (code, message)
        usage = json.loads(response.headers["X-Business-Use-Case-Usage"])[emu.page_id][0]
        assert usage["estimated_time_to_regain_access"] == 30
    assert "id" in api.post(f"/{post}/comments", message="on it").json()
    with pytest.raises(ValueError):
        emu.refuse_comments(32)


def test_duplicate_replies_when_asked(api: Api, emu: GraphApiEmulator) -> None:
    post = emu.add_post("Jana Becker", "help")
    comment = emu.add_comment(post, "A B", "me too")
    assert "id" in api.post(f"/{post}/comments", message="same").json()
    assert "id" in api.post(f"/{post}/comments", message="same").json()  # off by default
    emu.reject_duplicates = True
    error = error_of(api.post(f"/{post}/comments", message="same"))
    assert (error["code"], error["message"], error["type"]) == (506, "(#506) Duplicate status message",
                                                                 "OAuthException")
    assert "id" in api.post(f"/{comment}/comments", message="same").json()  # another object
    assert "id" in api.post(f"/{post}/comments", message="different").json()
    assert "id" in api.post(f"/{post}/comments", message="same").json()  # not consecutive any more


def test_tagged_posts_without_from(api: Api, emu: GraphApiEmulator) -> None:
    tagged = emu.add_post("Tom Tagger", "tags Acme", kind="tagged")
    visitor = emu.add_post("Jana Becker", "visitor")
    fields = "id,from{id,name}"
    emu.hide_tagged_authors()
    (item,) = api.get(f"/{emu.page_id}/tagged", fields=fields).json()["data"]
    assert item == {"id": tagged}
    feed = {p["id"]: p for p in api.get(f"/{emu.page_id}/feed", fields=fields).json()["data"]}
    assert feed[tagged]["from"]["name"] == "Tom Tagger" and feed[visitor]["from"]["name"] == "Jana Becker"
    emu.hide_tagged_authors(("tagged", "feed"))
    feed = {p["id"]: p for p in api.get(f"/{emu.page_id}/feed", fields=fields).json()["data"]}
    assert "from" not in feed[tagged] and "from" in feed[visitor]
    emu.hide_tagged_authors(())
    assert "from" in api.get(f"/{emu.page_id}/tagged", fields=fields).json()["data"][0]


def test_hide_comment_helper(api: Api, emu: GraphApiEmulator) -> None:
    post = emu.add_post("Jana Becker", "spam below")
    comment = emu.add_comment(post, "Spam Bot", "buy followers")
    emu.hide_comment(comment)
    (item,) = api.get(f"/{post}/comments", fields="id,is_hidden").json()["data"]
    assert item == {"id": comment, "is_hidden": True}
    emu.hide_comment(comment, hidden=False)
    assert api.get(f"/{comment}", fields="is_hidden").json() == {"is_hidden": False}
    with pytest.raises(KeyError):
        emu.hide_comment("1_2")
