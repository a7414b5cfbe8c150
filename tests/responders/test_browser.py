"""A real Chromium drives the web app: log in, see the top complaint, claim it, read the customer's
history, use a saved reply, send, and see the reply recorded. Also: new mentions appear live, and the
page runs without a single console error (a CSP violation would show up here).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_engine, session_factory, upgrade
from models.domain import ReplyState
from models.orm import Mention, Reply, SavedReply
from responders.web import create_app
from tests.responders.factories import (
    make_author,
    make_config,
    make_customer,
    make_mention,
    make_reply,
    make_saved_reply,
    make_user,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PASSWORD = "browser-test-password"
ROUTER_REPLY = "Hi {name}, sorry! Hold the reset button for 10 s; if it still reboots we replace it (order {order})."

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium "
                                                     "(scripts/install-browser.sh installs it)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _data(sessions: sessionmaker[Session], now: datetime) -> None:
    with sessions.begin() as s:
        make_user(s, "alice", password=PASSWORD)
        bob = make_user(s, "bob", password=PASSWORD)
        jane = make_customer(s, "Jane Doe")
        x = make_author(s, "jane_doe", customer=jane, followers=5400)
        fb = make_author(s, "Jane D.", platform="facebook", customer=jane)
        old = make_mention(s, "Rechnung doppelt abgebucht, bitte erstatten!", author=fb, platform="facebook",
                           state="answered", created_at=now - timedelta(days=20), language="de")
        make_reply(s, old, bob, sent_after=timedelta(minutes=42))
        make_mention(s, "@acme my router is broken AGAIN and nobody answers", author=x, priority=0.93,
                     created_at=now - timedelta(hours=3),
                     reasons=["negative 0.94", "problem: broken", "waiting 3 h", "1 earlier conversation"])
        make_mention(s, "Is the new plan available in Berlin?", sentiment="neutral", negative=0.1, priority=0.35,
                     handle="curious_carl", created_at=now - timedelta(minutes=20))
        make_saved_reply(s, "Apology", "Hi {name}, {agent} from {brand} here. Sorry about this!")
        # two answers the team gave with a saved reply, and a new mention like them (suggested replies)
        router = make_saved_reply(s, "Router reboot", ROUTER_REPLY)
        for handle, text in (("rita_r", "my router keeps rebooting every few minutes"),
                             ("ron_r", "router keeps rebooting all the time since the update")):
            past = make_mention(s, text, handle=handle, state="answered", created_at=now - timedelta(days=3))
            make_reply(s, past, bob, router.text).saved_reply_id = router.id
        make_mention(s, "@acme the router keeps rebooting, order A7654321", handle="rob_reboot", priority=0.4,
                     created_at=now - timedelta(minutes=50))


def _mark_sent(sessions: sessionmaker[Session]) -> object:
    """A stand-in dispatcher: 'sends' the reply at once."""

    def on_reply_queued(reply_id: int) -> None:
        with sessions.begin() as s:
            reply = s.get(Reply, reply_id)
            assert reply is not None
            reply.transition(ReplyState.SENDING)
            reply.transition(ReplyState.SENT)
            reply.platform_reply_id = "1790000000000000001"

    return on_reply_queued


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, sessionmaker[Session]]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'browser.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    _data(sessions, datetime.now(UTC))
    app = create_app(make_config(), sessions, on_reply_queued=_mark_sent(sessions))  # type: ignore[arg-type]
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", sessions
    uv.should_exit = True
    thread.join(10)
    engine.dispose()


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        context.close()
        browser.close()


def test_agent_answers_the_top_complaint(server: tuple[str, sessionmaker[Session]], page: Page) -> None:
    base, sessions = server
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    page.goto(base + "/")
    expect(page).to_have_url(base + "/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Queue")

    first_row = page.locator("table.queue tbody tr").first
    expect(first_row).to_contain_text("my router is broken AGAIN")
    expect(first_row).to_contain_text("negative 0.94 · problem: broken · waiting 3 h · 1 earlier conversation")
    expect(first_row.locator(".sla")).to_contain_text("left")

    # a new mention arrives while the agent looks at the queue: the banner offers a refresh
    with sessions.begin() as s:
        make_mention(s, "Outage in Hamburg?!", handle="hh_user", priority=0.5)
    expect(page.locator("#new-banner")).to_be_visible(timeout=12_000)
    expect(page.locator("#new-count")).to_have_text("1")

    first_row.locator("a.text").click()
    expect(page.locator("#history")).to_contain_text("Rechnung doppelt abgebucht")
    expect(page.locator("#history")).to_contain_text("answered by bob in 42 min")
    page.click("#claim")
    expect(page.locator(".state-line.mine")).to_be_visible()

    textarea = page.locator("#reply-text")
    page.select_option("#template", label="Apology (en)")
    page.click("#template-form button")
    expect(textarea).to_have_value("Hi Jane Doe, alice from Acme Mobile here. Sorry about this!")
    textarea.press("End")
    textarea.type(" We fixed the router.")
    full = "Hi Jane Doe, alice from Acme Mobile here. Sorry about this! We fixed the router."
    expect(page.locator("#counter")).to_have_text(f"{len(full)} / 280")
    textarea.fill("x" * 281)
    expect(page.locator("#counter")).to_have_class("counter over")
    expect(page.locator("#send")).to_be_disabled()
    # X's count: a link is 23 whatever its length, emoji 2 (twitter-text v3)
    textarea.fill("See https://status.example.com/" + "a" * 300 + " 👍")
    expect(page.locator("#counter")).to_have_text(f"{len('See ') + 23 + 1 + 2} / 280")
    expect(page.locator("#send")).to_be_enabled()
    textarea.fill(full)
    page.click("#send")

    expect(page.locator("#replies .reply")).to_contain_text("We fixed the router.")
    expect(page.locator("#replies .pill")).to_have_text("sent")
    expect(page.locator("#composer")).to_contain_text("Answered by alice")
    with sessions() as s:
        reply = s.query(Reply).filter(Reply.state == "sent").order_by(Reply.id.desc()).first()
        assert reply is not None and reply.text.endswith("We fixed the router.")
    assert problems == []


def test_agent_uses_a_suggested_reply_and_sends_it(server: tuple[str, sessionmaker[Session]], page: Page) -> None:
    base, sessions = server
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    with sessions() as s:
        mention = s.query(Mention).filter(Mention.text.contains("order A7654321")).one()
        mention_id, name = mention.id, mention.author.display_name
    page.goto(base + "/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/mentions/{mention_id}")
    page.click("#claim")
    suggestions = page.locator("#suggestions .suggestion")
    expect(suggestions.first).to_contain_text("Saved reply: Router reboot")
    expect(suggestions.first).to_contain_text("used for 2 similar mentions")
    expect(suggestions.first).to_contain_text("router keeps rebooting")
    expect(suggestions.first).to_contain_text("did not come back unhappy")
    suggestions.first.locator("button").click()
    expected = f"Hi {name}, sorry! Hold the reset button for 10 s; if it still reboots we replace it (order A7654321)."
    textarea = page.locator("#reply-text")
    expect(textarea).to_have_value(expected)
    with sessions() as s:  # using a suggestion sends nothing
        assert s.query(Reply).filter(Reply.mention_id == mention_id).count() == 0
    page.click("#send")
    expect(page.locator("#replies .pill")).to_have_text("sent")
    with sessions() as s:
        reply = s.query(Reply).filter(Reply.mention_id == mention_id).one()
        saved = s.query(SavedReply).filter(SavedReply.name == "Router reboot").one()
        assert (reply.text, reply.saved_reply_id) == (expected, saved.id)
    assert problems == []
