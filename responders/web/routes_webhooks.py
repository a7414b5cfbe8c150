"""Meta's webhook callback for Instagram @mentions: /webhooks/instagram (docs/instagram.md, "@mentions").

Public (Meta calls it, not a signed-in person; no session, no CSRF token) and therefore strict:

- GET answers Meta's subscription check: `hub.mode=subscribe` with the configured verify token gets
  `hub.challenge` back as plain text; anything else is 403.
- POST takes a delivery only when `X-Hub-Signature-256` is the HMAC-SHA256 of the raw body keyed
  with the app secret (compared in constant time); else 403, and nothing is read from the body.
  Each `mentions` change of a configured account becomes one row of the notifications inbox
  (models/inbox.py; a repeated delivery is ignored); the account's mentions source looks it up on
  its next poll. Other fields and unknown accounts are counted and skipped, a malformed body is 400.
  Meta retries any answer but 200, so a dead database answers 503 and loses nothing.

Without `platforms.instagram.webhooks` in the config both are 404.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from models import inbox
from models.config import InstagramConfig, WebhookConfig
from responders.web.deps import web

log = logging.getLogger(__name__)
router = APIRouter()
PATH = "/webhooks/instagram"
PLATFORM = "instagram"
MAX_CHANGES = 1000  # per delivery; Meta batches far fewer


def _setup(request: Request) -> tuple[InstagramConfig, WebhookConfig]:
    section = web(request).config.platforms.instagram
    if section is None or section.webhooks is None or not section.enabled:
        raise HTTPException(404, "Instagram webhooks are not configured (platforms.instagram.webhooks)")
    return section, section.webhooks


@router.get(PATH)
def verify_subscription(request: Request) -> Response:
    """Meta's subscription check: echo `hub.challenge` when the verify token matches."""
    _, hooks = _setup(request)
    query = request.query_params
    sent = query.get("hub.verify_token", "")
    expected = hooks.verify_token.get_secret_value()
    if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(sent.encode(), expected.encode()):
        log.warning("refused an Instagram webhook subscription check: wrong mode or verify token")
        raise HTTPException(403, "wrong hub.mode or hub.verify_token: enter the verify token of "
                                 "platforms.instagram.webhooks.verify_token in the App Dashboard")
    return PlainTextResponse(query.get("hub.challenge", ""))


def signature_ok(body: bytes, header: str | None, app_secret: str) -> bool:
    """Whether `header` is `sha256=<hex HMAC-SHA256 of body with app_secret>` (constant-time)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[len("sha256="):].strip().lower().encode(), expected.encode())


def mention_changes(payload: Any) -> list[tuple[str, str, str | None]]:
    """(account id, media id, comment id or None) of every `mentions` change; ValueError when malformed."""
    if not isinstance(payload, dict) or payload.get("object") != PLATFORM or not isinstance(payload.get("entry"), list):
        raise ValueError("not an Instagram webhook body: expected {\"object\": \"instagram\", \"entry\": [...]}")
    found: list[tuple[str, str, str | None]] = []
    for entry in payload["entry"]:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        account = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(account, str) or not account.isdigit() or not isinstance(changes, list):
            raise ValueError("an entry without a numeric id and a changes list")
        for change in changes:
            if not isinstance(change, dict) or change.get("field") != "mentions":
                continue
            value = change.get("value")
            media = value.get("media_id") if isinstance(value, dict) else None
            comment = value.get("comment_id") if isinstance(value, dict) else None
            if not isinstance(media, str) or not media.isdigit() or (
                    comment is not None and (not isinstance(comment, str) or not comment.isdigit())):
                raise ValueError("a mentions change without a numeric media_id (and comment_id)")
            found.append((account, media, comment))
    if len(found) > MAX_CHANGES:
        raise ValueError(f"more than {MAX_CHANGES} changes in one delivery")
    return found


@router.post(PATH)
async def receive(request: Request) -> Response:
    """One delivery: check the signature, record each @mention of a configured account once."""
    _, hooks = _setup(request)
    body = await request.body()
    if not signature_ok(body, request.headers.get("x-hub-signature-256"), hooks.app_secret.get_secret_value()):
        log.warning("refused an Instagram webhook delivery: missing or wrong X-Hub-Signature-256 (is "
                    "platforms.instagram.webhooks.app_secret the app's secret?)")
        raise HTTPException(403, "missing or wrong X-Hub-Signature-256")
    try:
        changes = mention_changes(json.loads(body))
    except ValueError as exc:  # json.JSONDecodeError included
        log.warning("refused a signed Instagram webhook delivery: %s", exc)
        raise HTTPException(400, f"malformed Instagram webhook body: {exc}") from None
    ctx = web(request)
    accounts = {a for brand in ctx.config.brands for a in brand.accounts.instagram}
    now = ctx.clock()
    recorded = skipped = 0
    try:
        with ctx.sessions.begin() as session:
            for account, media, comment in changes:
                if account not in accounts:
                    skipped += 1
                    continue
                recorded += inbox.record(session, PLATFORM, account, media, comment, now)
            inbox.prune(session, now)
    except SQLAlchemyError:
        log.exception("could not record an Instagram webhook delivery; Meta sends it again")
        raise HTTPException(503, "the database is not available; send again later") from None
    if skipped:
        log.warning("Instagram webhook: %d mention(s) for accounts no brand lists under accounts.instagram", skipped)
    return JSONResponse({"recorded": recorded, "skipped": skipped})
