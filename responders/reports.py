"""The managers' team report: volumes, first-response times and each agent's share over the last days."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.domain import OPEN_QUEUE_STATES, QueueState, ReplyState
from models.orm import Mention, QueueItem, Reply, User


@dataclass(frozen=True)
class AgentStats:
    username: str
    replies: int
    dismissed: int
    median_response_seconds: float | None


@dataclass(frozen=True)
class TeamReport:
    since: datetime
    open_items: int
    overdue_items: int
    answered: int
    dismissed: int
    replies_sent: int
    replies_failed: int
    median_response_seconds: float | None
    agents: list[AgentStats]


def team_report(session: Session, *, now: datetime, days: int, sla_hours: float) -> TeamReport:
    """How the team did over the last `days`: volumes, first-response times, per agent."""
    since = now - timedelta(days=days)
    open_states = OPEN_QUEUE_STATES
    open_items = session.scalar(select(func.count()).select_from(QueueItem).where(QueueItem.state.in_(open_states)))
    overdue = session.scalar(
        select(func.count()).select_from(QueueItem).join(Mention, Mention.id == QueueItem.mention_id)
        .where(QueueItem.state.in_(open_states), Mention.created_at <= now - timedelta(hours=sla_hours))
    )
    closed = dict(session.execute(
        select(QueueItem.state, func.count()).where(
            QueueItem.state.in_((QueueState.ANSWERED.value, QueueState.DISMISSED.value)), QueueItem.closed_at >= since)
        .group_by(QueueItem.state)
    ).all())
    sent = session.execute(
        select(Reply.sent_at, Mention.created_at, User.username)
        .join(Mention, Mention.id == Reply.mention_id).outerjoin(User, User.id == Reply.user_id)
        .where(Reply.state == ReplyState.SENT.value, Reply.sent_at >= since)
    ).all()
    failed = session.scalar(select(func.count()).select_from(Reply).where(Reply.state == ReplyState.FAILED.value))
    per_agent: dict[str, list[float]] = {}
    for row in sent:
        per_agent.setdefault(row.username or "(deleted user)", []).append(
            max((row.sent_at - row.created_at).total_seconds(), 0.0))
    dismissed_by = dict(session.execute(
        select(User.username, func.count()).join(QueueItem, QueueItem.assignee_id == User.id)
        .where(QueueItem.state == QueueState.DISMISSED.value, QueueItem.closed_at >= since).group_by(User.username)
    ).all())
    names = sorted(set(per_agent) | set(dismissed_by))
    agents = [AgentStats(name, len(per_agent.get(name, [])), int(dismissed_by.get(name, 0)),
                         statistics.median(per_agent[name]) if per_agent.get(name) else None) for name in names]
    all_times = [t for times in per_agent.values() for t in times]
    return TeamReport(since, int(open_items or 0), int(overdue or 0), int(closed.get("answered", 0)),
                      int(closed.get("dismissed", 0)), len(sent), int(failed or 0),
                      statistics.median(all_times) if all_times else None, agents)
