"""Customer pages over HTTP: proposals, the mention page's customer box, roles and CSRF on export/erase."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.orm import Author, Customer, LinkProposal
from responders.customers import propose_links
from tests.responders.factories import T0, login, make_author, make_mention, make_user, post

Client = Callable[[], TestClient]


def _setup(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Jana complained on X last week (unanswered); now she comments on Facebook."""
    with sessions.begin() as s:
        make_user(s, "alice")
        make_user(s, "root", "admin")
        on_x = make_author(s, "jana_b", name="Jana Becker")
        on_fb = make_author(s, "fb-jana", platform="facebook", name="Jana B.")
        make_mention(s, "my router 7731 is broken since Monday", author=on_x, state="dismissed",
                     created_at=T0 - timedelta(days=6))
        fb = make_mention(s, "I also wrote to you on X as @jana_b - still broken", author=on_fb,
                          platform="facebook")
        proposal = next(p for p in propose_links(s, T0) if {p.author_a, p.author_b} == {on_x.id, on_fb.id})
        return {"fb_mention": fb.id, "proposal": proposal.id, "fb": on_fb.id}


def test_confirming_on_the_web_shows_the_x_history_on_the_facebook_mention(
        sessions: sessionmaker[Session], new_client: Client) -> None:
    ids = _setup(sessions)
    client = login(new_client(), "alice")
    page = client.get(f"/mentions/{ids['fb_mention']}").text
    assert "Maybe the same person" in page and "my router 7731" not in page
    listing = client.get("/customers").text
    assert "names @jana_b" in listing and "Same person" in listing
    assert client.post(f"/customers/proposals/{ids['proposal']}/confirm").status_code == 403  # no CSRF token
    done = post(client, f"/customers/proposals/{ids['proposal']}/confirm")
    assert done.status_code == 303 and done.headers["location"].startswith("/customers/")
    customer_page = client.get(done.headers["location"]).text
    assert "my router 7731" in customer_page and "dismissed, not answered" in customer_page
    assert "Erase" not in customer_page  # agents see no export/erase
    page = client.get(f"/mentions/{ids['fb_mention']}").text
    assert "my router 7731" in page and "/customers/" in page
    assert "1 earlier conversation" in page


def test_only_admins_export_and_erase_with_the_typed_id(sessions: sessionmaker[Session], new_client: Client) -> None:
    ids = _setup(sessions)
    with sessions.begin() as s:
        customer_id = s.get_one(Author, ids["fb"]).customer_id
        assert customer_id is None
    agent = login(new_client(), "alice")
    opened = post(agent, f"/customers/for-author/{ids['fb']}")
    customer_id = int(opened.headers["location"].rsplit("/", 1)[1])
    assert post(agent, f"/customers/{customer_id}/export").status_code == 403
    assert post(agent, f"/customers/{customer_id}/erase", {"confirm_id": str(customer_id)}).status_code == 403
    admin = login(new_client(), "root")
    exported = post(admin, f"/customers/{customer_id}/export")
    assert exported.status_code == 200 and "still broken" in exported.text
    assert admin.post(f"/customers/{customer_id}/erase", data={"confirm_id": str(customer_id)}).status_code == 403
    wrong = post(admin, f"/customers/{customer_id}/erase", {"confirm_id": "nope"})
    assert wrong.status_code == 303 and wrong.headers["location"] == f"/customers/{customer_id}"
    erased = post(admin, f"/customers/{customer_id}/erase", {"confirm_id": str(customer_id)})
    assert erased.status_code == 303
    with sessions() as s:
        assert s.get(Customer, customer_id) is None and s.get(Author, ids["fb"]) is None
        assert s.scalar(select(LinkProposal).where(LinkProposal.id == ids["proposal"])) is None
    assert "jana" in admin.get("/customers?q=jana").text.lower()  # the X identity remains (not linked)
