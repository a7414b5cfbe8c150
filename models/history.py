"""What openear remembers about an author for ranking: earlier conversations and their outcome.

An author linked to a customer is judged by the customer's mentions on every platform; an unlinked
author by their own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.domain import OPEN_QUEUE_STATES, QueueState, SentimentLabel
from models.orm import Author, Mention, QueueItem
from models.ranking import CustomerHistory

REPEAT_WINDOW = timedelta(days=30)


def histories(session: Session, author_ids: Iterable[int], before: datetime) -> dict[int, CustomerHistory]:
    """History per author id, counting only mentions created before `before`."""
    found = histories_at(session, {(author_id, before) for author_id in author_ids})
    return {author_id: history for (author_id, _), history in found.items()}


def histories_at(
    session: Session, wanted: Iterable[tuple[int, datetime]]
) -> dict[tuple[int, datetime], CustomerHistory]:
    """History per (author id, moment): what was known about the author's customer at that moment."""
    wanted = set(wanted)
    ids = {author_id for author_id, _ in wanted}
    if not ids:
        return {}
    before = max(moment for _, moment in wanted)
    authors = session.execute(select(Author.id, Author.customer_id).where(Author.id.in_(ids))).all()
    customer_of = {a.id: a.customer_id for a in authors}
    customers = {c for c in customer_of.values() if c is not None}
    # every author whose mentions count for these authors (the customer's other identities too)
    related: dict[int, set[int]] = {a: {a} for a in ids}
    if customers:
        rows = session.execute(select(Author.id, Author.customer_id).where(Author.customer_id.in_(customers))).all()
        by_customer: dict[int, set[int]] = defaultdict(set)
        for row in rows:
            by_customer[row.customer_id].add(row.id)
        for author_id, customer_id in customer_of.items():
            if customer_id is not None:
                related[author_id] |= by_customer[customer_id]
    all_ids = set().union(*related.values())
    mention_rows = session.execute(
        select(Mention.author_id, Mention.platform, Mention.conversation_id, Mention.external_id,
               Mention.created_at, Mention.sentiment_label, QueueItem.state)
        .outerjoin(QueueItem, QueueItem.mention_id == Mention.id)
        .where(Mention.author_id.in_(all_ids), Mention.created_at < before, Mention.is_own.is_(False))
        .order_by(Mention.created_at)
    ).all()
    by_author: dict[int, list] = defaultdict(list)
    for mention_row in mention_rows:
        by_author[mention_row.author_id].append(mention_row)

    result: dict[tuple[int, datetime], CustomerHistory] = {}
    for author_id, moment in wanted:
        mentions = sorted((r for a in related[author_id] for r in by_author[a] if r.created_at < moment),
                          key=lambda r: r.created_at)
        if not mentions:
            result[(author_id, moment)] = CustomerHistory()
            continue
        conversations = {(m.platform, m.conversation_id or m.external_id) for m in mentions}
        complaints = [m for m in mentions if m.sentiment_label == SentimentLabel.NEGATIVE.value]
        open_states = OPEN_QUEUE_STATES
        result[(author_id, moment)] = CustomerHistory(
            earlier_conversations=len(conversations),
            first_seen=mentions[0].created_at,
            open_complaints=sum(1 for m in complaints if m.state in open_states),
            last_complaint_unanswered=bool(complaints) and complaints[-1].state != QueueState.ANSWERED.value,
            repeat_complaint=any(moment - m.created_at <= REPEAT_WINDOW for m in complaints),
        )
    return result
