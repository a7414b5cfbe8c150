"""Build one brand's daily digest: SQL aggregates over one local day of the brand -> a frozen `DigestData`.

A day is [local midnight, next local midnight) in the brand's timezone, converted to UTC, so DST switch
days are 23 or 25 hours long. Counts are inbound mentions only (`is_own` False). Definitions:

"Answered", "first response" and "closing message" are defined once, in responders/answers.py (also
used by the team report and the erased-mention counts); `answers.DEFINITIONS` holds the one-liners the
digest prints under its figures.

- mentions (`volume`): the day's customer mentions; expecting an answer (`to_answer`): those neither
  hidden on the platform nor closing messages ("thanks, sorted"); answered: with a first public answer
  (an own post in reply on the platform, or a reply sent in openear) by `now`, even when given after the
  day (the digest is built the next morning); response rate = answered / expecting an answer.
- complaints: mentions expecting an answer that are labelled negative; answered publicly and the
  complaint response rate as above; broadcast-only: complaints without a public answer (dismissed ones
  included).
- waiting past SLA: the day's complaints without a public answer, not dismissed, older than
  `queue.sla_hours` at `now`; unanswered late: the same over all mentions expecting an answer.
- first response: first public answer - mention.created_at, over the day's answered mentions, whoever
  answered and wherever; p90 is the nearest-rank percentile; late answers are first responses slower than
  the SLA; SLA breaches = answered late + unanswered late.
- per agent: the day's mentions whose first answer the agent sent in openear (count, median first
  response); native answers on the platform have no known agent (`answered_on_platform`).
- loyal customers waiting: open negative queue items (created before the day's end) without a public
  answer and not closing messages, whose author or customer had earlier conversations (models.history).
- erased mentions (GDPR erasure, retention) stay in the volume, sentiment, platform, complaint and
  answered counts through their anonymous day counts (`erased_mention_stats`, answered as defined
  above); they have no times or texts, so response times and waiting lists cannot include them, they
  all count as expecting an answer, and an erased dismissal counts as unanswered.
- topics: the day's complaints grouped by meaning (their stored sentence vectors, clustered) and labelled
  with each group's most distinctive phrases (responders/topics.py).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from models.config import Config
from models.db import pow2_batches, pow2_padded
from models.domain import QueueState, SentimentLabel
from models.history import histories_at
from models.orm import Author, Customer, ErasedMentionStats, Mention, QueueItem, User
from models.vectors import Embedder, HashEmbedder
from responders.answers import OPENEAR, first_answers, is_closing, percentile, response_seconds
from responders.queue.items import thread_key
from responders.topics import group_topics, tokens, vectors_for

LABELS = ("negative", "neutral", "positive", "unclassified")
SERIES_DAYS = 8  # the day and the 7 before it (charts, trend)
SPIKE_DAYS = 14  # trailing window of the spike test
WAITING_LIMIT = 50
LOYAL_LIMIT = 10
LOYAL_CANDIDATES = 500
TOPIC_LIMIT = 8
TOPIC_TEXTS = 5000  # complaints grouped into topics at most (an even sample beyond)
QUOTE_CHARS = 160

@dataclass(frozen=True)
class DayCount:
    """Inbound volume of one local day, split by sentiment."""

    day: str
    total: int
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    unclassified: int = 0


@dataclass(frozen=True)
class PlatformCount:
    platform: str
    total: int
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    unclassified: int = 0


@dataclass(frozen=True)
class Trend:
    """A sentiment label's count today against the previous 7 days' daily average."""

    label: str
    count: int
    previous_avg: float
    change_pct: float | None  # None when there is nothing to compare with


@dataclass(frozen=True)
class Topic:
    """A group of similar complaints (responders/topics.py)."""

    term: str  # the group's label: its most distinctive phrases
    count: int  # complaints in the group
    examples: tuple[str, ...]  # up to two, nearest the group's centre


@dataclass(frozen=True)
class WaitingItem:
    mention_id: int
    platform: str
    handle: str | None
    text: str
    created_at: str
    hours_waiting: float
    url: str
    customer: str | None = None
    earlier_conversations: int = 0


@dataclass(frozen=True)
class AgentCount:
    """An agent's share of the day's mentions: those whose first public answer they sent in openear."""

    username: str
    answered: int
    median_response_s: float | None = None


@dataclass(frozen=True)
class DigestData:
    """Everything a digest shows; plain values only (stored as JSON in the archive)."""

    brand: str
    day: str
    timezone: str
    start: str
    end: str
    hours: float
    generated_at: str
    sla_hours: float
    base_url: str
    volume: int
    series: tuple[DayCount, ...]
    trends: tuple[Trend, ...]
    platforms: tuple[PlatformCount, ...]
    spike: bool
    spike_threshold: float | None
    topics: tuple[Topic, ...]
    complaints: int
    answered_publicly: int
    broadcast_only: int
    dismissed: int
    waiting: tuple[WaitingItem, ...]
    waiting_total: int
    responded: int
    median_response_s: float | None
    p90_response_s: float | None
    answered_late: int
    agents: tuple[AgentCount, ...]
    loyal_waiting: tuple[WaitingItem, ...] = field(default_factory=tuple)
    erased: int = 0  # of `volume`: mentions since erased, known only by their counts
    to_answer: int = 0  # of `volume`: not hidden, not a closing message (erased ones included)
    answered: int = 0  # of `to_answer`: with a first public answer by `generated_at`
    response_rate: float | None = None  # answered / to_answer (0..1)
    complaint_response_rate: float | None = None  # answered_publicly / complaints
    answered_in_openear: int = 0  # of `responded`: first answer sent in openear
    answered_on_platform: int = 0  # of `responded`: first answer written on the platform (agent unknown)
    unanswered_late: int = 0  # of `to_answer`: no answer, not dismissed, older than the SLA at `generated_at`
    closing: int = 0  # of `volume`: closing messages ("thanks, sorted"), not expecting an answer
    hidden: int = 0  # of `volume`: hidden on the platform, not expecting an answer

    @property
    def empty(self) -> bool:
        """Nothing heard and nothing answered on that day."""
        return self.volume == 0 and not self.agents and not self.waiting_total and not self.loyal_waiting

    @property
    def sla_breaches(self) -> int:
        """Mentions of the day answered later than the SLA, or not at all and already older than it."""
        return self.answered_late + self.unanswered_late


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """[local midnight, next local midnight) of `day` in `timezone`, as UTC datetimes."""
    tz = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def base_url_of(config: Config) -> str:
    """Where links in the digest point: web.public_url, else the bind address."""
    return (config.web.public_url or f"http://{config.web.host}:{config.web.port}").rstrip("/")


def _label(value: str | None) -> str:
    return value if value in LABELS[:3] else "unclassified"


def _truncate(text: str, limit: int = QUOTE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def build_digest(session: Session, config: Config, brand: str, day: date, *, now: datetime,
                 embedder: Embedder | None = None) -> DigestData:
    """The digest of `brand` for its local `day`, as known at `now`; `embedder` names the complaints' stored
    sentence vectors for the topic groups and embeds those without one (None: the lexical HashEmbedder)."""
    tz = config.brand(brand).timezone
    start, end = day_bounds(day, tz)
    sla = timedelta(hours=config.queue.sla_hours)
    base = base_url_of(config)
    days = [day - timedelta(days=i) for i in range(SPIKE_DAYS, -1, -1)]  # oldest first, `day` last
    bounds = [day_bounds(d, tz)[0] for d in days] + [end]
    inbound = and_(Mention.brand == brand, Mention.is_own.is_(False))

    # volume per local day, platform and label: one range scan, bucketed by a CASE over the boundaries
    bucket = case(*((Mention.created_at < b, i) for i, b in enumerate(bounds[1:])), else_=-1)
    rows = session.execute(
        select(bucket.label("b"), Mention.platform, Mention.sentiment_label, func.count())
        .where(inbound, Mention.created_at >= bounds[0], Mention.created_at < end)
        .group_by(bucket, Mention.platform, Mention.sentiment_label)
    ).all()
    per_day: list[Counter[str]] = [Counter() for _ in days]
    per_platform: dict[str, Counter[str]] = {}
    for b, platform, label, count in rows:
        if b < 0:
            continue
        per_day[b][_label(label)] += count
        if b == len(days) - 1:
            per_platform.setdefault(platform, Counter())[_label(label)] += count
    erased: Counter[str] = Counter()  # the day's erased mentions and complaints, and the answered ones of each
    for gone_day, platform, label, count, answered_count in session.execute(
        select(ErasedMentionStats.day, ErasedMentionStats.platform, ErasedMentionStats.sentiment,
               ErasedMentionStats.count, ErasedMentionStats.answered_count)
        .where(ErasedMentionStats.brand == brand, ErasedMentionStats.day >= days[0], ErasedMentionStats.day <= day)
    ).all():
        b = days.index(gone_day)
        per_day[b][_label(label)] += count
        if b == len(days) - 1:
            per_platform.setdefault(platform, Counter())[_label(label)] += count
            erased["mentions"] += count
            erased["answered"] += answered_count
            if label == SentimentLabel.NEGATIVE.value:
                erased["complaints"] += count
                erased["complaints_answered"] += answered_count
    series = tuple(DayCount(d.isoformat(), sum(c.values()), **{k: c[k] for k in LABELS})
                   for d, c in zip(days[-SERIES_DAYS:], per_day[-SERIES_DAYS:], strict=True))
    today = per_day[-1]
    volume = sum(today.values())
    trends = []
    for label in LABELS:
        avg = sum(c[label] for c in per_day[-SERIES_DAYS:-1]) / (SERIES_DAYS - 1)
        trends.append(Trend(label, today[label], round(avg, 2),
                            round((today[label] - avg) / avg * 100, 1) if avg else None))
    trailing = [float(sum(c.values())) for c in per_day[:-1]]
    mean = statistics.fmean(trailing)
    threshold = max(mean + 2 * statistics.stdev(trailing), 1.5 * mean) if mean > 0 else None
    platforms = tuple(PlatformCount(p, sum(c.values()), **{k: c[k] for k in LABELS})
                      for p, c in sorted(per_platform.items(), key=lambda kv: -sum(kv[1].values())))

    # answers: the day's customer mentions, each with its first public answer (responders/answers.py)
    in_day = and_(inbound, Mention.created_at >= start, Mention.created_at < end)
    answers = first_answers(session, in_day, now=now, answers_since=start, brand=brand)
    late_s = sla.total_seconds()
    n: Counter[str] = Counter()
    delays: list[float] = []
    per_agent: dict[int | None, list[float]] = {}
    complaint_texts: list[tuple[int, str]] = []
    waiting_rows: list[tuple[datetime, int, str, str]] = []
    unanswered: list[tuple[Any, bool]] = []
    for row in session.execute(
        select(Mention.id, Mention.platform, Mention.text, Mention.created_at, Mention.sentiment_label,
               Mention.score_negative, Mention.hidden, QueueItem.state, Mention.conversation_id,
               Mention.external_id, Mention.author_id)
        .outerjoin(QueueItem, QueueItem.mention_id == Mention.id).where(in_day)
        .execution_options(yield_per=5000)
    ):
        if row.hidden:
            n["hidden"] += 1
            continue
        if is_closing(row.text, row.sentiment_label, row.score_negative):
            n["closing"] += 1
            continue
        n["to_answer"] += 1
        complaint = row.sentiment_label == SentimentLabel.NEGATIVE.value
        answer = answers.get(row.id)
        if complaint:
            n["complaints"] += 1
            complaint_texts.append((row.id, row.text))
        if answer is None:
            unanswered.append((row, complaint))
            continue
        delay = response_seconds(row.created_at, answer)
        delays.append(delay)
        n["answered"] += 1
        n["complaints_answered"] += complaint
        n["answered_late"] += delay > late_s
        n["via_" + answer.via] += 1
        if answer.via == OPENEAR:
            per_agent.setdefault(answer.answered_by, []).append(delay)
    states = _conversation_states(session, [row for row, _ in unanswered if row.state is None])
    for row, complaint in unanswered:
        state = row.state or states.get(row.id)
        dismissed = state == QueueState.DISMISSED.value
        overdue = not dismissed and row.created_at <= now - sla
        n["unanswered_late"] += overdue
        if complaint:
            n["dismissed"] += dismissed
            if overdue:
                waiting_rows.append((row.created_at, row.id, row.platform, row.text))
    to_answer, answered_n = n["to_answer"] + erased["mentions"], n["answered"] + erased["answered"]
    complaints = n["complaints"] + erased["complaints"]
    complaints_answered = n["complaints_answered"] + erased["complaints_answered"]
    waiting_rows.sort()
    handles = dict(session.execute(
        select(Mention.id, Author.handle).join(Author, Author.id == Mention.author_id)
        .where(Mention.id.in_([r[1] for r in waiting_rows[:WAITING_LIMIT]]))
    ).all()) if waiting_rows else {}
    waiting = tuple(
        WaitingItem(mention_id, platform, handles.get(mention_id), _truncate(text), created.isoformat(),
                    round((now - created).total_seconds() / 3600, 1), f"{base}/mentions/{mention_id}")
        for created, mention_id, platform, text in waiting_rows[:WAITING_LIMIT]
    )
    names = dict(session.execute(select(User.id, User.username).where(
        User.id.in_([u for u in per_agent if u is not None])
    )).all()) if per_agent else {}
    agents = tuple(sorted(
        (AgentCount(names.get(user_id) or "(deleted user)" if user_id is not None else "(deleted user)",
                    len(times), statistics.median(times)) for user_id, times in per_agent.items()),
        key=lambda a: (-a.answered, a.username)))

    return DigestData(
        brand=brand, day=day.isoformat(), timezone=tz, start=start.isoformat(), end=end.isoformat(),
        hours=(end - start).total_seconds() / 3600, generated_at=now.isoformat(), sla_hours=config.queue.sla_hours,
        base_url=base, volume=volume, series=series, trends=tuple(trends), platforms=platforms,
        spike=threshold is not None and volume > threshold,
        spike_threshold=round(threshold, 1) if threshold is not None else None,
        topics=top_topics(session, sorted(complaint_texts), brand, embedder or HashEmbedder()),
        complaints=complaints,
        answered_publicly=complaints_answered, broadcast_only=complaints - complaints_answered,
        dismissed=n["dismissed"], waiting=waiting, waiting_total=len(waiting_rows), responded=len(delays),
        median_response_s=statistics.median(delays) if delays else None, p90_response_s=percentile(delays, 90),
        answered_late=n["answered_late"], agents=agents,
        loyal_waiting=loyal_waiting(session, brand, end, now, base), erased=erased["mentions"],
        to_answer=to_answer, answered=answered_n, response_rate=_rate(answered_n, to_answer),
        complaint_response_rate=_rate(complaints_answered, complaints), answered_in_openear=n["via_openear"],
        answered_on_platform=n["via_platform"], unanswered_late=n["unanswered_late"], closing=n["closing"],
        hidden=n["hidden"],
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def top_topics(session: Session, complaints: list[tuple[int, str]], brand: str,
               embedder: Embedder) -> tuple[Topic, ...]:
    """The day's complaint topics: groups of similar complaints ((mention id, text) in mention order), largest
    first. Beyond TOPIC_TEXTS complaints an evenly spaced sample is grouped and the counts scaled up."""
    sample = complaints
    if len(complaints) > TOPIC_TEXTS:
        step = len(complaints) / TOPIC_TEXTS
        sample = [complaints[int(i * step)] for i in range(TOPIC_TEXTS)]
    if not sample:
        return ()
    ids, texts = [m for m, _ in sample], [t for _, t in sample]
    groups = group_topics(texts, vectors_for(session, ids, texts, embedder), extra_stop=frozenset(tokens(brand)),
                          limit=TOPIC_LIMIT)
    scale = len(complaints) / len(sample)
    return tuple(Topic(g.label, round(g.size * scale), tuple(_truncate(q) for q in g.examples)) for g in groups)


def period_topics(session: Session, *, start: datetime, end: datetime, embedder: Embedder,
                  platform: str | None = None, stop_words: str = "") -> tuple[Topic, ...]:
    """The complaint topics of [start, end) over every brand (the Reports page): the digest's complaints
    (inbound, not hidden, negative, not a closing "thanks") grouped as `top_topics` groups a day's."""
    where = [Mention.is_own.is_(False), Mention.created_at >= start, Mention.created_at < end,
             Mention.hidden.is_(False), Mention.sentiment_label == SentimentLabel.NEGATIVE.value]
    if platform is not None:
        where.append(Mention.platform == platform)
    complaints = [(row.id, row.text) for row in session.execute(
        select(Mention.id, Mention.text, Mention.sentiment_label, Mention.score_negative)
        .where(*where).order_by(Mention.id).execution_options(yield_per=5000)
    ) if not is_closing(row.text, row.sentiment_label, row.score_negative)]
    return top_topics(session, complaints, stop_words, embedder)


def _conversation_states(session: Session, rows: list[Any]) -> dict[int, str]:
    """The state of the conversation item of mentions that are not their item's newest message (an
    earlier message of a conversation: queue items answer the newest one, responders.queue.intake)."""
    keys = {row.id: thread_key(row.platform, row.conversation_id, row.external_id, row.author_id) for row in rows}
    latest: dict[str, str] = {}
    for batch in pow2_batches(sorted(set(keys.values())), 512):
        for key, state in session.execute(select(QueueItem.thread_key, QueueItem.state).where(
                QueueItem.thread_key.in_(pow2_padded(list(batch)))).order_by(QueueItem.id)):
            latest[key or ""] = state
    return {mention_id: latest[key] for mention_id, key in keys.items() if key in latest}


def loyal_waiting(session: Session, brand: str, before: datetime, now: datetime, base: str) -> tuple[WaitingItem, ...]:
    """Open complaints without a public answer whose author (or customer) had earlier conversations, longest
    waiting first; closing messages are never listed."""
    candidate = and_(Mention.brand == brand, Mention.is_own.is_(False), Mention.created_at < before,
                     Mention.hidden.is_(False), Mention.sentiment_label == SentimentLabel.NEGATIVE.value)
    rows = session.execute(
        select(Mention.id, Mention.platform, Mention.text, Mention.created_at, Mention.author_id, Author.handle,
               Customer.display_name, Mention.sentiment_label, Mention.score_negative)
        .join(QueueItem, QueueItem.mention_id == Mention.id).join(Author, Author.id == Mention.author_id)
        .outerjoin(Customer, Customer.id == Author.customer_id)
        .where(candidate, QueueItem.state.in_((QueueState.NEW.value, QueueState.CLAIMED.value)))
        .order_by(Mention.created_at, Mention.id).limit(LOYAL_CANDIDATES)
    ).all()
    answered = set(first_answers(session, Mention.id.in_([r.id for r in rows]), now=now)) if rows else set()
    rows = [r for r in rows if r.id not in answered and not is_closing(r.text, r.sentiment_label, r.score_negative)]
    known = histories_at(session, {(r.author_id, r.created_at) for r in rows})
    found = []
    for r in rows:
        earlier = known[(r.author_id, r.created_at)].earlier_conversations
        if earlier > 0:
            found.append(WaitingItem(r.id, r.platform, r.handle, _truncate(r.text), r.created_at.isoformat(),
                                     round((now - r.created_at).total_seconds() / 3600, 1), f"{base}/mentions/{r.id}",
                                     r.display_name, earlier))
    found.sort(key=lambda w: (-w.earlier_conversations, w.created_at))
    return tuple(found[:LOYAL_LIMIT])
