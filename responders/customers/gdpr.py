"""The customer's rights: export everything openear stores about a person, and erase it completely.

Erasure keeps only anonymous counts (`erased_mention_stats`, for the digests) and one audit event that
names the customer id and the counts, never an identifier. `delete_mentions` is shared with retention.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, delete, func, or_, select, text
from sqlalchemy.orm import Session

from models.orm import (
    AuditEvent,
    Author,
    Customer,
    Digest,
    ErasedMentionStats,
    LinkProposal,
    Mention,
    MentionTag,
    MentionVector,
    Note,
    QueueItem,
    Reply,
    SentimentCorrection,
)
from responders import audit
from responders.answers import answered_ids
from responders.audit import ERASE, EXPORT
from responders.errors import NotFound
from responders.notes import tag_list

REDACTED = "[erased]"
CHUNK = 500


def affected(result: Any) -> int:
    """Rows changed by a bulk UPDATE/DELETE."""
    return int(getattr(result, "rowcount", 0) or 0)


def _plain(value: Any) -> Any:
    """JSON-safe: datetimes as ISO strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _row(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {c.key: _plain(getattr(obj, c.key)) for c in obj.__table__.columns if c.key not in skip}


def _require(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"there is no customer #{customer_id}")
    return customer


def export_customer(session: Session, customer_id: int, *, actor: int | None = None,
                    now: datetime | None = None) -> dict[str, Any]:
    """Everything about the customer as JSON-serialisable data (audited when `now` is given)."""
    customer = _require(session, customer_id)
    authors = list(session.scalars(select(Author).where(Author.customer_id == customer_id)))
    author_ids = [a.id for a in authors]
    mentions = list(session.scalars(select(Mention).where(Mention.author_id.in_(author_ids))
                                    .order_by(Mention.created_at))) if author_ids else []
    mention_ids = [m.id for m in mentions]
    by_mention: dict[str, Any] = {"replies": Reply, "tags": MentionTag, "corrections": SentimentCorrection,
                                  "queue": QueueItem}
    related = {name: [_row(r) for r in session.scalars(select(model).where(model.mention_id.in_(mention_ids)))]
               for name, model in by_mention.items()} if mention_ids else {name: [] for name in by_mention}
    notes = session.scalars(select(Note).where(or_(Note.customer_id == customer_id, Note.mention_id.in_(mention_ids))))
    proposals: Any = session.scalars(select(LinkProposal).where(
        or_(LinkProposal.author_a.in_(author_ids), LinkProposal.author_b.in_(author_ids)))) if author_ids else []
    events = session.scalars(select(AuditEvent).where(_about(customer_id, author_ids, mention_ids, related))
                             .order_by(AuditEvent.at))
    data = {
        "customer": {**_row(customer), "tags": tag_list(customer)},
        "identities": [_row(a) for a in authors],
        "mentions": [_row(m) for m in mentions],
        "replies": related["replies"],
        "notes": [_row(n) for n in notes],
        "tags": related["tags"],
        "corrections": related["corrections"],
        "queue": related["queue"],
        "link_proposals": [_row(p) for p in proposals],
        "audit_events": [_row(e) for e in events],
    }
    if now is not None:
        audit.record(session, EXPORT, "customer", customer_id, user_id=actor, at=now,
                     detail={"mentions": len(mentions), "identities": len(authors)})
    return data


def _about(customer_id: int, author_ids: list[int], mention_ids: list[int], related: dict[str, list]) -> Any:
    """Audit events about the customer, their identities, mentions, queue items and replies."""
    def ids(values: list[Any]) -> list[str]:
        return [str(v) for v in values]
    return or_(
        (AuditEvent.object_type == "customer") & (AuditEvent.object_id == str(customer_id)),
        (AuditEvent.object_type == "author") & AuditEvent.object_id.in_(ids(author_ids)),
        (AuditEvent.object_type == "mention") & AuditEvent.object_id.in_(ids(mention_ids)),
        (AuditEvent.object_type == "queue_item") & AuditEvent.object_id.in_(ids([q["id"] for q in related["queue"]])),
        (AuditEvent.object_type == "reply") & AuditEvent.object_id.in_(ids([r["id"] for r in related["replies"]])),
    )


def delete_mentions(session: Session, mention_ids: list[int],
                    timezones: Mapping[str, str] | None = None) -> dict[str, int]:
    """Delete mentions with their replies, queue items, tags, notes and corrections, counting them first into
    `erased_mention_stats` (day, brand, platform, sentiment, count, answered). The day is the brand's local
    day (`timezones`, brand -> IANA name; UTC for a brand not in it), as the digest counts it."""
    zones = {brand: ZoneInfo(name) for brand, name in (timezones or {}).items()}
    counts: Counter[str] = Counter()
    for start in range(0, len(mention_ids), CHUNK):
        chunk = mention_ids[start:start + CHUNK]
        answered = answered_ids(session, chunk)  # a public answer, in openear or on the platform
        stats: Counter[tuple[date, str, str, str]] = Counter()
        answered_stats: Counter[tuple[date, str, str, str]] = Counter()
        for row in session.execute(select(Mention.id, Mention.created_at, Mention.brand, Mention.platform,
                                          Mention.sentiment_label, Mention.is_own).where(Mention.id.in_(chunk))):
            if row.is_own:
                continue
            created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
            key = (created.astimezone(zones.get(row.brand, UTC)).date(), row.brand, row.platform,
                   row.sentiment_label or "")
            stats[key] += 1
            answered_stats[key] += row.id in answered
        _add_stats(session, stats, answered_stats)
        for name, model in (("replies", Reply), ("notes", Note), ("tags", MentionTag),
                            ("corrections", SentimentCorrection), ("queue_items", QueueItem),
                            ("vectors", MentionVector)):
            counts[name] += affected(session.execute(delete(model).where(model.mention_id.in_(chunk))))
        counts["mentions"] += affected(session.execute(delete(Mention).where(Mention.id.in_(chunk))))
    return dict(counts)


def _add_stats(session: Session, stats: Counter[tuple[date, str, str, str]],
               answered: Counter[tuple[date, str, str, str]]) -> None:
    for (day, brand, platform, sentiment), count in stats.items():
        row = session.scalar(select(ErasedMentionStats).where(
            ErasedMentionStats.day == day, ErasedMentionStats.brand == brand, ErasedMentionStats.platform == platform,
            ErasedMentionStats.sentiment == sentiment))
        if row is None:
            row = ErasedMentionStats(day=day, brand=brand, platform=platform, sentiment=sentiment, count=0,
                                     answered_count=0)
            session.add(row)
        row.count += count
        row.answered_count += answered[(day, brand, platform, sentiment)]
    session.flush()


def _needles(authors: list[Author], customer: Customer, texts: list[str]) -> list[str]:
    values = {customer.display_name or ""}
    for a in authors:
        values |= {a.handle or "", a.display_name or "", a.external_id, a.profile_url or ""}
    values |= {t[:200] for t in texts}
    return sorted((v for v in values if len(v.strip()) >= 4), key=len, reverse=True)


def _redact_value(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        lowered = value.lower()
        for needle in needles:
            if needle.lower() in lowered:
                value = _replace_ci(value, needle)
                lowered = value.lower()
        return value
    if value is None or isinstance(value, bool | int | float):
        return value
    return json.loads(_redact_value(json.dumps(value, ensure_ascii=False), needles))


def _replace_ci(value: str, needle: str) -> str:
    out, lowered, low_needle, start = [], value.lower(), needle.lower(), 0
    while (found := lowered.find(low_needle, start)) >= 0:
        out += [value[start:found], REDACTED]
        start = found + len(needle)
    return "".join([*out, value[start:]])


def _scrub(session: Session, needles: list[str]) -> int:
    """Redact the customer's identifiers and texts wherever else they were quoted (others' posts, the brand's
    replies, digests, audit details)."""
    if not needles:
        return 0
    touched = 0
    targets: list[tuple[Any, list[str]]] = [(Mention, ["text", "raw"]), (Reply, ["text", "error"]),
                                             (Note, ["text"]), (Digest, ["html", "text", "data"]),
                                             (AuditEvent, ["detail"]), (Customer, ["display_name", "notes"])]
    for model, columns in targets:
        for start in range(0, len(needles), 50):
            part = needles[start:start + 50]
            where = or_(*(func.lower(cast(getattr(model, c), String)).contains(n.lower(), autoescape=True)
                          for c in columns for n in part))
            for obj in session.scalars(select(model).where(where)):
                for column in columns:
                    current = getattr(obj, column)
                    redacted = _redact_value(current, needles)
                    if redacted != current:
                        setattr(obj, column, redacted)
                        touched += 1
    session.flush()
    return touched


def erase_customer(session: Session, customer_id: int, actor: int | None, now: datetime,
                   timezones: Mapping[str, str] | None = None) -> dict[str, int]:
    """Delete the customer and everything about them; keep anonymous counts (per local day of the brand,
    `timezones`: `Config.timezones()`) and one id-only audit event."""
    customer = _require(session, customer_id)
    authors = list(session.scalars(select(Author).where(Author.customer_id == customer_id)))
    author_ids = [a.id for a in authors]
    mentions = session.execute(select(Mention.id, Mention.text, Mention.external_id, Mention.platform)
                               .where(Mention.author_id.in_(author_ids))).all() if author_ids else []
    needles = _needles(authors, customer, [m.text for m in mentions])
    own_handles = [f"@{a.handle}".lower() for a in authors if a.handle]
    # the brand's own replies to this person quote them: they go too
    replies_to = select(Mention.id).where(Mention.is_own.is_(True), or_(
        Mention.in_reply_to_id.in_([m.external_id for m in mentions]),
        *(func.lower(Mention.text).contains(h, autoescape=True) for h in own_handles)))
    own_ids = list(session.scalars(replies_to)) if mentions or own_handles else []
    mention_ids = [m.id for m in mentions] + own_ids
    queue_ids = [str(q) for q in session.scalars(select(QueueItem.id).where(QueueItem.mention_id.in_(mention_ids)))]
    reply_ids = [str(r) for r in session.scalars(select(Reply.id).where(Reply.mention_id.in_(mention_ids)))]
    summary = delete_mentions(session, mention_ids, timezones)
    summary["notes"] = summary.get("notes", 0) + (
        affected(session.execute(delete(Note).where(Note.customer_id == customer_id))))
    summary["link_proposals"] = affected(session.execute(delete(LinkProposal).where(or_(
        LinkProposal.author_a.in_(author_ids), LinkProposal.author_b.in_(author_ids)))))
    # events about the person keep who acted and when, but lose their details
    events = session.scalars(select(AuditEvent).where(or_(
        (AuditEvent.object_type == "customer") & (AuditEvent.object_id == str(customer_id)),
        (AuditEvent.object_type == "author") & AuditEvent.object_id.in_([str(a) for a in author_ids]),
        (AuditEvent.object_type == "mention") & AuditEvent.object_id.in_([str(m) for m in mention_ids]),
        (AuditEvent.object_type == "queue_item") & AuditEvent.object_id.in_(queue_ids),
        (AuditEvent.object_type == "reply") & AuditEvent.object_id.in_(reply_ids))))
    for event in events:
        event.detail = {"erased": True}
    summary["identities"] = affected(session.execute(delete(Author).where(Author.id.in_(author_ids))))
    session.execute(delete(Customer).where(Customer.id == customer_id))
    session.flush()
    summary["redacted"] = _scrub(session, needles)
    summary["own_replies"] = len(own_ids)
    audit.record(session, ERASE, "customer", customer_id, user_id=actor, at=now, detail=dict(summary))
    session.flush()
    if session.get_bind().dialect.name == "sqlite":
        _purge_fts(session)
    return summary


def _purge_fts(session: Session) -> None:
    """SQLite's full-text index keeps deleted terms until it is optimised."""
    for table in ("mentions_fts", "authors_fts"):
        exists = session.execute(text("SELECT 1 FROM sqlite_master WHERE name = :n"), {"n": table}).first()
        if exists:
            session.execute(text(f"INSERT INTO {table}({table}) VALUES ('optimize')"))
