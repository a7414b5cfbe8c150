"""Managers: the audit log and the reports (routes_reports, included here). Admins: users and saved replies."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from models.domain import Role
from models.orm import User
from responders import audit, queue
from responders.auth import UserError, create_user, list_users, sign_out_everywhere, update_user
from responders.errors import ServiceError, status_of
from responders.sessions import live_counts
from responders.web import routes_reports
from responders.web.deps import DbId, check_csrf, db, flash, query_int, render, require, web

router = APIRouter(dependencies=[Depends(check_csrf)])
manager = require(Role.MANAGER)
admin = require(Role.ADMIN)
router.include_router(routes_reports.router)  # /reports, /reports.csv, /reports/charts/{name}.png


@router.get("/audit")
def audit_page(request: Request, user: User = Depends(manager), session: Session = Depends(db)) -> Response:
    p = request.query_params
    action = p.get("action") if p.get("action") in audit.ACTIONS else None
    page = query_int(p.get("page"), 1, 1, 100_000)
    user_id = query_int(p.get("user"), 0) or None
    events = audit.list_events(session, action=action, user_id=user_id, object_type=p.get("type") or None,
                               object_id=p.get("id") or None, page=page)
    params = {k: v for k, v in (("action", action), ("user", p.get("user")), ("type", p.get("type")),
                                ("id", p.get("id"))) if v}
    return render(request, "audit.html", {"events": events, "actions": audit.ACTIONS, "action": action,
                                          "users": list_users(session), "user_id": user_id, "params": params})


# --------------------------------------------------------------------------- users


def _users_page(request: Request, session: Session, error: str | None = None, status_code: int = 200) -> Response:
    ctx = web(request)
    live = live_counts(session, now=ctx.clock(), lifetimes=ctx.lifetimes)
    return render(request, "admin_users.html", {"users": list_users(session), "roles": [r.value for r in Role],
                                                "live": live, "error": error}, status_code=status_code)


@router.get("/admin/users")
def users_page(request: Request, user: User = Depends(admin), session: Session = Depends(db)) -> Response:
    return _users_page(request, session)


@router.post("/admin/users")
def users_create(request: Request, username: str = Form(""), password: str = Form(""), role: str = Form("agent"),
                 user: User = Depends(admin), session: Session = Depends(db)) -> Response:
    try:
        created = create_user(session, username, password, role, now=web(request).clock(), actor_id=user.id)
        session.commit()
    except UserError as exc:
        session.rollback()
        return _users_page(request, session, str(exc), 422)
    flash(request, f"User {created.username} created ({created.role}).")
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}")
def users_update(request: Request, user_id: DbId, role: str | None = Form(None), active: str | None = Form(None),
                 password: str | None = Form(None), user: User = Depends(admin),
                 session: Session = Depends(db)) -> Response:
    try:
        changed = update_user(session, user_id, now=web(request).clock(), actor_id=user.id, role=role or None,
                              active=None if active is None else active == "1", password=password or None,
                              keep_session=request.state.web_session_id)
        session.commit()
    except UserError as exc:
        session.rollback()
        return _users_page(request, session, str(exc), 422)
    flash(request, f"User {changed.username} updated.")
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/sign-out")
def users_sign_out(request: Request, user_id: DbId, user: User = Depends(admin),
                   session: Session = Depends(db)) -> Response:
    """Sign a user out everywhere: every session of theirs ends now (an admin's own included)."""
    try:
        ended = sign_out_everywhere(session, user_id, now=web(request).clock(), actor_id=user.id)
        session.commit()
    except UserError as exc:
        session.rollback()
        return _users_page(request, session, str(exc), 404)
    if user_id == user.id:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)
    flash(request, f"{ended} session(s) ended.")
    return RedirectResponse("/admin/users", status_code=303)


# --------------------------------------------------------------------------- saved replies


def _saved_page(request: Request, session: Session, error: str | None = None, status_code: int = 200,
                form: dict[str, str] | None = None) -> Response:
    return render(request, "admin_saved_replies.html", {
        "saved": queue.list_saved_replies(session), "error": error,
        "form": form or {"name": "", "text": "", "language": ""},
        "placeholders": ["{name}", "{handle}", "{agent}", "{brand}"],
    }, status_code=status_code)


@router.get("/admin/saved-replies")
def saved_page(request: Request, user: User = Depends(admin), session: Session = Depends(db)) -> Response:
    return _saved_page(request, session)


@router.post("/admin/saved-replies")
def saved_create(request: Request, name: str = Form(""), text: str = Form(""), language: str = Form(""),
                 user: User = Depends(admin), session: Session = Depends(db)) -> Response:
    return _saved_save(request, session, user, None, name, text, language)


@router.post("/admin/saved-replies/{saved_id}")
def saved_update(request: Request, saved_id: DbId, name: str = Form(""), text: str = Form(""),
                 language: str = Form(""), user: User = Depends(admin), session: Session = Depends(db)) -> Response:
    return _saved_save(request, session, user, saved_id, name, text, language)


def _saved_save(request: Request, session: Session, user: User, saved_id: int | None, name: str, text: str,
                language: str) -> Response:
    try:
        queue.save_saved_reply(session, user, name=name, text=text, language=language, now=web(request).clock(),
                               saved_reply_id=saved_id)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        return _saved_page(request, session, str(exc), status_of(exc),
                           {"name": name, "text": text, "language": language})
    flash(request, f"Saved reply {name.strip()!r} saved.")
    return RedirectResponse("/admin/saved-replies", status_code=303)


@router.post("/admin/saved-replies/{saved_id}/delete")
def saved_delete(request: Request, saved_id: DbId, user: User = Depends(admin),
                 session: Session = Depends(db)) -> Response:
    try:
        queue.delete_saved_reply(session, user, saved_id, now=web(request).clock())
        session.commit()
    except ServiceError as exc:
        session.rollback()
        return _saved_page(request, session, str(exc), status_of(exc))
    flash(request, "Saved reply deleted.")
    return RedirectResponse("/admin/saved-replies", status_code=303)
