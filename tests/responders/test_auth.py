"""Users, passwords, sessions, roles, CSRF and the security headers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.orm import AuditEvent, User
from responders import auth
from responders.web import routes_admin, routes_auth, routes_mention, routes_queue
from tests.responders.factories import PASSWORD, T0, csrf_of, login, make_mention, make_user, post

Client = Callable[[], TestClient]


def test_argon2_hashes_and_verifies() -> None:
    hashed = auth.hash_password("s3cret-password")
    assert hashed.startswith("$argon2id$") and "s3cret" not in hashed
    assert auth.verify_password(hashed, "s3cret-password")
    assert not auth.verify_password(hashed, "wrong")
    assert not auth.verify_password("not a hash", "s3cret-password")


def test_create_user_validates(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        user = auth.create_user(s, "alice", PASSWORD, "manager", now=T0)
        assert user.role == "manager" and user.active
        assert "argon2" not in repr(user)
        for name, password, role, message in [
            ("Alice", PASSWORD, "agent", "taken"),
            ("a", PASSWORD, "agent", "usernames are"),
            ("bob", "short", "agent", "at least 8"),
            ("bob", PASSWORD, "king", "unknown role"),
        ]:
            with pytest.raises(auth.UserError, match=message):
                auth.create_user(s, name, password, role, now=T0)


def test_authenticate_rejects_wrong_password_and_inactive_users(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
        make_user(s, "gone", active=False)
    with sessions.begin() as s:
        assert auth.authenticate(s, "alice", PASSWORD, now=T0) is not None
        assert auth.authenticate(s, "alice", "nope", now=T0) is None
        assert auth.authenticate(s, "nobody", PASSWORD, now=T0) is None
        assert auth.authenticate(s, "gone", PASSWORD, now=T0) is None
    with sessions() as s:
        events = s.execute(select(AuditEvent.action, AuditEvent.detail)).all()
    assert [a for a, _ in events] == ["login", "login_failed", "login_failed", "login_failed"]
    assert all(PASSWORD not in str(d) for _, d in events)


def test_the_last_admin_cannot_be_demoted_or_deactivated(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        root = make_user(s, "root", "admin")
        with pytest.raises(auth.UserError, match="last active admin"):
            auth.update_user(s, root.id, now=T0, actor_id=root.id, active=False)
        with pytest.raises(auth.UserError, match="last active admin"):
            auth.update_user(s, root.id, now=T0, actor_id=root.id, role="agent")
        other = make_user(s, "root2", "admin")
        auth.update_user(s, root.id, now=T0, actor_id=other.id, role="agent")
        assert root.role == "agent"


# --------------------------------------------------------------------------- HTTP


def test_pages_redirect_to_login_and_json_answers_401(new_client: Client) -> None:
    client = new_client()
    for path in ("/", "/mentions/1", "/audit", "/admin/users", "/reports"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login")
    assert client.get("/mentions/7", follow_redirects=False).headers["location"] == "/login?next=/mentions/7"
    api = client.get("/api/queue/updates?since=0")
    assert api.status_code == 401 and api.json() == {"error": "not signed in"}
    assert client.post("/api/mentions/1/heartbeat", headers={"X-CSRF-Token": "x"}).status_code in (401, 403)


def test_login_wrong_password_and_logout(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
    client = new_client()
    token = csrf_of(client)
    wrong = client.post("/login", data={"username": "alice", "password": "nope", "csrf_token": token})
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    assert "nope" not in wrong.text
    ok = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token,
                                     "next": "/mentions/3"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/mentions/3"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert client.get("/").status_code == 200
    assert post(client, "/logout").status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_never_redirects_off_site(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
    client = new_client()
    response = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf_of(client),
                                           "next": "//evil.example/"}, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_inactive_user_cannot_log_in_and_is_signed_out(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        alice_id = make_user(s, "alice").id
        make_user(s, "gone", active=False)
    client = new_client()
    token = csrf_of(client)
    assert client.post("/login", data={"username": "gone", "password": PASSWORD, "csrf_token": token}
                       ).status_code == 401
    login(client, "alice")
    with sessions.begin() as s:
        user = s.get(User, alice_id)
        assert user is not None
        user.active = False
    assert client.get("/", follow_redirects=False).status_code == 303


def test_csrf_missing_or_wrong_is_403(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
        mention_id = make_mention(s, "help").id
    client = new_client()
    assert client.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 403
    login(client, "alice")
    assert client.post(f"/mentions/{mention_id}/claim").status_code == 403
    assert client.post(f"/mentions/{mention_id}/claim", data={"csrf_token": "forged"}).status_code == 403
    assert client.post(f"/api/mentions/{mention_id}/heartbeat", headers={"X-CSRF-Token": "forged"}
                       ).status_code == 403
    assert post(client, f"/mentions/{mention_id}/claim").status_code == 303


def test_every_post_route_checks_csrf(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "root", "admin")
    client = login(new_client(), "root")
    routers = (routes_admin.router, routes_auth.router, routes_mention.router, routes_queue.router)
    posts = [r for router in routers for r in router.routes if isinstance(r, APIRoute) and "POST" in r.methods]
    assert len(posts) >= 15
    for route in posts:
        path = route.path.replace("{mention_id}", "1").replace("{reply_id}", "1").replace("{user_id}", "1") \
            .replace("{saved_id}", "1")
        assert client.post(path, data={"text": "x"}).status_code == 403, path


def test_roles_gate_the_manager_and_admin_pages(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "agent1")
        make_user(s, "boss", "manager")
        make_user(s, "root", "admin")
    agent, manager, admin = login(new_client(), "agent1"), login(new_client(), "boss"), login(new_client(), "root")
    for path in ("/audit", "/reports", "/admin/users", "/admin/saved-replies"):
        assert agent.get(path).status_code == 403, path
    assert "Audit log" not in agent.get("/").text
    assert manager.get("/audit").status_code == 200 and manager.get("/reports").status_code == 200
    assert manager.get("/admin/users").status_code == 403
    assert post(manager, "/admin/users", {"username": "x1", "password": PASSWORD, "role": "admin"}).status_code == 403
    for path in ("/audit", "/reports", "/admin/users", "/admin/saved-replies"):
        assert admin.get(path).status_code == 200, path


def test_security_headers_and_no_secrets(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "root", "admin")
    client = login(new_client(), "root")
    for path in ("/login", "/", "/admin/users", "/no-such-page"):
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "test-secret-key" not in response.text and "$argon2" not in response.text
        assert "<script>" not in response.text and " style=" not in response.text  # CSP: no inline code
        assert " onclick=" not in response.text
