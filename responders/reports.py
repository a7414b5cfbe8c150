"""The managers' team report: volumes, first-response times and each agent's share over the last days.

"Answered" and "first response" are those of responders/answers.py (also the digest's): over the customer
mentions created in the period that expect an answer (not hidden, not closing messages), the first public
answer by the brand, in openear or on the platform itself, by `now`. An agent's median is over the
mentions whose first answer they sent in openear; answers written in the platforms' own apps have no
known agent (`answered_on_platform`). Queue counts (open, overdue, dismissed) and reply counts (sent,
failed) are as the queue and the dispatcher record them.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from models.domain import OPEN_QUEUE_STATES, QueueState, ReplyState
from models.orm import Mention, QueueItem, Reply, User
from responders.answers import OPENEAR, expects_answer, first_answers, percentile, response_seconds
from responders.queue.listing import waiting_from

DELETED_USER = "(deleted user)"


@dataclass(frozen=True)
class AgentStats:
    username: str
    replies: int  # replies the agent sent in openear during the period
    dismissed: int
    median_response_seconds: float | None  # first responses of the mentions they answered first
    answered: int = 0  # the period's mentions whose first public answer the agent sent


@dataclass(frozen=True)
class TeamReport:
    since: datetime
    open_items: int
    overdue_items: int
    answered: int  # the period's mentions expecting an answer that got a public answer
    dismissed: int
    replies_sent: int
    replies_failed: int
    median_response_seconds: float | None  # over all first public answers, wherever written
    agents: list[AgentStats]
    to_answer: int = 0  # the period's customer mentions expecting an answer
    response_rate: float | None = None  # answered / to_answer (0..1)
    answered_on_platform: int = 0  # of `answered`: first answer written on the platform (agent unknown)
    p90_response_seconds: float | None = None
    answered_late: int = 0  # of `answered`: first answer later than the SLA


def team_report(session: Session, *, now: datetime, days: int, sla_hours: float) -> TeamReport:
    """How the team did over the last `days`: volumes, first-response times, per agent."""
    since = now - timedelta(days=days)
    open_states = OPEN_QUEUE_STATES
    open_items = session.scalar(select(func.count()).select_from(QueueItem).where(QueueItem.state.in_(open_states)))
    overdue = session.scalar(
        select(func.count()).select_from(QueueItem).join(Mention, Mention.id == QueueItem.mention_id)
        .where(QueueItem.state.in_(open_states), now - timedelta(hours=sla_hours) >= waiting_from)
    )
    closed = dict(session.execute(
        select(QueueItem.state, func.count()).where(
            QueueItem.state.in_((QueueState.ANSWERED.value, QueueState.DISMISSED.value)), QueueItem.closed_at >= since)
        .group_by(QueueItem.state)
    ).all())
    sent = Counter(dict(session.execute(
        select(Reply.user_id, func.count()).where(Reply.state == ReplyState.SENT.value, Reply.sent_at >= since,
                                                  Reply.sent_at <= now)
        .group_by(Reply.user_id)
    ).all()))
    failed = session.scalar(select(func.count()).select_from(Reply).where(Reply.state == ReplyState.FAILED.value))

    # the period's mentions and their first public answers (responders/answers.py)
    period = and_(Mention.is_own.is_(False), Mention.created_at >= since, Mention.created_at < now)
    answers = first_answers(session, period, now=now, answers_since=since)
    delays: list[float] = []
    by_agent: dict[int | None, list[float]] = {}
    counts: Counter[str] = Counter()
    for row in session.execute(
        select(Mention.id, Mention.created_at, Mention.text, Mention.sentiment_label, Mention.score_negative,
               Mention.hidden).where(period).execution_options(yield_per=5000)
    ):
        if not expects_answer(row.hidden, row.text, row.sentiment_label, row.score_negative):
            continue
        counts["to_answer"] += 1
        answer = answers.get(row.id)
        if answer is None:
            continue
        delay = response_seconds(row.created_at, answer)
        delays.append(delay)
        counts["late"] += delay > sla_hours * 3600
        if answer.via == OPENEAR:
            by_agent.setdefault(answer.answered_by, []).append(delay)
        else:
            counts["platform"] += 1

    dismissed_by = dict(session.execute(
        select(QueueItem.assignee_id, func.count())
        .where(QueueItem.state == QueueState.DISMISSED.value, QueueItem.closed_at >= since,
               QueueItem.assignee_id.is_not(None))
        .group_by(QueueItem.assignee_id)
    ).all())
    user_ids = {u for u in (*sent, *by_agent, *dismissed_by) if u is not None}
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all()) if user_ids else {}

    def name(user_id: int | None) -> str:
        return names.get(user_id, DELETED_USER) if user_id is not None else DELETED_USER

    replies: Counter[str] = Counter()
    dismissals: Counter[str] = Counter()
    times: dict[str, list[float]] = {}
    for user_id, count in sent.items():
        replies[name(user_id)] += count
    for user_id, count in dismissed_by.items():
        dismissals[name(user_id)] += count
    for user_id, agent_times in by_agent.items():
        times.setdefault(name(user_id), []).extend(agent_times)
    agents = [AgentStats(username, replies[username], dismissals[username],
                         statistics.median(times[username]) if times.get(username) else None,
                         len(times.get(username, [])))
              for username in sorted({*replies, *dismissals, *times})]
    answered = len(delays)
    return TeamReport(since, int(open_items or 0), int(overdue or 0), answered, int(closed.get("dismissed", 0)),
                      sum(sent.values()), int(failed or 0), statistics.median(delays) if delays else None, agents,
                      to_answer=counts["to_answer"],
                      response_rate=round(answered / counts["to_answer"], 4) if counts["to_answer"] else None,
                      answered_on_platform=counts["platform"], p90_response_seconds=percentile(delays, 90),
                      answered_late=counts["late"])
