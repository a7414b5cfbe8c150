"""Sending (a real SMTP server on 127.0.0.1), once only with retries, the web archive's roles, the CLI."""

from __future__ import annotations

import email
import re
import socket
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import typer
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from models.config import Config, DigestConfig, SmtpConfig
from models.orm import Digest
from openear.commands import digest_cmd
from openear.context import CliContext
from responders.digest.archive import send_due, send_due_digests
from responders.web import create_app
from tests.responders.digest_fixtures import BASE, DAY, NOW, digest_config, seed_day
from tests.responders.factories import login, make_user
from tests.support import FakeClock


class Inbox:
    """An aiosmtpd handler that keeps what it accepts; `fail_next` answers 451 that many times."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.fail_next = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_next:
            self.fail_next -= 1
            return "451 4.3.0 mailbox busy, try later"
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def mail_config(port: int) -> Config:
    return digest_config(digest=DigestConfig(
        recipients=["boss@example.com", "cx@example.com"],
        smtp=SmtpConfig(host="127.0.0.1", port=port, security="none", sender="digest@acme.example")))


def test_email_is_delivered_once_and_parses_back(sessions: sessionmaker[Session], smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    with sessions.begin() as session:
        ids = seed_day(session).ids
    config = mail_config(port)
    first = send_due(config, sessions, "Acme Mobile", DAY, NOW)
    assert first.status == "sent" and first.created
    assert first.message_id and re.fullmatch(r"<digest\.acme-mobile\.2026-11-19\.[0-9a-f]{12}@acme\.example>",
                                             first.message_id)
    again = send_due(config, sessions, "Acme Mobile", DAY, NOW)
    assert (again.status, again.created, again.message_id) == ("already sent", False, first.message_id)
    assert len(inbox.messages) == 1
    sender, rcpts, raw = inbox.messages[0]
    assert sender == "digest@acme.example" and rcpts == ["boss@example.com", "cx@example.com"]
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg.get_content_type() == "multipart/related" and msg["Message-ID"] == first.message_id
    alternative, *images = msg.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    text_part, html_part = alternative.iter_parts()
    assert text_part.get_content_type() == "text/plain" and html_part.get_content_type() == "text/html"
    html, text = html_part.get_content(), text_part.get_content()
    refs = set(re.findall(r'src="cid:([^"]+)"', html))
    assert images and refs == {str(i["Content-ID"]).strip("<>") for i in images}
    assert all(i.get_content_type() == "image/png" and i.get_content().startswith(b"\x89PNG") for i in images)
    assert all(i.get_content_disposition() == "inline" for i in images)
    assert f"{BASE}/mentions/{ids['m5']}" in html and f"{BASE}/mentions/{ids['m5']}" in text
    with sessions() as session:
        row = session.scalars(select(Digest)).one()
        assert row.sent_at == NOW and row.send_attempts == 1 and row.last_error is None


def test_failed_send_is_recorded_retried_and_never_sent_twice(sessions: sessionmaker[Session],
                                                               smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    inbox.fail_next = 1
    config = mail_config(port)
    failed = send_due(config, sessions, "Acme Mobile", DAY, NOW)
    assert failed.status == "failed" and failed.error and "451" in failed.error
    with sessions() as session:
        row = session.scalars(select(Digest)).one()
        assert (row.sent_at, row.send_attempts) == (None, 1) and row.last_error and "mailbox busy" in row.last_error
    outcomes = send_due_digests(config, sessions, NOW.replace(hour=8))  # 09:00 Berlin: the 19th is due
    assert [(o.day, o.status) for o in outcomes] == [(DAY, "sent")]
    assert send_due_digests(config, sessions, NOW.replace(hour=9))[0].status == "already sent"
    assert len(inbox.messages) == 1
    with sessions() as session:
        row = session.scalars(select(Digest)).one()
        assert row.send_attempts == 2 and row.sent_at is not None and row.last_error is None


def test_crashed_transport_rolls_back_and_keeps_the_message_id(sessions: sessionmaker[Session]) -> None:
    """A crash after SMTP accepted (before the commit) leaves the digest unsent; the re-send has the same id."""
    config = mail_config(2525)
    ids: list[str] = []

    def crashing(rendered: Any, smtp: SmtpConfig, recipients: list[str], *, brand: str, day: str) -> str:
        from responders.digest.deliver import message_id

        ids.append(message_id(brand, day, smtp.sender))
        if len(ids) == 1:
            raise SystemExit("killed")  # not an Exception: the transaction rolls back, nothing is recorded
        return ids[-1]

    with pytest.raises(SystemExit):
        send_due(config, sessions, "Acme Mobile", DAY, NOW, transport=crashing)
    with sessions() as session:
        assert session.scalars(select(Digest)).one().sent_at is None
    assert send_due(config, sessions, "Acme Mobile", DAY, NOW, transport=crashing).status == "sent"
    assert ids[0] == ids[1]


def test_web_archive_is_for_managers(sessions: sessionmaker[Session], smtp: tuple[Inbox, int]) -> None:
    config = mail_config(smtp[1])
    with sessions.begin() as session:
        seed_day(session)
        make_user(session, "mia", "manager")
    send_due(config, sessions, "Acme Mobile", DAY, NOW)
    app = create_app(config, sessions, clock=FakeClock(NOW), secure_cookies=False)
    with TestClient(app) as anonymous:
        assert anonymous.get("/digests", follow_redirects=False).status_code == 303
    with TestClient(app) as agent:
        login(agent, "alice")
        for path in ("/digests", "/digests/2026-11-19", "/digests/2026-11-19/images/x"):
            assert agent.get(path).status_code == 403, path
    with TestClient(app) as manager:
        login(manager, "mia")
        listing = manager.get("/digests")
        assert listing.status_code == 200 and "/digests/2026-11-19?brand=Acme%20Mobile" in listing.text
        page = manager.get("/digests/2026-11-19?brand=Acme Mobile")
        assert page.status_code == 200 and "script-src" not in page.headers["content-security-policy"]
        srcs = re.findall(r'src="([^"]+)"', page.text)
        assert srcs and all(s.startswith("/digests/2026-11-19/images/") for s in srcs) and "cid:" not in page.text
        image = manager.get(srcs[0].replace("&amp;", "&"))
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
        assert manager.get("/digests/2026-11-18").status_code == 404
        assert manager.get("/digests/not-a-day").status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cli_writes_browser_ready_html(db_url: str, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with sessions.begin() as session:
        seed_day(session)
    cli = typer.Typer()
    cli.callback()(lambda: None)
    digest_cmd.register(cli)
    out = tmp_path / "digest.html"
    context = CliContext(config_path=tmp_path / "config.yaml", _config=digest_config(db_url))
    result = CliRunner().invoke(cli, ["digest", "--date", "2026-11-19", "--out", str(out)], obj=context)
    assert result.exit_code == 0, result.output
    assert "10 mentions, 7 complaints" in result.output
    html = out.read_text()
    assert "data:image/png;base64," in html and "cid:" not in html
    bad = CliRunner().invoke(cli, ["digest", "--date", "2026-13-40"], obj=context)
    assert bad.exit_code != 0
