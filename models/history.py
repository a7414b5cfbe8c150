"""What openear remembers about an author for ranking: earlier conversations and their outcome.

An author linked to a customer is judged by the customer's mentions on every platform; an unlinked
author by their own.

The aggregation runs in the database: the wanted (author, moment) pairs go in as a VALUES list (in
chunks of CHUNK pairs) and one small row per pair comes back, never the mention rows themselves.
The index ix_mentions_author_created (author_id, created_at) serves the "mentions of these authors
before this moment" lookups.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Select, and_, case, column, func, select, union, values
from sqlalchemy.orm import Session

from models.db import pow2_ceil
from models.domain import OPEN_QUEUE_STATES, QueueState, SentimentLabel
from models.orm import Author, Mention, QueueItem, UTCDateTime
from models.ranking import CustomerHistory

REPEAT_WINDOW = timedelta(days=30)
CHUNK = 500
"""Wanted pairs per query: 3 bind parameters each, far below every backend's limit."""

Pair = tuple[int, datetime]


def histories(session: Session, author_ids: Iterable[int], before: datetime) -> dict[int, CustomerHistory]:
    """History per author id, counting only mentions created before `before`."""
    found = histories_at(session, {(author_id, before) for author_id in author_ids})
    return {author_id: history for (author_id, _), history in found.items()}


def histories_at(session: Session, wanted: Iterable[Pair]) -> dict[Pair, CustomerHistory]:
    """History per (author id, moment): what was known about the author's customer at that moment.

    Counted: the mentions of the author and of every author linked to the same customer that are
    not the brand's own and were created before the moment. Conversations are distinct (platform,
    conversation id or else the mention's own id); the last complaint is the latest negative mention
    (ties: the higher mention id); a negative without queue item counts as unanswered.
    """
    pairs = list(set(wanted))
    result: dict[Pair, CustomerHistory] = {}
    for start in range(0, len(pairs), CHUNK):
        chunk = pairs[start : start + CHUNK]
        for row in session.execute(_aggregate(chunk)):
            if row.k < 0:  # padding (never has history: no author has id 0)
                continue
            author_id, moment = chunk[row.k]
            last_negative_at = row.last_negative_at
            complained = last_negative_at is not None
            result[(author_id, moment)] = CustomerHistory(
                earlier_conversations=int(row.conversations),
                first_seen=row.first_seen,
                open_complaints=int(row.open_complaints or 0),
                last_complaint_unanswered=complained and row.last_negative_state != QueueState.ANSWERED.value,
                # the latest negative before the moment is the one nearest to it: any in the window means it is
                repeat_complaint=complained and moment - last_negative_at <= REPEAT_WINDOW,
            )
    for pair in pairs:
        result.setdefault(pair, CustomerHistory())
    return result


def _padded(chunk: Sequence[Pair]) -> list[tuple[Any, ...]]:
    """VALUES rows (k, author_id, moment), padded with inert rows to a power of two.

    Few distinct statement texts keep the drivers' per-connection statement caches small (see
    models.db.pow2_batches). The padding has no NULLs (a NULL is rendered into the text, so each
    amount of padding would be a new text): k -1 and author id 0, which no author has.
    """
    rows: list[tuple[Any, ...]] = [(k, author_id, moment) for k, (author_id, moment) in enumerate(chunk)]
    return rows + [(-1, 0, chunk[0][1])] * (pow2_ceil(len(rows)) - len(rows))


def _aggregate(chunk: Sequence[Pair]) -> Select[Any]:
    """One row per pair that has history: k (index in chunk), conversations, first_seen,
    open_complaints, last_negative_at, last_negative_state."""
    wanted = values(column("k", Integer), column("author_id", Integer), column("moment", UTCDateTime()),
                    name="wanted").data(_padded(chunk)).cte("wanted")
    own, linked = Author.__table__.alias("own_author"), Author.__table__.alias("linked_author")
    # the author itself, and every author of the same customer
    related = union(
        select(wanted.c.k, wanted.c.author_id.label("related_id"), wanted.c.moment),
        select(wanted.c.k, linked.c.id, wanted.c.moment)
        .join_from(wanted, own, own.c.id == wanted.c.author_id)
        .join(linked, linked.c.customer_id == own.c.customer_id),
    ).cte("related")
    negative = Mention.sentiment_label == SentimentLabel.NEGATIVE.value
    hits = (
        select(related.c.k, Mention.id.label("mention_id"), Mention.platform,
               func.coalesce(func.nullif(Mention.conversation_id, ""), Mention.external_id).label("conversation"),
               Mention.created_at, negative.label("negative"), QueueItem.state)
        .join_from(related, Mention, and_(Mention.author_id == related.c.related_id,
                                          Mention.created_at < related.c.moment))
        .outerjoin(QueueItem, QueueItem.mention_id == Mention.id)
        .where(Mention.is_own.is_(False))
    ).cte("hits")
    open_negative = case((and_(hits.c.negative, hits.c.state.in_(OPEN_QUEUE_STATES)), 1), else_=0)
    per_conversation = (
        select(hits.c.k, func.min(hits.c.created_at).label("first_at"), func.sum(open_negative).label("open"))
        .group_by(hits.c.k, hits.c.platform, hits.c.conversation)
    ).subquery("per_conversation")
    per_pair = (
        select(per_conversation.c.k, func.count().label("conversations"),
               func.min(per_conversation.c.first_at).label("first_seen"),
               func.sum(per_conversation.c.open).label("open_complaints"))
        .group_by(per_conversation.c.k)
    ).subquery("per_pair")
    order = func.row_number().over(partition_by=hits.c.k, order_by=(hits.c.created_at.desc(),
                                                                     hits.c.mention_id.desc()))
    ranked = (
        select(hits.c.k, hits.c.created_at, hits.c.state, order.label("place")).where(hits.c.negative)
    ).subquery("ranked")
    last_negative = select(ranked.c.k, ranked.c.created_at, ranked.c.state).where(ranked.c.place == 1).subquery(
        "last_negative")
    return (
        select(per_pair.c.k, per_pair.c.conversations, per_pair.c.first_seen, per_pair.c.open_complaints,
               last_negative.c.created_at.label("last_negative_at"),
               last_negative.c.state.label("last_negative_state"))
        .outerjoin(last_negative, last_negative.c.k == per_pair.c.k)
    )
