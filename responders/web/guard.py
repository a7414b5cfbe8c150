"""The web app's edge: one pure ASGI middleware, outermost, that every request passes.

- rejects control characters (NUL and other C0 controls but tab, CR, LF; DEL) and bytes that are not
  UTF-8 (which includes encoded surrogates) in the path, the query string and urlencoded form bodies,
  with 400 and a message that says which part was wrong;
- refuses request bodies over `max_body` bytes with 413 (by Content-Length before reading, or while
  streaming when the length is not declared);
- answers 500 with a page, not a reset connection, when a route raises (logged through `logging`,
  so `--log-format json` covers it);
- adds the security headers (and HSTS when the public URL is https) to every response, error pages
  and static files included.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
HSTS = "max-age=31536000; includeSubDomains"
FORM_TYPE = "application/x-www-form-urlencoded"
TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict", 413: "Too large",
          422: "Invalid input", 500: "Server error"}


def wants_json(path: str, accept: str) -> bool:
    """Whether an error is answered as JSON (API paths, clients that ask for it) rather than a page."""
    return path.startswith(("/api/", "/webhooks/")) or "application/json" in accept


class Rejected(Exception):
    """A request the edge refuses: `status` and a message for the person who sent it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def check_text(raw: bytes, where: str, *, plus_is_space: bool = False) -> None:
    """Raise Rejected(400) when percent-decoded `raw` holds control bytes or is not valid UTF-8."""
    decoded = unquote_to_bytes(raw.replace(b"+", b" ") if plus_is_space else raw)
    if CONTROL_BYTES.search(decoded):
        raise Rejected(400, f"The {where} holds a control character (such as NUL); remove it and try again.")
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, f"The {where} is not valid UTF-8 text.") from None


class EdgeGuard:
    """ASGI middleware: validation, body limit, last-resort 500 and security headers (see module doc)."""

    def __init__(self, app: ASGIApp, *, max_body: int, headers: Mapping[str, str], hsts: bool) -> None:
        self.app, self.max_body = app, max_body
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        if hsts:
            self.headers.append((b"strict-transport-security", HSTS.encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                if not static and b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            check_text(scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogatepass"), "address")
            check_text(scope.get("query_string", b""), "query string", plus_is_space=True)
            receive = await self._checked_body(scope, receive)
        except Rejected as exc:
            await self._error(scope, send_with_headers, exc.status, exc.message)
            return
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await self._error(scope, send_with_headers, 500,
                              "Something went wrong on our side. The error is logged; try again in a moment.")

    async def _checked_body(self, scope: Scope, receive: Receive) -> Receive:
        """Read the whole body (bounded), validate urlencoded forms, and replay it to the app."""
        headers = _headers(scope)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            raise Rejected(413, _too_big(self.max_body))
        if scope.get("method") in ("GET", "HEAD", "OPTIONS") and declared in (None, "0"):
            return receive
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise Rejected(413, _too_big(self.max_body))
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if headers.get("content-type", "").split(";")[0].strip().lower() == FORM_TYPE:
            check_text(body, "form", plus_is_space=True)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    async def _error(self, scope: Scope, send: Send, status: int, message: str) -> None:
        if wants_json(scope.get("path", ""), _headers(scope).get("accept", "")):
            body, kind = json.dumps({"error": message}).encode(), b"application/json"
        else:
            title = TITLES.get(status, "Error")
            body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} · openear</title>'
                    f'<link rel="stylesheet" href="/static/app.css"></head><body><main><h1>{title}</h1>'
                    f"<p>{html.escape(message)}</p><p><a href=\"/\">Back to the queue</a></p></main></body></html>"
                    ).encode()
            kind = b"text/html; charset=utf-8"
        response_headers: list[Any] = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        if status == 413:
            response_headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body if scope.get("method") != "HEAD" else b""})


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _too_big(limit: int) -> str:
    return f"The request is larger than {limit // 1024} KB, the most this server accepts (web.max_body_kb)."
