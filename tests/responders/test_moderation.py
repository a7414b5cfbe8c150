"""Hiding a customer's Instagram comment from the review queue: through the real adapter over HTTP to
the Graph emulator, on both databases; refused for what Instagram does not let the brand hide."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from listener.platforms.base import ContentRejected
from listener.platforms.instagram import InstagramAccount, InstagramPlatform
from models.config import Config
from models.orm import AuditEvent, Mention
from responders.web import create_app
from sandbox.graph_api import GraphApiEmulator
from tests.responders.factories import login, make_user, post
from tests.support import make_poller


class _Sentiment:
    label, negative, neutral, positive, complaint = "negative", 0.9, 0.05, 0.05, 0.2


class _Classifier:
    def classify(self, texts: list[str]) -> list[_Sentiment]:
        return [_Sentiment() for _ in texts]


@pytest.fixture
def emulator(clock: Any) -> Iterator[GraphApiEmulator]:
    with GraphApiEmulator(seed=4, clock=clock.timestamp, page_posts=0, ig_media=0) as server:
        yield server


def test_an_agent_hides_and_shows_a_comment_on_instagram(emulator: GraphApiEmulator, clock: Any,
                                                         sessions: sessionmaker[Session], web_config: Config) -> None:
    adapter = InstagramPlatform([InstagramAccount("acme", emulator.ig_user_id, emulator.page_token())],
                                base_url=emulator.url, clock=clock)
    media = emulator.add_ig_media("Neue Tarife!", created=clock.timestamp() - 3600)
    abuse = emulator.add_ig_comment(media, "troll_99", "ihr seid alle Betrüger!!!")
    poller = make_poller(sessions, _Classifier(), clock=clock)
    assert poller.poll_once(adapter, adapter.sources()[0]).new == 2  # the media and the comment
    with sessions.begin() as session:
        make_user(session, "alice")
        ids = {m.external_id: m.id for m in session.scalars(select(Mention))}
    with TestClient(create_app(web_config, sessions, clock=clock, moderate=adapter.hide)) as client:
        login(client, "alice")
        page = client.get(f"/mentions/{ids[abuse]}").text
        assert 'id="hide"' in page and "Hide on Instagram" in page
        assert 'id="hide"' not in client.get(f"/mentions/{ids[media]}").text  # the brand's own media
        assert post(client, f"/mentions/{ids[abuse]}/hide", {"hidden": "1"}).status_code == 303
        assert emulator.ig_store.comments[abuse].hidden is True
        assert "Show again on Instagram" in client.get(f"/mentions/{ids[abuse]}").text
        again = post(client, f"/mentions/{ids[abuse]}/hide", {"hidden": "1"}, follow=True)
        assert "hidden already" in again.text
        assert post(client, f"/mentions/{ids[abuse]}/hide", {"hidden": "0"}).status_code == 303
        assert emulator.ig_store.comments[abuse].hidden is False
        refused = post(client, f"/mentions/{ids[media]}/hide", {"hidden": "1"}, follow=True)
        assert refused.status_code == 422 and "does not let openear hide this" in refused.text
        emulator.faults.inject("http_500")
        failed = post(client, f"/mentions/{ids[abuse]}/hide", {"hidden": "1"}, follow=True)
        assert "Instagram did not hide it" in failed.text
    with sessions() as session:
        stored = session.get(Mention, ids[abuse])
        assert stored is not None and stored.hidden is False  # the failed attempt changed nothing
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "hide").order_by(AuditEvent.id)).all()
        assert [e.detail["hidden"] for e in events] == [True, False]
    with TestClient(create_app(web_config, sessions, clock=clock)) as client:  # no moderation hook: no button
        login(client, "alice")
        assert 'id="hide"' not in client.get(f"/mentions/{ids[abuse]}").text


def test_the_adapter_hides_only_customers_comments_on_its_own_media(emulator: GraphApiEmulator, clock: Any) -> None:
    adapter = InstagramPlatform([InstagramAccount("acme", emulator.ig_user_id, emulator.page_token())],
                                base_url=emulator.url, clock=clock)
    media = emulator.add_ig_media("hello", created=clock.timestamp() - 60)
    emulator.add_ig_comment(media, "jana_b", "spam spam")
    emulator.add_ig_media("me and my phone", owner="sam_s", tagged=True, created=clock.timestamp() - 30)
    found = {m.external_id: m for m in adapter.fetch(adapter.sources()[0], None).mentions}
    before = emulator.requests_to("", method="POST")
    for mention in found.values():
        if mention.conversation_id == mention.external_id:  # media: the brand's own, or one that tags it
            with pytest.raises(ContentRejected):
                adapter.hide(mention)
    assert emulator.requests_to("", method="POST") == before  # refused before any request
