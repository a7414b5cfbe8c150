"""Complaint ranking: who the team should answer first, and why.

Priority is a weighted sum of parts that each score 0..1 (weights from config `ranking.weights`):
negativity (the classifier), complaint cues in the text, waiting time, the author's reach and the
customer's history. Every score comes with human-readable reasons, strongest first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from models.complaint import cue_matches, strength
from models.config import RankingConfig


@dataclass(frozen=True)
class ComplaintCues:
    """The textual signs of a complaint, as models/complaint.py finds them, for scores and reasons."""

    matches: dict[str, list[str]] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """0..1: the same cue strength the classifier's complaint score uses."""
        return strength(self.matches)

    def reasons(self) -> list[str]:
        out = []
        problems = self.matches.get("problem", []) + self.matches.get("anger", [])
        if problems:
            out.append("problem: " + ", ".join(problems[:3]))
        if "reference" in self.matches:
            out.append(f"reference {self.matches['reference'][0]}")
        if "request" in self.matches:
            out.append("asks the brand")
        elif "question" in self.matches:
            out.append("question")
        return out


def complaint_cues(text: str) -> ComplaintCues:
    """Find the textual signs of a complaint (English and German)."""
    return ComplaintCues(cue_matches(text))


@dataclass(frozen=True)
class CustomerHistory:
    """What openear remembers about the author (filled by the customer-memory layer)."""

    earlier_conversations: int = 0
    first_seen: datetime | None = None
    open_complaints: int = 0
    last_complaint_unanswered: bool = False
    repeat_complaint: bool = False


@dataclass(frozen=True)
class RankInput:
    text: str
    negative: float
    created_at: datetime
    followers: int | None = None
    complaint: float | None = None
    history: CustomerHistory = field(default_factory=CustomerHistory)


@dataclass(frozen=True)
class Ranking:
    priority: float
    reasons: list[str]
    parts: dict[str, float]


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(int(seconds // 60), 0)} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def _followers(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    return f"{count / 1000:.0f}k" if count >= 1000 else str(count)


def rank(item: RankInput, now: datetime, config: RankingConfig | None = None) -> Ranking:
    """Priority 0..1 with its reasons. Deterministic for the same input and `now`."""
    config = config or RankingConfig()
    weights = config.weights
    cues = complaint_cues(item.text)
    waited = max((now - item.created_at).total_seconds(), 0.0)
    followers = max(item.followers or 0, 0)
    history = item.history

    cue_score = cues.score if item.complaint is None else max(cues.score, item.complaint)
    history_score = min(
        0.15 * min(history.earlier_conversations, 4)
        + (0.2 if history.repeat_complaint else 0.0)
        + (0.3 if history.last_complaint_unanswered else 0.0),
        1.0,
    )
    parts = {
        "negativity": min(max(item.negative, 0.0), 1.0),
        "complaint_cues": cue_score,
        "waiting": min(waited / (config.waiting_full_hours * 3600), 1.0),
        "reach": min(math.log10(1 + followers) / math.log10(1 + config.reach_full_followers), 1.0),
        "history": history_score,
    }
    total_weight = sum(getattr(weights, name) for name in parts) or 1.0
    priority = sum(getattr(weights, name) * value for name, value in parts.items()) / total_weight

    reasons: list[tuple[float, str]] = [(weights.negativity * parts["negativity"], f"negative {item.negative:.2f}")]
    reasons += [(weights.complaint_cues * cue_score, text) for text in cues.reasons()]
    reasons.append((weights.waiting * parts["waiting"], f"waiting {_hours(waited)}"))
    if followers:
        reasons.append((weights.reach * parts["reach"], f"{_followers(followers)} followers"))
    if history.earlier_conversations:
        plural = "s" if history.earlier_conversations != 1 else ""
        reasons.append((weights.history * history_score,
                        f"{history.earlier_conversations} earlier conversation{plural}"))
    if history.last_complaint_unanswered:
        reasons.append((weights.history * 1.0, "last complaint unanswered"))
    elif history.repeat_complaint:
        reasons.append((weights.history * 0.5, "repeat complaint"))
    if history.first_seen is not None and (now - history.first_seen).days >= 365:
        reasons.append((weights.history * 0.3, f"customer since {history.first_seen:%Y}"))
    reasons.sort(key=lambda r: r[0], reverse=True)
    return Ranking(priority=round(priority, 6), reasons=[text for _, text in reasons], parts=parts)
