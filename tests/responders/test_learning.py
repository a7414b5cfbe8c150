"""Learning from the team: corrections become training data; the gate switches or refuses, audited."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.complaint import ComplaintModel, complaint_model_in
from models.orm import AuditEvent, SentimentCorrection
from models.sentiment import versions
from responders import audit, learning
from tests.models.test_finetune import TINY, labelled, write_corpus
from tests.responders.factories import T0, item_of, make_mention, make_user

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


# --------------------------------------------------------------------------- the complaint score


ASKS = ["my order {n} never arrived, where is it?", "can you check booking {n}? still nothing",
        "Bestellung {n} ist nicht angekommen, wo bleibt sie?", "invoice {n} is wrong, who do I talk to?"]
RANTS = ["worst advert ever lol", "your jingle is so annoying haha", "ugh mondays, even the acme app looks sad",
         "die Werbung nervt total"]


def outcomes(session: Session, n: int, answered_when: Callable[[int, bool], bool]) -> None:
    """n queue items alternating a customer question with a low negative probability and a rant with a
    high one; `answered_when(mention_id, is_question)` decides answered (else dismissed)."""
    for i in range(n):
        question = i % 2 == 0
        text = (ASKS if question else RANTS)[i // 2 % 4].format(n=100_000 + i)
        m = make_mention(session, text, handle=f"c{i}", negative=0.3 if question else 0.9, state="new")
        item = item_of(session, m.id)
        item.state = "answered" if answered_when(m.id, question) else "dismissed"
    session.flush()


def test_too_few_outcomes_learn_nothing(own_data_dir: Path, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        outcomes(s, 30, lambda _m, question: question)
    outcome = learning.learn_complaint(sessions, now=T0, min_per_class=20)
    assert not outcome.switched and "nothing learned" in outcome.message
    assert versions.read_active()["active"] == versions.SHIPPED
    with sessions() as s:
        assert s.scalars(select(AuditEvent)).all() == []


def test_a_learned_complaint_score_switches_and_rollback_restores_the_formula(
        own_data_dir: Path, sessions: sessionmaker[Session]) -> None:
    """The team answers questions and dismisses rants; the formula ranks rants (p_neg 0.9) above questions
    (p_neg 0.3), the learned score the other way round."""
    with sessions.begin() as s:
        outcomes(s, 240, lambda _m, question: question)
    outcome = learning.learn_complaint(sessions, now=T0, min_per_class=20)
    assert outcome.switched, outcome.message
    row, = outcome.gate_rows
    assert row["current"] < 0.5 < 0.99 < row["candidate"]
    state = versions.read_active()
    assert state["active"] == outcome.version and state["previous"] == versions.SHIPPED
    learned = versions.active_complaint_model()
    assert learned is not None
    assert learned.score(ASKS[0].format(n=1), 0.3, 0.35) > 0.5 > learned.score(RANTS[0], 0.9, 0.05)
    # the version is the shipped adapter and head plus the model, and the default classifier scores with it
    from models.sentiment.classifier import EmbeddingClassifier

    clf = EmbeddingClassifier(head_path=versions.active_head_path(), mode="fp32")
    assert clf.complaint_model == learned
    result, = clf.classify(["my parcel 4711 is lost, can you help?"])
    assert result.complaint == pytest.approx(learned.score("my parcel 4711 is lost, can you help?", result.negative,
                                                           result.positive))
    with sessions() as s:
        event = s.scalars(select(AuditEvent)).one()
    assert event.action == audit.CLASSIFIER_SWITCH and event.detail["kind"] == "complaint"
    assert versions.rollback()["active"] == versions.SHIPPED
    assert versions.active_complaint_model() is None


def test_a_worse_complaint_score_is_refused(own_data_dir: Path, sessions: sessionmaker[Session]) -> None:
    """Outcomes to learn from say the opposite of the held-back ones (which agree with the formula)."""
    with sessions.begin() as s:
        outcomes(s, 240, lambda m, question: (not question) == learning.is_held_back(m))
    outcome = learning.learn_complaint(sessions, now=T0, min_per_class=20)
    assert not outcome.switched, outcome.message
    row, = outcome.gate_rows
    assert row["candidate"] < row["current"]
    assert versions.read_active()["active"] == versions.SHIPPED
    assert not versions.versions_dir().exists() or [p for p in versions.versions_dir().iterdir() if p.is_dir()] == []
    with sessions() as s:
        event = s.scalars(select(AuditEvent)).one()
    assert event.action == audit.CLASSIFIER_REFUSED and event.detail["gate"][0]["set"] == "outcomes/held-back"


def test_a_sentiment_retrain_keeps_the_learned_complaint_score(own_data_dir: Path) -> None:
    model = ComplaintModel(tuple(0.1 for _ in range(8)), 0.0)
    version = versions.with_complaint_model(model)
    versions.activate(version, "test")
    target = versions.versions_dir() / "next"
    versions.keep_complaint_model(target)
    assert complaint_model_in(target) == model
