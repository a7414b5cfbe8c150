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
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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
