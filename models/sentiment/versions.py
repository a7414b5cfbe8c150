"""Trained default models on this machine: train, validate, gate, switch and roll back.

The shipped model (adapter + head in models/sentiment/assets/) is version `shipped`. Retrained ones
live under `<data dir>/classifiers/<version>/` (encoder_adapter.safetensors + sentiment_head.*), and
`<data dir>/classifiers/active.json` names the active version and the one before it. `model: default`
loads the active version (`active_head_path`). A candidate replaces the active model only if the
gate passes: no worse on every shared validation set and on the held-back slice of the team's
corrections (`gate`). `rollback` makes the previous version active again. A learned complaint model
(`complaint.json`, models/complaint.py) belongs to a version too: `with_complaint_model` makes a new
version of the active model's files plus one, and a sentiment retrain keeps the active one's.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.complaint import COMPLAINT_FILE, ComplaintModel, complaint_model_in
from models.sentiment.active import (
    SHIPPED,
    active_head_path,
    head_path_of,
    read_active,
    versions_dir,
    write_active,
)
from models.sentiment.adapter import ADAPTER_PATH, save_adapter
from models.sentiment.encoder_build import sha256_file
from models.sentiment.errors import ClassifierError
from models.sentiment.finetune import Corpus, FineTuned, Progress, fine_tune, load_corpora
from models.sentiment.head import HEAD_PATH, Head

__all__ = [
    "HEAD_PATH",
    "SHIPPED",
    "ClassifierError",
    "Head",
    "activate",
    "active_complaint_model",
    "active_head_path",
    "evaluate",
    "gate",
    "head_path_of",
    "keep_complaint_model",
    "read_active",
    "rollback",
    "save_version",
    "teacher_outputs",
    "train_version",
    "versions_dir",
    "with_complaint_model",
]
from models.sentiment.result import LABELS

GATE_METRIC = {"tweeteval/val": "macro_recall"}
"""validation set -> the metric the gate compares (macro F1 elsewhere; accuracy for corrections)."""
GATE_TOLERANCE = 0.0
"""how much lower a candidate may score on a set and still pass (none)."""


def activate(version: str, reason: str) -> dict[str, Any]:
    """Make `version` active, remembering the current one as previous; returns the new state."""
    if not head_path_of(version).is_file():
        raise ClassifierError(f"no classifier version {version!r}")
    state = read_active()
    if state["active"] == version:
        return state
    history = [*state.get("history", []), {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                           "from": state["active"], "to": version, "reason": reason}]
    new = {"active": version, "previous": state["active"], "history": history[-50:]}
    write_active(new)
    return new


def rollback() -> dict[str, Any]:
    """Make the previous version active again (ClassifierError when there is none)."""
    state = read_active()
    previous = state.get("previous")
    if not previous:
        raise ClassifierError("no previous classifier version to roll back to")
    return activate(str(previous), "rollback")


# ----------------------------------------------------------------------------- writing a trained model
def save_version(trained: FineTuned, directory: Path, validation: dict[str, Any] | None = None) -> Path:
    """Write adapter + head into `directory`; returns the head's path."""
    cfg = trained.meta["config"]
    adapter_path = directory / ADAPTER_PATH.name
    adapter_meta = {"rank": trained.meta["adapter_rank"], "alpha": trained.meta["adapter_alpha"],
                    "frozen_layers": cfg["frozen_layers"], "run": trained.meta["run"]}
    if cfg.get("layers"):
        adapter_meta["layers"] = int(cfg["layers"])
    sha = save_adapter(trained.adapter, adapter_meta, adapter_path)
    head = Head("mlp", trained.head, {
        **trained.meta, "labels": list(LABELS), "inference_mode": "auto", "train_prior": [1 / 3] * 3,
        "encoder": "multilingual-e5-small-q4 + LoRA adapter",
        "adapter": {"file": adapter_path.name, "sha256": sha}, "validation": validation or {},
    })
    head_path = directory / HEAD_PATH.name
    head.save(head_path)
    return head_path


def evaluate(head_path: Path, sets: Sequence[Corpus], modes: Sequence[str] = ("fp32",),
             batch_size: int = 64) -> dict[str, dict[str, Any]]:
    """Scores of the model at `head_path` on each set, per encoder mode ("name" or "name (mode)")."""
    from models.sentiment.classifier import EmbeddingClassifier
    from models.sentiment.training import scores

    out: dict[str, dict[str, Any]] = {}
    for k, mode in enumerate(modes):
        clf = EmbeddingClassifier(head_path=head_path, batch_size=batch_size, mode=mode)
        for s in sets:
            probs = clf.probabilities(s.texts)
            name = s.name if k == 0 else f"{s.name} ({mode})"
            out[name] = scores(s.labels, probs.argmax(1))
    return out


def teacher_outputs(teacher: Path, corpus: Corpus, progress: Progress | None = None,
                    mode: str = "fp32", batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The posteriors (n, 3) and sentence vectors (n, dim) of the model at head path `teacher` on
    `corpus`, from one encoder pass (cached under the data dir: posteriors float32, vectors float16)."""
    from models.sentiment.classifier import EmbeddingClassifier
    from models.sentiment.encoder_build import data_dir

    clf = EmbeddingClassifier(head_path=teacher, batch_size=64, mode=mode)
    key = hashlib.sha256("\n".join([sha256_file(teacher), clf.encoder.adapter_sha256 or "-", mode, "sp",
                                     *corpus.texts]).encode()).hexdigest()[:24]
    cache = data_dir() / "teacher-cache" / f"{key}.npz"
    if cache.is_file():
        with np.load(cache) as saved:
            return saved["probs"], saved["vectors"].astype(np.float32)
    probs, vectors = np.zeros((len(corpus.texts), 3), np.float32), np.zeros((0, 0), np.float16)
    for start in range(0, len(corpus.texts), batch):
        p, v = clf.probabilities_and_vectors(corpus.texts[start:start + batch])
        if not len(vectors):
            vectors = np.zeros((len(corpus.texts), v.shape[1]), np.float16)
        probs[start:start + batch], vectors[start:start + batch] = p, v
        if progress:
            progress("teacher", min(start + batch, len(corpus.texts)), len(corpus.texts), {})
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, probs=probs, vectors=vectors)
    tmp.replace(cache)
    return probs, vectors.astype(np.float32)


def train_version(data: Path, directory: Path, seed: int = 0, config: dict[str, Any] | None = None,
                  extra: Sequence[Corpus] = (), progress: Progress | None = None, resume: bool = True,
                  init: tuple[Path, Path] | None = None, modes: Sequence[str] = ("fp32",),
                  teacher: Path | None = None) -> Path:
    """Fine-tune on `data` (+ `extra` corpora), save into `directory`, validate; returns the head path.

    `teacher` (a head path) distils: the student also learns that model's posteriors on every
    training text (`distil` in the config, 0.5 unless given)."""
    train, val = load_corpora(data)
    corpora = [*train, *extra]
    if teacher is not None:
        for c in corpora:
            c.soft, c.soft_vectors = teacher_outputs(teacher, c, progress)
        config = {"distil": 0.5, **(config or {})}
    trained = fine_tune(corpora, seed=seed, config=config, progress=progress, resume=resume, init=init)
    if teacher is not None:
        trained.meta["teacher"] = {"head_sha256": sha256_file(teacher), "mode": "fp32"}
    head_path = save_version(trained, directory)
    head = Head.load(head_path)
    head.meta["validation"] = evaluate(head_path, val, modes)
    head.save(head_path)
    return head_path


# ----------------------------------------------------------------------------- the gate
@dataclass
class GateResult:
    passed: bool
    rows: list[dict[str, Any]] = field(default_factory=list)  # set, metric, current, candidate, ok

    def summary(self) -> str:
        worse = [r for r in self.rows if not r["ok"]]
        if self.passed:
            return "candidate is no worse on " + ", ".join(r["set"] for r in self.rows)
        return "candidate refused: worse on " + ", ".join(
            f"{r['set']} ({r['metric']} {r['candidate']:.3f} < {r['current']:.3f})" for r in worse)


def gate(candidate: Path, current: Path, sets: Sequence[Corpus], held_back: Corpus | None,
         tolerance: float = GATE_TOLERANCE) -> GateResult:
    """Compare two models on the shared validation sets and the held-back corrections."""
    result = GateResult(True)
    pairs = [(s, GATE_METRIC.get(s.name, "macro_f1")) for s in sets]
    if held_back is not None and len(held_back.texts):
        pairs.append((held_back, "accuracy"))
    new = evaluate(candidate, [s for s, _ in pairs])
    old = evaluate(current, [s for s, _ in pairs])
    for s, metric in pairs:
        a, b = float(old[s.name][metric]), float(new[s.name][metric])
        ok = b >= a - tolerance
        result.rows.append({"set": s.name, "metric": metric, "current": a, "candidate": b, "ok": ok,
                            "n": len(s.texts)})
        result.passed &= ok
    return result


def active_complaint_model() -> ComplaintModel | None:
    """The active version's learned complaint model, or None (it scores with the formula)."""
    return complaint_model_in(active_head_path().parent)


def keep_complaint_model(directory: Path) -> None:
    """Copy the active version's learned complaint model (if any) into a new version's `directory`."""
    source = active_head_path().parent / COMPLAINT_FILE
    if source.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, directory / COMPLAINT_FILE)


def with_complaint_model(model: ComplaintModel, version: str | None = None) -> str:
    """A new (not yet active) version: the active version's adapter and head plus `model`."""
    source = active_head_path().parent
    version = version or new_version_name()
    directory = versions_dir() / version
    directory.mkdir(parents=True, exist_ok=False)
    for name in (ADAPTER_PATH.name, ADAPTER_PATH.with_suffix(".json").name, HEAD_PATH.name,
                 HEAD_PATH.with_suffix(".json").name):
        if (source / name).is_file():
            shutil.copyfile(source / name, directory / name)
    model.save(directory / COMPLAINT_FILE)
    return version


def new_version_name() -> str:
    """v<UTC date>-<time>, with a suffix if that directory exists (two versions in one second)."""
    base = time.strftime("v%Y%m%d-%H%M%S", time.gmtime())
    name, n = base, 1
    while (versions_dir() / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def discard(version: str) -> None:
    if version != SHIPPED:
        shutil.rmtree(versions_dir() / version, ignore_errors=True)
