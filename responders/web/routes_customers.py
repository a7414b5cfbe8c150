"""Customer memory pages: link proposals to review, search, one customer's overview, linking by hand,
customer notes and tags; export and erasure (GDPR) for admins only."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.domain import Role
from models.orm import Author, LinkProposal, User
from responders import customers, notes
from responders.customers import PROPOSED, gdpr
from responders.customers.overview import customer_overview, search
from responders.errors import NotFound, ServiceError
from responders.web.deps import DbId, FormId, check_csrf, current_user, db, flash, render, require, web

router = APIRouter(dependencies=[Depends(check_csrf)])


def _authors(session: Session, proposals: list[LinkProposal]) -> dict[int, Author]:
    ids = {p.author_a for p in proposals} | {p.author_b for p in proposals}
    return {a.id: a for a in session.scalars(select(Author).where(Author.id.in_(ids)))} if ids else {}


@router.get("/customers")
def index(request: Request, q: str = "", user: User = Depends(current_user),
          session: Session = Depends(db)) -> Response:
    proposals = list(session.scalars(select(LinkProposal).where(LinkProposal.state == PROPOSED)
                                     .order_by(LinkProposal.confidence.desc(), LinkProposal.id).limit(100)))
    return render(request, "customers.html", {"proposals": proposals, "authors": _authors(session, proposals),
                                              "q": q, "hits": search(session, q) if q.strip() else []})


def _act(request: Request, session: Session, user: User, action: Callable[[], int | None], back: str) -> Response:
    """One customer action in one transaction; returns to the customer it produced (or `back`)."""
    try:
        target = action()
        session.commit()
    except ServiceError as exc:
        session.rollback()
        flash(request, str(exc), "error")
        return RedirectResponse(back, status_code=303)
    return RedirectResponse(f"/customers/{target}" if target is not None else back, status_code=303)


@router.post("/customers/proposals/{proposal_id}/confirm")
def confirm(request: Request, proposal_id: DbId, user: User = Depends(current_user),
            session: Session = Depends(db)) -> Response:
    ctx = web(request)

    def action() -> int:
        customer = customers.confirm(session, proposal_id, user.id, ctx.clock())
        ctx.intake.rerank_customer(session, customer.id, ctx.clock())
        flash(request, "Linked: both identities now share one customer history.")
        return customer.id

    return _act(request, session, user, action, "/customers")


@router.post("/customers/proposals/{proposal_id}/reject")
def reject(request: Request, proposal_id: DbId, back: str = Form("/customers"), user: User = Depends(current_user),
           session: Session = Depends(db)) -> Response:
    def action() -> None:
        customers.reject(session, proposal_id, user.id, web(request).clock())
        flash(request, "Rejected: openear will not propose this pair again.")

    return _act(request, session, user, action, back if back.startswith("/") and not back.startswith("//")
                else "/customers")


@router.post("/customers/for-author/{author_id}")
def for_author(request: Request, author_id: DbId, user: User = Depends(current_user),
               session: Session = Depends(db)) -> Response:
    """Open (creating if needed) the customer of an unlinked author."""
    return _act(request, session, user, lambda: customers.customer_of(session, author_id, web(request).clock(),
                                                                        user.id).id, "/customers")


@router.get("/customers/{customer_id}")
def show(request: Request, customer_id: DbId, user: User = Depends(current_user),
         session: Session = Depends(db)) -> Response:
    overview = customer_overview(session, customer_id)
    if overview is None:
        raise HTTPException(404, "There is no such customer.")
    return render(request, "customer.html", {"o": overview, "c": overview.customer,
                                             "authors": _authors(session, overview.proposals)})


@router.post("/customers/{customer_id}/link")
def link(request: Request, customer_id: DbId, author_id: FormId, user: User = Depends(current_user),
         session: Session = Depends(db)) -> Response:
    ctx = web(request)

    def action() -> int:
        customer = customers.link_authors(session, customer_id, author_id, user.id, ctx.clock())
        ctx.intake.rerank_customer(session, customer.id, ctx.clock())
        flash(request, "Identity linked.")
        return customer.id

    return _act(request, session, user, action, f"/customers/{customer_id}")


@router.post("/customers/{customer_id}/unlink")
def unlink(request: Request, customer_id: DbId, author_id: FormId, user: User = Depends(current_user),
           session: Session = Depends(db)) -> Response:
    def action() -> int:
        customers.unlink_author(session, author_id, user.id, web(request).clock())
        flash(request, "Identity unlinked; openear will not propose it for this customer again.")
        return customer_id

    return _act(request, session, user, action, f"/customers/{customer_id}")


@router.post("/customers/{customer_id}/merge")
def merge(request: Request, customer_id: DbId, other_id: FormId, user: User = Depends(current_user),
          session: Session = Depends(db)) -> Response:
    ctx = web(request)

    def action() -> int:
        kept = customers.merge_customers(session, customer_id, other_id, user.id, ctx.clock())
        ctx.intake.rerank_customer(session, kept.id, ctx.clock())
        flash(request, f"Customer #{other_id} merged into this one.")
        return kept.id

    return _act(request, session, user, action, f"/customers/{customer_id}")


@router.post("/customers/{customer_id}/notes")
def note(request: Request, customer_id: DbId, text: str = Form(""), user: User = Depends(current_user),
         session: Session = Depends(db)) -> Response:
    def action() -> int:
        notes.add_note(session, text, user_id=user.id, now=web(request).clock(), customer_id=customer_id)
        flash(request, "Note saved (internal, never sent).")
        return customer_id

    return _act(request, session, user, action, f"/customers/{customer_id}")


@router.post("/customers/{customer_id}/tags")
def tags(request: Request, customer_id: DbId, tags: str = Form(""), user: User = Depends(current_user),
         session: Session = Depends(db)) -> Response:
    def action() -> int:
        notes.set_customer_tags(session, customer_id, tags.split(","), user_id=user.id, now=web(request).clock())
        flash(request, "Tags saved.")
        return customer_id

    return _act(request, session, user, action, f"/customers/{customer_id}")


@router.post("/customers/{customer_id}/export")
def export(request: Request, customer_id: DbId, user: User = Depends(require(Role.ADMIN)),
           session: Session = Depends(db)) -> Response:
    try:
        data = gdpr.export_customer(session, customer_id, actor=user.id, now=web(request).clock())
        session.commit()
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(json.dumps(data, ensure_ascii=False, indent=2), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="customer-{customer_id}.json"'})


@router.post("/customers/{customer_id}/erase")
def erase(request: Request, customer_id: DbId, confirm_id: str = Form(""), user: User = Depends(require(Role.ADMIN)),
          session: Session = Depends(db)) -> Response:
    if confirm_id.strip() != str(customer_id):
        flash(request, f"Not erased: type the customer id {customer_id} to confirm.", "error")
        return RedirectResponse(f"/customers/{customer_id}", status_code=303)
    try:
        summary = gdpr.erase_customer(session, customer_id, user.id, web(request).clock(),
                                       web(request).config.timezones())
        session.commit()
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    flash(request, f"Customer #{customer_id} erased: {summary.get('mentions', 0)} mentions, "
                   f"{summary.get('identities', 0)} identities; only anonymous counts remain.")
    return RedirectResponse("/customers", status_code=303)
