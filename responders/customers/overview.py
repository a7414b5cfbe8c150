"""What the team sees about one customer: since when, identities, every earlier conversation on every
platform with its outcome, open complaints, notes and tags; plus search and `x:@handle` references."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from listener.platforms import SPECS
from models.domain import QueueState, SentimentLabel
from models.orm import Author, Customer, LinkProposal, Mention, Note, QueueItem, User
from responders.customers.links import PROPOSED, customer_of
from responders.errors import Invalid, NotFound
from responders.notes import tag_list
from responders.queue.detail import MentionOutcome, outcomes_of


@dataclass(frozen=True)
class ConversationView:
    platform: str
    conversation: str
    first_mention_id: int
    started_at: datetime
    mentions: int
    text: str
    sentiment: str | None
    outcome: MentionOutcome


@dataclass(frozen=True)
class NoteRow:
    id: int
    text: str
    username: str | None
    created_at: datetime


@dataclass(frozen=True)
class CustomerOverview:
    customer: Customer
    since: datetime
    authors: list[Author]
    conversations: list[ConversationView]
    open_complaints: int
    notes: list[NoteRow]
    tags: list[str]
    proposals: list[LinkProposal]

    @property
    def platforms(self) -> dict[str, list[Author]]:
        out: dict[str, list[Author]] = {}
        for author in self.authors:
            out.setdefault(author.platform, []).append(author)
        return out


def customer_overview(session: Session, customer_id: int | None = None, *, author_id: int | None = None,
                      limit: int = 200) -> CustomerOverview | None:
    """The customer (by id, or by one of its authors); None if unknown or the author is unlinked."""
    if customer_id is None and author_id is not None:
        author = session.get(Author, author_id)
        customer_id = author.customer_id if author else None
    customer = session.get(Customer, customer_id) if customer_id is not None else None
    if customer is None:
        return None
    authors = list(session.scalars(select(Author).where(Author.customer_id == customer.id)
                                   .order_by(Author.platform, Author.id)))
    ids = [a.id for a in authors]
    rows = session.execute(
        select(Mention.id, Mention.platform, Mention.conversation_id, Mention.external_id, Mention.created_at,
               func.substr(Mention.text, 1, 300).label("text"), Mention.sentiment_label, QueueItem.state,
               QueueItem.dismiss_reason, User.username.label("assignee"))
        .outerjoin(QueueItem, QueueItem.mention_id == Mention.id).outerjoin(User, User.id == QueueItem.assignee_id)
        .where(Mention.author_id.in_(ids), Mention.is_own.is_(False))
        .order_by(Mention.created_at.desc(), Mention.id.desc()).limit(limit)
    ).all() if ids else []
    outcomes = outcomes_of(session, [r.id for r in rows], {r.id: r for r in rows if r.state is not None},
                         {r.id: r.created_at for r in rows})
    grouped: dict[tuple[str, str], list] = {}
    for r in rows:
        grouped.setdefault((r.platform, r.conversation_id or r.external_id), []).append(r)
    conversations = []
    for (platform, key), members in grouped.items():
        first = members[-1]  # oldest (rows are newest first)
        answered = next((outcomes[m.id] for m in members if outcomes[m.id].state == "answered"), None)
        conversations.append(ConversationView(platform, key, first.id, first.created_at, len(members), first.text,
                                              first.sentiment_label, answered or outcomes[members[0].id]))
    conversations.sort(key=lambda c: c.started_at, reverse=True)
    open_complaints = sum(1 for r in rows if r.sentiment_label == SentimentLabel.NEGATIVE.value
                          and r.state in (QueueState.NEW.value, QueueState.CLAIMED.value))
    notes = [NoteRow(n.id, n.text, username, n.created_at) for n, username in session.execute(
        select(Note, User.username).outerjoin(User, User.id == Note.user_id).where(Note.customer_id == customer.id)
        .order_by(Note.created_at.desc(), Note.id.desc()))]
    proposals = list(session.scalars(select(LinkProposal).where(
        LinkProposal.state == PROPOSED, or_(LinkProposal.author_a.in_(ids), LinkProposal.author_b.in_(ids)))
        .order_by(LinkProposal.confidence.desc()))) if ids else []
    since = min([customer.first_seen_at, *(a.first_seen_at for a in authors), *(r.created_at for r in rows)])
    return CustomerOverview(customer, since, authors, conversations, open_complaints, notes, tag_list(customer),
                            proposals)


@dataclass(frozen=True)
class SearchHit:
    customer_id: int | None
    author_id: int
    platform: str
    handle: str | None
    display_name: str | None


def search(session: Session, query: str, limit: int = 50) -> list[SearchHit]:
    """Identities whose handle or name contains `query` (case-insensitive), linked or not."""
    needle = f"%{query.strip().lstrip('@').lower()}%"
    rows = session.execute(
        select(Author.id, Author.customer_id, Author.platform, Author.handle, Author.display_name)
        .outerjoin(Customer, Customer.id == Author.customer_id)
        .where(Author.is_brand.is_(False), or_(func.lower(Author.handle).like(needle),
                                                 func.lower(Author.display_name).like(needle),
                                                 func.lower(Customer.display_name).like(needle)))
        .order_by(Author.customer_id.is_(None), Author.display_name, Author.id).limit(limit)).all()
    return [SearchHit(r.customer_id, r.id, r.platform, r.handle, r.display_name) for r in rows]


def resolve(session: Session, ref: str, now: datetime, *, create: bool = True) -> int:
    """A customer id from `123`, or `<platform>:@handle` / `<platform>:<author id>` as the platform names
    its authors (listener.platforms.SPECS: has_handles), creating the customer of an unlinked author
    when `create`."""
    ref = ref.strip()
    if ref.isdigit():
        if session.get(Customer, int(ref)) is None:
            raise NotFound(f"there is no customer #{ref}")
        return int(ref)
    platform, _, value = ref.partition(":")
    spec, value = SPECS.get(platform.lower()), value.strip()
    if not value or spec is None:
        hints = [s.reference_hint() for s in SPECS.values()]
        raise Invalid(f"{ref!r}: give a customer id, {', '.join(hints[:-1])} or {hints[-1]}")
    if spec.has_handles:
        query = select(Author).where(Author.platform == spec.name,
                                     func.lower(Author.handle) == value.lstrip("@").lower())
    else:
        query = select(Author).where(Author.platform == spec.name, Author.external_id == value)
    author = session.scalars(query.limit(1)).first()
    if author is None:
        raise NotFound(f"nobody known as {ref!r}")
    if author.customer_id is not None:
        return author.customer_id
    if not create:
        raise Invalid(f"{ref!r} is not linked to a customer")
    return customer_of(session, author.id, now).id
