"""What the classifiers and the training share: labels, the result type, text normalization."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from models.complaint import complaint_score

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
DEFAULT_MODEL = "default"
ENCODER_MODES = ("auto", "fp32", "bf16", "int8", "int8-all")


@dataclass(frozen=True)
class SentimentResult:
    """One text's sentiment: the winning label, the three probabilities and the complaint score."""

    label: str
    negative: float
    neutral: float
    positive: float
    complaint: float

    @property
    def scores(self) -> dict[str, float]:
        return {"negative": self.negative, "neutral": self.neutral, "positive": self.positive}

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "scores": self.scores, "complaint": self.complaint}


class Classifier(Protocol):
    def classify(self, texts: list[str]) -> list[SentimentResult]:
        """One result per text, in order."""
        ...


_HANDLE = re.compile(r"(?<![\w@])@\w+")
_URL = re.compile(r"https?://\S+|www\.\S+")


def normalize_text(text: str) -> str:
    """Tweet preprocessing as in TweetEval: every @handle becomes `@user`, every URL `http`.

    The head was trained on texts preprocessed like this, and a brand's handle ("@Telekom_hilft")
    says nothing about the sentiment of a mention.
    """
    return _URL.sub("http", _HANDLE.sub("@user", text))


class ComplaintScorer(Protocol):
    def score(self, text: str, negative: float, positive: float) -> float: ...


def make_result(text: str, probs: Sequence[float], complaint: ComplaintScorer | None = None) -> SentimentResult:
    """A result from three probabilities (renormalized to sum 1); ties go to neutral. `complaint`: a learned
    complaint model (models/complaint.py ComplaintModel); None: the formula."""
    p = np.clip(np.asarray(probs, np.float64), 0.0, None)
    total = p.sum()
    p = p / total if total > 0 else np.array([0.0, 1.0, 0.0])
    best = int(np.argmax(p))
    if p[1] == p[best]:
        best = 1
    neg, neu, pos = (float(v) for v in p)
    score = complaint.score(text, neg, pos) if complaint is not None else complaint_score(text, neg, pos)
    return SentimentResult(LABELS[best], neg, neu, pos, score)
