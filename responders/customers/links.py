"""Customer memory: one person across X and Facebook.

openear *proposes* links between authors on different platforms (similar names, a handle that
matches a name, a handle or profile URL quoted in a post) with a confidence and human-readable
evidence; a person confirms or rejects each one. Nothing is linked automatically unless the caller
passes `auto_link_confidence` and the proposal reaches it. Rejected pairs are never proposed again.
Every decision is audited. The overview of one customer lives in responders.customers.overview.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from models.orm import Author, Customer, LinkProposal, Note
from responders import audit
from responders.audit import LINK, LINK_AUTO, LINK_CONFIRM, LINK_REJECT, MERGE, UNLINK
from responders.customers import identity
from responders.errors import Invalid, NotFound
from responders.notes import tag_list

PROPOSED, CONFIRMED, REJECTED = "proposed", "confirmed", "rejected"
MIN_CONFIDENCE = 0.35


def propose_links(session: Session, now: datetime, *, since: datetime | None = None,
                  min_confidence: float = MIN_CONFIDENCE, auto_link_confidence: float | None = None,
                  limit: int = 10_000, brands: Sequence[str] | None = None) -> list[LinkProposal]:
    """Find new cross-platform pairs (blocked by name keys, never all pairs) and store them as proposals.

    `since` limits the search to pairs with an author first seen since then, plus the texts since
    then: the daemon's job passes the time of its previous run, so each run reads only what is new
    (responders.identity). Without `since` every block and every text is searched.
    `brands` (the configured ones) lets the texts since then be read by index.
    With `auto_link_confidence`, proposals reaching it are confirmed at once (audited as link_auto).
    """
    identity.refresh_keys(session)
    fresh = identity.fresh_authors(session, since) if since is not None else None
    blocks = list(identity.blocks(session, since))
    who = identity.people(session, {i for members in blocks for i in members})
    candidates: dict[tuple[int, int], list[str]] = {}
    for members in blocks:
        for pair in identity.pairs_in(members, who):
            if fresh is None or pair[0] in fresh or pair[1] in fresh:
                candidates.setdefault(pair, [])
    for (x, y), text in identity.text_clues(session, since, brands).items():
        candidates.setdefault((min(x, y), max(x, y)), []).append(text)
    existing = identity.existing_pairs(session, candidates)
    who |= identity.people(session, {i for pair in candidates for i in pair} - who.keys())
    made: list[LinkProposal] = []
    for (x, y), clues in sorted(candidates.items()):
        if (x, y) in existing or x not in who or y not in who:
            continue
        a, b = who[x], who[y]
        if a.customer_id is not None and a.customer_id == b.customer_id:
            continue
        confidence, evidence = identity.score_pair(a, b)
        if clues:
            weight = 0.75 if any("says it is them" in c or "links the profile" in c for c in clues) else 0.5
            confidence, evidence = identity.combine([(confidence, ""), (weight, "")])[0], [*evidence, *clues]
        if confidence < min_confidence:
            continue
        proposal = LinkProposal(author_a=x, author_b=y, confidence=confidence, evidence=evidence, state=PROPOSED,
                                created_at=now)
        session.add(proposal)
        made.append(proposal)
        if len(made) >= limit:
            break
    session.flush()
    if auto_link_confidence is not None:
        for proposal in made:
            if proposal.confidence >= auto_link_confidence:
                confirm(session, proposal.id, None, now, action=LINK_AUTO)
    return made


def pending_for(session: Session, author_id: int) -> list[LinkProposal]:
    """Open proposals involving one author, most confident first."""
    return list(session.scalars(select(LinkProposal).where(
        LinkProposal.state == PROPOSED, or_(LinkProposal.author_a == author_id, LinkProposal.author_b == author_id))
        .order_by(LinkProposal.confidence.desc())))


def _proposal(session: Session, proposal_id: int) -> LinkProposal:
    proposal = session.get(LinkProposal, proposal_id)
    if proposal is None:
        raise NotFound("there is no such link proposal")
    if proposal.state != PROPOSED:
        raise Invalid(f"this proposal was already {proposal.state}")
    return proposal


def confirm(session: Session, proposal_id: int, user_id: int | None, now: datetime, *,
            action: str = LINK_CONFIRM) -> Customer:
    """Accept a proposal: both authors belong to one customer afterwards (customers merged if needed)."""
    proposal = _proposal(session, proposal_id)
    proposal.state, proposal.decided_by, proposal.decided_at = CONFIRMED, user_id, now
    customer = _link_pair(session, proposal.author_a, proposal.author_b, user_id, now)
    audit.record(session, action, "customer", customer.id, user_id=user_id, at=now,
                 detail={"proposal": proposal.id, "authors": [proposal.author_a, proposal.author_b],
                         "confidence": proposal.confidence})
    return customer


def reject(session: Session, proposal_id: int, user_id: int | None, now: datetime) -> LinkProposal:
    """Refuse a proposal; the pair is never proposed again."""
    proposal = _proposal(session, proposal_id)
    proposal.state, proposal.decided_by, proposal.decided_at = REJECTED, user_id, now
    audit.record(session, LINK_REJECT, "link_proposal", proposal.id, user_id=user_id, at=now,
                 detail={"authors": [proposal.author_a, proposal.author_b]})
    return proposal


def _author(session: Session, author_id: int) -> Author:
    author = session.get(Author, author_id)
    if author is None:
        raise NotFound(f"there is no author #{author_id}")
    return author


def customer_of(session: Session, author_id: int, now: datetime, user_id: int | None = None) -> Customer:
    """The author's customer, created on the fly for an unlinked author."""
    author = _author(session, author_id)
    if author.customer_id is not None:
        return session.get_one(Customer, author.customer_id)
    customer = Customer(display_name=author.display_name or author.handle, first_seen_at=author.first_seen_at,
                        tags=[], created_at=now)
    session.add(customer)
    session.flush()
    author.customer_id = customer.id
    session.flush()
    audit.record(session, LINK, "customer", customer.id, user_id=user_id, at=now,
                 detail={"author": author.id, "created": True})
    return customer


def _link_pair(session: Session, a: int, b: int, user_id: int | None, now: datetime) -> Customer:
    first, second = _author(session, a), _author(session, b)
    if first.customer_id and second.customer_id and first.customer_id != second.customer_id:
        return merge_customers(session, first.customer_id, second.customer_id, user_id, now)
    customer = customer_of(session, first.id if first.customer_id or not second.customer_id else second.id, now,
                           user_id)
    first.customer_id = second.customer_id = customer.id
    session.flush()
    session.expire(customer, ["authors"])
    return customer


def link_authors(session: Session, customer_id: int, author_id: int, user_id: int | None, now: datetime) -> Customer:
    """Put an author under a customer by hand (the author's old customer is merged in if it had one)."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"there is no customer #{customer_id}")
    author = _author(session, author_id)
    if author.customer_id == customer.id:
        raise Invalid("this identity already belongs to the customer")
    if author.customer_id is not None:
        return merge_customers(session, customer.id, author.customer_id, user_id, now)
    author.customer_id = customer.id
    session.flush()
    session.expire(customer, ["authors"])
    audit.record(session, LINK, "customer", customer.id, user_id=user_id, at=now, detail={"author": author.id})
    return customer


def unlink_author(session: Session, author_id: int, user_id: int | None, now: datetime) -> int:
    """Take an identity out of its customer; returns the former customer id. Its confirmed proposals are rejected
    so that the pair is not proposed again."""
    author = _author(session, author_id)
    if author.customer_id is None:
        raise Invalid("this identity is not linked to a customer")
    former = author.customer_id
    author.customer_id = None
    session.execute(update(LinkProposal).where(
        LinkProposal.state == CONFIRMED, or_(LinkProposal.author_a == author_id, LinkProposal.author_b == author_id))
        .values(state=REJECTED, decided_by=user_id, decided_at=now))
    session.flush()
    audit.record(session, UNLINK, "customer", former, user_id=user_id, at=now, detail={"author": author_id})
    return former


def merge_customers(session: Session, keep_id: int, other_id: int, user_id: int | None, now: datetime) -> Customer:
    """Move every identity, note and tag of `other_id` to `keep_id` and delete the other customer."""
    if keep_id == other_id:
        raise Invalid("a customer cannot be merged with itself")
    keep, other = session.get(Customer, keep_id), session.get(Customer, other_id)
    if keep is None or other is None:
        raise NotFound("there is no such customer")
    session.execute(update(Author).where(Author.customer_id == other.id).values(customer_id=keep.id))
    session.execute(update(Note).where(Note.customer_id == other.id).values(customer_id=keep.id))
    keep.tags = sorted(set(tag_list(keep)) | set(tag_list(other)))  # type: ignore[assignment]
    keep.first_seen_at = min(keep.first_seen_at, other.first_seen_at)
    if other.notes:
        keep.notes = "\n".join(n for n in (keep.notes, other.notes) if n)
    session.flush()
    session.expire(keep, ["authors"])
    session.expire(other, ["authors"])
    session.delete(other)
    session.flush()
    audit.record(session, MERGE, "customer", keep.id, user_id=user_id, at=now, detail={"merged": other_id})
    return keep


@dataclass(frozen=True)
class PendingLink:
    proposal_id: int
    confidence: float
    evidence: list[str]
    other: Author


def pending_links(session: Session, author_id: int) -> list[PendingLink]:
    """The author's open proposals with the other identity (for the mention page's customer box)."""
    out = []
    for proposal in pending_for(session, author_id):
        other = session.get(Author, proposal.author_b if proposal.author_a == author_id else proposal.author_a)
        if other is not None:
            out.append(PendingLink(proposal.id, proposal.confidence, list(proposal.evidence or []), other))
    return out
