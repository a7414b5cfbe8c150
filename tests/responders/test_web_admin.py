"""Admin pages (users, saved replies), the manager's audit log and team report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.orm import SavedReply, User
from tests.responders.factories import PASSWORD, T0, csrf_of, login, make_mention, make_reply, make_user, post

Client = Callable[[], TestClient]


def test_admin_creates_and_deactivates_users(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "root", "admin")
    admin = login(new_client(), "root")
    created = post(admin, "/admin/users", {"username": "carol", "password": "carol-password-1", "role": "manager"})
    assert created.status_code == 303
    assert post(admin, "/admin/users", {"username": "carol", "password": "x" * 10, "role": "agent"}).status_code == 422
    assert "the password must have at least 8" in post(admin, "/admin/users",
                                                       {"username": "dave", "password": "short"}).text
    carol = login(new_client(), "carol", "carol-password-1")
    assert carol.get("/audit").status_code == 200
    with sessions() as s:
        carol_id = s.scalar(select(User.id).where(User.username == "carol"))
    assert post(admin, f"/admin/users/{carol_id}", {"active": "0"}).status_code == 303
    assert carol.get("/", follow_redirects=False).status_code == 303  # signed out at once
    fresh = new_client()
    assert fresh.post("/login", data={"username": "carol", "password": "carol-password-1",
                                      "csrf_token": csrf_of(fresh)}).status_code == 401
    assert "deactivated" in admin.get("/admin/users").text
    assert post(admin, f"/admin/users/{carol_id}", {"active": "1", "role": "agent"}).status_code == 303
    assert post(admin, f"/admin/users/{carol_id}", {"password": "new-password-2"}).status_code == 303
    login(new_client(), "carol", "new-password-2")


def test_admin_manages_saved_replies(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "root", "admin")
    admin = login(new_client(), "root")
    assert post(admin, "/admin/saved-replies", {"name": "Sorry", "text": "Sorry {name}!", "language": "en"}
                ).status_code == 303
    assert post(admin, "/admin/saved-replies", {"name": "sorry", "text": "dup"}).status_code == 422
    with sessions() as s:
        saved_id = s.scalars(select(SavedReply.id)).one()
    assert post(admin, f"/admin/saved-replies/{saved_id}", {"name": "Sorry", "text": "So sorry {name}!",
                                                            "language": "en"}).status_code == 303
    assert "So sorry {name}!" in admin.get("/admin/saved-replies").text
    assert post(admin, f"/admin/saved-replies/{saved_id}/delete").status_code == 303
    assert "No saved replies yet." in admin.get("/admin/saved-replies").text


def test_audit_log_records_the_team_work(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "alice")
        make_user(s, "boss", "manager")
        mention_id = make_mention(s, "help!").id
    alice = login(new_client(), "alice")
    post(alice, f"/mentions/{mention_id}/claim")
    post(alice, f"/mentions/{mention_id}/notes", {"text": "checking"})
    post(alice, f"/mentions/{mention_id}/reply", {"text": "On it!"})
    boss = login(new_client(), "boss")
    html = boss.get("/audit").text
    for action in ("login", "claim", "note", "reply"):
        assert f'<span class="pill a-{action}">' in html, action
    only_claims = boss.get("/audit?action=claim").text
    assert 'class="pill a-claim"' in only_claims and 'class="pill a-reply"' not in only_claims
    assert alice.get("/audit").status_code == 403


def test_team_report(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        alice = make_user(s, "alice")
        make_user(s, "boss", "manager")
        done = make_mention(s, "answered one", state="answered", created_at=T0 - timedelta(hours=2))
        make_reply(s, done, alice, sent_after=timedelta(minutes=30))
        make_mention(s, "late one", created_at=T0 - timedelta(hours=9))
    boss = login(new_client(), "boss", PASSWORD)
    html = boss.get("/reports").text
    # alice answered one mention first, sent one reply, dismissed none, 30 min to her first response
    assert "<td>alice</td><td>1</td><td>1</td><td>0</td><td>30 min</td>" in html
    assert '<div class="kpi bad"><span>1</span>over SLA now</div>' in html
    assert "<span>1</span>answered of 2</div>" in html and "<span>50 %</span>response rate" in html
