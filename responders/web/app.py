"""The review queue web app: `create_app(config, sessions, ...)` builds a FastAPI app.

Server-rendered Jinja2 pages (autoescaped), a signed HttpOnly SameSite=Lax session cookie, a CSRF
token on every POST, a strict Content-Security-Policy (scripts and styles only from /static), and
small own scripts for live updates. More routers (health, metrics) can be added afterwards with
`app.include_router(...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import jinja2
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware

from models.config import Config
from models.domain import MentionData
from models.orm import utcnow
from models.vectors import Embedder
from responders.web import filters
from responders.web.deps import LoginRequired, WebContext, render
from responders.web.guard import TITLES, EdgeGuard, wants_json

HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    filters.install(env)
    return Jinja2Templates(env=env)


def _wants_json(request: Request) -> bool:
    return wants_json(request.url.path, request.headers.get("accept", ""))


def create_app(
    config: Config,
    sessions: sessionmaker[Session],
    *,
    clock: Callable[[], datetime] = utcnow,
    on_reply_queued: Callable[[int], None] | None = None,
    secure_cookies: bool | None = None,
    moderate: Callable[[MentionData, bool], None] | None = None,
    embedder: Embedder | None = None,
) -> FastAPI:
    """The web app. `on_reply_queued(reply_id)` runs after a draft reply is committed (the dispatcher);
    `moderate(mention, hidden)` hides a comment on its platform (none: the app offers no hiding);
    `embedder` makes the sentence vectors of suggested replies (none: models.vectors.HashEmbedder).

    `secure_cookies` (default: whether web.public_url is https) adds the Secure flag to the cookie.
    """
    from responders.web import (
        routes_admin,
        routes_auth,
        routes_customers,
        routes_digests,
        routes_mention,
        routes_queue,
        routes_webhooks,
    )

    app = FastAPI(title="openear", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = WebContext(config=config, sessions=sessions, clock=clock, on_reply_queued=on_reply_queued,
                               templates=_templates(), moderate=moderate, embedder=embedder)
    if secure_cookies is None:
        secure_cookies = (config.web.public_url or "").startswith("https://")
    app.add_middleware(
        SessionMiddleware,
        secret_key=config.web.secret_key.get_secret_value(),
        session_cookie="openear_session",
        max_age=config.web.session_max_hours * 3600,
        same_site="lax",
        https_only=secure_cookies,
    )

    # Added last, so outermost: validation, body limit, last-resort 500, headers on every response.
    app.add_middleware(EdgeGuard, max_body=config.web.max_body_kb * 1024, headers=SECURITY_HEADERS,
                       hsts=(config.web.public_url or "").startswith("https://"))

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": "not signed in"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET" or target == "/":
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse(f"/login?next={filters.quote_path(target)}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return _error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": "invalid request"}, status_code=422)
        return _error_page(request, 422, "Some of the form's fields are missing or invalid.")

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def out_of_range(request: Request, _exc: Exception) -> Response:
        message = "A number in the request is out of range."
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=400)
        return _error_page(request, 400, message)

    @app.exception_handler(IntegrityError)
    async def integrity_error(request: Request, _exc: IntegrityError) -> Response:
        return _error_page(request, 409, "Someone else changed this at the same moment. Reload and try again.")

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (routes_auth, routes_queue, routes_mention, routes_admin, routes_customers, routes_digests,
                   routes_webhooks):
        app.include_router(module.router)
    return app


def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "title": TITLES.get(status, "Error"),
                                          "message": message}, status_code=status)
