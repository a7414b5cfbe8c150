"""What every route shares: the app context, the signed-in user, roles, CSRF, flash messages, rendering."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from models.config import Config
from models.domain import MentionData, Role
from models.orm import User
from models.vectors import Embedder, HashEmbedder
from responders import sessions as web_sessions
from responders.auth import has_role
from responders.queue.intake import Intake
from responders.sessions import Lifetimes
from responders.suggestions import AnswerIndex
from responders.throttle import LoginThrottler

log = logging.getLogger(__name__)

MAX_ID = 2**63 - 1  # the largest id both databases store (BIGINT)
DbId = Annotated[int, Path(ge=1, le=MAX_ID, description="a row id")]
FormId = Annotated[int, Form(ge=1, le=MAX_ID, description="a row id")]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass
class WebContext:
    """The app's dependencies, handed in by `create_app` (stored on app.state.web)."""

    config: Config
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    on_reply_queued: Callable[[int], None] | None
    templates: Jinja2Templates
    moderate: Callable[[MentionData, bool], None] | None = None  # the platforms' hide (responders.queue.moderation)
    embedder: Embedder | None = None  # sentence vectors for suggested replies (none: the lexical HashEmbedder)
    throttler: LoginThrottler = field(init=False)
    lifetimes: Lifetimes = field(init=False)
    intake: Intake = field(init=False)
    suggestions: AnswerIndex = field(init=False)

    def __post_init__(self) -> None:
        web_config = self.config.web
        self.throttler = LoginThrottler(web_config.login)
        self.lifetimes = Lifetimes.of(web_config)
        self.intake = Intake(self.sessions, ranking=self.config.ranking, clock=self.clock)
        self.suggestions = AnswerIndex(self.embedder or HashEmbedder(), clock=self.clock)

    def notify_reply(self, reply_id: int) -> None:
        """Tell the dispatcher a reply is queued; without a hook (or if it fails) the reply stays queued."""
        if self.on_reply_queued is None:
            return
        try:
            self.on_reply_queued(reply_id)
        except Exception:  # the reply is committed; the dispatcher's sweep picks it up later
            log.exception("on_reply_queued(%s) failed; the reply stays queued", reply_id)


class LoginRequired(Exception):
    """No valid session: pages redirect to /login, JSON endpoints answer 401."""


def web(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.web
    return ctx


def db(request: Request) -> Iterator[Session]:
    """A session for reading; writes use `ctx.sessions.begin()` so each action is one transaction."""
    with web(request).sessions() as session:
        yield session


def csrf_token(request: Request) -> str:
    """The per-session CSRF token (created on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Every state-changing request carries the session's token (form field or X-CSRF-Token header)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    check_origin(request)
    expected = request.session.get("csrf")
    sent: Any = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = (await request.form()).get(CSRF_FIELD)
    if not isinstance(expected, str) or not isinstance(sent, str) or not hmac.compare_digest(
        expected.encode(), sent.encode()
    ):
        raise HTTPException(403, "The form's security token is missing or out of date. Reload the page and try again.")


def check_origin(request: Request) -> None:
    """Second CSRF layer: a state-changing request's Origin (else Referer), when sent, is this site.

    "This site" is the Host the request was sent to, or the origin of web.public_url (behind a proxy).
    """
    sent = request.headers.get("origin") or request.headers.get("referer")
    if sent is None:
        return
    parts = urlsplit(sent)
    public = urlsplit(web(request).config.web.public_url or "")
    same_host = bool(parts.netloc) and parts.netloc.lower() == request.headers.get("host", "").lower()
    same_public = bool(public.netloc) and (parts.scheme, parts.netloc.lower()) == (public.scheme,
                                                                                 public.netloc.lower())
    if not (same_host or same_public):
        log.warning("refused a %s to %s from foreign origin %.100r", request.method, request.url.path, sent)
        raise HTTPException(403, "This form was sent from another site. Open openear directly and try again.")


def query_int(value: str | None, default: int, low: int = 0, high: int = MAX_ID) -> int:
    """An integer query parameter, clamped to [low, high]; `default` when missing or not a number."""
    try:
        number = int(value) if value else default
    except ValueError:
        return default
    return min(max(number, low), high)


def client_address(request: Request) -> str | None:
    """The peer's address as the server sees it (behind a proxy: uvicorn's --proxy-headers set it)."""
    return request.client.host if request.client else None


def sign_in(request: Request, session: Session, user: User, now: datetime) -> None:
    """A fresh server-side session for `user` (no fixation: everything from before login is dropped)."""
    token, _row = web_sessions.open_session(session, user, now=now, client=client_address(request))
    request.session.clear()
    request.session.update({"sid": token, "csrf": secrets.token_urlsafe(32)})


def current_user(request: Request, session: Session = Depends(db)) -> User:
    """The signed-in, active user of a live server-side session; otherwise LoginRequired."""
    ctx = web(request)
    found = web_sessions.resolve(session, request.session.get("sid"), now=ctx.clock(), lifetimes=ctx.lifetimes)
    if found is None:
        request.session.clear()
        raise LoginRequired()
    web_session, user = found
    session.commit()  # the touch of last_seen_at, if any
    session.expunge(user)
    request.state.user = user
    request.state.web_session_id = web_session.id
    return user


def require(role: Role) -> Callable[..., User]:
    """A dependency: the signed-in user, who must have `role` (or a higher one); else 403."""

    def dependency(user: User = Depends(current_user)) -> User:
        if not has_role(user, role):
            raise HTTPException(403, f"This page is for the {role.value} role and above.")
        return user

    return dependency


def flash(request: Request, message: str, kind: str = "ok") -> None:
    messages = list(request.session.get("flash", []))[-4:]
    messages.append([kind, message])
    request.session["flash"] = messages


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    """A page with the shared context: user, CSRF token, flash messages, the app clock's now."""
    ctx = web(request)
    user = getattr(request.state, "user", None)
    base = {
        "user": user,
        "csrf": csrf_token(request),
        "flashes": request.session.pop("flash", []) if "flash" in request.session else [],
        "now": ctx.clock(),
        "config": ctx.config,
        "is_manager": user is not None and has_role(user, Role.MANAGER),
        "is_admin": user is not None and has_role(user, Role.ADMIN),
    }
    return ctx.templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code,
                                          headers=headers)
