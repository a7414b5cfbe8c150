"""Instagram @mentions on other accounts' media: Meta's webhook into the web app's /webhooks/instagram,
the notifications inbox, the mentions source's lookups and replies through POST /{ig-user-id}/mentions.

The emulator delivers its webhooks over real HTTP to a local server that hands each request to the
web app; signatures in the checks here are computed with `hmac` in the test, not by the code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from listener.platforms.base import RateLimited, Unverifiable
from listener.platforms.instagram import InstagramAccount, InstagramPlatform, from_config
from listener.platforms.instagram.mentions import UNNAMED_NAME, MentionsCursor
from models import inbox
from models.config import Config
from models.config_loader import parse_config
from models.inbox import SETTLE, DbInbox
from models.orm import Mention, PlatformNotification, QueueItem, Reply
from responders.web import create_app
from sandbox.graph_api import GraphApiEmulator
from sandbox.instagram_webhooks import mention_webhook_body
from tests.support import make_poller

SECRET = "app-secret-for-tests"
VERIFY = "verify-token-for-tests"
PATH = "/webhooks/instagram"


@pytest.fixture
def emulator(clock: Any) -> Iterator[GraphApiEmulator]:
    with GraphApiEmulator(seed=11, clock=clock.timestamp, page_posts=0, ig_media=0) as server:
        yield server


def config_for(emulator: GraphApiEmulator, webhooks: bool = True) -> Config:
    hooks = f', webhooks: {{app_secret: "{SECRET}", verify_token: "{VERIFY}"}}' if webhooks else ""
    return parse_config(f"""
brands:
  - name: acme
    accounts: {{instagram: ["{emulator.ig_user_id}"]}}
platforms:
  instagram: {{base_url: "{emulator.url}",
              account_tokens: {{"{emulator.ig_user_id}": "{emulator.page_token()}"}}{hooks}}}
web: {{secret_key: "test-secret-key-0123456789"}}
""")


@pytest.fixture
def web(emulator: GraphApiEmulator, sessions: sessionmaker[Session], clock: Any) -> Iterator[TestClient]:
    with TestClient(create_app(config_for(emulator), sessions, clock=clock)) as client:
        yield client


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def rows(sessions: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with sessions() as session:
        return [(n.account_id, n.media_id, n.comment_id) for n in
                session.scalars(select(PlatformNotification).order_by(PlatformNotification.id))]


class Bridge:
    """A local HTTP callback that hands every delivery to the web app (headers and raw body unchanged)."""

    def __init__(self, client: TestClient) -> None:
        self.answers: list[int] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = client.post(self.path, content=body, headers=dict(self.headers.items()))
                outer.answers.append(answer.status_code)
                self.send_response(answer.status_code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{PATH}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bridge(web: TestClient, emulator: GraphApiEmulator) -> Iterator[Bridge]:
    bridge = Bridge(web)
    emulator.subscribe_webhook(bridge.url, SECRET)
    yield bridge
    bridge.close()


# -- the webhook endpoint ----------------------------------------------------------------------------

def test_the_subscription_check_echoes_the_challenge_only_with_the_verify_token(web: TestClient) -> None:
    ok = web.get(PATH, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"})
    assert (ok.status_code, ok.text) == (200, "1158201444")
    for params in ({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
                   {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"}, {}):
        answer = web.get(PATH, params=params)
        assert answer.status_code == 403 and "1" not in answer.text.replace("403", "")


def test_without_webhooks_configured_the_endpoint_is_not_there(emulator: GraphApiEmulator,
                                                               sessions: sessionmaker[Session], clock: Any) -> None:
    with TestClient(create_app(config_for(emulator, webhooks=False), sessions, clock=clock)) as client:
        body = mention_webhook_body(emulator.ig_user_id, "17880000000000001")
        assert client.post(PATH, content=body, headers=signed(body)).status_code == 404
        assert client.get(PATH, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY}).status_code == 404
    assert rows(sessions) == []


def test_unsigned_and_wrongly_signed_deliveries_are_refused(web: TestClient, emulator: GraphApiEmulator,
                                                            sessions: sessionmaker[Session]) -> None:
    body = mention_webhook_body(emulator.ig_user_id, "17880000000000001")
    for headers in ({"Content-Type": "application/json"}, signed(body, "another-secret"),
                    {**signed(body), "X-Hub-Signature-256": signed(body)["X-Hub-Signature-256"][7:]},
                    signed(body + b" ")):
        answer = web.post(PATH, content=body, headers=headers)
        assert answer.status_code == 403 and answer.json() == {"error": "missing or wrong X-Hub-Signature-256"}
    assert rows(sessions) == []


def test_each_mention_is_recorded_once(web: TestClient, emulator: GraphApiEmulator,
                                       sessions: sessionmaker[Session]) -> None:
    account = emulator.ig_user_id
    on_media = mention_webhook_body(account, "17880000000000001")
    on_comment = mention_webhook_body(account, "17880000000000002", "17950000000000003")
    assert web.post(PATH, content=on_media, headers=signed(on_media)).json() == {"recorded": 1, "skipped": 0}
    assert web.post(PATH, content=on_media, headers=signed(on_media)).json() == {"recorded": 0, "skipped": 0}
    assert web.post(PATH, content=on_comment, headers=signed(on_comment)).json()["recorded"] == 1
    mixed = json.dumps({"object": "instagram", "entry": [
        {"id": "17841400000000999", "time": 1, "changes": [{"field": "mentions", "value": {"media_id": "1"}}]},
        {"id": account, "time": 1, "changes": [{"field": "comments", "value": {"id": "5", "text": "x"}},
                                               {"field": "mentions", "value": {"media_id": "17880000000000004"}}]},
    ]}).encode()
    assert web.post(PATH, content=mixed, headers=signed(mixed)).json() == {"recorded": 1, "skipped": 1}
    assert rows(sessions) == [(account, "17880000000000001", ""), (account, "17880000000000002", "17950000000000003"),
                              (account, "17880000000000004", "")]
    for bad in (b"not json", b'{"object": "page", "entry": []}',
                json.dumps({"object": "instagram", "entry": [{"id": account, "changes": [
                    {"field": "mentions", "value": {"media_id": "../../me"}}]}]}).encode()):
        answer = web.post(PATH, content=bad, headers=signed(bad))
        assert answer.status_code == 400 and "malformed" in answer.json()["error"]
    assert len(rows(sessions)) == 3


# -- the mentions source ------------------------------------------------------------------------------

def adapter_for(emulator: GraphApiEmulator, sessions: sessionmaker[Session], clock: Any) -> InstagramPlatform:
    adapter = from_config(config_for(emulator), clock=clock, inbox=DbInbox(sessions))
    assert adapter is not None
    return adapter


def mentions_source(adapter: InstagramPlatform) -> Any:
    (source,) = [s for s in adapter.sources() if s.kind == "mentions"]
    return source


def test_sources_only_with_webhooks_and_an_inbox(emulator: GraphApiEmulator, sessions: sessionmaker[Session],
                                                 clock: Any) -> None:
    account = emulator.ig_user_id
    assert [s.name for s in adapter_for(emulator, sessions, clock).sources()] == [
        f"instagram:acme:account:{account}", f"instagram:acme:mentions:{account}"]
    plain = from_config(config_for(emulator, webhooks=False), clock=clock, inbox=DbInbox(sessions))
    assert plain is not None and [s.kind for s in plain.sources()] == ["account"]
    no_inbox = from_config(config_for(emulator), clock=clock)
    assert no_inbox is not None and [s.kind for s in no_inbox.sources()] == ["account"]
    from openear.commands.config_cmd import config_warnings

    (warning,) = [w for w in config_warnings(config_for(emulator)) if "webhooks" in w]
    assert "https" in warning and "/webhooks/instagram" in warning
    assert not [w for w in config_warnings(config_for(emulator, webhooks=False)) if "webhooks" in w]


class _Sentiment:
    label, negative, neutral, positive, complaint = "negative", 0.7, 0.2, 0.1, 0.8


class _Classifier:
    def classify(self, texts: list[str]) -> list[_Sentiment]:
        return [_Sentiment() for _ in texts]


def test_mentions_become_mentions_once_and_are_answered_through_mentions(
        emulator: GraphApiEmulator, sessions: sessionmaker[Session], clock: Any, bridge: Bridge) -> None:
    from responders import queue
    from responders.dispatch import Dispatcher
    from tests.responders.factories import make_user

    caption = emulator.add_ig_mention_media("jana_becker", "Mein neues Handy ist nach 2 Tagen kaputt")
    elsewhere = emulator.add_ig_media("Sonnenuntergang", owner="tom_t")
    comment = emulator.add_ig_mention_comment(elsewhere, "sam_s", "kein Netz seit gestern")
    emulator.add_ig_comment(elsewhere, "lena_k", "schönes Foto")  # no mention: never heard
    assert bridge.answers == [200, 200]
    adapter = adapter_for(emulator, sessions, clock)
    source = mentions_source(adapter)
    poller = make_poller(sessions, _Classifier(), clock=clock)
    assert poller.poll_once(adapter, source).new == 2
    assert poller.poll_once(adapter, source).new == 0
    again = mention_webhook_body(emulator.ig_user_id, caption)  # Meta delivers one again
    assert bridge.answers[-1] == 200 and json.loads(
        TestClient(create_app(config_for(emulator), sessions, clock=clock)).post(
            PATH, content=again, headers=signed(again)).text)["recorded"] == 0
    with sessions() as session:
        stored = {m.external_id: m for m in session.scalars(select(Mention))}
        assert set(stored) == {caption, comment}
        media, said = stored[caption], stored[comment]
        assert (media.author.external_id, media.author.handle, media.conversation_id) == (
            "username:jana_becker", "jana_becker", caption)
        assert media.text.endswith("@acme_mobile") and media.permalink.startswith("https://www.instagram.com/p/")
        assert (said.author.display_name, said.conversation_id, said.in_reply_to_id) == (
            UNNAMED_NAME, elsewhere, elsewhere)
        assert said.text == "@acme_mobile kein Netz seit gestern" and said.source == source.name
        assert session.scalar(select(func.count()).select_from(QueueItem)) == 2
    with sessions.begin() as session:
        user = make_user(session, "agent", "agent")
        replies = {}
        for item in session.scalars(select(QueueItem)):
            mention = session.get(Mention, item.mention_id)
            assert mention is not None
            queue.claim(session, item.id, user, now=clock(), timeout_minutes=30)
            replies[mention.external_id] = queue.submit_reply(
                session, item.id, user, "Das tut uns leid! Schreib uns bitte eine DM.", now=clock(),
                timeout_minutes=30).id
    real_post = adapter.post_reply

    def post_then_die(mention: Any, text: str) -> str:
        real_post(mention, text)
        raise KeyboardInterrupt("killed after Instagram accepted the reply")

    crashing = adapter_for(emulator, sessions, clock)
    crashing.post_reply = post_then_die  # type: ignore[method-assign]
    for external_id in (caption, comment):
        with pytest.raises(KeyboardInterrupt):
            Dispatcher(sessions, {"instagram": crashing}, clock=clock,
                       lease=timedelta(minutes=2)).dispatch(replies[external_id])
    assert emulator.requests_to("/mentions", method="POST") == 2
    clock.advance(minutes=3)
    outcomes = {o.reply_id: o for o in Dispatcher(sessions, {"instagram": adapter_for(emulator, sessions, clock)},
                                                  clock=clock, lease=timedelta(minutes=2)).dispatch_due()}
    on_caption, on_comment = outcomes[replies[caption]], outcomes[replies[comment]]
    assert on_caption.state == "sent" and on_caption.recovered  # found under the mentioned media
    assert on_comment.state == "failed" and "Not sent again" in (on_comment.error or "")  # no read: a person looks
    assert emulator.requests_to("/mentions", method="POST") == 2  # neither was posted twice
    posted = {c.parent.id if c.parent else c.media.id: c for c in emulator.ig_store.comments.values()
              if c.author.id == emulator.ig_user_id}
    assert set(posted) == {caption, comment}
    assert posted[caption].id == on_caption.platform_reply_id
    with sessions() as session:
        held = session.get(Reply, replies[comment])
        assert held is not None and (held.state, held.retryable) == ("failed", False)
        assert "open the comment on Instagram" in (held.error or "")


def test_a_gone_mention_is_skipped_and_a_rate_limit_keeps_what_was_read(
        emulator: GraphApiEmulator, sessions: sessionmaker[Session], clock: Any, bridge: Bridge) -> None:
    first = emulator.add_ig_mention_media("jana_becker", "one")
    gone = emulator.add_ig_mention_media("jana_becker", "two")
    third = emulator.add_ig_mention_media("jana_becker", "three")
    emulator.delete(gone)
    adapter = adapter_for(emulator, sessions, clock)
    source = mentions_source(adapter)
    result = adapter.fetch(source, None)
    assert [m.external_id for m in result.mentions] == [first, third] and result.interrupted is None
    cursor = MentionsCursor.parse(result.next_cursor)
    assert len(cursor.read) == 3 and adapter.fetch(source, result.next_cursor).mentions == []
    clock.advance(seconds=SETTLE.total_seconds() + 60)
    late = [emulator.add_ig_mention_media("tom_t", f"late {i}") for i in range(3)]
    emulator.throttle(80002, minutes=30)
    with pytest.raises(RateLimited):
        adapter.fetch(source, result.next_cursor)  # nothing read before the limit: the limit itself
    emulator.reset_rate_limits()
    emulator.faults.inject("rate_limit_burst:1", after=1)  # the first lookup, then the limit
    partial = adapter.fetch(source, result.next_cursor)
    assert [m.external_id for m in partial.mentions] == late[:1] and partial.interrupted is not None
    rest = adapter.fetch(source, partial.next_cursor)
    assert [m.external_id for m in rest.mentions] == late[1:] and rest.interrupted is None
    assert MentionsCursor.parse(rest.next_cursor).read.keys().isdisjoint(cursor.read)  # settled ones dropped


def test_find_reply_refuses_to_guess_for_comment_mentions(emulator: GraphApiEmulator,
                                                          sessions: sessionmaker[Session], clock: Any) -> None:
    elsewhere = emulator.add_ig_media("sunset", owner="tom_t")
    comment = emulator.add_ig_mention_comment(elsewhere, "sam_s", "hello")
    with sessions.begin() as session:
        inbox.record(session, "instagram", emulator.ig_user_id, elsewhere, comment, clock())
    adapter = adapter_for(emulator, sessions, clock)
    (mention,) = adapter.fetch(mentions_source(adapter), None).mentions
    with pytest.raises(Unverifiable, match="Instagram"):
        adapter.find_reply(mention, "hi")
    own = emulator.add_ig_media("our launch")
    on_own = emulator.add_ig_comment(own, "sam_s", "@acme_mobile where is my order?")
    with sessions.begin() as session:  # Meta may notify it; the account source hears it with its author
        inbox.record(session, "instagram", emulator.ig_user_id, own, on_own, clock())
    assert [m.external_id for m in adapter.fetch(mentions_source(adapter), None).mentions] == [comment]
    assert [m.author.handle for m in adapter.fetch(adapter.sources()[0], None).mentions
            if m.external_id == on_own] == ["sam_s"]
    assert adapter.post_reply(mention, "@sam_s hi!") in emulator.ig_store.comments
    direct = InstagramPlatform([InstagramAccount("acme", emulator.ig_user_id, emulator.page_token())],
                               base_url=emulator.url, clock=clock)
    assert [s.kind for s in direct.sources()] == ["account"]
