"""Learning from the team: corrections become training data; the gate switches or refuses, audited."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.orm import AuditEvent, SentimentCorrection
from models.sentiment import versions
from responders import audit, learning
from tests.models.test_finetune import TINY, labelled, write_corpus
from tests.responders.factories import T0, make_mention, make_user

STRONG = dict(TINY, epochs=10.0, lr=3e-3, head_lr=1e-2)
SWAP = {"positive": "negative", "negative": "positive", "neutral": "neutral"}


def correct(session: Session, rows: list[tuple[str, str]], user_id: int) -> None:
    for text, label in rows:
        m = make_mention(session, text, sentiment="neutral", queued=False)
        session.add(SentimentCorrection(mention_id=m.id, user_id=user_id, original_label="neutral",
                                        corrected_label=label, created_at=T0))


def test_the_newest_correction_wins_and_the_held_back_slice_is_fixed(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        user = make_user(s, "ana")
        m = make_mention(s, "meh", queued=False)
        for label in ("positive", "negative"):
            s.add(SentimentCorrection(mention_id=m.id, user_id=user.id, corrected_label=label, created_at=T0))
    with sessions() as s:
        rows = learning.corrections(s)
    assert [(r.text, r.label) for r in rows] == [("meh", 0)]
    held = [i for i in range(1, 1001) if learning.is_held_back(i)]
    assert held == [i for i in range(1, 1001) if learning.is_held_back(i)]
    assert 150 < len(held) < 250  # the 20 % share


def test_too_few_corrections_retrain_nothing(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with sessions.begin() as s:
        correct(s, labelled()[:3], make_user(s, "ana").id)
    outcome = learning.retrain(sessions, tmp_path, now=T0, min_corrections=50)
    assert not outcome.switched and "fewer than the 50" in outcome.message


def _datasets(tmp_path: Path) -> Path:
    data = tmp_path / "datasets"
    write_corpus(data, "tiny", labelled())
    write_corpus(data, "tiny", labelled()[::2], split="val")
    return data


def test_a_worse_retrain_is_refused_and_audited(own_data_dir: Path, sessions: sessionmaker[Session],
                                               tmp_path: Path) -> None:
    data = _datasets(tmp_path)
    versions.train_version(data, versions.versions_dir() / "good", config=STRONG, resume=False)
    versions.activate("good", "test")
    with sessions.begin() as s:
        correct(s, [(t, SWAP[label]) for t, label in labelled()], make_user(s, "ana").id)
    outcome = learning.retrain(sessions, data, now=T0, min_corrections=5, config=STRONG)
    assert not outcome.switched and outcome.message.startswith("candidate refused")
    assert versions.read_active()["active"] == "good"
    assert [p.name for p in versions.versions_dir().iterdir() if p.is_dir()] == ["good"]  # the refused one is gone
    with sessions() as s:
        event = s.scalars(select(AuditEvent)).one()
    assert event.action == audit.CLASSIFIER_REFUSED
    assert {r["set"] for r in event.detail["gate"]} == {"tiny/val", "corrections/held-back"}


def test_a_better_retrain_switches_and_rollback_restores(own_data_dir: Path, sessions: sessionmaker[Session],
                                                        tmp_path: Path) -> None:
    data = _datasets(tmp_path)
    flipped = tmp_path / "flipped"
    write_corpus(flipped, "tiny", [(t, SWAP[label]) for t, label in labelled()])
    versions.train_version(flipped, versions.versions_dir() / "bad", config=STRONG, resume=False)
    versions.activate("bad", "test")
    with sessions.begin() as s:
        correct(s, labelled(), make_user(s, "ana").id)
    outcome = learning.retrain(sessions, data, now=T0, min_corrections=5, config=dict(STRONG, epochs=20.0))
    assert outcome.switched, outcome.message
    state = versions.read_active()
    assert state["active"] == outcome.version and state["previous"] == "bad"
    with sessions() as s:
        assert [e.action for e in s.scalars(select(AuditEvent))] == [audit.CLASSIFIER_SWITCH]
    back = versions.rollback()
    assert back["active"] == "bad"
