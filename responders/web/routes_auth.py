"""Login and logout."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from models.orm import User
from responders import audit
from responders.auth import authenticate
from responders.web.deps import check_csrf, current_user, db, render, sign_in, web

router = APIRouter(dependencies=[Depends(check_csrf)])


def _safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect to another site."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    if isinstance(request.session.get("uid"), int):
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
    now = web(request).clock()
    user = authenticate(session, username, password, now=now)
    session.commit()
    if user is None:
        return render(request, "login.html", {"next": _safe_next(next), "username": username,
                                              "error": "Wrong username or password, or the account is deactivated."},
                      status_code=401)
    sign_in(request, user, now)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, user: User = Depends(current_user), session: Session = Depends(db)) -> Response:
    audit.record(session, audit.LOGOUT, "user", user.id, user_id=user.id, at=web(request).clock())
    session.commit()
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
