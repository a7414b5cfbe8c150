"""Screenshot of the review queue with realistic demo data -> docs/queue.png (and docs/mention.png).

Usage: .venv/bin/python scripts/screenshot_queue.py [--out docs/queue.png]
Needs Chromium at /usr/bin/chromium (scripts/install-browser.sh) and the `playwright` package.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.config import BrandConfig, Config, WebConfig  # noqa: E402
from models.db import make_engine, session_factory, upgrade  # noqa: E402
from models.orm import Author, Customer, Mention, QueueItem, Reply, SavedReply, User  # noqa: E402
from responders.auth import hash_password  # noqa: E402
from responders.web import create_app  # noqa: E402

NOW = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
PASSWORD = "screenshot-password"

# (platform, handle, name, followers, text, language, sentiment, negative, priority, minutes ago, reasons, state)
MENTIONS = [
    ("x", "lena_k", "Lena Krüger", 48_200, "@acme_help third time I'm asking: my internet has been down since "
     "Monday, order #A-482913. Nobody answers. Completely unacceptable.", "en", "negative", 0.97, 0.91, 290,
     ["negative 0.97", "problem: down, unacceptable", "reference #A-482913", "waiting 5 h", "48k followers",
      "3 earlier conversations"], "new"),
    ("facebook", "1000231", "Markus Weber", None, "Seit drei Tagen kein Netz in Hamburg-Altona. Wann wird die "
     "Störung endlich behoben? Ich arbeite im Homeoffice!", "de", "negative", 0.93, 0.84, 200,
     ["negative 0.93", "problem: kein netz, störung", "asks the brand", "waiting 3 h", "customer since 2021"],
     "claimed"),
    ("x", "techreviewer", "Sam Ortiz", 812_000, "Tried @acme's new 5G plan for a week. Speeds are fine but the "
     "bill shows a roaming charge I never used. @acme_help can you explain?", "en", "negative", 0.71, 0.77, 95,
     ["negative 0.71", "problem: charged", "812k followers", "asks the brand", "waiting 1 h"], "new"),
    ("x", "jdoe_1988", "Jane Doe", 310, "@acme I was charged twice for November. Refund please!", "en",
     "negative", 0.88, 0.74, 150, ["negative 0.88", "problem: charged, refund", "waiting 2 h",
                                    "1 earlier conversation", "last complaint unanswered"], "new"),
    ("facebook", "1000877", "Petra Schmidt", None, "Rechnung doppelt abgebucht, Kundennummer 55128834. Bitte um "
     "Rückerstattung.", "de", "negative", 0.9, 0.69, 70, ["negative 0.90", "problem: abgebucht, doppelt",
                                                          "reference Kundennummer 55128834", "waiting 1 h"], "new"),
    ("x", "ravi_codes", "Ravi", 2_300, "anyone else getting no signal near Alexanderplatz? @acme", "en",
     "negative", 0.64, 0.58, 40, ["negative 0.64", "problem: no signal", "question", "waiting 40 min"], "new"),
    ("x", "mo_berlin", "Mo", 950, "@acme_help how do I move my contract to a new address?", "en", "neutral",
     0.22, 0.41, 25, ["asks the brand", "question", "negative 0.22", "waiting 25 min"], "claimed"),
    ("facebook", "1000456", "Julia Braun", None, "Wie kann ich meine eSIM auf ein neues Handy übertragen?", "de",
     "neutral", 0.15, 0.36, 18, ["asks the brand", "question", "negative 0.15", "waiting 18 min"], "new"),
    ("x", "happyhannah", "Hannah", 12_400, "Shout-out to @acme_help, fixed my router issue in 10 minutes 🙌",
     "en", "positive", 0.03, 0.18, 12, ["12k followers", "waiting 12 min"], "new"),
    ("x", "deals_bot", "Deals Bot", 40, "Cheap followers!!! visit totally-legit.example", "en", "neutral", 0.3,
     0.08, 5, ["waiting 5 min"], "new"),
]


def _build(sessions: object) -> None:
    with sessions.begin() as s:  # type: ignore[attr-defined]
        hashed = hash_password(PASSWORD)
        maria = User(username="maria", password_hash=hashed, role="manager", created_at=NOW)
        tom = User(username="tom", password_hash=hashed, role="agent", created_at=NOW)
        s.add_all([maria, tom])
        s.flush()
        customer = Customer(display_name="Lena Krüger", first_seen_at=NOW - timedelta(days=900), tags={"vip": True})
        s.add(customer)
        s.flush()
        for i, (platform, handle, name, followers, text, lang, label, neg, prio, ago, reasons, state) in \
                enumerate(MENTIONS):
            author = Author(platform=platform, external_id=f"a{i}", handle=handle, display_name=name,
                            followers=followers, customer_id=customer.id if handle == "lena_k" else None)
            created = NOW - timedelta(minutes=ago)
            mention = Mention(platform=platform, external_id=f"m{i}", brand="Acme Mobile", source="demo", text=text,
                              language=lang, created_at=created, fetched_at=created, author=author,
                              conversation_id=f"c{i}", permalink=f"https://x.com/{handle}/status/{i}",
                              sentiment_label=label, score_negative=neg, score_neutral=(1 - neg) / 2,
                              score_positive=(1 - neg) / 2, priority=prio, priority_reasons=reasons)
            s.add(mention)
            s.flush()
            s.add(QueueItem(mention_id=mention.id, brand="Acme Mobile", state=state, priority=prio,
                            created_at=created, assignee_id=tom.id if state == "claimed" else None,
                            claimed_at=NOW - timedelta(minutes=4) if state == "claimed" else None))
        lena = s.query(Author).filter_by(handle="lena_k").one()
        fb = Author(platform="facebook", external_id="lena-fb", handle="lena.krueger", display_name="Lena Krüger",
                    customer_id=customer.id)
        s.add(fb)
        for j, (text, days, platform, author) in enumerate([
            ("Router keeps rebooting every night, any idea?", 40, "x", lena),
            ("Mein Vertrag wurde ohne Rückmeldung verlängert.", 120, "facebook", fb),
            ("Still no internet, order #A-482913", 1, "x", lena),
        ]):
            created = NOW - timedelta(days=days)
            old = Mention(platform=platform, external_id=f"old{j}", brand="Acme Mobile", source="demo", text=text,
                          language="en", created_at=created, fetched_at=created, author=author,
                          sentiment_label="negative", score_negative=0.8, priority=0.6)
            s.add(old)
            s.flush()
            s.add(QueueItem(mention_id=old.id, brand="Acme Mobile", state="answered" if j < 2 else "new",
                            priority=0.6, created_at=created, closed_at=created + timedelta(minutes=35),
                            assignee_id=tom.id if j < 2 else None))
            if j < 2:
                sent = created + timedelta(minutes=35 + j * 50)
                s.add(Reply(mention_id=old.id, user_id=tom.id, platform=platform, text="We're on it!", state="sent",
                            idempotency_key=f"k{j}", created_at=created, sent_at=sent))
        s.add(SavedReply(name="Outage apology", language="en", created_at=NOW, updated_at=NOW,
                         text="Hi {name}, {agent} from {brand} here. Sorry for the trouble. We're looking into it "
                              "and will DM you within the hour."))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "queue.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/shot.db")
        upgrade(engine)
        sessions = session_factory(engine)
        _build(sessions)
        config = Config(brands=[BrandConfig(name="Acme Mobile")], web=WebConfig(secret_key=SecretStr("s" * 32)))
        app = create_app(config, sessions, clock=lambda: NOW)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync"])
                page = browser.new_page(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
                page.goto(base + "/login")
                page.fill("input[name=username]", "maria")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_selector("table.queue")
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                page.click("table.queue tbody tr:first-child a.text")
                page.wait_for_selector("#history")
                page.screenshot(path=str(args.out.with_name("mention.png")), full_page=True)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
            engine.dispose()
    print(f"wrote {args.out} and {args.out.with_name('mention.png')}")


if __name__ == "__main__":
    main()
