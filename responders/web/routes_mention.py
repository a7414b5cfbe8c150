"""The mention page (thread, customer history, composer) and every action on one mention."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from listener.platforms import spec_of
from models.domain import QueueState, Role, SentimentLabel
from models.orm import Mention, QueueItem, Reply, SavedReply, User
from responders import queue
from responders.auth import has_role, list_users
from responders.customers import pending_links
from responders.errors import Invalid, ServiceError, status_of
from responders.queue import DISMISS_REASONS, is_expired, item_for_mention
from responders.queue.detail import conversation, customer_timeline, mention_detail
from responders.queue.listing import OPEN_STATES, live_reasons
from responders.suggestions import Suggestion, order_number, suggest
from responders.web.deps import DbId, FormId, check_csrf, current_user, db, flash, render, web

log = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(check_csrf)])

def _saved_replies(session: Session, detail: Any, user: User) -> list[dict[str, Any]]:
    order = order_number(detail.mention.text)
    return [
        {"id": s.id, "name": s.name, "language": s.language,
         "text": queue.render_template(s.text, author=detail.author, customer=detail.customer, agent=user,
                                       brand=detail.mention.brand, order=order)}
        for s in queue.list_saved_replies(session)
    ]


def _suggestions(request: Request, session: Session, detail: Any, user: User) -> list[Suggestion]:
    """Suggested replies for the composer; a failure leaves the list empty, never the page broken."""
    try:
        found = suggest(session, web(request).suggestions, detail.mention, user, now=web(request).clock())
        session.commit()  # vectors embedded on the way (mentions stored before they were kept)
        return found
    except Exception:
        session.rollback()
        log.exception("suggested replies for mention %s failed", detail.mention.id)
        return []


def mention_page(
    request: Request, session: Session, user: User, mention_id: int, *, error: str | None = None,
    status_code: int = 200, draft: str | None = None, saved_reply_id: int | None = None,
) -> Response:
    ctx = web(request)
    detail = mention_detail(session, mention_id)
    if detail is None:
        raise HTTPException(404, "There is no such mention.")
    now = ctx.clock()
    item = detail.item
    timeout = ctx.config.queue.claim_timeout_minutes
    held_by_me = item is not None and item.state == QueueState.CLAIMED.value and item.assignee_id == user.id
    saved = _saved_replies(session, detail, user)
    suggestions = _suggestions(request, session, detail, user) if held_by_me else []
    template_id, use = request.query_params.get("template"), request.query_params.get("use")
    if draft is None and template_id:
        draft = next((s["text"] for s in saved if str(s["id"]) == template_id), None)
        saved_reply_id = int(template_id) if draft is not None else None
    if draft is None and use:  # "use as draft" without JavaScript
        chosen = next((s for s in suggestions if s.key == use), None)
        if chosen is not None:
            draft, saved_reply_id = chosen.draft, chosen.saved_reply_id
    return render(request, "mention.html", {
        "d": detail,
        "m": detail.mention,
        "item": item,
        "thread": conversation(session, detail.mention),
        "reasons_live": live_reasons(detail.mention.priority_reasons, detail.mention.created_at, now,
                                     open_item=item is not None and item.state in OPEN_STATES),
        "history": customer_timeline(session, detail.mention),
        "customer_links": pending_links(session, detail.author.id),
        "held_by_me": held_by_me,
        "claim_expired": item is not None and is_expired(item, now, timeout),
        "can_claim": item is not None and (item.state == QueueState.NEW.value or (
            item.state == QueueState.CLAIMED.value and not held_by_me and is_expired(item, now, timeout))),
        "limit": spec_of(detail.mention.platform).reply_limit,
        "reply_notes": reply_notes(detail.mention),
        "can_hide": web(request).moderate is not None and queue.can_hide(detail.mention),
        "weighted": spec_of(detail.mention.platform).reply_length is not len,
        "draft_length": spec_of(detail.mention.platform).reply_length((draft or "").strip()),
        "saved": saved,
        "suggestions": suggestions,
        "saved_reply_id": saved_reply_id,
        "draft": draft or "",
        "error": error,
        "reasons": DISMISS_REASONS,
        "labels": [x.value for x in SentimentLabel],
        "team": list_users(session, active_only=True) if has_role(user, Role.MANAGER) else [],
        "timeout": timeout,
    }, status_code=status_code)


def reply_notes(mention: Mention) -> list[str]:
    """What the platform does with a reply to this mention that the composer must say: the platform's
    refusal (Instagram: media that tag the brand), or how it threads a reply to a reply."""
    spec = spec_of(mention.platform)
    refusal = spec.reply_refusal(mention.external_id, mention.conversation_id, mention.is_own, mention.source)
    if refusal:
        return [refusal]
    is_reply = mention.in_reply_to_id not in (None, mention.conversation_id, mention.external_id)
    return [spec.thread_rule] if is_reply and spec.thread_rule else []


@router.get("/mentions/{mention_id}")
def show(request: Request, mention_id: DbId, user: User = Depends(current_user),
         session: Session = Depends(db)) -> Response:
    return mention_page(request, session, user, mention_id)


def _act(
    request: Request, session: Session, user: User, mention_id: int, action: Callable[[], str],
    *, draft: str | None = None, anchor: str = "", saved_reply_id: int | None = None,
) -> Response:
    """Run one action in one transaction; success redirects (flash), a refusal re-renders with the reason."""
    try:
        message = action()
        session.commit()
    except ServiceError as exc:
        session.rollback()
        return mention_page(request, session, user, mention_id, error=str(exc), status_code=status_of(exc),
                            draft=draft, saved_reply_id=saved_reply_id)
    flash(request, message)
    return RedirectResponse(f"/mentions/{mention_id}{anchor}", status_code=303)


def _item_id(session: Session, mention_id: int) -> int:
    return item_for_mention(session, mention_id).id


@router.post("/mentions/{mention_id}/claim")
def claim(request: Request, mention_id: DbId, user: User = Depends(current_user),
          session: Session = Depends(db)) -> Response:
    ctx = web(request)

    def action() -> str:
        queue.claim(session, _item_id(session, mention_id), user, now=ctx.clock(),
                    timeout_minutes=ctx.config.queue.claim_timeout_minutes)
        return "You are answering this mention; nobody else can until you send, release or go idle."

    return _act(request, session, user, mention_id, action, anchor="#composer")


@router.post("/mentions/{mention_id}/release")
def release(request: Request, mention_id: DbId, user: User = Depends(current_user),
            session: Session = Depends(db)) -> Response:
    def action() -> str:
        queue.release(session, _item_id(session, mention_id), user, now=web(request).clock())
        return "Released: the mention is back in the queue."

    return _act(request, session, user, mention_id, action)


@router.post("/mentions/{mention_id}/reassign")
def reassign(request: Request, mention_id: DbId, user_id: FormId, user: User = Depends(current_user),
             session: Session = Depends(db)) -> Response:
    def action() -> str:
        item = queue.reassign(session, _item_id(session, mention_id), user, user_id, now=web(request).clock())
        name = session.get(User, item.assignee_id) if item.assignee_id else None
        return f"Reassigned to {name.username if name else 'nobody'}."

    return _act(request, session, user, mention_id, action)


@router.post("/mentions/{mention_id}/hide")
def hide(request: Request, mention_id: DbId, hidden: str = Form("1"), user: User = Depends(current_user),
         session: Session = Depends(db)) -> Response:
    ctx = web(request)

    def action() -> str:
        shown = hidden != "1"
        mention = queue.set_hidden(session, mention_id, user, not shown, now=ctx.clock(), moderate=ctx.moderate)
        name = spec_of(mention.platform).display_name
        return f"Shown again on {name}." if shown else f"Hidden on {name}: only its author and their friends see it."

    return _act(request, session, user, mention_id, action)


@router.post("/mentions/{mention_id}/reply")
def reply(request: Request, mention_id: DbId, text: str = Form(""), saved_reply_id: str = Form(""),
          user: User = Depends(current_user), session: Session = Depends(db)) -> Response:
    ctx = web(request)
    queued: list[int] = []
    template = int(saved_reply_id) if saved_reply_id.isdigit() and len(saved_reply_id) < 12 else None

    def action() -> str:
        created = queue.submit_reply(session, _item_id(session, mention_id), user, text, now=ctx.clock(),
                                     timeout_minutes=ctx.config.queue.claim_timeout_minutes,
                                     saved_reply_id=template)
        queued.append(created.id)
        return "Reply queued: openear sends it now and shows the result below."

    response = _act(request, session, user, mention_id, action, draft=text, anchor="#replies",
                    saved_reply_id=template)
    for reply_id in queued:
        if response.status_code == 303:
            ctx.notify_reply(reply_id)
    return response


@router.post("/mentions/{mention_id}/dismiss")
def dismiss(request: Request, mention_id: DbId, reason: str = Form(""), user: User = Depends(current_user),
            session: Session = Depends(db)) -> Response:
    ctx = web(request)

    def action() -> str:
        queue.dismiss(session, _item_id(session, mention_id), user, reason, now=ctx.clock(),
                      timeout_minutes=ctx.config.queue.claim_timeout_minutes)
        return f"Dismissed ({DISMISS_REASONS.get(reason, reason)})."

    return _act(request, session, user, mention_id, action)


@router.post("/mentions/{mention_id}/sentiment")
def correct(request: Request, mention_id: DbId, label: str = Form(""), user: User = Depends(current_user),
            session: Session = Depends(db)) -> Response:
    def action() -> str:
        queue.correct_sentiment(session, mention_id, user, label, now=web(request).clock())
        return f"Sentiment set to {label}; the correction is kept for retraining."

    return _act(request, session, user, mention_id, action)


def _renew(request: Request, session: Session, user: User, mention_id: int) -> None:
    """Activity of the holder keeps the claim alive."""
    item = session.scalar(select(QueueItem).where(QueueItem.mention_id == mention_id))
    if item is not None and item.state == QueueState.CLAIMED.value and item.assignee_id == user.id:
        queue.touch(session, item.id, user, now=web(request).clock())


@router.post("/mentions/{mention_id}/notes")
def add_note(request: Request, mention_id: DbId, text: str = Form(""), on: str = Form("mention"),
             user: User = Depends(current_user), session: Session = Depends(db)) -> Response:
    def action() -> str:
        now = web(request).clock()
        if on == "customer":
            detail = mention_detail(session, mention_id)
            if detail is None or detail.customer is None:
                raise Invalid("this author is not linked to a customer yet; add the note to the mention")
            queue.add_note(session, text, user_id=user.id, now=now, customer_id=detail.customer.id)
        else:
            queue.add_note(session, text, user_id=user.id, now=now, mention_id=mention_id)
        _renew(request, session, user, mention_id)
        return "Note saved (internal, never sent)."

    return _act(request, session, user, mention_id, action, anchor="#notes")


@router.post("/mentions/{mention_id}/tags")
def add_tag(request: Request, mention_id: DbId, tag: str = Form(""), user: User = Depends(current_user),
            session: Session = Depends(db)) -> Response:
    def action() -> str:
        added = queue.add_tag(session, mention_id, tag, user_id=user.id, now=web(request).clock())
        _renew(request, session, user, mention_id)
        return f"Tagged {added}."

    return _act(request, session, user, mention_id, action)


@router.post("/mentions/{mention_id}/tags/remove")
def remove_tag(request: Request, mention_id: DbId, tag: str = Form(""), user: User = Depends(current_user),
               session: Session = Depends(db)) -> Response:
    def action() -> str:
        removed = queue.remove_tag(session, mention_id, tag, user_id=user.id, now=web(request).clock())
        return f"Tag {removed} removed."

    return _act(request, session, user, mention_id, action)


@router.post("/replies/{reply_id}/retry")
def retry(request: Request, reply_id: DbId, user: User = Depends(current_user),
          session: Session = Depends(db)) -> Response:
    ctx = web(request)
    found = session.get(Reply, reply_id)
    if found is None or found.mention_id is None:
        raise HTTPException(404, "There is no such reply.")
    mention_id = found.mention_id

    def action() -> str:
        queue.retry_reply(session, reply_id, user, now=ctx.clock())
        return "Sending the reply again."

    response = _act(request, session, user, mention_id, action, anchor="#replies")
    if response.status_code == 303:
        ctx.notify_reply(reply_id)
    return response


@router.post("/api/mentions/{mention_id}/heartbeat")
def heartbeat(request: Request, mention_id: DbId, user: User = Depends(current_user),
              session: Session = Depends(db)) -> Response:
    """The composer's keep-alive while the holder is active on the page."""
    try:
        held = queue.touch(session, _item_id(session, mention_id), user, now=web(request).clock())
        session.commit()
    except ServiceError as exc:
        session.rollback()
        return JSONResponse({"held": False, "error": str(exc)}, status_code=status_of(exc))
    return JSONResponse({"held": held})


class DraftText(BaseModel):
    text: str = Field(max_length=100_000)


@router.post("/api/mentions/{mention_id}/reply-length")
def reply_length(request: Request, mention_id: DbId, draft: DraftText, user: User = Depends(current_user),
                 session: Session = Depends(db)) -> Response:
    """The composer's counter: the draft's length as the mention's platform counts it (X: weighted),
    by the function the send check uses (listener.platforms.SPECS)."""
    detail = mention_detail(session, mention_id)
    if detail is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    spec = spec_of(detail.mention.platform)
    length = spec.reply_length(draft.text.replace("\r\n", "\n").strip())
    return JSONResponse({"length": length, "limit": spec.reply_limit, "rule": spec.length_rule,
                         "over": length > spec.reply_limit})


@router.get("/api/mentions/{mention_id}/saved-replies/{saved_id}")
def saved_reply(request: Request, mention_id: DbId, saved_id: DbId, user: User = Depends(current_user),
                session: Session = Depends(db)) -> Response:
    """A saved reply with its placeholders filled for this mention and this agent."""
    detail = mention_detail(session, mention_id)
    saved = session.get(SavedReply, saved_id)
    if detail is None or saved is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    text = queue.render_template(saved.text, author=detail.author, customer=detail.customer, agent=user,
                                 brand=detail.mention.brand)
    return JSONResponse({"id": saved.id, "name": saved.name, "text": text})
