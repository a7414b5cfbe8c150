"""`openear demo`: the whole system on the sandbox with the embedded defaults, in one process.

Starts the platform emulators with a live feed of generated German and English mentions, writes a
demo config (secrets through environment variables, as in production), creates the SQLite
database and a demo login, polls once so the queue is not empty, then runs the scheduler and the
web app until Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import socket
from contextlib import ExitStack, suppress
from datetime import datetime
from importlib import import_module
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from sqlalchemy import select

from models.config_loader import load_config
from models.db import make_engine, upgrade
from models.orm import SavedReply, User, utcnow
from openear.app import OpenEar

console = Console()
DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"

CONFIG = """\
# Written by `openear demo`: the sandbox emulators stand in for X, Facebook and Instagram.
brands:
  - name: Acme Mobile
    languages: [en, de]
    timezone: Europe/Berlin
    accounts:
      x: [acme, acme_help]
      facebook: ["{page_id}"]
{instagram_account}    queries:
      x: ['(acme OR @acme OR @acme_help OR "acme mobile" OR #AcmeMobile) -is:retweet -from:acme -from:acme_help']
platforms:
  x:
    base_url: {x_url}
    bearer_token: ${{OPENEAR_DEMO_X_BEARER}}
    consumer_key: ${{OPENEAR_DEMO_X_CONSUMER_KEY}}
    consumer_secret: ${{OPENEAR_DEMO_X_CONSUMER_SECRET}}
    access_token: ${{OPENEAR_DEMO_X_ACCESS_TOKEN}}
    access_token_secret: ${{OPENEAR_DEMO_X_ACCESS_SECRET}}
{facebook}database:
  url: sqlite:///{db}
classifier:
  model: {model}
schedule:
  poll_interval_seconds: {{x: {interval}, facebook: {interval}, instagram: {interval}}}
  jitter_seconds: 1
  timezone: Europe/Berlin
queue:
  sla_hours: 2
digest:
  recipients: [manager@acme.example]
  smtp: {{host: 127.0.0.1, port: {smtp_port}, security: none, sender: openear-demo@acme.example}}
web:
  host: 127.0.0.1
  port: {port}
  secret_key: ${{OPENEAR_DEMO_SECRET_KEY}}
"""

FACEBOOK = """\
  facebook:
    base_url: {url}
    api_version: v25.0
    page_tokens:
      "{page_id}": ${{OPENEAR_DEMO_FB_PAGE_TOKEN}}
"""

INSTAGRAM = """\
  instagram:
    base_url: {url}
    api_version: v25.0
    account_tokens:
      "{account_id}": ${{OPENEAR_DEMO_FB_PAGE_TOKEN}}
    webhooks: {{app_secret: "${{OPENEAR_DEMO_IG_APP_SECRET}}", verify_token: "${{OPENEAR_DEMO_IG_VERIFY_TOKEN}}"}}
"""


def _start_emulators(stack: ExitStack, rate: float, backlog: int, seed: int, webhook_url: str) -> dict[str, Any]:
    """The X emulator, and the Facebook one where this build has it (its Instagram @mentions go to
    `webhook_url`, signed with a fresh app secret; the ones made before the web app is up are sent
    again, in order, with the next one, as Meta retries)."""
    from sandbox.x_api import XApiEmulator

    x = stack.enter_context(XApiEmulator(seed=seed))
    x.grow(backlog)
    if rate > 0:
        x.start_live(rate)
    creds = x.credentials
    os.environ.update({
        "OPENEAR_DEMO_X_BEARER": creds.bearer_token, "OPENEAR_DEMO_X_CONSUMER_KEY": creds.consumer_key,
        "OPENEAR_DEMO_X_CONSUMER_SECRET": creds.consumer_secret, "OPENEAR_DEMO_X_ACCESS_TOKEN": creds.access_token,
        "OPENEAR_DEMO_X_ACCESS_SECRET": creds.access_token_secret,
    })
    found: dict[str, Any] = {"x": x, "facebook": None}
    try:
        graph = import_module("sandbox.graph_api")
    except ModuleNotFoundError:
        return found
    fb = stack.enter_context(graph.GraphApiEmulator(seed=seed))
    os.environ["OPENEAR_DEMO_IG_APP_SECRET"] = secrets.token_urlsafe(24)
    os.environ["OPENEAR_DEMO_IG_VERIFY_TOKEN"] = secrets.token_urlsafe(24)
    fb.subscribe_webhook(webhook_url, os.environ["OPENEAR_DEMO_IG_APP_SECRET"])
    fb.grow(max(backlog // 2, 1))
    if rate > 0:
        fb.start_live(rate / 2)
    os.environ["OPENEAR_DEMO_FB_PAGE_TOKEN"] = fb.page_token()
    found["facebook"] = fb
    return found


class _MailDrop:
    """The demo's SMTP server: every message lands as an .eml file in the demo directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        path = self.directory / f"digest-{len(list(self.directory.glob('digest-*.eml'))) + 1}.eml"
        path.write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def _start_mail_drop(stack: ExitStack, directory: Path) -> int:
    from aiosmtpd.controller import Controller

    directory.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(_MailDrop(directory), hostname="127.0.0.1", port=port)
    controller.start()
    stack.callback(controller.stop)
    return port


def _digest_today(openear: OpenEar, directory: Path) -> str:
    """Build, archive and mail today's digest so far (the daemon sends yesterday's each morning)."""
    from responders.digest.archive import archive_digest, send_archived

    lines = []
    for brand in openear.config.brands:
        today = datetime.now(ZoneInfo(brand.timezone)).date()
        digest_id, created = archive_digest(openear.sessions, openear.config, brand.name, today, utcnow(),
                                            embedder=openear.embedder)
        outcome = send_archived(openear.sessions, openear.config, digest_id, utcnow(), created=created)
        lines.append(f"/digests/{today.isoformat()}?brand={brand.name.replace(' ', '+')} ({outcome.status}; "
                     f"mail in {directory})")
    return ", ".join(lines)


def _ensure_demo_user(openear: OpenEar) -> None:
    """The demo's admin and the team's saved replies (sandbox/saved_replies.py), once."""
    from responders.auth import create_user
    from responders.queue import save_saved_reply
    from sandbox.saved_replies import SAVED_REPLIES

    with openear.sessions.begin() as session:
        admin = session.scalar(select(User).where(User.username == DEMO_USER))
        if admin is None:
            admin = create_user(session, DEMO_USER, DEMO_PASSWORD, "admin", now=utcnow())
        if session.scalar(select(SavedReply.id).limit(1)) is None:
            for (language, _), (name, text) in SAVED_REPLIES.items():
                save_saved_reply(session, admin, name=name, text=text, language=language, now=utcnow())


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        directory: Path = typer.Option(Path(".openear/demo"), "--dir", help="Where the demo keeps its files."),
        port: int = typer.Option(8000, "--port", help="Port of the web app."),
        rate: float = typer.Option(0.5, "--rate", help="New mentions per second on each platform."),
        backlog: int = typer.Option(80, "--backlog", help="Mentions already there at start."),
        interval: int = typer.Option(10, "--interval", help="Seconds between polls."),
        model: str = typer.Option("default", "--model", help="Classifier: default (embedded), lexicon, or a model."),
        seed: int = typer.Option(0, "--seed", help="Seed of the generated feed."),
        fresh: bool = typer.Option(False, "--fresh", help="Start from an empty database."),
    ) -> None:
        """Run everything on the sandbox: emulators, poller, classifier, queue, web UI, replies."""
        directory.mkdir(parents=True, exist_ok=True)
        db = directory / "openear.db"
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        os.environ.setdefault("OPENEAR_DEMO_SECRET_KEY", secrets.token_urlsafe(32))
        with ExitStack() as stack:
            console.print("starting the X and Graph (Facebook, Instagram) emulators with a live feed ...")
            emulators = _start_emulators(stack, rate, backlog, seed, f"http://127.0.0.1:{port}/webhooks/instagram")
            fb = emulators["facebook"]
            facebook = FACEBOOK.format(url=fb.url, page_id=fb.page_id) if fb else ""
            ig_id = getattr(fb, "ig_user_id", None) if fb else None
            if ig_id:  # the Instagram account connected to the emulated page, on the same server and token
                facebook += INSTAGRAM.format(url=fb.url, account_id=ig_id)
            page_id = fb.page_id if fb else "100000000000001"
            mail_dir = directory / "mail"
            smtp_port = _start_mail_drop(stack, mail_dir)
            path = directory / "config.yaml"
            instagram_account = f'      instagram: ["{ig_id}"]\n' if ig_id else ""
            path.write_text(CONFIG.format(x_url=emulators["x"].url, facebook=facebook, page_id=page_id,
                                          instagram_account=instagram_account,
                                          db=db.resolve(), model=model, interval=interval, port=port,
                                          smtp_port=smtp_port))
            config = load_config(path)
            upgrade(make_engine(config.database.url, create_parent=True))
            openear = OpenEar(config)
            stack.callback(openear.close)
            _ensure_demo_user(openear)
            openear.preflight()
            console.print(f"loading the classifier ({model}) and polling once ...")
            for result in openear.poll_all():
                console.print(f"  {result.source}: {result.new} new" + (f", error: {result.error}" if result.error
                                                                         else ""))
            digest = _digest_today(openear, mail_dir)
            daemon = openear.build_daemon()
            daemon.start()
            stack.callback(daemon.shutdown)
            console.rule("[bold green]openear demo is running")
            console.print(f"  web app:   http://127.0.0.1:{port}/   login [bold]{DEMO_USER}[/] / "
                          f"[bold]{DEMO_PASSWORD}[/]")
            console.print(f"  X API:     {emulators['x'].url}" + (f"   Facebook Graph API: {fb.url}" if fb else ""))
            console.print(f"  digest:    http://127.0.0.1:{port}{digest}")
            console.print(f"  config:    {path}   status: http://127.0.0.1:{port}/status")
            console.print("  Ctrl-C stops everything")
            from openear.web import serve

            with suppress(KeyboardInterrupt):
                serve(openear, port=port)
            console.print("stopping ...")
