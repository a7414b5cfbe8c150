"""Complaint ranking: who the team should answer first, and why.

Priority is a weighted sum of parts that each score 0..1 (weights from config `ranking.weights`):
negativity (the classifier), complaint cues in the text, waiting time, the author's reach and the
customer's history. Every score comes with human-readable reasons, strongest first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

from models.config import RankingConfig

# Problem words in English and German (stems; matched at word starts, case-insensitive).
PROBLEM_WORDS = (
    "broken", "broke", "not working", "doesn't work", "does not work", "won't", "can't", "cannot", "refund",
    "charged", "overcharg", "double charg", "cancel", "late", "delay", "never arrived", "missing", "lost",
    "outage", "down again", "no signal", "no internet", "disconnect", "scam", "rip", "complain", "worst",
    "terrible", "awful", "useless", "waiting", "still no", "nobody", "no one", "unacceptable", "fraud",
    "kaputt", "defekt", "funktioniert nicht", "geht nicht", "erstattung", "zurück", "rückerstattung",
    "abgebucht", "doppelt", "kündig", "storn", "verspät", "verspätung", "nicht angekommen", "fehlt",
    "verloren", "störung", "ausfall", "kein netz", "kein internet", "abzocke", "betrug", "beschwerde",
    "schlecht", "katastrophe", "unverschämt", "warte", "immer noch", "niemand", "frechheit", "ärgerlich",
)
REQUEST_WORDS = (
    "please", "pls", "help", "fix", "when will", "why", "how do i", "how can i", "can you", "could you",
    "dm", "contact me", "call me", "any update", "bitte", "hilfe", "wann", "warum", "wieso", "weshalb",
    "wie kann ich", "könnt ihr", "können sie", "meldet euch", "rückruf", "antwort",
)
_PROBLEM_RE = re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in PROBLEM_WORDS) + ")", re.IGNORECASE)
_REQUEST_RE = re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in REQUEST_WORDS) + r")(?!\w)", re.IGNORECASE)
_REFERENCE_RE = re.compile(
    r"(?:order|ticket|case|invoice|tracking|customer|account|bestell|auftrag|rechnung|kunden|vertrag|"
    r"sendung|vorgang)\w*\s*(?:no\.?|nr\.?|number|nummer|#|:)?\s*#?\s*[A-Z0-9-]*\d{4,}"
    r"|#\d{5,}|\b[A-Z]{2,4}-?\d{5,}\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ComplaintCues:
    problem_words: tuple[str, ...] = ()
    request: bool = False
    question: bool = False
    reference: str | None = None

    @property
    def score(self) -> float:
        """0..1: each kind of cue adds evidence that this is a complaint needing an answer."""
        value = 0.0
        if self.problem_words:
            value += 0.45 + 0.1 * min(len(self.problem_words) - 1, 2)
        if self.request or self.question:
            value += 0.25
        if self.reference:
            value += 0.25
        return min(value, 1.0)

    def reasons(self) -> list[str]:
        out = []
        if self.problem_words:
            out.append("problem: " + ", ".join(self.problem_words[:3]))
        if self.reference:
            out.append(f"reference {self.reference}")
        if self.request:
            out.append("asks the brand")
        elif self.question:
            out.append("question")
        return out


def complaint_cues(text: str) -> ComplaintCues:
    """Find the textual signs of a complaint (English and German)."""
    problems = tuple(dict.fromkeys(m.group(1).lower() for m in _PROBLEM_RE.finditer(text)))
    reference = _REFERENCE_RE.search(text)
    return ComplaintCues(
        problem_words=problems,
        request=bool(_REQUEST_RE.search(text)),
        question="?" in text,
        reference=reference.group(0).strip() if reference else None,
    )


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
