"""What "answered" means, in one place: the first public answer of customer mentions, and closing messages.

Used by the daily digest (responders/digest/build.py), the team report (responders/reports.py) and the
anonymous day counts that erasure and retention leave behind (responders/customers/gdpr.py).

**Answered.** A customer mention (not `is_own`) is answered when the brand replied to it publicly, in
openear or on the platform itself. Its *first public answer* is the earliest of

a. the brand's own posts (`Mention.is_own`) on the same platform whose `in_reply_to_id` is the mention's
   `external_id` (or its newest revision's id: X replies go to the edited version), written from the
   platform's own apps or by openear and ingested by the poller; and
b. the replies sent through openear for it (`Reply.state == "sent"`, at `sent_at`).

A reply sent by openear comes back from the platform as an own post whose `external_id` is the reply's
`platform_reply_id`: that is one answer, not two. It counts once, for the mention openear sent it for,
at the earlier of the two times, and its agent is the reply's user. (Facebook files a reply to a
reply-comment under the top-level comment; that own post still answers the mention openear sent it
for, not the top-level comment.) Answers later than `now` do not count yet (a digest rebuilt later
shows what was known when it was built). An answer dated before its mention (clock skew) counts as
immediate.

`answered_by` is the agent's user id when openear knows who answered (a reply sent in openear), else
None; `via` says where the answer came from: "openear" or "platform" (a native answer, no agent known).

**Closing messages.** A customer's "thanks, sorted" needs no answer. `is_closing` is a small bilingual
(English, German) rule: the text thanks the brand or says the problem is solved (`CLOSING_RE`), carries
no sign that something is still open (`OPEN_RE`: a question, a contrast or negation, a request, and the
problem and anger cues of models.complaint), and its sentiment is not negative: the classifier did not
label it negative, or did so with a negative score under `CLOSING_MAX_NEGATIVE` (short thank-yous are
often scored as mildly negative). Closing messages, like hidden ones (`Mention.hidden`, never answered
in public), are left out of what should be answered.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session, aliased

from models.complaint import cue_matches
from models.domain import ReplyState, SentimentLabel
from models.orm import Mention, Reply

OPENEAR, PLATFORM = "openear", "platform"

DEFINITIONS: dict[str, str] = {
    "mentions": "Mentions: posts and comments by customers about the brand, created that local day "
                "(the brand's own posts not counted).",
    "to_answer": "Expecting an answer: those mentions minus the ones hidden on the platform and closing "
                 "messages (\"thanks, sorted\", \"danke, hat geklappt\").",
    "answered": "Answered: a public reply by the brand, in openear or on the platform, to the mention "
                "itself, by the time this digest was built.",
    "response_rate": "Response rate: answered / expecting an answer.",
    "complaints": "Complaints: mentions expecting an answer that the classifier labelled negative.",
    "first_response": "First response: from the mention to the brand's first public answer (openear or "
                      "platform), over all answered mentions of the day; p90 = 9 in 10 were faster.",
    "late": "Late: first answer later than the SLA, or no answer yet and older than the SLA now "
            "(dismissed ones not counted as waiting).",
    "agents": "Per agent: mentions whose first answer the agent sent in openear; answers written in the "
              "platform's own apps have no known agent.",
    "waiting": "Waiting: complaints with no public answer, not dismissed, older than the SLA; closing "
               "messages are never listed.",
}

# ---------------------------------------------------------------------------------------------- closing messages

CLOSING_MAX_NEGATIVE = 0.8
_CLOSING_EN = (
    r"thanks?(?: you| u)?|thank ?you|thx|ty|tysm|cheers|much appreciated|appreciate (?:it|that|you)|"
    r"sorted(?: now| it)?|all sorted|(?:it'?s |that'?s )?(?:fixed|resolved|solved)(?: now)?|"
    r"works? (?:now|again|fine now)|working (?:now|again|fine)|back (?:up|online|on)(?: now)?|"
    r"up and running|all good(?: now)?|(?:that|this) (?:did it|worked|helped)|it worked|problem solved|"
    r"issue resolved|no worries|got it(?: now)?|perfect|brilliant|awesome|great stuff"
)
_CLOSING_DE = (
    r"danke(?:sch[öo]n| sch[öo]n)?|vielen dank|besten dank|herzlichen dank|merci|"
    r"hat (?:jetzt |nun )?(?:geklappt|funktioniert)|klappt (?:jetzt|wieder|nun)|"
    r"funktioniert (?:jetzt|wieder|nun)|geht (?:jetzt|wieder|nun)|l[äa]uft (?:jetzt |nun )?wieder|"
    r"alles (?:gut|klar|erledigt|wieder gut)|erledigt|gel[öo]st|hat sich erledigt|passt(?: jetzt| so)?|"
    r"super|perfekt|top"
)
CLOSING_RE = re.compile(rf"\b(?:{_CLOSING_EN}|{_CLOSING_DE})\b", re.IGNORECASE)
OPEN_RE = re.compile(
    r"\?|\b(?:but|however|still|not|no longer|never|nothing|yet|anyone|please|pls|plz|can you|could you|"
    r"dm me|aber|jedoch|trotzdem|leider|immer noch|noch immer|nicht|nichts|kein\w*|nie|bitte|"
    r"k[öo]nnt ihr|k[öo]nnen sie)\b|n'?t\b",
    re.IGNORECASE,
)


def is_closing(text: str, label: str | None, score_negative: float | None) -> bool:
    """A thank-you or "it's solved" message that needs no answer (see the module docstring)."""
    if not CLOSING_RE.search(text) or OPEN_RE.search(text):
        return False
    cues = cue_matches(text)
    if "problem" in cues or "anger" in cues:
        return False
    if label != SentimentLabel.NEGATIVE.value:
        return True
    return score_negative is not None and score_negative < CLOSING_MAX_NEGATIVE


def expects_answer(hidden: bool, text: str, label: str | None, score_negative: float | None) -> bool:
    """Whether a customer mention should get a public answer: neither hidden nor a closing message."""
    return not hidden and not is_closing(text, label, score_negative)


# ---------------------------------------------------------------------------------------------- first answers


@dataclass(frozen=True)
class Answer:
    """The first public answer of one mention."""

    answered_at: datetime
    answered_by: int | None  # the agent's user id when openear knows it
    via: str  # OPENEAR or PLATFORM


def _better(new: Answer, old: Answer | None) -> bool:
    """Earlier wins; at the same moment an answer with a known agent wins."""
    if old is None:
        return True
    return (new.answered_at, new.answered_by is None) < (old.answered_at, old.answered_by is None)


def first_answers(session: Session, targets: ColumnElement[bool], *, now: datetime | None,
                  answers_since: datetime | None = None, brand: str | None = None) -> dict[int, Answer]:
    """Mention id -> first public answer, for the customer mentions that `targets` (a condition on `Mention`)
    selects and that were answered by `now` (None: every stored answer); three queries, however many mentions.

    `answers_since` and `brand` bound the brand's own posts considered, so the scan stays on the brand's
    recent posts (index `ix_mentions_brand_created`): an answer follows its mention, so pass the earliest
    creation time of the targets; pass `brand` when all targets are that brand's.
    """
    answers: dict[int, Answer] = {}

    def offer(mention_id: int, answer: Answer) -> None:
        if _better(answer, answers.get(mention_id)):
            answers[mention_id] = answer

    customer = and_(targets, Mention.is_own.is_(False))
    reply_filter: list[ColumnElement[bool]] = [Reply.state == ReplyState.SENT.value, Reply.sent_at.is_not(None)]
    if now is not None:
        reply_filter.append(Reply.sent_at <= now)
    posted = aliased(Mention)  # the own post the platform created for an openear reply
    # (b) replies sent in openear, with the own post they became once ingested
    for mention_id, sent_at, user_id, posted_at in session.execute(
        select(Reply.mention_id, Reply.sent_at, Reply.user_id, posted.created_at)
        .join(Mention, Mention.id == Reply.mention_id)
        .outerjoin(posted, and_(posted.platform == Reply.platform, posted.external_id == Reply.platform_reply_id,
                                posted.is_own.is_(True)))
        .where(customer, *reply_filter)
    ):
        if mention_id is None or sent_at is None:  # excluded by the query; for the type checker
            continue
        when = min(sent_at, posted_at) if posted_at is not None else sent_at
        offer(mention_id, Answer(when, user_id, OPENEAR))

    # (a) the brand's own posts in reply to the mention; one that openear sent belongs to its reply's mention
    own = aliased(Mention)
    sent = aliased(Reply)
    own_filter: list[ColumnElement[bool]] = [own.is_own.is_(True), own.in_reply_to_id.is_not(None)]
    if now is not None:
        own_filter.append(own.created_at <= now)
    if answers_since is not None:
        own_filter.append(own.created_at >= answers_since)
    if brand is not None:
        own_filter.append(own.brand == brand)
    # two joins, each index- or hash-friendly: to the mention's id, and to its edited revision's id
    for answers_target in (Mention.external_id == own.in_reply_to_id,
                           and_(Mention.revision_id.is_not(None), Mention.revision_id == own.in_reply_to_id)):
        for mention_id, own_at, reply_mention, user_id, sent_at in session.execute(
            select(Mention.id, own.created_at, sent.mention_id, sent.user_id, sent.sent_at)
            .select_from(own)
            .join(Mention, and_(Mention.platform == own.platform, answers_target))
            .outerjoin(sent, and_(sent.platform == own.platform, sent.platform_reply_id == own.external_id,
                                  sent.state == ReplyState.SENT.value))
            .where(customer, *own_filter)
        ):
            if reply_mention is not None and reply_mention != mention_id:
                continue  # openear sent it for another mention (counted there, through its reply)
            if reply_mention is not None:
                in_time = sent_at is not None and (now is None or sent_at <= now)
                when = min(own_at, sent_at) if in_time and sent_at is not None else own_at
                offer(mention_id, Answer(when, user_id, OPENEAR))
            else:
                offer(mention_id, Answer(own_at, None, PLATFORM))
    return answers


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (p90 of 10 values is the 9th smallest)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(pct / 100 * len(ordered)) - 1, 0)]


def response_seconds(created_at: datetime, answer: Answer) -> float:
    """Time to first response in seconds (never negative)."""
    return max((answer.answered_at - created_at).total_seconds(), 0.0)


def answered_ids(session: Session, mention_ids: Iterable[int], *, now: datetime | None = None) -> set[int]:
    """Which of these customer mentions had a public answer by `now` (None: any stored one); for the anonymous
    day counts that erasure and retention keep (`erased_mention_stats.answered_count`)."""
    ids = list(mention_ids)
    if not ids:
        return set()
    return set(first_answers(session, Mention.id.in_(ids), now=now))
