"""The SQLAlchemy ORM: every table openear stores. Schema changes go through Alembic migrations."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from models.domain import QueueState, ReplyState, Role, check_queue_transition, check_reply_transition


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use timezone-aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), date: Date()}


class PlatformAccount(Base):
    """One of the brand's own accounts (an X handle, a Facebook page)."""

    __tablename__ = "platform_accounts"
    __table_args__ = (UniqueConstraint("platform", "handle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brand: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(20))
    handle: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(200))


class Customer(Base):
    """One person across platforms; links one or more authors."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    authors: Mapped[list[Author]] = relationship(back_populates="customer")


class Author(Base):
    """A platform identity: who wrote a mention."""

    __tablename__ = "authors"
    __table_args__ = (UniqueConstraint("platform", "external_id"),
                      Index("ix_authors_first_seen", "first_seen_at"))  # migration 0008: new authors

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(64))
    handle: Mapped[str | None] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200))
    followers: Mapped[int | None] = mapped_column(Integer)
    profile_url: Mapped[str | None] = mapped_column(String(500))
    is_brand: Mapped[bool] = mapped_column(Boolean, default=False)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # when handle or display name last changed (the poller refreshes follower counts silently)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    keys_at: Mapped[datetime | None]  # the updated_at that author_keys were derived from

    customer: Mapped[Customer | None] = relationship(back_populates="authors")


class AuthorKey(Base):
    """A matching key derived from an author's handle and name (responders/identity.py), so the
    link-proposal job finds the authors that share a key with a new one without loading them all."""

    __tablename__ = "author_keys"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)


class Mention(Base):
    """A post or comment heard on a platform (the brand's own included, as history)."""

    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        Index("ix_mentions_conversation", "platform", "conversation_id"),
        Index("ix_mentions_brand_created", "brand", "created_at"),
        Index("ix_mentions_author_created", "author_id", "created_at"),  # migration 0007: history lookups
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(128))
    brand: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    in_reply_to_id: Mapped[str | None] = mapped_column(String(128))
    permalink: Mapped[str | None] = mapped_column(String(500))
    is_own: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # migration 0010
    revision_id: Mapped[str | None] = mapped_column(String(128))  # the newest version's id (X edits)
    edited_at: Mapped[datetime | None]  # when that version was written
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    sentiment_label: Mapped[str | None] = mapped_column(String(16))
    score_negative: Mapped[float | None] = mapped_column(Float)
    score_neutral: Mapped[float | None] = mapped_column(Float)
    score_positive: Mapped[float | None] = mapped_column(Float)
    complaint_score: Mapped[float | None] = mapped_column(Float)
    # the classifier's posteriors before the brand's prior shift (models/sentiment/adaptive.py; 0012)
    raw_negative: Mapped[float | None] = mapped_column(Float)
    raw_neutral: Mapped[float | None] = mapped_column(Float)
    raw_positive: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[float | None] = mapped_column(Float)
    priority_reasons: Mapped[list[str] | None] = mapped_column(JSON)

    author: Mapped[Author] = relationship()
    queue_item: Mapped[QueueItem | None] = relationship(back_populates="mention", uselist=False)


class User(Base):
    """A member of the social-media team."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20), default=Role.AGENT.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:  # never show the hash
        return f"User(id={self.id!r}, username={self.username!r}, role={self.role!r})"


class QueueItem(Base):
    """A customer conversation waiting for the team: new -> claimed -> answered | dismissed.

    One item per `thread_key` (platform, thread, customer's author id: responders.queue.intake) is
    open at a time; `mention_id` is the conversation's newest customer message (what a reply answers),
    `waiting_since` its first unanswered one and `messages` how many customer messages it holds.
    """

    __tablename__ = "queue_items"
    __table_args__ = (Index("ix_queue_items_state_priority", "state", "priority"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("mentions.id", ondelete="CASCADE"), unique=True
    )
    brand: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default=QueueState.NEW.value)
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    claimed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    dismiss_reason: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    thread_key: Mapped[str | None] = mapped_column(String(300))  # migration 0011: one conversation
    waiting_since: Mapped[datetime | None]  # the first customer message not answered yet
    messages: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")

    mention: Mapped[Mention] = relationship(back_populates="queue_item")
    assignee: Mapped[User | None] = relationship()

    __mapper_args__ = {"version_id_col": version}

    def transition(self, target: QueueState, *, now: datetime | None = None) -> None:
        """Move to `target` or raise IllegalTransition. Concurrent moves fail on the version check."""
        check_queue_transition(QueueState(self.state), target)
        now = now or utcnow()
        self.state = target.value
        if target is QueueState.CLAIMED:
            self.claimed_at = now
        elif target is QueueState.NEW:
            self.assignee_id, self.claimed_at, self.closed_at, self.dismiss_reason = None, None, None, None
        else:
            self.closed_at = now


class Reply(Base):
    """A public answer written by the team: draft -> sending -> sent | failed."""

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("mentions.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    platform: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default=ReplyState.DRAFT.value)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    platform_reply_id: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retryable: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    sent_at: Mapped[datetime | None] = mapped_column(index=True)  # migration 0014: suggestions read by it
    # the saved reply the draft started from (a suggestion or the picker; migration 0014)
    saved_reply_id: Mapped[int | None] = mapped_column(ForeignKey("saved_replies.id", ondelete="SET NULL"))

    def transition(self, target: ReplyState) -> None:
        check_reply_transition(ReplyState(self.state), target)
        self.state = target.value
        if target is ReplyState.SENT:
            self.sent_at = utcnow()


class PollCursor(Base):
    """Where each source's polling stands; advanced in the same transaction as the mentions."""

    __tablename__ = "poll_cursors"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(300), unique=True)
    cursor: Mapped[str | None] = mapped_column(Text)  # opaque to the poller; may be JSON state
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PlatformNotification(Base):
    """What a platform pushed by webhook and a poll is still to read (Instagram @mentions on other
    accounts' media): `models/inbox.py` writes and reads them; the reading source's cursor says which it read."""

    __tablename__ = "platform_notifications"
    __table_args__ = (UniqueConstraint("platform", "account_id", "media_id", "comment_id",
                                       name="uq_platform_notifications_ref"),
                      Index("ix_platform_notifications_received", "received_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[str] = mapped_column(String(64))  # the brand's account the notification is for
    media_id: Mapped[str] = mapped_column(String(64))
    comment_id: Mapped[str] = mapped_column(String(64), default="")  # "" for a caption mention
    received_at: Mapped[datetime]


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, the table its hash, so a session can be ended."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(30))
    client: Mapped[str | None] = mapped_column(String(100))

    def __repr__(self) -> str:  # never show the token hash
        return f"WebSession(id={self.id!r}, user_id={self.user_id!r}, ended_at={self.ended_at!r})"


class LoginThrottle(Base):
    """Failed sign-ins per account or client address (`account:<name>`, `address:<ip>`) and their lock."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]


class AuditEvent(Base):
    """Who did what, when: claims, replies, dismissals, corrections, exports, erasures."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(50))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Digest(Base):
    """A daily digest as built, rendered and (once) sent."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("brand", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brand: Mapped[str] = mapped_column(String(200))
    day: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    send_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class Note(Base):
    """An internal note by the team, on one mention or on the customer as a whole."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("mentions.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MentionTag(Base):
    """A label the team puts on a mention (billing, outage, vip...)."""

    __tablename__ = "mention_tags"
    __table_args__ = (UniqueConstraint("mention_id", "tag"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("mentions.id", ondelete="CASCADE"), index=True
    )
    tag: Mapped[str] = mapped_column(String(60))


class MentionVector(Base):
    """A mention's sentence embedding, int8 (models/vectors.py), from the encoder named by `model`."""

    __tablename__ = "mention_vectors"

    mention_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class SavedReply(Base):
    """A reply template with placeholders such as {name}."""

    __tablename__ = "saved_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SentimentCorrection(Base):
    """A human's correction of the classifier's label, kept for retraining."""

    __tablename__ = "sentiment_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("mentions.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    original_label: Mapped[str | None] = mapped_column(String(16))
    corrected_label: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --------------------------------------------------------------------------- review queue indexes (migration 0004)
# Declared here so the metadata matches the migrated schema. The text-search structures of 0004
# (PostgreSQL pg_trgm GIN indexes `ix_trgm_*`, SQLite FTS5 tables `*_fts`) are dialect-specific and
# live only in the migration.
_OPEN_STATES = QueueItem.state.in_(["new", "claimed"])
# one open item per conversation (migration 0011)
Index("ux_queue_items_open_thread", QueueItem.thread_key, unique=True, sqlite_where=_OPEN_STATES,
      postgresql_where=_OPEN_STATES)
Index("ix_queue_items_thread", QueueItem.thread_key, QueueItem.id)
Index("ix_mentions_reply_to", Mention.platform, Mention.in_reply_to_id)  # a mention's answers (0011)
Index("ix_replies_platform_reply", Reply.platform, Reply.platform_reply_id)
Index("ix_queue_items_open_priority", QueueItem.priority.desc(), QueueItem.id, QueueItem.mention_id, QueueItem.state,
      QueueItem.brand, QueueItem.assignee_id, sqlite_where=_OPEN_STATES, postgresql_where=_OPEN_STATES)
Index("ix_mentions_queue_filters", Mention.id, Mention.platform, Mention.sentiment_label, Mention.language,
      Mention.created_at, Mention.author_id)
Index("ix_queue_items_state_closed", QueueItem.state, QueueItem.closed_at)
Index("ix_replies_state", Reply.state)
Index("ix_audit_events_object", AuditEvent.object_type, AuditEvent.object_id)


# --------------------------------------------------------------------------- customer memory and GDPR (migration 0006)


class LinkProposal(Base):
    """A proposed link between two authors on different platforms (author_a < author_b), decided by a person."""

    __tablename__ = "link_proposals"
    __table_args__ = (UniqueConstraint("author_a", "author_b"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    author_a: Mapped[int] = mapped_column(ForeignKey("authors.id", ondelete="CASCADE"), index=True)
    author_b: Mapped[int] = mapped_column(ForeignKey("authors.id", ondelete="CASCADE"), index=True)
    confidence: Mapped[float] = mapped_column(Float)
    evidence: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(20), default="proposed", index=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ErasedMentionStats(Base):
    """Anonymous counts of mentions removed by erasure or retention, so digests keep their totals."""

    __tablename__ = "erased_mention_stats"
    __table_args__ = (UniqueConstraint("day", "brand", "platform", "sentiment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date]
    brand: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(20))
    sentiment: Mapped[str] = mapped_column(String(16), default="")
    count: Mapped[int] = mapped_column(Integer, default=0)
    answered_count: Mapped[int] = mapped_column(Integer, default=0)
