"""The team report's figures over time: one row per day or week, overall, per platform or per agent.

The definitions are those of responders/answers.py, used as responders/reports.py uses them. Over the
customer mentions (`Mention.is_own` False) created in a bucket:

- negative / neutral / positive / unscored: their volume by sentiment label (unscored: no label, or one
  the classifier does not give);
- to_answer: those expecting an answer (`answers.expects_answer`: not hidden, not a closing message);
- answered: of those, the ones with a first public answer (openear or the platform) by `now`, however long
  after the bucket; response_rate = answered / to_answer;
- median / p90 first response: `answers.response_seconds` over the answered ones (nearest-rank p90);
- answered_late: first response slower than the SLA;
- backlog: at the bucket's end (or `now`, if that is earlier), the mentions of any earlier time (before the
  period too) that expect an answer, were older than the SLA then and had no first public answer by then;
  a mention whose conversation's queue item was dismissed by then is not waiting (as in the digest; the
  item's current state and `closed_at` tell, the queue keeps no history of reopened items).

Buckets are calendar days of `timezone` (default UTC; the Reports page uses `schedule.timezone`, the digest
the brand's timezone), or weeks from Monday 00:00 there. The period [start, end) is widened to whole
buckets. Groups (`by`): "overall"; "platform"; "agent": the mention's first answer by `now` decides, the
agent who sent it in openear (`Answer.answered_by`, `reports.DELETED_USER` when the user is gone),
ON_PLATFORM for answers written in the platform's own apps, UNANSWERED for none. The groups split the
mentions, so their counts add up to the overall ones (`Trends.overall` is always computed). Erased
mentions (GDPR, retention) are gone and not counted.

Cost: one streamed scan of the customer mentions created before `end` (yield_per), one `first_answers`
call, and one look-up of the dismissed conversations among the unanswered ones.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from models.db import pow2_batches, pow2_padded
from models.domain import QueueState
from models.orm import Mention, QueueItem, User
from responders.answers import OPENEAR, Answer, expects_answer, first_answers, percentile, response_seconds
from responders.queue.items import thread_key
from responders.reports import DELETED_USER

Granularity = Literal["day", "week"]
GroupBy = Literal["overall", "platform", "agent"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "week")
GROUPINGS: tuple[GroupBy, ...] = ("overall", "platform", "agent")
LABELS = ("negative", "neutral", "positive", "unscored")
OVERALL = "All mentions"
ON_PLATFORM = "(on the platform)"
UNANSWERED = "(not answered)"
MAX_BUCKETS = 400


@dataclass(frozen=True)
class Bucket:
    """One group's figures for one day or week (see the module docstring)."""

    start: date  # the bucket's first local day
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    unscored: int = 0
    to_answer: int = 0
    answered: int = 0
    response_rate: float | None = None  # answered / to_answer (0..1), None when nothing expected an answer
    median_response_seconds: float | None = None
    p90_response_seconds: float | None = None
    answered_late: int = 0
    backlog: int = 0  # waiting past the SLA at the bucket's end

    @property
    def volume(self) -> int:
        """All customer mentions of the bucket."""
        return self.negative + self.neutral + self.positive + self.unscored


@dataclass(frozen=True)
class Series:
    """One group (overall, a platform, an agent) over every bucket of the period, oldest first."""

    group: str
    buckets: tuple[Bucket, ...]


@dataclass(frozen=True)
class Trends:
    """The result of `trends`: the buckets' starts, the overall series and the series of each group."""

    start: datetime  # the period, widened to whole buckets (UTC)
    end: datetime
    granularity: Granularity
    by: GroupBy
    timezone: str
    sla_hours: float
    starts: tuple[date, ...]
    overall: Series
    series: tuple[Series, ...]  # (overall,) for by="overall"; else one per group, sorted by name
    platform: str | None = None
    brand: str | None = None


@dataclass
class _Acc:
    """Running counts of one group while the rows stream by."""

    n: int
    counts: list[Counter[str]] = field(init=False)
    delays: list[list[float]] = field(init=False)
    backlog: list[int] = field(init=False)  # a difference array over the buckets (one more slot)

    def __post_init__(self) -> None:
        self.counts = [Counter() for _ in range(self.n)]
        self.delays = [[] for _ in range(self.n)]
        self.backlog = [0] * (self.n + 1)

    def merge(self, other: _Acc) -> _Acc:
        """Add another group's counts to these (two keys with one name)."""
        for i in range(self.n):
            self.counts[i].update(other.counts[i])
            self.delays[i].extend(other.delays[i])
        self.backlog = [a + b for a, b in zip(self.backlog, other.backlog, strict=True)]
        return self

    def series(self, group: str, starts: tuple[date, ...]) -> Series:
        rows = []
        waiting = 0
        for i, start in enumerate(starts):
            c, d = self.counts[i], self.delays[i]
            waiting += self.backlog[i]
            rows.append(Bucket(
                start, negative=c["negative"], neutral=c["neutral"], positive=c["positive"], unscored=c["unscored"],
                to_answer=c["to_answer"], answered=len(d),
                response_rate=round(len(d) / c["to_answer"], 4) if c["to_answer"] else None,
                median_response_seconds=statistics.median(d) if d else None,
                p90_response_seconds=percentile(d, 90), answered_late=c["late"], backlog=waiting))
        return Series(group, tuple(rows))


def bucket_start(day: date, granularity: Granularity) -> date:
    """The first day of the bucket holding `day` (weeks start on Monday)."""
    return day - timedelta(days=day.weekday()) if granularity == "week" else day


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """00:00 of `day` in `tz`, as UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def bucket_starts(start: datetime, end: datetime, granularity: Granularity, timezone: str = "UTC") -> list[date]:
    """The local first days of the buckets covering [start, end), plus the first day after the last bucket."""
    tz = ZoneInfo(timezone)
    step = timedelta(days=7 if granularity == "week" else 1)
    day = bucket_start(start.astimezone(tz).date(), granularity)
    days = [day]
    while local_midnight(days[-1], tz) < end:
        days.append(days[-1] + step)
        if len(days) > MAX_BUCKETS + 1:
            raise ValueError(f"more than {MAX_BUCKETS} {granularity}s: choose a shorter period or weeks")
    return days if len(days) > 1 else [day, day + step]


def trends(session: Session, *, start: datetime, end: datetime, granularity: Granularity, sla_hours: float,
           now: datetime, platform: str | None = None, by: GroupBy = "overall", brand: str | None = None,
           timezone: str = "UTC") -> Trends:
    """The figures of each day or week of [start, end) as known at `now`, overall or per platform or agent."""
    if granularity not in GRANULARITIES or by not in GROUPINGS:
        raise ValueError(f"granularity must be one of {GRANULARITIES} and by one of {GROUPINGS}")
    if end <= start:
        raise ValueError("the period is empty: end must be after start")
    tz = ZoneInfo(timezone)
    days = bucket_starts(start, end, granularity, timezone)
    starts, n = tuple(days[:-1]), len(days) - 1
    bounds = [local_midnight(d, tz) for d in days]  # UTC edges: bucket i is [bounds[i], bounds[i + 1])
    period_start, period_end = bounds[0], bounds[-1]
    evals = [min(b, now) for b in bounds[1:]]  # when each bucket's backlog is taken
    sla = timedelta(hours=sla_hours)

    scope: list[ColumnElement[bool]] = [Mention.is_own.is_(False)]
    if brand is not None:
        scope.append(Mention.brand == brand)
    if platform is not None:
        scope.append(Mention.platform == platform)
    # every customer mention before the end: the period's, and the earlier ones that may still be waiting
    targets = and_(*scope, Mention.created_at < period_end,
                   or_(Mention.created_at >= period_start, Mention.hidden.is_(False)))
    answers = first_answers(session, targets, now=now, brand=brand)

    overall = _Acc(n)
    groups: dict[Any, _Acc] = {}
    waiting: list[tuple[Any, Any, int, datetime]] = []  # (row, group key, first bucket, no later than)
    late_s = sla.total_seconds()
    for row in session.execute(
        select(Mention.id, Mention.created_at, Mention.platform, Mention.text, Mention.sentiment_label,
               Mention.score_negative, Mention.hidden, Mention.conversation_id, Mention.external_id,
               Mention.author_id, QueueItem.state, QueueItem.closed_at)
        .outerjoin(QueueItem, QueueItem.mention_id == Mention.id).where(targets)
        .execution_options(yield_per=5000)
    ):
        answer = answers.get(row.id)
        in_period = row.created_at >= period_start
        if not in_period and answer is not None and answer.answered_at <= evals[0]:
            continue  # answered before the period's first backlog was taken: counts nowhere
        key = _group_key(by, row.platform, answer)
        expects = expects_answer(row.hidden, row.text, row.sentiment_label, row.score_negative)
        if in_period:
            i = bisect_right(bounds, row.created_at) - 1
            label = row.sentiment_label if row.sentiment_label in LABELS[:3] else "unscored"
            delay = response_seconds(row.created_at, answer) if answer is not None and expects else None
            for acc in _accs(overall, groups, by, key, n):
                acc.counts[i][label] += 1
                acc.counts[i]["to_answer"] += expects
                if delay is not None:
                    acc.delays[i].append(delay)
                    acc.counts[i]["late"] += delay > late_s
        if not expects:
            continue
        first = bisect_left(evals, row.created_at + sla)  # the first bucket whose end finds it past the SLA
        if first >= n or (answer is not None and answer.answered_at <= evals[first]):
            continue
        leave = answer.answered_at if answer is not None else datetime.max.replace(tzinfo=UTC)
        dismissed = (row.closed_at or row.created_at) if row.state == QueueState.DISMISSED.value else None
        if dismissed is not None:
            leave = min(leave, dismissed)
        waiting.append((row, key, first, leave))

    # earlier messages of a conversation have no item of their own: their thread's newest item decides
    dismissed_threads = _dismissed_threads(session, [row for row, *_ in waiting if row.state is None])
    for row, key, first, leave in waiting:
        if row.state is None and row.id in dismissed_threads:
            leave = min(leave, dismissed_threads[row.id])
        last = bisect_left(evals, leave)  # buckets before `last` were taken before it left
        if last > first:
            for acc in _accs(overall, groups, by, key, n):
                acc.backlog[first] += 1
                acc.backlog[last] -= 1

    names = _agent_names(session, groups) if by == "agent" else {}
    named: dict[str, _Acc] = {}
    for key, acc in groups.items():  # a user id whose user is gone is a "(deleted user)" like None
        name = names.get(key, str(key))
        named[name] = named[name].merge(acc) if name in named else acc
    total = overall.series(OVERALL, starts)
    series = (total,) if by == "overall" else tuple(acc.series(name, starts) for name, acc in sorted(named.items()))
    return Trends(period_start, period_end, granularity, by, timezone, sla_hours, starts, total, series,
                  platform=platform, brand=brand)


def _accs(overall: _Acc, groups: dict[Any, _Acc], by: GroupBy, key: Any, n: int) -> tuple[_Acc, ...]:
    """The accumulators a mention counts in: the overall one and its group's (made when first needed)."""
    if by == "overall":
        return (overall,)
    if key not in groups:
        groups[key] = _Acc(n)
    return overall, groups[key]


def _group_key(by: GroupBy, platform: str, answer: Answer | None) -> Any:
    """Which group a mention belongs to: its platform, or who sent its first answer (a user id or a label)."""
    if by == "platform":
        return platform
    if by == "agent":
        if answer is None:
            return UNANSWERED
        return ("user", answer.answered_by) if answer.via == OPENEAR else ON_PLATFORM
    return OVERALL


def _agent_names(session: Session, groups: Iterable[Any]) -> dict[Any, str]:
    """Group key -> the agent's username (DELETED_USER when the user is gone), as responders/reports.py names."""
    user_ids = {key[1] for key in groups if isinstance(key, tuple) and key[1] is not None}
    found = dict(session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all()) \
        if user_ids else {}
    return {key: found.get(key[1], DELETED_USER) if key[1] is not None else DELETED_USER
            for key in groups if isinstance(key, tuple)}


def _dismissed_threads(session: Session, rows: list[Any]) -> dict[int, datetime]:
    """Mention id -> when its conversation was dismissed, for mentions without a queue item of their own whose
    thread's newest item is dismissed."""
    keys = {row.id: (thread_key(row.platform, row.conversation_id, row.external_id, row.author_id), row.created_at)
            for row in rows}
    latest: dict[str, tuple[str, datetime | None]] = {}
    for batch in pow2_batches(sorted({key for key, _ in keys.values()}), 512):
        for key, state, closed_at in session.execute(
                select(QueueItem.thread_key, QueueItem.state, QueueItem.closed_at)
                .where(QueueItem.thread_key.in_(pow2_padded(list(batch)))).order_by(QueueItem.id)):
            latest[key or ""] = (state, closed_at)
    found: dict[int, datetime] = {}
    for mention_id, (key, created_at) in keys.items():
        state, closed_at = latest.get(key, ("", None))
        if state == QueueState.DISMISSED.value:
            found[mention_id] = closed_at or created_at
    return found
