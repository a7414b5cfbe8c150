"""Fixture data for the queue and web tests, written straight through the ORM."""

from __future__ import annotations

import base64
import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.config import BrandConfig, Config, QueueConfig, WebConfig
from models.domain import QueueState, ReplyState
from models.orm import Author, Customer, Mention, QueueItem, Reply, SavedReply, User
from responders import auth

PASSWORD = "correct horse battery"
SECRET_KEY = "test-secret-key-0123456789abcdef"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)
_hashes: dict[str, str] = {}


def make_config(**queue: Any) -> Config:
    return Config(
        brands=[BrandConfig(name="Acme Mobile", languages=["en", "de"]), BrandConfig(name="Other Brand")],
        web=WebConfig(secret_key=SecretStr(SECRET_KEY)),
        queue=QueueConfig(**queue) if queue else QueueConfig(),
    )


def make_user(session: Session, username: str, role: str = "agent", *, password: str = PASSWORD,
              active: bool = True) -> User:
    """A team member; the password hash is computed once per password (argon2 is slow on purpose)."""
    if password not in _hashes:
        _hashes[password] = auth.hash_password(password)
    user = User(username=username, password_hash=_hashes[password], role=role, active=active, created_at=T0)
    session.add(user)
    session.flush()
    return user


def make_customer(session: Session, name: str, **fields: Any) -> Customer:
    customer = Customer(display_name=name, first_seen_at=fields.pop("first_seen_at", T0 - timedelta(days=400)),
                        **fields)
    session.add(customer)
    session.flush()
    return customer


def make_author(session: Session, handle: str, *, platform: str = "x", name: str | None = None,
                followers: int | None = 120, customer: Customer | None = None, is_brand: bool = False) -> Author:
    existing = session.scalar(select(Author).where(Author.platform == platform, Author.handle == handle))
    if existing is not None:
        return existing
    author = Author(platform=platform, external_id=f"{platform}-{handle}-{next(_ids)}", handle=handle,
                    display_name=name or handle.replace("_", " ").title(), followers=followers,
                    customer_id=customer.id if customer else None, is_brand=is_brand)
    session.add(author)
    session.flush()
    return author


def make_mention(
    session: Session,
    text: str,
    *,
    author: Author | None = None,
    handle: str = "jane_doe",
    platform: str = "x",
    brand: str = "Acme Mobile",
    created_at: datetime | None = None,
    sentiment: str | None = "negative",
    negative: float = 0.9,
    priority: float = 0.5,
    reasons: list[str] | None = None,
    language: str | None = "en",
    conversation_id: str | None = None,
    is_own: bool = False,
    queued: bool = True,
    state: str = QueueState.NEW.value,
    assignee: User | None = None,
    claimed_at: datetime | None = None,
) -> Mention:
    """A mention (and, unless it is the brand's own or queued=False, its queue item)."""
    author = author or make_author(session, handle, platform=platform)
    number = next(_ids)
    created = created_at or T0 - timedelta(hours=1)
    mention = Mention(
        platform=platform, external_id=f"m{number}", brand=brand, source=f"{platform}:test", text=text,
        language=language, created_at=created, fetched_at=created, author=author,
        conversation_id=conversation_id, permalink=f"https://x.com/{author.handle}/status/{number}",
        is_own=is_own, sentiment_label=sentiment, score_negative=negative, score_neutral=(1 - negative) / 2,
        score_positive=(1 - negative) / 2, complaint_score=0.5, priority=priority,
        priority_reasons=reasons if reasons is not None else [f"negative {negative:.2f}", "waiting 1 h"],
    )
    session.add(mention)
    session.flush()
    if queued and not is_own:
        item = QueueItem(mention_id=mention.id, brand=brand, state=state, priority=priority, created_at=created,
                         assignee_id=assignee.id if assignee else None,
                         claimed_at=claimed_at if state == QueueState.CLAIMED.value else None,
                         closed_at=created + timedelta(minutes=30) if state in ("answered", "dismissed") else None)
        session.add(item)
        session.flush()
    return mention


def make_reply(session: Session, mention: Mention, user: User | None, text: str = "Sorry! We're on it.", *,
               state: str = ReplyState.SENT.value, sent_after: timedelta = timedelta(minutes=42),
               error: str | None = None) -> Reply:
    reply = Reply(mention_id=mention.id, user_id=user.id if user else None, platform=mention.platform, text=text,
                  state=state, idempotency_key=f"k{next(_ids)}", created_at=mention.created_at + sent_after,
                  sent_at=mention.created_at + sent_after if state == ReplyState.SENT.value else None,
                  error=error, attempts=1 if state in ("sent", "failed") else 0, retryable=False)
    session.add(reply)
    session.flush()
    return reply


def make_saved_reply(session: Session, name: str, text: str, language: str | None = "en") -> SavedReply:
    saved = SavedReply(name=name, text=text, language=language, created_at=T0, updated_at=T0)
    session.add(saved)
    session.flush()
    return saved


def item_of(session: Session, mention_id: int) -> QueueItem:
    item = session.scalar(select(QueueItem).where(QueueItem.mention_id == mention_id))
    assert item is not None
    session.refresh(item)
    return item


# --------------------------------------------------------------------------- HTTP helpers

CSRF_RE = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def csrf_of(client: TestClient, path: str = "/login") -> str:
    """The session's CSRF token: read from the (signed, not encrypted) session cookie, else from a page."""
    cookie = client.cookies.get("openear_session")
    if cookie:
        data = json.loads(base64.b64decode(cookie.split(".")[0]))
        if data.get("csrf"):
            return str(data["csrf"])
    response = client.get(path)
    match = CSRF_RE.search(response.text)
    assert match, f"no CSRF token on {path} ({response.status_code})"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    token = csrf_of(client, "/login")
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303, response.text[:500]
    return client


def post(client: TestClient, path: str, data: dict[str, Any] | None = None, *, follow: bool = False) -> Any:
    """A form POST carrying the session's CSRF token."""
    token = csrf_of(client, "/")
    return client.post(path, data={**(data or {}), "csrf_token": token}, follow_redirects=follow)
