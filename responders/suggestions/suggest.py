"""Suggested replies for one mention: the team's own past answers to similar mentions, and saved replies.

For the mention an agent opens, the brand's partition of answered mentions (index.py) gives the
`CANDIDATES` nearest by sentence vector. Every hit is re-read from the store (what was erased is
gone) and must be the same brand, another conversation and an inbound customer mention. Hits are
grouped by the saved reply their answer started from (`replies.saved_reply_id`); a group's score is
its best similarity, plus `SAME_LANGUAGE_BONUS` when that past mention is in the mention's language
(same brand and language first), minus `UNHAPPY_PENALTY` times the share of its answers after which
the customer came back unhappy (a negative mention by the same author or customer within
`CAME_BACK_DAYS`). Saved replies that no past answer used yet enter the same list scored by the
similarity of their own text to the mention, less `TEMPLATE_DISCOUNT` (a template is not a mention).
The best `LIMIT` are shown, each with a draft: the saved reply filled in, or the past answer adapted
(drafts.py). Nothing is sent from here: a draft only fills the composer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from models.domain import ReplyState, SentimentLabel
from models.orm import Author, Customer, Mention, Reply, SavedReply, User
from models.vectors import similarity
from responders.queue.saved_replies import customer_name, render_template
from responders.suggestions.drafts import adapt_answer, order_number
from responders.suggestions.index import AnswerIndex

LIMIT = 3
CANDIDATES = 30
SAME_LANGUAGE_BONUS = 0.05
UNHAPPY_PENALTY = 0.1
TEMPLATE_DISCOUNT = 0.1
CAME_BACK_DAYS = 7
ON_PLATFORM = "on the platform"


@dataclass(frozen=True)
class PastAnswer:
    """One answered mention and the answer it got."""

    mention_id: int
    mention_text: str
    language: str | None
    answer_text: str
    answered_at: datetime | None
    answered_by: str  # the agent, or ON_PLATFORM for an answer written in the platform's own app
    came_back_unhappy: bool
    similarity: float


@dataclass(frozen=True)
class Suggestion:
    """A card in the mention page's "Suggested replies": a saved reply or a past answer, and its draft."""

    score: float
    draft: str
    saved_reply_id: int | None
    saved_reply_name: str | None
    example: PastAnswer | None  # the most similar past mention answered this way (None: no history yet)
    uses: int  # similar past mentions answered this way
    unhappy: int  # of those, how many customers came back unhappy

    @property
    def key(self) -> str:
        """Names the card in a "use as draft" link."""
        if self.saved_reply_id is not None:
            return f"s{self.saved_reply_id}"
        return f"m{self.example.mention_id}" if self.example else "none"


def suggest(session: Session, index: AnswerIndex, mention: Mention, agent: User, *, limit: int = LIMIT,
            now: datetime | None = None) -> list[Suggestion]:
    """The best `limit` suggestions for `mention` (see the module docstring)."""
    query = index.query_vector(session, mention)
    hits = index.partition(session, mention.brand).search(query, CANDIDATES + 1)
    past = _past_answers(session, mention, dict(hits), now)
    author = mention.author
    customer = session.get(Customer, author.customer_id) if author.customer_id else None
    order = order_number(mention.text)
    saved = {s.id: s for s in session.scalars(select(SavedReply))}

    groups: dict[str, list[tuple[PastAnswer, int | None]]] = {}
    for answer, saved_id in past:
        groups.setdefault(f"s{saved_id}" if saved_id in saved else f"m{answer.mention_id}", []).append(
            (answer, saved_id if saved_id in saved else None))
    cards: list[Suggestion] = []
    for members in groups.values():
        members.sort(key=lambda m: -_fit(m[0], mention.language))
        best, saved_id = members[0]
        unhappy = sum(1 for m, _ in members if m.came_back_unhappy)
        score = _fit(best, mention.language) - UNHAPPY_PENALTY * unhappy / len(members)
        name = saved[saved_id].name if saved_id is not None else None
        cards.append(Suggestion(score, "", saved_id, name, best, len(members), unhappy))
    used = {c.saved_reply_id for c in cards}
    unused = [s for s in saved.values() if s.id not in used and (not s.language or not mention.language
                                                                 or s.language == mention.language)]
    if unused:
        for template, sim in zip(unused, similarity(query, index.text_vectors([s.text for s in unused])), strict=True):
            cards.append(Suggestion(float(sim) - TEMPLATE_DISCOUNT, "", template.id, template.name, None, 0, 0))
    cards.sort(key=lambda c: (-c.score, c.key))

    def draft(card: Suggestion) -> str:  # only for the cards shown
        if card.saved_reply_id is not None:
            return render_template(saved[card.saved_reply_id].text, author=author, customer=customer, agent=agent,
                                   brand=mention.brand, order=order)
        assert card.example is not None
        return _adapted(session, card.example, mention, author, customer)

    return [replace(card, draft=draft(card)) for card in cards[:limit]]


def _fit(answer: PastAnswer, language: str | None) -> float:
    return answer.similarity + (SAME_LANGUAGE_BONUS if language and answer.language == language else 0.0)


def _adapted(session: Session, past: PastAnswer, mention: Mention, author: Author, customer: Customer | None) -> str:
    old = session.get(Mention, past.mention_id)
    old_author = old.author if old is not None else None
    old_customer = session.get(Customer, old_author.customer_id) if old_author and old_author.customer_id else None
    return adapt_answer(past.answer_text, old_text=past.mention_text,
                        old_name=customer_name(old_author, old_customer) if old_author else None,
                        old_handle=old_author.handle if old_author else None,
                        new_name=customer_name(author, customer), new_handle=author.handle, new_text=mention.text)


def _past_answers(session: Session, mention: Mention, sims: dict[int, float],
                  now: datetime | None) -> list[tuple[PastAnswer, int | None]]:
    """The hits re-read from the store, each with its first answer and the saved reply it used."""
    ids = [i for i in sims if i != mention.id]
    if not ids:
        return []
    rows = {r.id: r for r in session.execute(
        select(Mention.id, Mention.text, Mention.language, Mention.author_id, Mention.platform, Mention.external_id,
               Mention.conversation_id, Author.customer_id)
        .join(Author, Author.id == Mention.author_id)
        .where(Mention.id.in_(ids), Mention.brand == mention.brand, Mention.is_own.is_(False))
    ).all()}
    same_thread = {i for i, r in rows.items() if mention.conversation_id and r.platform == mention.platform
                   and r.conversation_id == mention.conversation_id}
    ids = [i for i in ids if i in rows and i not in same_thread]
    answers: dict[int, tuple[str, datetime | None, str, int | None]] = {}
    for r in session.execute(
        select(Reply.mention_id, Reply.text, Reply.sent_at, User.username, Reply.saved_reply_id)
        .outerjoin(User, User.id == Reply.user_id)
        .where(Reply.mention_id.in_(ids), Reply.state == ReplyState.SENT.value).order_by(Reply.sent_at, Reply.id)
    ).all():
        answers.setdefault(r.mention_id, (r.text, r.sent_at, r.username or "(deleted user)", r.saved_reply_id))
    unanswered = [i for i in ids if i not in answers and rows[i].conversation_id]
    if unanswered:  # answers written on the platform: the brand's own posts in the same conversation
        target = {(rows[i].platform, rows[i].external_id): i for i in unanswered}
        for o in session.execute(
            select(Mention.platform, Mention.in_reply_to_id, Mention.text, Mention.created_at)
            .where(Mention.is_own.is_(True), tuple_(Mention.platform, Mention.conversation_id).in_(
                sorted({(rows[i].platform, rows[i].conversation_id) for i in unanswered})))
            .order_by(Mention.created_at, Mention.id)
        ).all():
            found = target.get((o.platform, o.in_reply_to_id or ""))
            if found is not None:
                answers.setdefault(found, (o.text, o.created_at, ON_PLATFORM, None))
    ids = [i for i in ids if i in answers]
    unhappy = _came_back_unhappy(session, [(rows[i].author_id, rows[i].customer_id, answers[i][1]) for i in ids],
                                 mention.brand, now)
    return [(PastAnswer(i, rows[i].text, rows[i].language, answers[i][0], answers[i][1], answers[i][2],
                        flag, sims[i]), answers[i][3]) for i, flag in zip(ids, unhappy, strict=True)]


def _came_back_unhappy(session: Session, answered: Sequence[tuple[int, int | None, datetime | None]], brand: str,
                       now: datetime | None) -> list[bool]:
    """Per (author, customer, answered at): did that customer write a negative mention within
    CAME_BACK_DAYS after the answer? (Through any of the customer's identities.)"""
    known = [a for a in answered if a[2] is not None]
    if not known:
        return [False] * len(answered)
    customer_of: dict[int, int | None] = {a: c for a, c, _ in known}
    customers = {c for c in customer_of.values() if c is not None}
    if customers:
        customer_of.update(session.execute(select(Author.id, Author.customer_id).where(
            Author.customer_id.in_(customers))).all())
    since = min(t for _, _, t in known if t is not None)
    later: dict[int, list[datetime]] = {}
    for author_id, written in session.execute(
        select(Mention.author_id, Mention.created_at).where(
            Mention.author_id.in_(list(customer_of)), Mention.created_at > since, Mention.brand == brand,
            Mention.is_own.is_(False), Mention.sentiment_label == SentimentLabel.NEGATIVE.value)
    ):
        customer = customer_of.get(author_id)
        later.setdefault(author_id, []).append(written)
        if customer is not None:
            later.setdefault(-customer, []).append(written)  # negative keys: a customer's identities together
    window = timedelta(days=CAME_BACK_DAYS)
    out = []
    for author_id, customer_id, at in answered:
        times = later.get(-customer_id, []) if customer_id is not None else later.get(author_id, [])
        out.append(at is not None and any(at < t <= at + window and (now is None or t <= now) for t in times))
    return out
