"""Server-side sessions: a copied cookie is worthless once its session ends (both databases)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.orm import AuditEvent, Note, User, WebSession
from responders import auth
from responders import sessions as web_sessions
from tests.responders.factories import PASSWORD, csrf_of, login, make_mention, make_user, post
from tests.support import FakeClock

Client = Callable[[], TestClient]
COOKIE = "openear_session"


def _copy(source: TestClient, target: TestClient) -> TestClient:
    """What an attacker does with a stolen cookie: the same value in another browser."""
    value = source.cookies.get(COOKIE)
    assert value
    target.cookies.set(COOKIE, value)
    return target


def _signed_in(client: TestClient) -> bool:
    response = client.get("/", follow_redirects=False)
    assert response.status_code in (200, 303), response.status_code
    return response.status_code == 200


def _users(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    with sessions.begin() as s:
        alice = make_user(s, "alice")
        admin = make_user(s, "root", role="admin")
        mention_id = make_mention(s, "my order never arrived").id
        return alice.id, admin.id, mention_id


def test_a_copied_cookie_is_refused_after_logout(sessions: sessionmaker[Session], new_client: Client) -> None:
    _alice, _admin, mention_id = _users(sessions)
    browser = login(new_client(), "alice")
    thief = _copy(browser, new_client())
    stolen = _copy(browser, new_client())  # kept aside, replayed as is after logout
    assert _signed_in(thief)
    assert post(browser, "/logout").status_code == 303
    assert not _signed_in(thief)
    note = post(stolen, f"/mentions/{mention_id}/notes", {"text": "written with a stolen cookie"})
    assert note.status_code in (303, 401, 403) and note.headers.get("location", "/login").startswith("/login")
    with sessions() as s:
        assert s.scalars(select(Note)).all() == []
        ended = s.scalars(select(WebSession)).one()
        assert ended.end_reason == "logout" and ended.ended_at is not None


def test_the_cookie_holds_a_token_the_database_only_hashes(sessions: sessionmaker[Session],
                                                            new_client: Client) -> None:
    _users(sessions)
    browser = login(new_client(), "alice")
    data = json.loads(base64.b64decode(str(browser.cookies.get(COOKIE)).split(".")[0]))
    assert set(data) >= {"sid", "csrf"} and "uid" not in data
    with sessions() as s:
        row = s.scalars(select(WebSession)).one()
    assert row.token_hash == hashlib.sha256(data["sid"].encode()).hexdigest()
    assert data["sid"] not in repr(row) and row.token_hash not in repr(row)


def test_password_change_ends_every_session_but_the_changers_own(sessions: sessionmaker[Session],
                                                                  new_client: Client) -> None:
    alice_id, admin_id, _ = _users(sessions)
    phone, laptop = login(new_client(), "alice"), login(new_client(), "alice")
    admin_desk, admin_phone = login(new_client(), "root"), login(new_client(), "root")
    assert post(admin_desk, f"/admin/users/{alice_id}", {"password": "a new long password"}).status_code == 303
    assert not _signed_in(phone) and not _signed_in(laptop)
    assert _signed_in(admin_desk) and _signed_in(admin_phone)
    # the admin's own new password: the other browser of the admin ends, this one stays
    assert post(admin_desk, f"/admin/users/{admin_id}", {"password": "another long password"}).status_code == 303
    assert _signed_in(admin_desk) and not _signed_in(admin_phone)
    login(new_client(), "alice", "a new long password")
    with sessions() as s:
        reasons = sorted(r for r in s.scalars(select(WebSession.end_reason)) if r)
        detail = s.scalars(select(AuditEvent.detail).where(AuditEvent.action == "user_update")).all()
    assert reasons == ["password_changed"] * 3
    assert [d.get("sessions_ended") for d in detail] == [2, 1]


def test_deactivation_ends_sessions_and_reactivation_does_not_revive_them(
        sessions: sessionmaker[Session], new_client: Client) -> None:
    alice_id, _admin, _ = _users(sessions)
    browser = login(new_client(), "alice")
    thief = _copy(browser, new_client())
    admin = login(new_client(), "root")
    assert post(admin, f"/admin/users/{alice_id}", {"active": "0"}).status_code == 303
    assert post(admin, f"/admin/users/{alice_id}", {"active": "1"}).status_code == 303
    assert not _signed_in(browser) and not _signed_in(thief)
    with sessions() as s:
        assert s.scalars(select(WebSession.end_reason).where(WebSession.user_id == alice_id)).all() == ["deactivated"]


def test_idle_and_absolute_timeouts(sessions: sessionmaker[Session], new_client: Client, clock: FakeClock) -> None:
    _users(sessions)  # defaults: 120 idle minutes, 12 hours at most
    busy = login(new_client(), "alice")
    idle = login(new_client(), "alice")
    for _ in range(5):  # 5 x 110 minutes: the busy browser stays signed in, the idle one times out
        clock.advance(minutes=110)
        assert _signed_in(busy)
    assert not _signed_in(idle)
    clock.advance(minutes=110)  # 660 minutes since sign-in
    assert _signed_in(busy)
    clock.advance(minutes=61)  # 721 minutes: past the 12-hour limit, however active
    assert not _signed_in(busy)


def test_admin_signs_a_user_out_everywhere(sessions: sessionmaker[Session], new_client: Client) -> None:
    alice_id, _admin, _ = _users(sessions)
    phone, laptop = login(new_client(), "alice"), login(new_client(), "alice")
    admin = login(new_client(), "root")
    page = admin.get("/admin/users")
    assert f'action="/admin/users/{alice_id}/sign-out"' in page.text
    agent_try = post(phone, f"/admin/users/{alice_id}/sign-out")
    assert agent_try.status_code == 403 and _signed_in(phone)
    assert post(admin, f"/admin/users/{alice_id}/sign-out").status_code == 303
    assert not _signed_in(phone) and not _signed_in(laptop) and _signed_in(admin)
    assert f'action="/admin/users/{alice_id}/sign-out"' not in admin.get("/admin/users").text
    assert post(admin, "/admin/users/999999/sign-out").status_code == 404
    with sessions() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "sessions_ended")).one()
    assert event.object_id == str(alice_id) and event.detail["sessions_ended"] == 2


def test_cli_password_change_ends_sessions(sessions: sessionmaker[Session], new_client: Client,
                                           clock: FakeClock) -> None:
    alice_id, _admin, _ = _users(sessions)
    browser = login(new_client(), "alice")
    with sessions.begin() as s:  # what `openear user set alice --password` does
        auth.update_user(s, alice_id, now=clock(), actor_id=None, password="changed on the command line")
    assert not _signed_in(browser)


def test_purge_drops_only_long_dead_sessions(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    lifetimes = web_sessions.Lifetimes(idle=timedelta(hours=2), absolute=timedelta(hours=12))
    with sessions.begin() as s:
        user = make_user(s, "alice")
        _token, ended = web_sessions.open_session(s, user, now=clock(), client="127.0.0.1")
        web_sessions.end_session(s, ended.id, now=clock(), reason="logout")
        web_sessions.open_session(s, user, now=clock(), client=None)
    clock.advance(days=31)
    with sessions.begin() as s:
        alice = s.get(User, user.id)
        assert alice is not None
        _token, fresh = web_sessions.open_session(s, alice, now=clock(), client=None)
        assert web_sessions.purge(s, now=clock(), lifetimes=lifetimes) == 2
    with sessions() as s:
        assert s.scalars(select(WebSession.id)).all() == [fresh.id]


def test_a_wrong_password_never_opens_a_session(sessions: sessionmaker[Session], new_client: Client) -> None:
    _users(sessions)
    client = new_client()
    assert client.post("/login", data={"username": "alice", "password": PASSWORD + "x",
                                       "csrf_token": csrf_of(client)}).status_code == 401
    with sessions() as s:
        assert s.scalars(select(WebSession)).all() == []

