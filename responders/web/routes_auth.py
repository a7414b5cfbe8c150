"""Login and logout."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from models.orm import User
from responders import audit
from responders.auth import SignInBusy, authenticate
from responders.sessions import LOGOUT, end_session
from responders.throttle import Throttled
from responders.web.deps import check_csrf, client_address, current_user, db, render, sign_in, web

router = APIRouter(dependencies=[Depends(check_csrf)])


def _safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect to another site."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    if isinstance(request.session.get("sid"), str):
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", {"next": _safe_next(next), "error": None, "username": ""})


@router.post("/login")
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
    session: Session = Depends(db),
) -> Response:
    """Runs in the thread pool: argon2 never blocks the event loop, and auth.gate bounds how many run."""
    ctx = web(request)
    now = ctx.clock()
    page = {"next": _safe_next(next), "username": username[:100]}
    try:
        user = authenticate(session, username, password, now=now, address=client_address(request),
                            throttler=ctx.throttler)
    except Throttled as refused:
        session.rollback()
        return render(request, "login.html", {**page, "error": str(refused)}, status_code=429,
                      headers={"Retry-After": str(refused.retry_after)})
    except SignInBusy as busy:
        session.rollback()
        return render(request, "login.html", {**page, "error": str(busy)}, status_code=503,
                      headers={"Retry-After": "2"})
    if user is None:
        session.commit()
        return render(request, "login.html", {**page, "error": "Wrong username or password, or the account is "
                                                                "deactivated."}, status_code=401)
    sign_in(request, session, user, now)
    session.commit()
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, user: User = Depends(current_user), session: Session = Depends(db)) -> Response:
    now = web(request).clock()
    end_session(session, request.state.web_session_id, now=now, reason=LOGOUT)
    audit.record(session, audit.LOGOUT, "user", user.id, user_id=user.id, at=now)
    session.commit()
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
