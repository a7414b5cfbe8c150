"""The daily digest archive for managers and admins: a list, each digest as emailed, its chart images."""

from __future__ import annotations

import base64
import re
from datetime import date
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.domain import Role
from models.orm import Digest, User
from responders.digest.render import CID_RE
from responders.web.deps import db, render, require

router = APIRouter()
manager = require(Role.MANAGER)
# the archived email is a standalone document with inline styles and no scripts
DIGEST_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'none'")


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else date.min
    except ValueError:
        return date.min


def _find(session: Session, day: str, brand: str | None) -> Digest:
    parsed = _day(day)
    query = select(Digest).where(Digest.day == parsed)
    if brand:
        query = query.where(Digest.brand == brand)
    row = session.scalars(query.order_by(Digest.brand).limit(1)).first()
    if parsed == date.min or row is None:
        raise HTTPException(404, "No digest for that day" + (f" and brand {brand}." if brand else "."))
    return row


@router.get("/digests")
def digest_list(request: Request, user: User = Depends(manager), session: Session = Depends(db)) -> Response:
    rows = session.execute(
        select(Digest.id, Digest.brand, Digest.day, Digest.created_at, Digest.sent_at, Digest.send_attempts,
               Digest.last_error).order_by(Digest.day.desc(), Digest.brand).limit(365)
    ).all()
    return render(request, "digests.html", {"digests": rows, "quote": quote})


@router.get("/digests/{day}")
def digest_page(request: Request, day: str, brand: str | None = None, user: User = Depends(manager),
                session: Session = Depends(db)) -> Response:
    row = _find(session, day, brand)
    prefix = f"/digests/{row.day.isoformat()}/images/"
    suffix = f"?brand={quote(row.brand)}"
    html = CID_RE.sub(lambda m: f"{prefix}{quote(m.group(1))}{suffix}", row.html or "")
    return HTMLResponse(html, headers={"Content-Security-Policy": DIGEST_CSP})


@router.get("/digests/{day}/images/{cid}")
def digest_image(day: str, cid: str, brand: str | None = None, user: User = Depends(manager),
                 session: Session = Depends(db)) -> Response:
    row = _find(session, day, brand)
    b64 = (row.data.get("images") or {}).get(cid)
    if not b64:
        raise HTTPException(404, "No such image in this digest.")
    return Response(base64.b64decode(b64), media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})
