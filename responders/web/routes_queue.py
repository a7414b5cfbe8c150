"""The queue page and its live-update endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from listener.platforms import SPECS
from models.domain import SentimentLabel
from models.orm import User
from responders.queue.listing import (
    STATE_CHOICES,
    QueueFilter,
    QueueRow,
    failed_replies,
    list_queue,
    updates_since,
)
from responders.web.deps import MAX_ID, check_csrf, current_user, db, query_int, render, web
from responders.web.filters import sla

router = APIRouter(dependencies=[Depends(check_csrf)])


def _int(value: str | None, default: int = 0) -> int:
    return query_int(value, default, -MAX_ID, MAX_ID)


def queue_filter(request: Request) -> QueueFilter:
    """The filter from the query string (unknown values are ignored, never an error page)."""
    p = request.query_params
    platforms = set(SPECS)
    sentiments = {x.value for x in SentimentLabel}
    return QueueFilter(
        brand=p.get("brand") or None,
        platform=p.get("platform") if p.get("platform") in platforms else None,
        sentiment=p.get("sentiment") if p.get("sentiment") in sentiments else None,
        state=p.get("state") or "open",
        language=(p.get("language") or None),
        mine=p.get("mine") in ("1", "on", "true"),
        overdue=p.get("overdue") in ("1", "on", "true"),
        q=p.get("q") or "",
        page=min(max(_int(p.get("page"), 1), 1), 10_000),
    ).normalized()


@router.get("/")
def queue_page(request: Request, user: User = Depends(current_user), session: Session = Depends(db)) -> Response:
    ctx = web(request)
    f = queue_filter(request)
    now = ctx.clock()
    page = list_queue(session, f, now=now, sla_hours=ctx.config.queue.sla_hours,
                      claim_timeout_minutes=ctx.config.queue.claim_timeout_minutes, user_id=user.id)
    languages = sorted({lang for b in ctx.config.brands for lang in b.languages})
    return render(request, "queue.html", {
        "page": page,
        "f": f,
        "failed": failed_replies(session),
        "brands": [b.name for b in ctx.config.brands],
        "languages": languages,
        "platforms": list(SPECS),
        "sentiments": [x.value for x in SentimentLabel],
        "states": STATE_CHOICES,
        "sla_hours": ctx.config.queue.sla_hours,
        "poll": f.state in ("open", "new", "claimed") and f.page == 1,
    })


def _row_json(row: QueueRow, now: Any) -> dict[str, Any]:
    return {
        "item_id": row.item_id, "mention_id": row.mention_id, "url": f"/mentions/{row.mention_id}",
        "text": row.text, "platform": row.platform, "handle": row.handle, "name": row.display_name,
        "followers": row.followers, "sentiment": row.sentiment, "priority": round(row.priority, 4),
        "reasons": row.reasons, "created_at": row.created_at.isoformat(), "sla": sla(row.sla_deadline, now),
    }


@router.get("/api/queue/updates")
def queue_updates(request: Request, user: User = Depends(current_user), session: Session = Depends(db)) -> Response:
    """New open items since queue item `since` (the page's last id), matching the page's filters."""
    ctx = web(request)
    now = ctx.clock()
    since = max(_int(request.query_params.get("since")), 0)
    updates = updates_since(session, since, queue_filter(request), now=now, sla_hours=ctx.config.queue.sla_hours,
                            claim_timeout_minutes=ctx.config.queue.claim_timeout_minutes, user_id=user.id)
    return JSONResponse({
        "count": updates.count, "last_id": updates.last_id, "now": now.isoformat(),
        "items": [_row_json(r, now) for r in updates.rows],
    })
