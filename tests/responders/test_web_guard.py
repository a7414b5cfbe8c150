"""The web app's edge holds on odd input: no route answers 500, bodies are bounded, origins checked.

The walk reads the app's own route table, so a route added later is walked too.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from models.config import Config, WebConfig
from models.orm import MentionTag, Reply
from responders import queue
from responders.ops import ops_router
from responders.web import create_app
from tests.responders.factories import SECRET_KEY, csrf_of, login, make_config, make_mention, make_user, post
from tests.support import FakeClock

HUGE_IDS = ["1180591620717411303424", str(2**63), str(2**70), "-1", "0", "abc", "1e400", "%00"]
HOSTILE_TEXT = ["acme%00", "%ED%A0%80", "%FF%FE", "x%01y", str(2**70), "-" + str(2**64)]
QUERY_KEYS = ["q", "page", "since", "user", "days", "id", "type", "action", "next", "status", "platform",
              "sort", "language", "label", "tag", "state", "limit"]
PARAM_RE = re.compile(r"\{(\w+)(?::\w+)?\}")


def _app(sessions: sessionmaker[Session], engine: Engine, clock: FakeClock, config: Config) -> FastAPI:
    app = create_app(config, sessions, clock=clock)
    app.include_router(ops_router(sessions, engine, clock))
    return app


@pytest.fixture
def admin_client(sessions: sessionmaker[Session], engine: Engine, clock: FakeClock,
                 web_config: Config) -> TestClient:
    with sessions.begin() as s:
        make_user(s, "root", role="admin")
        make_mention(s, "my order never arrived")
    app = _app(sessions, engine, clock, web_config)
    client = TestClient(app, raise_server_exceptions=False)
    client.app_under_test = app  # type: ignore[attr-defined]
    return login(client, "root")


def _routes(app: FastAPI) -> list[tuple[str, str, list[str]]]:
    """(method, path, form fields) of every API route, included routers flattened (FastAPI >= 0.16x
    keeps them as lazy `_IncludedRouter` entries)."""
    found = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                fields = [param.alias for param in route.dependant.body_params]
                found.extend((method, prefix + route.path, fields) for method in sorted(route.methods))
            elif hasattr(route, "original_router"):
                walk(route.original_router.routes, prefix + (getattr(route.include_context, "prefix", "") or ""))

    walk(list(app.routes), "")
    return found


def _form(fields: list[str], value: str, token: str) -> str:
    return "&".join([*(f"{name}={value}" for name in fields), f"csrf_token={token}"])


def test_no_route_answers_500_to_huge_ids_nul_surrogates_or_bad_utf8(admin_client: TestClient) -> None:
    routes = _routes(admin_client.app_under_test)  # type: ignore[attr-defined]
    assert len(routes) > 30 and any("{mention_id}" in path for _m, path, _f in routes)
    seen: list[tuple[str, str, int]] = []
    for method, path, fields in routes:
        if path in ("/logout",):
            continue
        for value in HUGE_IDS if PARAM_RE.search(path) else [""]:
            url = PARAM_RE.sub(value, path) if value else path
            for text in HOSTILE_TEXT:
                query = "&".join(f"{key}={text}" for key in QUERY_KEYS)
                if method in ("GET", "HEAD"):
                    response = admin_client.request(method, f"{url}?{query}", follow_redirects=False)
                else:
                    token = csrf_of(admin_client, "/")
                    response = admin_client.request(
                        method, url, content=_form(fields, text, token), follow_redirects=False,
                        headers={"content-type": "application/x-www-form-urlencoded"})
                seen.append((method, url, response.status_code))
                assert response.status_code < 500, (method, url, text, response.status_code, response.text[:300])
        assert _still_signed_in(admin_client), (method, path)
    statuses = {status for *_rest, status in seen}
    assert 400 in statuses and 422 in statuses  # the walk did reach the guard and the id bounds


def _still_signed_in(client: TestClient) -> bool:
    return client.get("/", follow_redirects=False).status_code == 200


@pytest.mark.parametrize(("url", "part"), [("/?q=acme%00", "query string"),
                                           ("/api/queue/updates?q=acme%00", "query string"),
                                           ("/?q=%ED%A0%80", "query string"),
                                           ("/mentions/1%00", "address")])
def test_nul_and_surrogates_get_400_with_a_message(admin_client: TestClient, url: str, part: str) -> None:
    response = admin_client.get(url)
    assert response.status_code == 400
    assert part in (response.json()["error"] if url.startswith("/api/") else response.text)
    assert response.headers["content-security-policy"].startswith("default-src 'self'")


@pytest.mark.parametrize("path", ["/mentions/1180591620717411303424", "/customers/9223372036854775808"])
def test_ids_beyond_64_bits_are_a_4xx(admin_client: TestClient, path: str) -> None:
    assert admin_client.get(path).status_code == 422


def test_largest_64_bit_id_is_simply_not_found(admin_client: TestClient) -> None:
    assert admin_client.get(f"/mentions/{2**63 - 1}").status_code == 404


@pytest.mark.parametrize("form_id", [str(2**63), str(2**70)])
def test_reassign_and_merge_with_huge_ids_are_refused(admin_client: TestClient, sessions: sessionmaker[Session],
                                                      form_id: str) -> None:
    with sessions() as s:
        mention_id = s.scalar(select(MentionTag.mention_id)) or 1
    assert post(admin_client, f"/mentions/{mention_id}/reassign", {"user_id": form_id}).status_code == 422
    assert post(admin_client, "/customers/1/merge", {"other_id": form_id}).status_code == 422


def test_a_body_over_the_limit_gets_413_with_a_message(admin_client: TestClient) -> None:
    token = csrf_of(admin_client, "/")
    big = "x" * (1024 * 1024)
    response = admin_client.post("/mentions/1/notes", data={"text": big, "csrf_token": token})
    assert response.status_code == 413
    assert "256 KB" in response.text and "web.max_body_kb" in response.text
    assert response.headers["x-frame-options"] == "DENY"


def test_a_streamed_body_over_the_limit_gets_413(admin_client: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(400):
            yield b"text=" + b"y" * 1024

    response = admin_client.post("/mentions/1/notes", content=chunks(),
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413


def test_a_body_under_the_limit_passes(admin_client: TestClient, sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        mention_id = s.scalars(select(MentionTag.mention_id)).first()
    mention_id = mention_id or _first_mention(sessions)
    response = post(admin_client, f"/mentions/{mention_id}/notes", {"text": "z" * 1000, "pad": "p" * 200_000})
    assert response.status_code == 303


def _first_mention(sessions: sessionmaker[Session]) -> int:
    from models.orm import Mention

    with sessions() as s:
        found = s.scalars(select(Mention.id)).first()
        assert found is not None
        return found


@pytest.mark.parametrize("header", ["origin", "referer"])
def test_a_foreign_origin_is_refused_even_with_a_valid_token(admin_client: TestClient, header: str,
                                                             sessions: sessionmaker[Session]) -> None:
    mention_id = _first_mention(sessions)
    token = csrf_of(admin_client, "/")
    response = admin_client.post(f"/mentions/{mention_id}/notes", data={"text": "hi", "csrf_token": token},
                                 headers={header: "https://evil.example/page"}, follow_redirects=False)
    assert response.status_code == 403 and "another site" in response.text
    same = admin_client.post(f"/mentions/{mention_id}/notes", data={"text": "hi", "csrf_token": token},
                             headers={header: "http://testserver/mentions/1"}, follow_redirects=False)
    assert same.status_code == 303


def test_hsts_and_security_headers_on_every_response_when_public_url_is_https(
        sessions: sessionmaker[Session], engine: Engine, clock: FakeClock) -> None:
    config = make_config()
    config = config.model_copy(update={"web": WebConfig(secret_key=SecretStr(SECRET_KEY),
                                                        public_url="https://listen.example")})
    client = TestClient(_app(sessions, engine, clock, config), base_url="https://testserver")
    for path in ("/login", "/healthz", "/no-such-page", "/?q=%00", "/static/app.css"):
        response = client.get(path, follow_redirects=False)
        assert response.headers.get("strict-transport-security", "").startswith("max-age="), path
        assert response.headers.get("x-content-type-options") == "nosniff", path
    plain = TestClient(_app(sessions, engine, clock, make_config()))
    assert "strict-transport-security" not in plain.get("/login").headers


def test_head_works_on_healthz_and_status(admin_client: TestClient) -> None:
    for path in ("/healthz", "/status"):
        response = admin_client.head(path)
        assert response.status_code in (200, 503) and response.content == b""


def test_removing_a_tag_validates_it_and_refuses_a_missing_mention(admin_client: TestClient,
                                                                   sessions: sessionmaker[Session]) -> None:
    mention_id = _first_mention(sessions)
    assert post(admin_client, f"/mentions/{mention_id}/tags", {"tag": "billing"}).status_code == 303
    long_tag = "t" * 20_000
    response = post(admin_client, f"/mentions/{mention_id}/tags/remove", {"tag": long_tag})
    assert response.status_code == 422 and long_tag not in response.text
    assert len(response.headers.get("set-cookie", "")) < 4096
    assert post(admin_client, f"/mentions/{2**63 - 1}/tags/remove", {"tag": "billing"}).status_code == 404
    assert post(admin_client, f"/mentions/{mention_id}/tags/remove", {"tag": "Billing"}).status_code == 303
    with sessions() as s:
        assert s.scalars(select(MentionTag)).all() == []


@pytest.mark.parametrize("text", ["thanks\x00", "bad\x1b[31m", "x\x7f"])
def test_replies_refuse_control_characters(admin_client: TestClient, sessions: sessionmaker[Session],
                                           text: str) -> None:
    mention_id = _first_mention(sessions)
    response = post(admin_client, f"/mentions/{mention_id}/reply", {"text": text})
    assert response.status_code == 400 and "control character" in response.text  # the edge refuses it
    with sessions() as s:
        assert s.scalars(select(Reply)).all() == []
    with pytest.raises(queue.Invalid, match="control character"):  # and so does the queue, for other callers
        queue.check_reply_text("x", text)


def test_an_unexpected_error_is_a_logged_500_page_with_the_headers(
        sessions: sessionmaker[Session], engine: Engine, clock: FakeClock, web_config: Config,
        caplog: pytest.LogCaptureFixture) -> None:
    app = _app(sessions, engine, clock, web_config)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug in a route")

    client = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level("ERROR", logger="responders.web.guard"):
        response = client.get("/boom")
        api = client.get("/boom", headers={"accept": "application/json"})
    assert response.status_code == 500 and "Something went wrong" in response.text
    assert "a bug in a route" not in response.text  # no internals in the page
    assert response.headers["x-frame-options"] == "DENY" and response.headers["cache-control"] == "no-store"
    assert api.status_code == 500 and "error" in api.json()
    assert any(record.exc_info and "a bug in a route" in str(record.exc_info[1]) for record in caplog.records)
