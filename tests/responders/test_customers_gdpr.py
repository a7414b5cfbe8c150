"""The customer's rights: export everything, erase without a trace (every column of every table), keep counts."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.orm import AuditEvent, Base, Digest, ErasedMentionStats, MentionTag, Note, SentimentCorrection
from responders import notes
from responders.customers import gdpr, propose_links
from tests.responders.factories import T0, make_author, make_customer, make_mention, make_reply, make_user


def _jana(s: Session) -> dict[str, Any]:
    bob = make_user(s, "bob")
    jana = make_customer(s, "Jana Becker", tags=["vip"])
    on_x = make_author(s, "jana_b", name="Jana Becker", customer=jana)
    on_fb = make_author(s, "fb-jana", platform="facebook", name="Jana B. Secretname", customer=jana)
    make_author(s, "fb-lookalike", platform="facebook", name="Jana Backer")
    old = make_mention(s, "my router 7731 is broken", author=on_x, state="answered",
                       created_at=T0 - timedelta(days=3))
    make_reply(s, old, bob, text="Sorry Jana, we fixed router 7731")
    own = make_mention(s, "@jana_b please DM us", handle="acme", is_own=True, created_at=T0 - timedelta(days=2))
    fb = make_mention(s, "Rechnung doppelt abgebucht, Kundennr 99812", author=on_fb, platform="facebook")
    fb.raw = {"from": {"id": on_fb.external_id, "name": on_fb.display_name}}
    s.add_all([Note(mention_id=fb.id, text="called her back", created_at=T0),
               Note(customer_id=jana.id, text="prefers German", created_at=T0),
               MentionTag(mention_id=fb.id, tag="billing"),
               SentimentCorrection(mention_id=fb.id, original_label="neutral", corrected_label="negative",
                                   created_at=T0)])
    other = make_mention(s, "I agree with @jana_b, awful service", handle="someone")
    s.add(Digest(brand="Acme Mobile", day=(T0 - timedelta(days=1)).date(), html="<p>my router 7731 is broken</p>",
                 text="my router 7731 is broken", data={"top": ["Rechnung doppelt abgebucht, Kundennr 99812"]}))
    notes.set_customer_tags(s, jana.id, ["vip"], user_id=bob.id, now=T0)
    propose_links(s, T0)
    s.flush()
    return {"customer": jana.id, "bob": bob.id, "other": other.id, "own": own.id,
            "needles": ["jana_b", "Jana Becker", "Secretname", on_x.external_id, on_fb.external_id,
                        "my router 7731 is broken", "Rechnung doppelt abgebucht, Kundennr 99812",
                        "Sorry Jana, we fixed", "called her back", "prefers German"]}


def _dump(s: Session) -> str:
    """Every value of every row of every table, stringified (JSON included)."""
    out = []
    for table in Base.metadata.sorted_tables:
        for row in s.execute(select(table)).all():
            out.append(json.dumps([str(v) if not isinstance(v, dict | list) else v for v in row],
                                  ensure_ascii=False, default=str))
    return "\n".join(out).lower()


def test_export_is_complete_and_serialisable(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        ids = _jana(s)
        data = gdpr.export_customer(s, int(ids["customer"]), actor=None, now=T0)
    text = json.dumps(data, ensure_ascii=False)
    for key in ("customer", "identities", "mentions", "replies", "notes", "tags", "corrections", "queue",
                "link_proposals", "audit_events"):
        assert data[key], key
    assert len(data["identities"]) == 2 and len(data["mentions"]) == 2
    for needle in ("Sorry Jana", "called her back", "prefers German", "billing", "Kundennr 99812", "vip"):
        assert needle in text
    assert data["mentions"][1]["raw"]["from"]["name"] == "Jana B. Secretname"
    with sessions() as s:
        assert s.scalar(select(AuditEvent.action).where(AuditEvent.action == "customer_export"))


def test_erase_leaves_no_trace_in_any_table_and_keeps_counts(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        ids = _jana(s)
        boss = make_user(s, "boss", "admin")
        notes.add_note(s, "VIP since 2019", user_id=boss.id, now=T0, customer_id=int(ids["customer"]))
        before = _dump(s)
        needles = [str(n).lower() for n in ids["needles"]]
        assert all(n in before for n in needles)
        summary = gdpr.erase_customer(s, int(ids["customer"]), boss.id, T0)
    assert summary["mentions"] == 3 and summary["identities"] == 2 and summary["own_replies"] == 1
    with sessions() as s:
        after = _dump(s)
        for needle in needles:
            assert needle not in after, needle
        stats = {(r.platform, r.sentiment): (r.count, r.answered_count) for r in s.scalars(select(ErasedMentionStats))}
        assert stats == {("x", "negative"): (1, 1), ("facebook", "negative"): (1, 0)}
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "customer_erase"))
        assert event is not None and event.object_id == str(ids["customer"]) and event.detail["mentions"] == 3
        assert "I agree with @[erased]" in after or "i agree with @[erased]" in after
        assert s.get(type(s.scalar(select(Digest))), 1) is not None  # the digest stays, redacted
