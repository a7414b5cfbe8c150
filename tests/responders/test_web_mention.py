"""The mention page over HTTP: thread, cross-channel history, claims, replies, failures, dismissals,
corrections, notes, tags and saved replies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.config import Config
from models.orm import AuditEvent, Mention, MentionTag, Note, QueueItem, Reply, SentimentCorrection
from responders.web import create_app
from tests.responders.factories import (
    T0,
    csrf_of,
    item_of,
    login,
    make_author,
    make_customer,
    make_mention,
    make_reply,
    make_saved_reply,
    make_user,
    post,
)
from tests.support import FakeClock

Client = Callable[[], TestClient]


def _setup(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Jane complains on X; she wrote on Facebook before (answered by bob) and once more (dismissed)."""
    with sessions.begin() as s:
        alice, bob = make_user(s, "alice"), make_user(s, "bob")
        make_user(s, "boss", "manager")
        jane = make_customer(s, "Jane Doe", tags={"vip": True})
        on_x = make_author(s, "jane_doe", customer=jane, followers=5400)
        on_fb = make_author(s, "Jane D.", platform="facebook", customer=jane)
        old = make_mention(s, "Rechnung doppelt abgebucht!", author=on_fb, platform="facebook", state="answered",
                           created_at=T0 - timedelta(days=20), language="de")
        make_reply(s, old, bob, sent_after=timedelta(minutes=42))
        make_mention(s, "spam-like rant", author=on_fb, platform="facebook", state="dismissed",
                     created_at=T0 - timedelta(days=5))
        first = make_mention(s, "@acme my router is broken again", author=on_x, conversation_id="conv1",
                             created_at=T0 - timedelta(hours=2))
        make_mention(s, "@jane_doe sorry to hear that, please DM us", handle="acme", is_own=True,
                     conversation_id="conv1", created_at=T0 - timedelta(hours=1, minutes=50))
        current = make_mention(s, "@acme DM sent, still nothing!!", author=on_x, conversation_id="conv1",
                               created_at=T0 - timedelta(hours=1), priority=0.9)
        return {"alice": alice.id, "bob": bob.id, "current": current.id, "first": first.id, "old": old.id}


def test_mention_page_shows_thread_and_cross_channel_history(sessions: sessionmaker[Session],
                                                            new_client: Client) -> None:
    ids = _setup(sessions)
    client = login(new_client(), "alice")
    html = client.get(f"/mentions/{ids['current']}").text
    thread = html[html.index("Conversation"):html.index('id="composer"')]
    assert thread.index("my router is broken again") < thread.index("sorry to hear that") \
        < thread.index("DM sent, still nothing")
    assert '<span class="pill own">brand</span>' in thread
    history = html[html.index('id="history"'):html.index('id="notes"')]
    assert "Rechnung doppelt abgebucht!" in history and "answered by bob in 42 min" in history
    assert "dismissed" in history and "unanswered" in history  # the first X mention is still open
    assert "Facebook + X" in history
    assert "vip" in html and "5.4k" in html
    assert client.get("/mentions/999999").status_code == 404


def test_claim_then_second_agent_sees_holder(sessions: sessionmaker[Session], new_client: Client,
                                             clock: FakeClock) -> None:
    ids = _setup(sessions)
    alice, bob = login(new_client(), "alice"), login(new_client(), "bob")
    page = alice.get(f"/mentions/{ids['current']}").text
    assert 'id="claim"' in page and 'id="reply-text"' not in page
    assert post(alice, f"/mentions/{ids['current']}/claim").status_code == 303
    assert 'id="reply-text"' in alice.get(f"/mentions/{ids['current']}").text
    clock.advance(minutes=3)
    seen = bob.get(f"/mentions/{ids['current']}").text
    assert "<strong>alice</strong> is answering this since 2026-11-20 09:00 UTC" in seen
    assert 'id="reply-text"' not in seen and 'id="claim"' not in seen
    lost = post(bob, f"/mentions/{ids['current']}/claim")
    assert lost.status_code == 409 and "alice is working on this" in lost.text
    refused = post(bob, f"/mentions/{ids['current']}/reply", {"text": "me too"})
    assert refused.status_code == 409 and "me too" in refused.text  # the draft is kept
    with sessions() as s:
        assert s.scalars(select(Reply)).all()[1:] == []  # only bob's old reply from the fixture
    # idle for longer than the timeout: bob may take it over
    clock.advance(minutes=31)
    assert "has been idle for more than 30 min" in bob.get(f"/mentions/{ids['current']}").text
    assert post(bob, f"/mentions/{ids['current']}/claim").status_code == 303
    with sessions() as s:
        assert item_of(s, ids["current"]).assignee_id == ids["bob"]


def test_claim_race_over_http_has_one_winner(sessions: sessionmaker[Session], new_client: Client) -> None:
    ids = _setup(sessions)
    alice, bob = login(new_client(), "alice"), login(new_client(), "bob")
    results = [post(c, f"/mentions/{ids['current']}/claim").status_code for c in (alice, bob)]
    assert sorted(results) == [303, 409]


def test_reply_success_queues_a_draft_and_calls_the_hook(sessions: sessionmaker[Session], new_client: Client,
                                                        queued_replies: list[int]) -> None:
    ids = _setup(sessions)
    alice = login(new_client(), "alice")
    post(alice, f"/mentions/{ids['current']}/claim")
    response = post(alice, f"/mentions/{ids['current']}/reply", {"text": "Hi Jane, we are on it!"})
    assert response.status_code == 303 and response.headers["location"].endswith("#replies")
    with sessions() as s:
        reply = s.scalars(select(Reply).where(Reply.mention_id == ids["current"])).one()
        assert (reply.state, reply.user_id, reply.platform, reply.text) == ("draft", ids["alice"], "x",
                                                                            "Hi Jane, we are on it!")
        assert item_of(s, ids["current"]).state == "answered"
    assert queued_replies == [reply.id]
    page = alice.get(f"/mentions/{ids['current']}").text
    assert "Reply queued" in page and '<span class="pill r-draft">queued</span>' in page
    assert "Answered by <strong>alice</strong>" in page


def test_reply_without_a_dispatcher_stays_queued(sessions: sessionmaker[Session], web_config: Config,
                                                 clock: FakeClock) -> None:
    ids = _setup(sessions)
    with TestClient(create_app(web_config, sessions, clock=clock)) as client:
        login(client, "alice")
        post(client, f"/mentions/{ids['current']}/claim")
        assert post(client, f"/mentions/{ids['current']}/reply", {"text": "Queued only"}).status_code == 303
    with sessions() as s:
        assert s.scalars(select(Reply.state).where(Reply.mention_id == ids["current"])).one() == "draft"


def test_reply_over_the_limit_is_refused_and_kept(sessions: sessionmaker[Session], new_client: Client,
                                                 queued_replies: list[int]) -> None:
    ids = _setup(sessions)
    alice = login(new_client(), "alice")
    post(alice, f"/mentions/{ids['current']}/claim")
    html = alice.get(f"/mentions/{ids['current']}").text
    assert 'data-limit="280"' in html
    too_long = "x" * 281
    response = post(alice, f"/mentions/{ids['current']}/reply", {"text": too_long})
    assert response.status_code == 422 and too_long in response.text
    assert "281 characters (X counts every link as 23" in response.text and "X allows 280" in response.text
    assert queued_replies == []


def test_the_composer_counts_as_each_platform_counts(sessions: sessionmaker[Session], new_client: Client) -> None:
    """X weighs text by twitter-text v3 (a link is 23, CJK and emoji 2); Facebook counts characters.
    The expected counts follow twitter-text's published rules, not the code under test."""
    ids = _setup(sessions)
    alice = login(new_client(), "alice")
    post(alice, f"/mentions/{ids['current']}/claim")
    html = alice.get(f"/mentions/{ids['current']}").text
    assert f'data-length-url="/api/mentions/{ids["current"]}/reply-length"' in html
    token = csrf_of(alice, "/")

    def length(mention_id: int, text: str) -> dict[str, object]:
        response = alice.post(f"/api/mentions/{mention_id}/reply-length", json={"text": text},
                              headers={"X-CSRF-Token": token})
        assert response.status_code == 200, response.text
        return dict(response.json())

    long_link = "Status: https://status.example.com/" + "a" * 300
    assert length(ids["current"], long_link)["length"] == len("Status: ") + 23  # any URL counts 23
    assert length(ids["current"], "こんにちは")["length"] == 10  # CJK weighs 2
    assert length(ids["current"], "Danke 👍")["length"] == 8  # "Danke " 6 + one emoji 2
    over = length(ids["current"], "ü" * 281)
    assert over == {"length": 281, "limit": 280, "over": True, "rule": over["rule"]} and over["rule"]
    assert length(ids["old"], "こんにちは") == {"length": 5, "limit": 8000, "over": False, "rule": ""}  # Facebook
    refused = alice.post(f"/api/mentions/{ids['current']}/reply-length", json={"text": "x"})
    assert refused.status_code == 403  # the CSRF token is required as on every POST
    # a reply with a long link is not refused by X's count, though it has more than 280 characters
    assert len(long_link) > 280
    assert post(alice, f"/mentions/{ids['current']}/reply", {"text": long_link}).status_code == 303


def test_the_page_says_when_a_mention_was_edited_or_is_hidden(sessions: sessionmaker[Session],
                                                              new_client: Client) -> None:
    ids = _setup(sessions)
    alice = login(new_client(), "alice")
    assert "Edited by the author" not in alice.get(f"/mentions/{ids['current']}").text
    with sessions.begin() as s:
        mention = s.get(Mention, ids["current"])
        assert mention is not None
        mention.edited_at, mention.revision_id, mention.hidden = T0, "9999", True
    html = alice.get(f"/mentions/{ids['current']}").text
    assert "Edited by the author at" in html and "hides this from the public" in html


def test_failed_reply_shows_the_error_and_can_be_retried(sessions: sessionmaker[Session], new_client: Client,
                                                        queued_replies: list[int]) -> None:
    ids = _setup(sessions)
    with sessions.begin() as s:
        mention = s.get(Mention, ids["old"])
        assert mention is not None
        failed = make_reply(s, mention, None, "Danke für Ihre Geduld", state="failed",
                            error="The post you answered no longer exists (deleted or hidden); "
                                  "the reply was not posted.")
    alice = login(new_client(), "alice")
    assert "1 reply failed to send." in alice.get("/").text
    page = alice.get(f"/mentions/{ids['old']}").text
    assert "Not sent.</strong> The post you answered no longer exists" in page
    assert f'action="/replies/{failed.id}/retry"' in page
    assert post(alice, f"/replies/{failed.id}/retry").status_code == 303
    assert queued_replies == [failed.id]
    with sessions() as s:
        again = s.get(Reply, failed.id)
        assert again is not None and again.retryable and again.next_attempt_at == T0
        assert s.scalar(select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(1)) == "reply_retry"


def test_dismissal_with_reason(sessions: sessionmaker[Session], new_client: Client) -> None:
    ids = _setup(sessions)
    alice = login(new_client(), "alice")
    assert post(alice, f"/mentions/{ids['current']}/dismiss", {"reason": "whatever"}).status_code == 422
    assert post(alice, f"/mentions/{ids['current']}/dismiss", {"reason": "no_answer_needed"}).status_code == 303
    with sessions() as s:
        item = item_of(s, ids["current"])
        assert (item.state, item.dismiss_reason) == ("dismissed", "no_answer_needed")
    assert "— no answer needed." in alice.get(f"/mentions/{ids['current']}").text
    assert "DM sent, still nothing" not in alice.get("/").text


def test_saved_reply_placeholders_in_the_composer(sessions: sessionmaker[Session], new_client: Client) -> None:
    ids = _setup(sessions)
    with sessions.begin() as s:
        saved = make_saved_reply(s, "apology", "Hi {name} ({handle}), {agent} from {brand} here. <b>{oops}</b>")
    alice = login(new_client(), "alice")
    post(alice, f"/mentions/{ids['current']}/claim")
    expected = "Hi Jane Doe (@jane_doe), alice from Acme Mobile here. <b>{oops}</b>"
    page = alice.get(f"/mentions/{ids['current']}?template={saved.id}").text
    escaped = "Hi Jane Doe (@jane_doe), alice from Acme Mobile here. &lt;b&gt;{oops}&lt;/b&gt;"
    assert f">{escaped}</textarea>" in page and f'data-text="{escaped}"' in page
    api = alice.get(f"/api/mentions/{ids['current']}/saved-replies/{saved.id}").json()
    assert api["text"] == expected


def test_sentiment_correction_notes_and_tags(sessions: sessionmaker[Session], new_client: Client) -> None:
    ids = _setup(sessions)
    alice = login(new_client(), "alice")
    m = ids["current"]
    assert post(alice, f"/mentions/{m}/sentiment", {"label": "neutral"}).status_code == 303
    assert post(alice, f"/mentions/{m}/notes", {"text": "asked for DM twice", "on": "mention"}).status_code == 303
    assert post(alice, f"/mentions/{m}/notes", {"text": "prefers German", "on": "customer"}).status_code == 303
    assert post(alice, f"/mentions/{m}/tags", {"tag": "Router"}).status_code == 303
    page = alice.get(f"/mentions/{m}").text
    assert "asked for DM twice" in page and "prefers German" in page and "on the customer" in page
    assert ">router</span>" in page and "corrected by a human" in page
    with sessions() as s:
        assert s.scalars(select(SentimentCorrection.corrected_label)).one() == "neutral"
        assert s.scalar(select(Mention.sentiment_label).where(Mention.id == m)) == "neutral"
        assert len(s.scalars(select(Note)).all()) == 2
        assert s.scalars(select(MentionTag.tag)).one() == "router"
    # the customer note shows on every mention of that customer
    assert "prefers German" in alice.get(f"/mentions/{ids['first']}").text
    assert post(alice, f"/mentions/{m}/tags/remove", {"tag": "router"}).status_code == 303
    assert post(alice, f"/mentions/{m}/notes", {"text": "  "}).status_code == 422


def test_manager_reassigns_and_agent_cannot(sessions: sessionmaker[Session], new_client: Client) -> None:
    ids = _setup(sessions)
    alice, boss = login(new_client(), "alice"), login(new_client(), "boss")
    post(alice, f"/mentions/{ids['current']}/claim")
    assert post(alice, f"/mentions/{ids['current']}/reassign", {"user_id": ids["bob"]}).status_code == 403
    page = boss.get(f"/mentions/{ids['current']}").text
    assert 'action="/mentions/' in page and "Reassign" in page
    assert post(boss, f"/mentions/{ids['current']}/reassign", {"user_id": ids["bob"]}).status_code == 303
    with sessions() as s:
        item = s.scalar(select(QueueItem).where(QueueItem.mention_id == ids["current"]))
        assert item is not None and item.assignee_id == ids["bob"]
    assert post(alice, f"/mentions/{ids['current']}/release").status_code == 403


def test_heartbeat_keeps_the_claim(sessions: sessionmaker[Session], new_client: Client, clock: FakeClock) -> None:
    ids = _setup(sessions)
    alice, bob = login(new_client(), "alice"), login(new_client(), "bob")
    post(alice, f"/mentions/{ids['current']}/claim")
    token = alice.get("/").text.split('name="csrf-token" content="')[1].split('"')[0]
    for _ in range(3):
        clock.advance(minutes=20)
        beat = alice.post(f"/api/mentions/{ids['current']}/heartbeat", headers={"X-CSRF-Token": token})
        assert beat.json() == {"held": True}
    assert post(bob, f"/mentions/{ids['current']}/claim").status_code == 409
    assert post(alice, f"/mentions/{ids['current']}/release").status_code == 303
    assert post(bob, f"/mentions/{ids['current']}/claim").status_code == 303


def test_instagram_composer_says_how_replies_thread_and_refuses_tagged_media(
        sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
        lena = make_author(s, "lena.k", platform="instagram")
        tagged = make_mention(s, "Mein neues Handy von @acme_mobile", author=lena, platform="instagram")
        tagged.conversation_id = tagged.external_id  # a media that tags the brand: its own conversation
        top = make_mention(s, "Wann kommt 5G?", author=lena, platform="instagram", conversation_id="media1")
        top.in_reply_to_id = "media1"
        follow = make_mention(s, "Frage ich mich auch", author=lena, platform="instagram", conversation_id="media1",
                              queued=False)
        follow.in_reply_to_id = top.external_id
        follow_item = QueueItem(mention_id=follow.id, brand=follow.brand, state="new", priority=0.5,
                                created_at=follow.created_at)
        s.add(follow_item)
        ids = {"tagged": tagged.id, "top": top.id, "follow": follow.id}
    client = login(new_client(), "alice")
    notes = {}
    for name, mention_id in ids.items():
        assert post(client, f"/mentions/{mention_id}/claim").status_code == 303
        notes[name] = client.get(f"/mentions/{mention_id}").text
    assert "posted under its top-level comment" in notes["follow"]
    assert "top-level comment" not in notes["top"] and "tagged in" not in notes["top"]
    assert "does not let the account comment on posts it is tagged in" in notes["tagged"]
    refused = post(client, f"/mentions/{ids['tagged']}/reply", {"text": "Danke!"}, follow=True)
    assert "tagged in" in refused.text
    with sessions() as s:
        assert s.scalars(select(Reply)).all() == []
