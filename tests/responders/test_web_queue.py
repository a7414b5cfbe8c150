"""The queue page over HTTP: ranking and reasons, filters, search, pagination, live updates, hostile text."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.responders.factories import T0, login, make_author, make_mention, make_user
from tests.support import FakeClock

Client = Callable[[], TestClient]
ROW_TEXT = re.compile(r'<a class="text" href="/mentions/(\d+)"><bdi>(.*?)</bdi>', re.S)

HOSTILE = [
    "<script>alert('x')</script>",
    '"><img src=x onerror=alert(1)>',
    "Bestellung \u202egnp.exe kaputt",
    "{{ 7*7 }} {% raw %}",
    "A" * 10_000,
]


def _texts(html: str) -> list[str]:
    return [text for _, text in ROW_TEXT.findall(html)]


def test_queue_lists_open_items_by_priority_with_reasons(sessions: sessionmaker[Session], new_client: Client,
                                                         clock: FakeClock) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
        author = make_author(s, "bigmouth", followers=250_000)
        make_mention(s, "low", priority=0.1)
        make_mention(s, "router broken for 3 days", author=author, priority=0.95,
                     created_at=T0 - timedelta(hours=5),
                     reasons=["negative 0.94", "waiting 2 min", "250k followers", "12 earlier conversations"])
        make_mention(s, "done", priority=0.99, state="answered")
    client = login(new_client(), "alice")
    clock.advance(hours=1)
    html = client.get("/").text
    assert _texts(html) == ["router broken for 3 days", "low"]
    assert "negative 0.94 · waiting 6 h · 250k followers · 12 earlier conversations" in html
    assert "250k followers" in html and "@bigmouth" in html
    assert "overdue 2 h" in html  # SLA 4 h, waiting 6 h
    assert "2 open items" in html


def test_filters_and_search_over_http(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
        make_mention(s, "Mein Internet ist kaputt", language="de", priority=0.8)
        make_mention(s, "Facebook page broken", platform="facebook", handle="fbuser", priority=0.6)
        make_mention(s, "great service", sentiment="positive", priority=0.3, handle="happy_hank")
    client = login(new_client(), "alice")
    assert _texts(client.get("/?language=de").text) == ["Mein Internet ist kaputt"]
    assert _texts(client.get("/?platform=facebook").text) == ["Facebook page broken"]
    assert _texts(client.get("/?sentiment=positive").text) == ["great service"]
    assert _texts(client.get("/?q=INTERNET").text) == ["Mein Internet ist kaputt"]
    assert _texts(client.get("/?q=happy_h").text) == ["great service"]
    assert _texts(client.get("/?q=nothing+like+this").text) == []
    assert "Nothing matches these filters." in client.get("/?q=zzz").text
    # unknown filter values are ignored, never an error
    assert client.get("/?platform=myspace&state=bogus&page=abc").status_code == 200


def test_pagination_50_per_page(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
        author = make_author(s, "many")
        for i in range(55):
            make_mention(s, f"complaint number {i:02d}", author=author, priority=i / 100)
    client = login(new_client(), "alice")
    first = client.get("/").text
    assert len(_texts(first)) == 50 and _texts(first)[0] == "complaint number 54"
    assert 'rel="next"' in first and "55 open items" in first
    second = client.get("/?page=2").text
    assert _texts(second) == [f"complaint number {i:02d}" for i in (4, 3, 2, 1, 0)]
    assert 'rel="next"' not in second and 'rel="prev"' in second


def test_live_update_endpoint(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
        make_mention(s, "old one")
    client = login(new_client(), "alice")
    html = client.get("/").text
    last_id = re.search(r'data-last-id="(\d+)"', html).group(1)  # type: ignore[union-attr]
    assert 'data-poll-url="/api/queue/updates"' in html
    assert client.get(f"/api/queue/updates?since={last_id}").json()["count"] == 0
    with sessions.begin() as s:
        make_mention(s, "brand new <b>complaint</b>", platform="facebook", handle="newbie")
        make_mention(s, "another one")
    data = client.get(f"/api/queue/updates?since={last_id}").json()
    assert data["count"] == 2
    assert [i["text"] for i in data["items"]] == ["another one", "brand new <b>complaint</b>"]
    assert data["items"][1]["url"].startswith("/mentions/")
    filtered = client.get(f"/api/queue/updates?since={last_id}&platform=facebook").json()
    assert filtered["count"] == 1


def test_hostile_text_renders_inert(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
        evil = make_author(s, "evil", name='<img src=x onerror=alert(2)>\u202eeman')
        for i, text in enumerate(HOSTILE):
            make_mention(s, text, author=evil, priority=1 - i / 10,
                         reasons=["problem: <script>", 'reference "><svg onload=alert(3)>'])
    client = login(new_client(), "alice")
    html = client.get("/").text
    _assert_inert(html)
    assert "A" * 400 in html and "A" * 401 not in html  # long text is cut in the list
    for mention_id, _ in ROW_TEXT.findall(html):
        page = client.get(f"/mentions/{mention_id}").text
        _assert_inert(page)
    assert "A" * 10_000 in client.get(f"/mentions/{ROW_TEXT.findall(html)[-1][0]}").text
    assert _texts(client.get("/?q=%3Cscript%3E").text) == ["&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"]


def test_only_web_permalinks_are_linked(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
        mention = make_mention(s, "click me")
        mention.permalink = "javascript:alert(document.cookie)"
    client = login(new_client(), "alice")
    page = client.get(f"/mentions/{mention.id}").text
    assert "javascript:" not in page and "Open on X" not in page


def _assert_inert(html: str) -> None:
    """No hostile markup survives; it is all there as visible, escaped text."""
    for raw in ("<script>alert", "<img src=x", "<svg", "\u202e"):
        assert raw not in html, raw
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html  # the author's name
    assert 'title="hidden direction control U+202E">[RLO]</span>' in html
    assert "{{ 7*7 }} {% raw %}" in html  # text, never a template
