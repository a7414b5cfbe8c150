"""Retention: raw platform payloads and old mentions are not kept forever (config `retention`).

The daemon runs `apply_retention` once a day; deleted mentions leave only anonymous counts behind
(`erased_mention_stats`, like an erasure).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, null, select, update
from sqlalchemy.orm import Session

from models.config import RetentionConfig
from models.orm import Author, LinkProposal, Mention
from responders import audit
from responders.customers.gdpr import affected, delete_mentions

BATCH = 5000


def apply_retention(session: Session, now: datetime, retention: RetentionConfig,
                    timezones: Mapping[str, str] | None = None) -> dict[str, int]:
    """Drop raw payloads older than raw_payload_days, mentions older than mention_days (with their queue items,
    replies, tags, notes and corrections; counted per brand-local day, `timezones`) and authors left without
    mentions or a customer."""
    raw_before = now - timedelta(days=retention.raw_payload_days)
    mention_before = now - timedelta(days=retention.mention_days)
    stale_raw = update(Mention).where(Mention.created_at < raw_before, Mention.raw.is_not(None)).values(raw=null())
    summary = {"raw_payloads": affected(session.execute(stale_raw.execution_options(synchronize_session=False)))}
    while ids := list(session.scalars(select(Mention.id).where(Mention.created_at < mention_before)
                                      .order_by(Mention.id).limit(BATCH))):
        for name, count in delete_mentions(session, ids, timezones).items():
            summary[name] = summary.get(name, 0) + count
    orphans = list(session.scalars(select(Author.id).where(
        Author.customer_id.is_(None), Author.is_brand.is_(False),
        ~exists().where(Mention.author_id == Author.id))))
    if orphans:
        session.execute(delete(LinkProposal).where(
            LinkProposal.author_a.in_(orphans) | LinkProposal.author_b.in_(orphans)))
        summary["authors"] = affected(session.execute(delete(Author).where(Author.id.in_(orphans))))
    audit.record(session, audit.RETENTION, "retention", None, user_id=None, at=now,
                 detail={**summary, "raw_payload_days": retention.raw_payload_days,
                         "mention_days": retention.mention_days})
    session.flush()
    return summary
