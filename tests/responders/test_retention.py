"""Retention: raw payloads and old mentions go, counts stay, orphaned authors go, customers stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.config import RetentionConfig
from models.orm import Author, ErasedMentionStats, Mention, MentionTag, Note, QueueItem, Reply
from responders.retention import apply_retention
from tests.responders.factories import T0, make_author, make_customer, make_mention, make_reply, make_user


def test_retention_removes_old_data_and_keeps_counts(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        bob = make_user(s, "bob")
        gone = make_author(s, "old_timer")
        kept = make_author(s, "loyal", customer=make_customer(s, "Loyal"))
        ancient = make_mention(s, "broken in 2023", author=gone, state="answered", created_at=T0 - timedelta(days=800))
        make_reply(s, ancient, bob)
        s.add_all([Note(mention_id=ancient.id, text="old note", created_at=T0), MentionTag(mention_id=ancient.id,
                                                                                           tag="old")])
        make_mention(s, "also ancient", author=kept, created_at=T0 - timedelta(days=760))
        middle = make_mention(s, "last spring", author=kept, created_at=T0 - timedelta(days=120))
        middle.raw = {"payload": "big"}
        recent = make_mention(s, "yesterday", author=kept, created_at=T0 - timedelta(days=1))
        recent.raw = {"payload": "fresh"}
        ids = (ancient.id, middle.id, recent.id, gone.id, kept.id)
    with sessions.begin() as s:
        summary = apply_retention(s, T0, RetentionConfig(raw_payload_days=90, mention_days=730))
    assert summary["mentions"] == 2 and summary["raw_payloads"] >= 1 and summary["authors"] == 1
    with sessions() as s:
        assert s.get(Mention, ids[0]) is None
        assert s.get_one(Mention, ids[1]).raw is None and s.get_one(Mention, ids[2]).raw == {"payload": "fresh"}
        assert s.get(Author, ids[3]) is None and s.get(Author, ids[4]) is not None
        for model in (Reply, Note, MentionTag):
            assert s.scalar(select(func.count()).select_from(model)) == 0, model
        assert s.scalar(select(func.count()).select_from(QueueItem)) == 2
        total = s.scalar(select(func.sum(ErasedMentionStats.count)))
        answered = s.scalar(select(func.sum(ErasedMentionStats.answered_count)))
        assert (total, answered) == (2, 1)
