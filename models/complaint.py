"""The `complaint` score: how likely a mention is a customer complaint that needs an answer.

Sentiment models are trained on general tweets; brand mentions are full of customer-service
language that a sentiment model scores as neutral ("my order 123456 never arrived, can you check?").
So the score combines the model's negative probability with surface cues, in English and German:

- problem: a problem word (broken/kaputt, refund/Erstattung, delayed/Verspätung, not working/
  funktioniert nicht, cancelled/ausgefallen, never arrived/nicht angekommen, ...)
- request: a request to the brand (please/bitte, can you/könnt ihr, help/Hilfe, DM, why/warum, ...)
- reference: an order, ticket, booking or train number (order #12345, Bestellnr. 4711, ICE 598)
- anger: strong negative words (worst, unacceptable, Frechheit, unverschämt, ...)
- question: a question mark

    cue       = 1 - prod(1 - weight[c] for each cue category c present)
    complaint = p_neg + (1 - p_neg) * cue * (1 - p_pos)

It is monotonic in p_neg and in the cues, stays in [0, 1], equals p_neg when no cue is present,
and a clearly positive text ("thanks for the quick refund!") keeps a low score despite its cue.

The team can replace the formula with a model learned from what it answered and dismissed
(`ComplaintModel`, fitted by `fit_complaint_model`, gated by responders/learning.py); a classifier
version that has one (`complaint.json` beside its head) scores with it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CUE_WEIGHTS: dict[str, float] = {
    "problem": 0.5, "request": 0.3, "reference": 0.3, "anger": 0.3, "question": 0.15,
}

_PROBLEM_EN = (
    r"broken|breaks?|broke|doesn'?t work|does not work|don'?t work|not working|isn'?t working|"
    r"stopped working|"
    r"won'?t (?:work|load|start|open|let)|can'?t (?:log ?in|access|connect|get|find|use|cancel)|"
    r"refunds?|refunded|reimburse\w*|compensation|chargeback|delay(?:ed|s)?|late again|cancel+ed|"
    r"cancellations?|missing|lost|never (?:arrived|received|came|got|showed)|(?:hasn'?t|has not|haven'?t|"
    r"have not|didn'?t|did not) (?:arrived?|received?|shown up|been (?:delivered|refunded|fixed))|"
    r"still (?:waiting|no|not|haven'?t|hasn'?t|broken|down)|waiting (?:for|since)|on hold|overcharged|"
    r"charged (?:me )?(?:twice|double|again)|double charged|damaged|defective|faulty|"
    r"wrong (?:item|order|size|"
    r"address|charge|bill)|outage|(?:is|are|been|went) down|no (?:signal|service|internet|connection|reply|"
    r"response|answer|power|wifi|refund)|error|crash(?:es|ed|ing)?|bug(?:gy|s)?|glitch|stuck|"
    r"complain(?:t|ts|ing)?|scam|ripped off|overbooked|stranded|lost (?:my )?(?:bag|luggage|parcel|package)"
)
_PROBLEM_DE = (
    r"kaputt|defekt|funktionier\w* (?:\w+ ){0,3}nicht|geht (?:\w+ ){0,2}nicht|klappt (?:\w+ ){0,2}nicht|"
    r"ausgefallen|"
    r"f[äa]llt aus|zugausfall|ausfall|st[öo]rung|versp[äa]t\w*|zu sp[äa]t|erstatt\w*|r[üu]ckerstatt\w*|"
    r"entsch[äa]digung|geld zur[üu]ck|storn\w*|reklamation|beschwerde|beschwer\w*|nicht (?:angekommen|"
    r"erhalten|geliefert|bekommen|erreichbar)|nie (?:angekommen|erhalten|geliefert)|fehlt|fehlen|verloren|"
    r"immer noch (?:nicht|kein\w*)|noch immer (?:nicht|kein\w*)|warte (?:seit|schon|immer)|"
    r"warten (?:seit|schon)|"
    r"kein\w* (?:antwort|r[üu]ckmeldung|empfang|netz|internet|wlan|strom|klimaanlage|anschluss)|abgebucht|"
    r"doppelt (?:abgebucht|bezahlt|berechnet)|falsch\w*|besch[äa]digt|fehler|abgest[üu]rzt|st[üu]rzt ab|"
    r"[üu]berf[üu]llt|gestrandet|anschluss verpasst|klimaanlage"
)
_REQUEST = (
    r"please|pls|plz|can you|could you|can someone|can anyone|would you|help|assist|dm(?:'?d| me)?|"
    r"direct message|contact me|get back to me|call me|respond|reply|answer|fix (?:this|it)|"
    r"sort (?:this|it) out|"
    r"look into|what'?s going on|why (?:is|are|does|do|did|can'?t|won'?t|isn'?t)|when (?:will|is|can|do)|"
    r"how (?:long|do i|can i)|bitte|k[öo]nnt ihr|k[öo]nnen sie|k[öo]nnten sie|kann mir (?:jemand|einer)|"
    r"hilfe|helft|helfen sie|meldet euch|melden sie sich|antwortet|warum|wieso|weshalb|wann (?:kommt|wird|"
    r"endlich|kann)|was ist (?:da )?los|wie lange noch|endlich|privatnachricht"
)
_ANGER = (
    r"worst|terrible|horrible|awful|unacceptable|ridiculous|disgrace\w*|pathetic|useless|rubbish|"
    r"fed up|sick of|never again|shame on|disgusting|furious|frustrat\w*|disappoint\w*|annoy\w*|"
    r"frechheit|unversch[äa]mt|unm[öo]glich|katastroph\w*|skandal\w*|zumutung|ärger\w*|sauer|"
    r"entt[äa]usch\w*|nervt|nervig|schei(?:ß|ss)\w*|mies\w*|schlecht\w*|lächerlich|nie wieder|peinlich"
)
_REFERENCE = (
    r"(?:order|booking|ticket|case|tracking|reference|ref|account|invoice|claim|flight|bestell\w*|buchung\w*|"
    r"auftrag\w*|sendung\w*|kunden\w*|rechnung\w*|vorgang\w*|ticketnummer|vertrag\w*)\s*(?:no\.?|nr\.?|number|"
    r"nummer|id|#|:)?\s*#?\s*[a-z]{0,3}\d{3,}|#\d{4,}|\b\d{6,}\b|\b(?:ice|ic|ec|re|rb|s|flight|flug)\s?\d{1,5}\b"
)

_PATTERNS: dict[str, re.Pattern[str]] = {
    "problem": re.compile(rf"\b(?:{_PROBLEM_EN}|{_PROBLEM_DE})\b", re.IGNORECASE),
    "request": re.compile(rf"\b(?:{_REQUEST})\b", re.IGNORECASE),
    "anger": re.compile(rf"\b(?:{_ANGER})\b", re.IGNORECASE),
    "reference": re.compile(_REFERENCE, re.IGNORECASE),
}


def cue_matches(text: str) -> dict[str, list[str]]:
    """Per cue category present in `text`, the matched words (distinct, lower-case, in order)."""
    found: dict[str, list[str]] = {}
    for name, pattern in _PATTERNS.items():
        words = list(dict.fromkeys(m.group(0).strip().lower() for m in pattern.finditer(text)))
        if words:
            found[name] = words
    if "?" in text:
        found["question"] = ["?"]
    return found


def complaint_cues(text: str) -> set[str]:
    """The cue categories present in `text` (keys of CUE_WEIGHTS)."""
    return set(cue_matches(text))


def strength(categories: Iterable[str]) -> float:
    """1 - prod(1 - w) over the given cue categories; 0.0 for none."""
    rest = 1.0
    for cue in set(categories):
        rest *= 1.0 - CUE_WEIGHTS[cue]
    return 1.0 - rest


def cue_strength(text: str) -> float:
    """The cue strength of the categories present in `text`."""
    return strength(complaint_cues(text))


def complaint_score(text: str, negative: float, positive: float) -> float:
    """p_neg + (1 - p_neg) * cue * (1 - p_pos), clipped to [0, 1]. See the module docstring."""
    neg = min(max(negative, 0.0), 1.0)
    pos = min(max(positive, 0.0), 1.0)
    score = neg + (1.0 - neg) * cue_strength(text) * (1.0 - pos)
    return min(max(score, 0.0), 1.0)


# ----------------------------------------------------------------------------- learned from the team
FEATURES: tuple[str, ...] = ("negative", "positive", "formula", *CUE_WEIGHTS)
"""What a learned complaint model reads: the two probabilities, the formula's score, each cue (0/1)."""
COMPLAINT_FILE = "complaint.json"


def complaint_features(text: str, negative: float, positive: float) -> list[float]:
    """The FEATURES of one text, in order."""
    cues = complaint_cues(text)
    neg, pos = min(max(negative, 0.0), 1.0), min(max(positive, 0.0), 1.0)
    return [neg, pos, complaint_score(text, neg, pos), *(1.0 if c in cues else 0.0 for c in CUE_WEIGHTS)]


@dataclass(frozen=True)
class ComplaintModel:
    """A complaint score learned from which mentions the team answered (1) and dismissed (0):
    sigmoid(bias + weights . complaint_features), a logistic regression with balanced classes (so 0.5
    is "as likely to need an answer as not", whatever the team's answered share)."""

    weights: tuple[float, ...]
    bias: float
    meta: dict[str, Any] = field(default_factory=dict)

    def score(self, text: str, negative: float, positive: float) -> float:
        z = self.bias + sum(w * f for w, f in zip(self.weights, complaint_features(text, negative, positive),
                                                  strict=True))
        return 1.0 / (1.0 + math.exp(-min(max(z, -40.0), 40.0)))

    def save(self, path: Path) -> None:
        body = {"features": list(FEATURES), "weights": list(self.weights), "bias": self.bias, "meta": self.meta}
        path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ComplaintModel:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            weights, bias = tuple(float(w) for w in body["weights"]), float(body["bias"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a complaint model ({exc}); delete it to use the formula") from exc
        if list(body.get("features", [])) != list(FEATURES) or len(weights) != len(FEATURES):
            raise ValueError(f"{path} was written for other features ({body.get('features')}); delete it "
                             "to use the formula")
        return cls(weights, bias, dict(body.get("meta") or {}))


def complaint_model_in(directory: Path) -> ComplaintModel | None:
    """The learned complaint model stored beside a classifier version's head, or None (the formula)."""
    path = directory / COMPLAINT_FILE
    return ComplaintModel.load(path) if path.is_file() else None


def fit_complaint_model(features: np.ndarray, labels: np.ndarray, l2: float = 1.0,
                        meta: dict[str, Any] | None = None) -> ComplaintModel:
    """Logistic regression by Newton's method (IRLS), classes weighted alike, an L2 penalty `l2` on the
    weights (not the bias). `features`: (n, len(FEATURES)); `labels`: 1 answered, 0 dismissed."""
    x = np.asarray(features, np.float64)
    y = np.asarray(labels, np.float64)
    if x.ndim != 2 or x.shape[1] != len(FEATURES) or len(x) != len(y):
        raise ValueError(f"expected (n, {len(FEATURES)}) features and n labels, got {x.shape} and {y.shape}")
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise ValueError("need both answered and dismissed mentions to learn from")
    weight = np.where(y == 1, len(y) / (2 * positives), len(y) / (2 * (len(y) - positives)))
    a = np.hstack([np.ones((len(x), 1)), x])
    penalty = np.full(a.shape[1], l2)
    penalty[0] = 0.0
    beta = np.zeros(a.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ beta, -40, 40)))
        gradient = a.T @ (weight * (p - y)) + penalty * beta
        hessian = (a * (weight * p * (1 - p))[:, None]).T @ a + np.diag(penalty) + 1e-9 * np.eye(a.shape[1])
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return ComplaintModel(tuple(float(b) for b in beta[1:]), float(beta[0]), dict(meta or {}))


def roc_auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """The probability that a random positive scores above a random negative (ties count half)."""
    y = np.asarray(labels, np.int64)
    s = np.asarray(scores, np.float64)
    pos, neg = s[y == 1], s[y == 0]
    if not len(pos) or not len(neg):
        raise ValueError("ROC AUC needs both classes")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y == 1].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))
