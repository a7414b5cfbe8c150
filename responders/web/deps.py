"""What every route shares: the app context, the signed-in user, roles, CSRF, flash messages, rendering."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from models.config import Config
from models.domain import Role
from models.orm import User
from responders.auth import has_role

log = logging.getLogger(__name__)

SESSION_HOURS = 12
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


def password_fingerprint(user: User) -> str:
    """Changes when the password does: a password change ends the other sessions."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


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


def sign_in(request: Request, user: User, now: datetime) -> None:
    """A fresh session for `user` (no fixation: everything from before login is dropped)."""
    request.session.clear()
    request.session.update({"uid": user.id, "pw": password_fingerprint(user), "at": now.isoformat(),
                            "csrf": secrets.token_urlsafe(32)})


def current_user(request: Request, session: Session = Depends(db)) -> User:
    """The signed-in, active user; otherwise LoginRequired."""
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        raise LoginRequired()
    user = session.get(User, uid)
    at = request.session.get("at")
    now = web(request).clock()
    try:
        fresh = isinstance(at, str) and now - datetime.fromisoformat(at) < timedelta(hours=SESSION_HOURS)
    except ValueError:
        fresh = False
    if user is None or not user.active or not fresh or request.session.get("pw") != password_fingerprint(user):
        request.session.clear()
        raise LoginRequired()
    session.expunge(user)
    request.state.user = user
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


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
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
    return ctx.templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
