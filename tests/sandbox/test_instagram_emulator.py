"""The Graph emulator's Instagram endpoints (docs/instagram-wire.md) through the unmodified facebook-sdk."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

import facebook
import pytest
import requests
from requests.adapters import HTTPAdapter

from sandbox.feed import customer_pool
from sandbox.graph_api import GraphApiEmulator

V = "v25.0"
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")
DAY = 86400.0
MEDIA_FIELDS = ("id,caption,timestamp,comments_count,like_count,media_type,media_product_type,permalink,shortcode,"
                "username,owner,is_comment_enabled")
REPLY_FIELDS = "id,text,timestamp,username,from{id,username},like_count,hidden,parent_id,user"


@pytest.fixture
def emu(clock: Any) -> Iterator[GraphApiEmulator]:
    with GraphApiEmulator(seed=7, clock=clock.timestamp, page_posts=0, ig_media=0) as server:
        yield server


class Client:
    """An unmodified facebook-sdk GraphAPI redirected to the emulator, keeping every raw response."""

    def __init__(self, emu: GraphApiEmulator, token: str | None = None) -> None:
        self.emu = emu
        self.responses: list[requests.Response] = []

        class Redirect(HTTPAdapter):
            def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
                request.url = request.url.replace("https://graph.facebook.com", emu.url)
                return super().send(request, *args, **kwargs)

        session = requests.Session()
        session.mount("https://graph.facebook.com", Redirect())
        session.hooks["response"].append(lambda response, *args, **kwargs: self.responses.append(response))
        self.graph = facebook.GraphAPI(access_token=token or emu.page_token(), session=session, version="3.1")
        self.graph.version = V

    @property
    def last(self) -> requests.Response:
        return self.responses[-1]

    def usage(self) -> dict[str, Any]:
        """The last answer's Instagram business-use-case usage."""
        usage = json.loads(self.last.headers["X-Business-Use-Case-Usage"])
        assert list(usage) == [self.emu.ig_user_id]
        (entry,) = usage[self.emu.ig_user_id]
        return dict(entry)

    def post(self, object_id: str, **data: Any) -> Any:
        return self.graph.request(f"{V}/{object_id}", post_args=data)


@pytest.fixture
def client(emu: GraphApiEmulator) -> Client:
    return Client(emu)


def error_of(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(facebook.GraphAPIError) as info:
        call()
    error: dict[str, Any] = info.value.result["error"]
    assert set(error) >= {"message", "type", "code", "fbtrace_id"}
    return error


# -- account and media ------------------------------------------------------------------------------

def test_page_links_the_account_and_the_account_node(client: Client, emu: GraphApiEmulator) -> None:
    graph = client.graph
    assert emu.ig_user_id == "17841400000000001" and emu.ig_username == "acme_mobile"
    assert graph.get_object(emu.page_id, fields="instagram_business_account") == {
        "instagram_business_account": {"id": emu.ig_user_id}, "id": emu.page_id}
    me = graph.get_object("me", fields="id,name,instagram_business_account")
    assert me == {"id": emu.page_id, "name": "Acme Mobile", "instagram_business_account": {"id": emu.ig_user_id}}
    emu.add_ig_media("hello")
    account = graph.get_object(emu.ig_user_id, fields="id,username,name,followers_count,media_count")
    assert account == {"id": emu.ig_user_id, "username": "acme_mobile", "name": "Acme Mobile",
                       "followers_count": account["followers_count"], "media_count": 1}
    assert graph.get_object(emu.ig_user_id) == {"id": emu.ig_user_id}
    assert error_of(lambda: graph.get_object(emu.ig_user_id, fields="id,shoe_size"))["code"] == 100
    assert error_of(lambda: graph.get_connections(emu.ig_user_id, "friends"))["code"] == 100


def test_seeded_media(clock: Any) -> None:
    with GraphApiEmulator(seed=2, clock=clock.timestamp, page_posts=0) as emu:
        media = Client(emu).graph.get_connections(emu.ig_user_id, "media", fields="id,timestamp")["data"]
        assert len(media) == 6 and len(emu.ig_store.own_media()) == 6
        ages = [clock.timestamp() - emu.ig_store.media[m["id"]].created for m in media]
        assert ages == sorted(ages) and ages[0] > 0 and ages[-1] < 21 * DAY and ages[-1] > 14 * DAY


def test_media_shape_newest_first_with_paging(client: Client, emu: GraphApiEmulator, clock: Any) -> None:
    now = clock.timestamp()
    made = [emu.add_ig_media(f"post {i}", created=now - (40 - i) * 3600) for i in range(40)]
    assert all(len(m) == 17 and m.isdigit() for m in made) and made == sorted(made, key=int)
    graph = client.graph
    first = graph.get_connections(emu.ig_user_id, "media", fields=MEDIA_FIELDS, limit=15)
    assert [m["id"] for m in first["data"]] == made[::-1][:15] and "previous" not in first["paging"]
    item = first["data"][0]
    assert item["caption"] == "post 39" and TIME_RE.match(item["timestamp"]) and item["username"] == "acme_mobile"
    assert item["owner"] == {"id": emu.ig_user_id} and item["comments_count"] == 0 and item["is_comment_enabled"]
    assert item["media_type"] in ("IMAGE", "VIDEO", "CAROUSEL_ALBUM")
    assert item["media_product_type"] in ("FEED", "REELS") and isinstance(item["like_count"], int)
    assert item["permalink"] == f"https://www.instagram.com/p/{item['shortcode']}/"
    assert {m["media_type"] for m in first["data"]} == {"IMAGE", "VIDEO", "CAROUSEL_ALBUM"}
    assert set(first["paging"]["cursors"]) == {"before", "after"} and "access_token=" in first["paging"]["next"]
    second = requests.get(first["paging"]["next"], timeout=5).json()
    assert [m["id"] for m in second["data"]] == made[::-1][15:30]
    back = requests.get(second["paging"]["previous"], timeout=5).json()
    assert back["data"] == first["data"]
    assert [m["id"] for m in graph.get_all_connections(emu.ig_user_id, "media", limit=7)] == made[::-1]
    assert len(graph.get_connections(emu.ig_user_id, "media")["data"]) == 25
    since = graph.get_connections(emu.ig_user_id, "media", since=int(now - 10.5 * 3600), until=int(now - 2 * 3600))
    assert [m["id"] for m in since["data"]] == made[::-1][2:10]
    assert graph.get_object(made[0], fields="caption") == {"caption": "post 0", "id": made[0]}
    assert graph.get_object(made[0]) == {"id": made[0]}


def test_media_limit_is_capped_at_100(client: Client, emu: GraphApiEmulator, clock: Any) -> None:
    for i in range(105):
        emu.add_ig_media(f"m{i}", created=clock.timestamp() - 1000 + i)
    assert len(client.graph.get_connections(emu.ig_user_id, "media", limit=500)["data"]) == 100


def test_tags(client: Client, emu: GraphApiEmulator, clock: Any) -> None:
    now = clock.timestamp()
    own = emu.add_ig_media("ours", created=now - 300)
    older = emu.add_ig_media("look who's here", owner="jana_b", tagged=True, created=now - 200)
    newer = emu.add_ig_media("new phone day", owner="tom_t", tagged=True, created=now - 100)
    emu.add_ig_media("not about you", owner="someone_else", created=now - 50)
    graph = client.graph
    tags = graph.get_connections(emu.ig_user_id, "tags", fields="id,caption,username,timestamp,comments_count")
    assert [(m["id"], m["username"]) for m in tags["data"]] == [(newer, "tom_t"), (older, "jana_b")]
    assert "owner" not in graph.get_object(newer, fields="id,owner,username")
    assert [m["id"] for m in graph.get_connections(emu.ig_user_id, "media")["data"]] == [own]
    assert [m["id"] for m in graph.get_connections(emu.ig_user_id, "tags", limit=1)["data"]] == [newer]
    comment = emu.add_ig_comment(newer, "tom_t", "@acme_mobile nice, right?")
    refused = error_of(lambda: graph.get_connections(newer, "comments"))
    assert (refused["code"], refused["message"]) == (100, "(#100) Commenting on photos in which you were tagged is "
                                                          "not supported")
    assert error_of(lambda: graph.put_object(comment, "replies", message="thanks!"))["code"] == 100
    assert error_of(lambda: graph.put_comment(newer, "thanks!"))["code"] == 100


# -- comments and replies ---------------------------------------------------------------------------

def test_comments_top_level_chronological_with_replies(client: Client, emu: GraphApiEmulator, clock: Any) -> None:
    media = emu.add_ig_media("new plans", created=clock.timestamp() - DAY)
    first = emu.add_ig_comment(media, "jana_b", "zu teuer", created=clock.timestamp() - 3600)
    second = emu.add_ig_comment(media, "tom_t", "love it", created=clock.timestamp() - 1800)
    ours = emu.add_ig_comment(media, "acme_mobile", "@jana_b schreib uns!", parent=first)
    theirs = emu.add_ig_comment(media, "jana_b", "@acme_mobile ok", parent=ours)  # lands on `first`
    graph = client.graph
    got = graph.get_connections(media, "comments", fields=f"{REPLY_FIELDS},replies{{{REPLY_FIELDS}}}")
    assert [c["id"] for c in got["data"]] == [first, second]
    top = got["data"][0]
    assert top["text"] == "zu teuer" and top["username"] == "jana_b" and top["hidden"] is False
    assert top["from"]["username"] == "jana_b" and top["from"]["id"].isdigit() and top["from"]["id"] != emu.ig_user_id
    assert "parent_id" not in top and "user" not in top and TIME_RE.match(top["timestamp"])
    replies = top["replies"]["data"]
    assert [r["id"] for r in replies] == [ours, theirs] and "next" not in top["replies"].get("paging", {})
    assert replies[0]["from"] == {"id": emu.ig_user_id, "username": "acme_mobile"}
    assert replies[0]["user"] == {"id": emu.ig_user_id} and "user" not in replies[1]
    assert {r["parent_id"] for r in replies} == {first}
    assert got["data"][1]["replies"] == {"data": []}
    assert graph.get_connections(media, "comments")["data"][0] == {
        "id": first, "text": "zu teuer", "timestamp": top["timestamp"]}
    assert graph.get_object(media, fields="comments_count")["comments_count"] == 4
    assert graph.get_object(theirs, fields="parent_id,media,text") == {
        "parent_id": first, "media": {"id": media, "media_product_type": "FEED"}, "text": "@acme_mobile ok",
        "id": theirs}
    assert [r["id"] for r in graph.get_connections(first, "replies")["data"]] == [ours, theirs]
    with pytest.raises(KeyError):
        emu.add_ig_comment(media, "x", "nowhere", parent="17950000000000000")


def test_reply_expansion_pages_into_replies(client: Client, emu: GraphApiEmulator, clock: Any) -> None:
    media = emu.add_ig_media("busy", created=clock.timestamp() - DAY)
    top = emu.add_ig_comment(media, "jana_b", "outage?")
    replies = [emu.add_ig_comment(media, f"user{i}", f"same here {i}", parent=top) for i in range(7)]
    graph = client.graph
    (item,) = graph.get_connections(media, "comments", fields="id,replies.limit(3){id,text}")["data"]
    assert [r["id"] for r in item["replies"]["data"]] == replies[:3]
    next_url = item["replies"]["paging"]["next"]
    assert f"/{V}/{top}/replies?" in next_url and "after=" in next_url and "access_token=" in next_url
    rest = requests.get(next_url, timeout=5).json()
    assert [r["id"] for r in rest["data"]] == replies[3:6] and rest["data"][0] == {"id": replies[3],
                                                                                     "text": "same here 3"}
    args = {k: v[0] for k, v in parse_qs(urlsplit(next_url).query).items() if k != "access_token"}
    followed = list(graph.get_all_connections(top, "replies", **args))
    assert [r["id"] for r in followed] == replies[3:]
    assert graph.get_object(media, fields="comments_count")["comments_count"] == 8
    (plain,) = graph.get_connections(media, "comments", fields="id,replies")["data"]
    assert len(plain["replies"]["data"]) == 7 and set(plain["replies"]["data"][0]) == {"id", "text", "timestamp"}


def test_comment_ids_grow_within_a_second_and_paging(client: Client, emu: GraphApiEmulator) -> None:
    media = emu.add_ig_media("giveaway")
    made = [emu.add_ig_comment(media, f"fan{i % 9}", f"pick me {i}") for i in range(120)]  # one second
    assert made == sorted(made, key=int) and all(17 <= len(c) <= 18 and c.isdigit() for c in made)
    graph = client.graph
    assert len(graph.get_connections(media, "comments")["data"]) == 25
    page = graph.get_connections(media, "comments", limit=80)
    assert [c["id"] for c in page["data"]] == made[:50] and "next" in page["paging"]
    assert [c["id"] for c in graph.get_all_connections(media, "comments", limit=50)] == made


def test_hidden_comments(client: Client, emu: GraphApiEmulator) -> None:
    media = emu.add_ig_media("spam below")
    spam = emu.add_ig_comment(media, "free_phones", "cheap followers DM")
    emu.hide_ig_comment(spam)
    graph = client.graph
    (item,) = graph.get_connections(media, "comments", fields="id,hidden,text")["data"]
    assert item == {"id": spam, "hidden": True, "text": "cheap followers DM"}
    assert graph.get_object(media, fields="comments_count")["comments_count"] == 1
    assert client.post(spam, hide="false") == {"success": True}
    assert graph.get_object(spam, fields="hidden") == {"hidden": False, "id": spam}
    assert client.post(spam, hide="true") == {"success": True}
    assert graph.get_object(spam, fields="hidden")["hidden"] is True
    with pytest.raises(KeyError):
        emu.hide_ig_comment("17950000000000000")


def test_deleted_media_and_comments_are_gone(client: Client, emu: GraphApiEmulator) -> None:
    media = emu.add_ig_media("soon gone")
    top = emu.add_ig_comment(media, "jana_b", "hi")
    reply = emu.add_ig_comment(media, "tom_t", "hi too", parent=top)
    other = emu.add_ig_comment(media, "tom_t", "still here")
    graph = client.graph
    assert emu.delete(top)
    assert [c["id"] for c in graph.get_connections(media, "comments")["data"]] == [other]
    assert graph.get_object(media, fields="comments_count")["comments_count"] == 1
    for gone_id in (top, reply):
        error = error_of(partial(graph.get_object, gone_id))
        assert (error["code"], error["error_subcode"], error["type"]) == (100, 33, "GraphMethodException")
    assert emu.delete(media)
    for call in (lambda: graph.get_object(media), lambda: graph.get_connections(media, "comments"),
                 lambda: graph.get_object(other), lambda: graph.put_comment(media, "late")):
        error = error_of(call)
        assert (error["code"], error["error_subcode"]) == (100, 33)
    error = error_of(lambda: graph.get_object(media))
    assert error["message"].startswith(f"Unsupported get request. Object with ID '{media}' does not exist")
    assert client.last.status_code == 400 and client.usage()["type"] == "instagram"
    assert graph.get_connections(emu.ig_user_id, "media")["data"] == []


def test_media_vanishing_after_listing(client: Client, emu: GraphApiEmulator) -> None:
    media = emu.add_ig_media("here, then not")
    emu.add_ig_comment(media, "jana_b", "hi")
    emu.vanish_after_listing(media)
    graph = client.graph
    assert [m["id"] for m in graph.get_connections(emu.ig_user_id, "media")["data"]] == [media]
    error = error_of(lambda: graph.get_connections(media, "comments"))
    assert (error["code"], error["error_subcode"]) == (100, 33)
    assert graph.get_connections(emu.ig_user_id, "media")["data"] == []


# -- writing ----------------------------------------------------------------------------------------

def test_replies_as_the_account(client: Client, emu: GraphApiEmulator) -> None:
    media = emu.add_ig_media("new plans")
    top = emu.add_ig_comment(media, "jana_b", "zu teuer")
    nested = emu.add_ig_comment(media, "tom_t", "finde ich auch", parent=top)
    graph = client.graph
    on_top = graph.put_object(top, "replies", message="@jana_b schreib uns gern eine DM ✓")["id"]
    on_nested = graph.put_object(nested, "replies", message="@tom_t danke!")["id"]
    assert int(on_nested) > int(on_top) > int(nested)
    for made in (on_top, on_nested):
        got = graph.get_object(made, fields="parent_id,from,user,username")
        assert got == {"parent_id": top, "from": {"id": emu.ig_user_id, "username": "acme_mobile"},
                       "user": {"id": emu.ig_user_id}, "username": "acme_mobile", "id": made}
    assert [r["id"] for r in graph.get_connections(top, "replies")["data"]] == [nested, on_top, on_nested]
    assert graph.get_connections(nested, "replies")["data"] == []
    own = graph.put_comment(media, "Was meint ihr? 👇")["id"]
    assert graph.get_object(own, fields="text,parent_id") == {"text": "Was meint ihr? 👇", "id": own}
    assert graph.get_object(media, fields="comments_count")["comments_count"] == 5
    assert "id" in graph.put_object(top, "replies", message="x" * 2200)
    too_long = error_of(lambda: graph.put_object(top, "replies", message="x" * 2201))
    assert (too_long["code"], too_long["message"]) == (100, "(#100) Param message must be at most 2200 characters "
                                                            "long")
    assert client.last.status_code == 400
    assert error_of(lambda: graph.put_object(top, "replies", message=" "))["code"] == 100
    emu.hide_ig_comment(nested)
    hidden = error_of(lambda: graph.put_object(nested, "replies", message="hello?"))
    assert (client.last.status_code, hidden["code"], hidden["message"]) == (
        400, 100, "(#100) Cannot reply to a hidden comment")
    emu.hide_ig_comment(nested, hidden=False)
    emu.hide_ig_comment(top)
    for target in (top, nested):  # a reply under a hidden comment would land on it
        assert error_of(partial(graph.put_object, target, "replies", message="hi?"))["code"] == 100


def test_replies_to_mentions(client: Client, emu: GraphApiEmulator) -> None:
    mention = emu.add_ig_media("unboxing my new phone from @acme_mobile", owner="jana_b")
    elsewhere = emu.add_ig_media("sunset", owner="tom_t")
    comment = emu.add_ig_comment(elsewhere, "tom_t", "@acme_mobile is this 5G?")
    tagged = emu.add_ig_media("me and my phone", owner="sam_s", tagged=True)
    graph = client.graph
    on_media = graph.put_object(emu.ig_user_id, "mentions", media_id=mention, message="Enjoy it! 💙")["id"]
    assert emu.ig_store.comments[on_media].media.id == mention
    on_comment = graph.put_object(emu.ig_user_id, "mentions", media_id=elsewhere, comment_id=comment,
                                  message="@tom_t yes!")["id"]
    assert emu.ig_store.comments[on_comment].parent is emu.ig_store.comments[comment]
    assert error_of(lambda: graph.put_object(emu.ig_user_id, "mentions", media_id=tagged, message="hi"))["code"] == 100
    assert error_of(lambda: graph.put_object(emu.ig_user_id, "mentions", media_id=elsewhere, message="hi"))[
        "code"] == 100
    assert error_of(lambda: graph.put_comment(mention, "hi"))["error_subcode"] == 33  # only through /mentions


def test_another_pages_token_does_not_reach_the_account(emu: GraphApiEmulator) -> None:
    other = Client(emu, token=emu.add_page("100000000000777", "Another Page")).graph
    assert other.get_object("me", fields="id,instagram_business_account") == {"id": "100000000000777"}
    error = error_of(lambda: other.get_connections(emu.ig_user_id, "media"))
    assert (error["code"], error["error_subcode"]) == (100, 33)


@pytest.mark.parametrize("code", [341, 368])
def test_refused_replies(client: Client, emu: GraphApiEmulator, code: int) -> None:
    media = emu.add_ig_media("help")
    top = emu.add_ig_comment(media, "jana_b", "no signal")
    emu.refuse_comments(code, regain_minutes=30)
    assert error_of(lambda: client.graph.put_object(top, "replies", message="on it"))["code"] == code
    assert client.usage()["estimated_time_to_regain_access"] == 30
    assert "id" in client.graph.put_object(top, "replies", message="on it")


def test_duplicate_replies_when_asked(client: Client, emu: GraphApiEmulator) -> None:
    media = emu.add_ig_media("help")
    top = emu.add_ig_comment(media, "jana_b", "no signal")
    other = emu.add_ig_comment(media, "tom_t", "same")
    graph = client.graph
    emu.reject_duplicates = True
    assert "id" in graph.put_object(top, "replies", message="Sorry! DM us.")
    error = error_of(lambda: graph.put_object(top, "replies", message="Sorry! DM us. "))
    assert (error["code"], error["message"]) == (506, "(#506) Duplicate status message")
    assert "id" in graph.put_object(other, "replies", message="Sorry! DM us.")
    assert "id" in graph.put_object(top, "replies", message="Something else")


# -- permissions, tokens, limits ------------------------------------------------------------------------

def test_missing_permission(client: Client, emu: GraphApiEmulator) -> None:
    media = emu.add_ig_media("hi")
    top = emu.add_ig_comment(media, "jana_b", "hello")
    graph = client.graph
    emu.revoke("instagram_manage_comments")
    for call in (lambda: graph.get_connections(emu.ig_user_id, "media"),
                 lambda: graph.get_connections(media, "comments"),
                 lambda: graph.put_object(top, "replies", message="hi"), lambda: client.post(top, hide="true")):
        error = error_of(call)
        assert client.last.status_code == 403 and error["code"] == 10
        assert error["message"].startswith("(#10) This endpoint requires the 'instagram_manage_comments' permission")
    assert graph.get_object("me")["id"] == emu.page_id
    emu.revoke("instagram_basic")
    assert "'instagram_basic'" in error_of(lambda: graph.get_object(media))["message"]


def test_expired_token(client: Client, emu: GraphApiEmulator) -> None:
    emu.expire_token()
    error = error_of(lambda: client.graph.get_connections(emu.ig_user_id, "media"))
    assert (client.last.status_code, error["code"], error["error_subcode"]) == (401, 190, 463)
    assert error_of(lambda: Client(emu, token="stolen").graph.get_object(emu.ig_user_id))["code"] == 190


def test_usage_header_and_budget(client: Client, emu: GraphApiEmulator, clock: Any) -> None:
    emu.limits["instagram"] = 4
    graph = client.graph
    for expected in (25, 50, 75, 100):
        graph.get_connections(emu.ig_user_id, "media")
        usage = client.usage()
        assert usage == {"type": "instagram", "call_count": expected, "total_cputime": expected // 2,
                         "total_time": expected // 2, "estimated_time_to_regain_access": 60 if expected == 100 else 0}
        assert set(json.loads(client.last.headers["X-App-Usage"])) == {"call_count", "total_time", "total_cputime"}
    clock.advance(minutes=20)
    error = error_of(lambda: graph.get_object(emu.ig_user_id))
    assert (client.last.status_code, error["code"], error["message"]) == (
        400, 80002, "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again.")
    assert client.usage()["estimated_time_to_regain_access"] == 40
    graph.get_object("me")  # the page's own budget is apart
    assert json.loads(client.last.headers["X-Business-Use-Case-Usage"])[emu.page_id][0]["type"] == "pages"
    clock.advance(minutes=40)
    assert graph.get_object(emu.ig_user_id)["id"] == emu.ig_user_id


def test_throttle_80002(client: Client, emu: GraphApiEmulator, clock: Any) -> None:
    emu.throttle(80002, minutes=12)
    graph = client.graph
    assert error_of(lambda: graph.get_connections(emu.ig_user_id, "tags"))["code"] == 80002
    assert client.usage()["estimated_time_to_regain_access"] == 12
    assert graph.get_object("me")["id"] == emu.page_id  # only Instagram calls are held
    clock.advance(minutes=12)
    assert graph.get_connections(emu.ig_user_id, "tags") == {"data": []}


def test_rate_limit_burst_on_instagram_paths(client: Client, emu: GraphApiEmulator) -> None:
    media = emu.add_ig_media("hi")
    emu.faults.inject("rate_limit_burst:2", path_prefix=f"/{V}/{media}")
    graph = client.graph
    for _ in range(2):
        error = error_of(lambda: graph.get_connections(media, "comments"))
        assert (client.last.status_code, error["code"]) == (400, 80002)
        assert client.usage()["estimated_time_to_regain_access"] == emu.burst_regain_minutes
    assert graph.get_connections(media, "comments") == {"data": []}
    emu.faults.inject("rate_limit_burst:1")
    assert error_of(lambda: graph.get_object("me"))["code"] == 32  # pages keep theirs


def test_requests_to_counts_instagram_paths(client: Client, emu: GraphApiEmulator) -> None:
    media = emu.add_ig_media("hi")
    top = emu.add_ig_comment(media, "jana_b", "hello")
    client.graph.get_connections(media, "comments")
    client.graph.put_object(top, "replies", message="hi!")
    assert emu.requests_to("/comments") == 1 and emu.requests_to("/replies", method="POST") == 1


# -- generated activity -------------------------------------------------------------------------------

def _snapshot(emu: GraphApiEmulator) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    fb = [(p.id, p.author.name, p.message) for p in emu.store.posts.values()] + \
        [(c.id, c.author.name, c.message) for c in emu.store.comments.values()]
    ig = [(c.id, c.author.username, c.text) for c in emu.ig_store.comments.values()]
    return fb, ig


def test_grow_adds_instagram_activity_deterministically(clock: Any) -> None:
    def run(ig_media: int) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        with GraphApiEmulator(seed=3, clock=clock.timestamp, ig_media=ig_media) as emu:
            fb_ids = emu.grow(300)
            assert set(fb_ids) <= set(emu.store.posts) | set(emu.store.comments)
            return _snapshot(emu)

    fb, ig = run(6)
    assert (fb, ig) == run(6)
    assert run(0)[0] == fb  # the Facebook side does not depend on Instagram
    assert 120 <= len(ig) <= 150  # n // 2 items: a third of all (some become new media)
    handles = {c.handle for c in customer_pool(3)}
    authors = {author for _, author, _ in ig}
    assert "acme_mobile" in authors and len(authors - {"acme_mobile"}) > 50 and authors - {"acme_mobile"} <= handles
    with GraphApiEmulator(seed=3, clock=clock.timestamp) as emu:
        emu.grow(300)
        every = list(emu.ig_store.comments.values())
        comments = [c for c in every if c.media.own]
        mentions = [c for c in every if not c.media.own]
        assert mentions and all(emu.ig_store.mentions(c.text) and c.parent is None for c in mentions)
        assert any(c.parent is not None and c.author.id == emu.ig_user_id for c in comments)  # brand replies
        assert any(c.parent is not None and c.author.id != emu.ig_user_id for c in comments)  # follow-ups
        assert any(re.search(r"\b(ist|nicht|meine|Danke)\b", c.text) for c in comments)
        assert any(re.search(r"\b(my|the|is)\b", c.text) for c in comments)
        assert all(c.created <= clock.timestamp() for c in every)
        assert not any("@acme_help" in c.text or re.search(r"@acme\b", c.text) for c in comments)
        graph = Client(emu).graph
        media = graph.get_connections(emu.ig_user_id, "media", fields="id,comments_count")["data"]
        counted = sum(m["comments_count"] for m in media)
        listed = sum(1 + len(c["replies"]["data"]) for m in media
                     for c in graph.get_all_connections(m["id"], "comments", fields="id,replies.limit(50){id}"))
        assert counted == listed == len(comments)
        ids = emu.grow_ig(10, spread=False)
        assert len(ids) >= 10 and all(i in emu.ig_store.comments or i in emu.ig_store.media for i in ids)


def test_live_tick_puts_a_third_on_instagram(emu: GraphApiEmulator) -> None:
    before_fb = len(emu.store.posts) + len(emu.store.comments)
    for _ in range(30):
        emu.live_tick()
    fb = len(emu.store.posts) + len(emu.store.comments) - before_fb
    assert fb >= 20 and 7 <= len(emu.ig_store.comments) <= 10 and emu.ig_store.media  # and the media they need
    assert all(c.created == emu.clock() for c in emu.ig_store.comments.values())


# -- mention lookups and the mentions webhook --------------------------------------------------------

def test_mention_lookups(client: Client, emu: GraphApiEmulator) -> None:
    graph = client.graph
    media = emu.add_ig_mention_media("jana_b", "unboxing my new phone")
    assert emu.ig_store.media[media].caption == "unboxing my new phone @acme_mobile"
    elsewhere = emu.add_ig_media("sunset", owner="tom_t")
    comment = emu.add_ig_mention_comment(elsewhere, "tom_t", "is this 5G?")
    other = emu.add_ig_comment(elsewhere, "sam_s", "nice one")
    first = emu.add_ig_comment(media, "sam_s", "congrats")
    emu.add_ig_comment(media, "jana_b", "thanks!", parent=first)
    found = graph.get_object(emu.ig_user_id, fields=f"mentioned_media.media_id({media}){{id,caption,timestamp,"
                                                    "username,comments_count,permalink,owner}")
    seen = found["mentioned_media"]
    assert found["id"] == emu.ig_user_id and seen["id"] == media and seen["username"] == "jana_b"
    assert seen["caption"].endswith("@acme_mobile") and TIME_RE.match(seen["timestamp"])
    assert seen["owner"]["id"].isdigit() and seen["owner"]["id"] != emu.ig_user_id
    found = graph.get_object(emu.ig_user_id, fields=f"mentioned_comment.comment_id({comment}){{id,text,timestamp,"
                                                    "like_count,media{id,username,caption,permalink}}")
    seen = found["mentioned_comment"]
    assert seen["id"] == comment and seen["text"] == "@acme_mobile is this 5G?"
    assert seen["media"]["id"] == elsewhere and seen["media"]["username"] == "tom_t"
    assert "username" not in seen  # Instagram does not name a mentioning comment's author
    comments = graph.get_object(emu.ig_user_id, fields=f"mentioned_media.media_id({media})"
                                                       "{comments.limit(50){id,text,username,replies{id,text}}}")
    (listed,) = comments["mentioned_media"]["comments"]["data"]
    assert (listed["id"], listed["username"], listed["replies"]["data"][0]["text"]) == (first, "sam_s", "thanks!")
    own = emu.add_ig_media("our launch")
    for lookup in (f"mentioned_media.media_id({own}){{id}}", f"mentioned_media.media_id({elsewhere}){{id}}",
                   f"mentioned_comment.comment_id({other}){{id}}"):  # not mentions of the account
        assert error_of(partial(graph.get_object, emu.ig_user_id, fields=lookup))["code"] == 100
    missing = error_of(lambda: graph.get_object(emu.ig_user_id, fields="mentioned_comment{id}"))
    assert missing["code"] == 100 and "comment_id" in missing["message"]
    assert error_of(partial(graph.get_object, emu.ig_user_id,
                            fields=f"mentioned_comment.comment_id({comment}){{shoe_size}}"))["code"] == 100


class Receiver:
    """A local webhook callback that records each POST (headers, raw body) and answers `status`."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/instagram"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_mentions_webhook_is_signed_ordered_and_retried(emu: GraphApiEmulator, clock: Any) -> None:
    import hashlib
    import hmac

    from sandbox.instagram_webhooks import mention_webhook_body, sign_webhook

    receiver = Receiver()
    try:
        emu.add_ig_mention_media("jana_b", "before anyone listened")  # not subscribed yet: never sent
        emu.subscribe_webhook(receiver.url, "s3cret")
        media = emu.add_ig_mention_media("jana_b", "unboxing")
        elsewhere = emu.add_ig_media("sunset", owner="tom_t")
        comment = emu.add_ig_mention_comment(elsewhere, "tom_t", "is this 5G?")
        assert len(receiver.calls) == 2
        for headers, body in receiver.calls:
            expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
            assert headers["x-hub-signature-256"] == expected and headers["content-type"] == "application/json"
        values = [json.loads(body)["entry"][0]["changes"][0] for _, body in receiver.calls]
        assert values == [{"field": "mentions", "value": {"media_id": media}},
                          {"field": "mentions", "value": {"media_id": elsewhere, "comment_id": comment}}]
        entry = json.loads(receiver.calls[0][1])
        assert entry["object"] == "instagram" and entry["entry"][0]["id"] == emu.ig_user_id
        assert entry["entry"][0]["time"] == int(clock.timestamp())
        receiver.status = 500  # the callback fails: kept, sent again in order before the next one
        late = emu.add_ig_mention_media("sam_s", "my first week")
        assert emu.webhook_failures and emu.ig_webhooks.pending == 1
        receiver.status = 200
        later = emu.add_ig_mention_media("sam_s", "my second week")
        media_ids = [json.loads(b)["entry"][0]["changes"][0]["value"]["media_id"] for _, b in receiver.calls]
        assert media_ids == [media, elsewhere, late, late, later] and emu.retry_webhooks() == 0
        assert mention_webhook_body(emu.ig_user_id, later, at=clock.timestamp()) == receiver.calls[-1][1]
        assert sign_webhook(receiver.calls[-1][1], "s3cret") == receiver.calls[-1][0]["x-hub-signature-256"]
        grown = emu.grow_ig(80, spread=False)
        store = emu.ig_store
        mentioned = [i for i in grown if (i in store.media and store.mentioned_media(i) is not None)
                     or (i in store.comments and not store.comments[i].media.own)]
        assert mentioned and len(receiver.calls) == 5 + len(mentioned)
        emu.unsubscribe_webhook()
        emu.add_ig_mention_media("sam_s", "third week")
        assert len(receiver.calls) == 5 + len(mentioned)
    finally:
        receiver.close()
