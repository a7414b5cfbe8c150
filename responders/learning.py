"""Learning from the team: sentiment corrections become training data for a gated retrain.

`corrections(session)` reads the labels people set in the web app (the newest correction per
mention wins). A fixed share of them, chosen by mention id, is held back: the retrained model never
sees it, and the gate (models/sentiment/versions.py) compares the current and the candidate model on
it and on the shared validation sets. `retrain(...)` runs the whole cycle: continue fine-tuning the
active model on the corrections plus a replay sample of the shared training data (so it does not
forget), gate, switch or refuse, and audit either outcome. `openear train-classifier
--from-corrections` and the opt-in daemon job (`classifier.retrain` in config.yaml) call it.

The complaint score learns from outcomes: queue items the team answered (1) or dismissed (0).
`learn_complaint(...)` fits a logistic regression over the formula's inputs (models/complaint.py
`ComplaintModel`) on the outcomes not held back, compares its ROC AUC on the held-back outcomes with
the active scorer's (the formula, or an earlier learned model), and only if it is no worse makes a new
version (the active adapter and head plus the model) active; both outcomes are audited.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.complaint import ComplaintModel, complaint_features, complaint_score, fit_complaint_model, roc_auc
from models.domain import QueueState
from models.orm import Mention, QueueItem, SentimentCorrection
from models.sentiment.finetune import Corpus, Progress, load_corpora
from models.sentiment.result import LABELS
from responders import audit

HELD_BACK_SHARE = 0.2
REPLAY_PER_CORPUS = 1500
CORRECTION_WEIGHT = 3.0
MIN_OUTCOMES_PER_CLASS = 20  # answered and dismissed each, to fit on; a quarter of that held back to gate on
RETRAIN_CONFIG: dict[str, Any] = {"epochs": 2.0, "lr": 5e-4, "head_lr": 1e-3, "warmup": 0.1}
"""Continued fine-tuning on corrections + replay: two passes over a small set, gentler rates."""


@dataclass(frozen=True)
class LabelledText:
    mention_id: int
    text: str
    label: int


def corrections(session: Session) -> list[LabelledText]:
    """The team's labels: one per corrected mention, the newest correction's."""
    rows = session.execute(
        select(SentimentCorrection.mention_id, SentimentCorrection.corrected_label, Mention.text)
        .join(Mention, Mention.id == SentimentCorrection.mention_id)
        .order_by(SentimentCorrection.mention_id, SentimentCorrection.created_at, SentimentCorrection.id))
    latest: dict[int, LabelledText] = {}
    for mention_id, label, text in rows:
        if label in LABELS and text:
            latest[int(mention_id)] = LabelledText(int(mention_id), str(text), LABELS.index(label))
    return list(latest.values())


def is_held_back(mention_id: int, share: float = HELD_BACK_SHARE) -> bool:
    digest = hashlib.sha256(f"held-back:{mention_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2 ** 32 < share


def write_tsv(rows: list[LabelledText], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        out.writerow(["text", "label"])
        for r in rows:
            out.writerow([" ".join(r.text.split()).replace("\\", "/"), LABELS[r.label]])
    return path


def replay_sample(corpus: Corpus, size: int = REPLAY_PER_CORPUS, seed: int = 0) -> Corpus:
    """A fixed random subset of a shared training corpus (same texts on every run)."""
    if len(corpus.texts) <= size:
        return corpus
    pick = np.sort(np.random.default_rng(seed).choice(len(corpus.texts), size, replace=False))
    return Corpus(f"{corpus.name}/replay", corpus.path, [corpus.texts[i] for i in pick], corpus.labels[pick],
                  corpus.weight)


@dataclass
class RetrainOutcome:
    switched: bool
    message: str
    version: str | None
    gate_rows: list[dict[str, Any]]
    trained_on: int
    held_back: int


def retrain(session_factory: Callable[[], Any], data: Path, *, now: datetime, user_id: int | None = None,
            min_corrections: int = 50, progress: Progress | None = None, seed: int = 0,
            config: dict[str, Any] | None = None) -> RetrainOutcome:
    """Retrain from the corrections, gate, then switch (or refuse); both outcomes are audited."""
    from models.sentiment import versions

    with session_factory() as session:
        labelled = corrections(session)
    held = [r for r in labelled if is_held_back(r.mention_id)]
    train = [r for r in labelled if not is_held_back(r.mention_id)]
    if len(train) < min_corrections:
        return RetrainOutcome(False, f"{len(train)} corrections to train on, fewer than the {min_corrections} "
                              "needed; nothing retrained", None, [], len(train), len(held))
    shared_train, shared_val = load_corpora(data)
    version = versions.new_version_name()
    directory = versions.versions_dir() / version
    train_path = write_tsv(train, directory / "corrections-train.tsv")
    held_path = write_tsv(held, directory / "corrections-held-back.tsv")
    corrected = Corpus("corrections", train_path, [r.text for r in train],
                       np.asarray([r.label for r in train], np.int64), CORRECTION_WEIGHT)
    held_back = Corpus("corrections/held-back", held_path, [r.text for r in held],
                       np.asarray([r.label for r in held], np.int64))
    current_head = versions.active_head_path()
    current_meta = versions.Head.load(current_head).meta
    adapter = current_meta.get("adapter")
    if not isinstance(adapter, dict):
        raise versions.ClassifierError("the active model has no encoder adapter to continue from; train one "
                                       "with `openear train-classifier` first")
    from models.sentiment.finetune import fine_tune

    replay = [replay_sample(c, seed=seed) for c in shared_train]
    trained = fine_tune([corrected, *replay], seed=seed, config={**RETRAIN_CONFIG, **(config or {})},
                        progress=progress,
                        init=(current_head.parent / str(adapter["file"]), current_head))
    candidate = versions.save_version(trained, directory)
    versions.keep_complaint_model(directory)
    result = versions.gate(candidate, current_head, shared_val, held_back)
    detail = {"version": version, "from": versions.read_active()["active"], "corrections": len(train),
              "held_back": len(held), "gate": result.rows}
    with session_factory() as session, session.begin():
        if result.passed:
            versions.activate(version, f"retrained on {len(train)} corrections")
            audit.record(session, audit.CLASSIFIER_SWITCH, "classifier", version, user_id=user_id, at=now,
                         detail=detail)
        else:
            audit.record(session, audit.CLASSIFIER_REFUSED, "classifier", version, user_id=user_id, at=now,
                         detail=detail)
    if not result.passed:
        versions.discard(version)
    return RetrainOutcome(result.passed, result.summary(), version if result.passed else None, result.rows,
                          len(train), len(held))


@dataclass(frozen=True)
class ComplaintOutcome:
    mention_id: int
    text: str
    negative: float
    positive: float
    answered: int  # 1: the team answered it; 0: dismissed


def complaint_outcomes(session: Session) -> list[ComplaintOutcome]:
    """The mentions of answered and dismissed queue items, with the probabilities stored for them."""
    rows = session.execute(
        select(QueueItem.mention_id, QueueItem.state, Mention.text, Mention.score_negative, Mention.score_positive)
        .join(Mention, Mention.id == QueueItem.mention_id)
        .where(QueueItem.state.in_([QueueState.ANSWERED.value, QueueState.DISMISSED.value]),
               Mention.score_negative.is_not(None), Mention.score_positive.is_not(None))
        .order_by(QueueItem.mention_id))
    return [ComplaintOutcome(int(m), str(text or ""), float(neg or 0.0), float(pos or 0.0),
                             int(state == QueueState.ANSWERED.value)) for m, state, text, neg, pos in rows]


def _auc_of(score: Callable[[str, float, float], float], rows: list[ComplaintOutcome]) -> float:
    return roc_auc([r.answered for r in rows], [score(r.text, r.negative, r.positive) for r in rows])


def learn_complaint(session_factory: Callable[[], Any], *, now: datetime, user_id: int | None = None,
                    min_per_class: int = MIN_OUTCOMES_PER_CLASS) -> RetrainOutcome:
    """Fit the complaint score to the team's answered / dismissed mentions, gate on the held-back ones, then
    switch (or refuse); both outcomes are audited. Too few outcomes: nothing is fitted."""
    from models.sentiment import versions

    with session_factory() as session:
        outcomes = complaint_outcomes(session)
    held = [r for r in outcomes if is_held_back(r.mention_id)]
    train = [r for r in outcomes if not is_held_back(r.mention_id)]

    def counts(rows: list[ComplaintOutcome]) -> tuple[int, int]:
        answered = sum(r.answered for r in rows)
        return answered, len(rows) - answered

    need_held = max(1, min_per_class // 4)
    if min(counts(train)) < min_per_class or min(counts(held)) < need_held:
        (ta, td), (ha, hd) = counts(train), counts(held)
        return RetrainOutcome(False, f"complaint score: {ta} answered and {td} dismissed mentions to learn from "
                              f"({ha} and {hd} held back); {min_per_class} of each (and {need_held} of each "
                              "held back) are needed; nothing learned", None, [], len(train), len(held))
    current = versions.active_complaint_model()
    seen = hashlib.sha256(",".join(f"{r.mention_id}:{r.answered}" for r in train).encode()).hexdigest()[:16]
    if current is not None and current.meta.get("outcomes_sha") == seen:
        return RetrainOutcome(False, "complaint score: no new answered or dismissed mentions since the active "
                              "model learned; nothing learned", None, [], len(train), len(held))
    current_score = current.score if current is not None else complaint_score
    candidate = fit_complaint_model(
        np.asarray([complaint_features(r.text, r.negative, r.positive) for r in train]),
        np.asarray([r.answered for r in train]),
        meta={"trained_on": len(train), "answered": counts(train)[0], "held_back": len(held), "at": now.isoformat(),
              "outcomes_sha": seen})
    before, after = _auc_of(current_score, held), _auc_of(candidate.score, held)
    row = {"set": "outcomes/held-back", "metric": "roc_auc", "current": before, "candidate": after,
           "ok": after >= before, "n": len(held)}
    passed = bool(row["ok"])
    candidate = ComplaintModel(candidate.weights, candidate.bias, {**candidate.meta, "held_back_auc": after,
                                                                   "replaced_auc": before})
    detail: dict[str, Any] = {"kind": "complaint", "from": versions.read_active()["active"], "outcomes": len(train),
                              "held_back": len(held), "gate": [row]}
    version = versions.with_complaint_model(candidate) if passed else None
    with session_factory() as session, session.begin():
        if version is not None:
            versions.activate(version, f"complaint score learned from {len(train)} answered/dismissed mentions")
            audit.record(session, audit.CLASSIFIER_SWITCH, "classifier", version, user_id=user_id, at=now,
                         detail={**detail, "version": version})
        else:
            audit.record(session, audit.CLASSIFIER_REFUSED, "classifier", "complaint", user_id=user_id, at=now,
                         detail=detail)
    message = (f"complaint score: held-back ROC AUC {after:.3f} against {before:.3f} "
               f"({'the formula' if current is None else 'the current learned model'}): "
               + ("switched" if passed else "refused"))
    return RetrainOutcome(passed, message, version, [row], len(train), len(held))


def record_rollback(session: Session, state: dict[str, Any], *, now: datetime, user_id: int | None) -> None:
    audit.record(session, audit.CLASSIFIER_ROLLBACK, "classifier", str(state["active"]), user_id=user_id, at=now,
                 detail={"from": state["previous"], "to": state["active"]})
