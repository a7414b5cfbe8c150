"""Customer history (models/history.py) on SQLite and PostgreSQL: every field, edge cases, and a
randomized comparison against the straightforward Python algorithm it replaced."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from models import history
from models.domain import OPEN_QUEUE_STATES, QueueState, SentimentLabel
from models.history import REPEAT_WINDOW, histories, histories_at
from models.orm import Author, Customer, Mention, QueueItem
from models.ranking import CustomerHistory

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
MICRO = timedelta(microseconds=1)


class World:
    """Writes authors, customers, mentions and queue items straight into the database."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.ids = itertools.count(1)
        self.platform_of: dict[int, str] = {}

    def customer(self) -> int:
        customer = Customer(display_name=f"customer {next(self.ids)}", first_seen_at=T0, created_at=T0)
        self.session.add(customer)
        self.session.flush()
        return customer.id

    def author(self, platform: str = "x", customer: int | None = None) -> int:
        author = Author(platform=platform, external_id=f"{platform}-{next(self.ids)}", handle="someone",
                        customer_id=customer)
        self.session.add(author)
        self.session.flush()
        self.platform_of[author.id] = platform
        return author.id

    def mention(self, author: int, at: datetime, *, sentiment: str | None = "negative", state: str | None = "new",
                own: bool = False, conversation: str | None = None, external_id: str | None = None) -> int:
        """One mention; `state` None: no queue item."""
        [mention_id] = self.mentions([{"author": author, "at": at, "sentiment": sentiment, "state": state,
                                       "own": own, "conversation": conversation, "external_id": external_id}])
        return mention_id

    def mentions(self, specs: list[dict[str, Any]]) -> list[int]:
        rows = [{"platform": self.platform_of[s["author"]], "external_id": s["external_id"] or f"m{next(self.ids)}",
                 "brand": "Acme", "source": "test", "text": "my order never arrived", "created_at": s["at"],
                 "fetched_at": T0, "author_id": s["author"], "conversation_id": s["conversation"],
                 "is_own": s["own"], "sentiment_label": s["sentiment"]} for s in specs]
        ids = [self.session.execute(insert(Mention).returning(Mention.id), row).scalar_one() for row in rows]
        items = [{"mention_id": i, "brand": "Acme", "state": s["state"]} for i, s in zip(ids, specs, strict=True)
                 if s["state"] is not None]
        if items:
            self.session.execute(insert(QueueItem), items)
        return ids


def reference(session: Session, wanted: Iterable[tuple[int, datetime]]) -> dict[tuple[int, datetime], CustomerHistory]:
    """The Python algorithm histories_at had before it moved into SQL (loads every earlier mention).

    One refinement: ties in created_at are ordered by mention id, so "the latest negative" is defined
    (the SQL breaks ties the same way; before, the order of equal times was arbitrary).
    """
    wanted = set(wanted)
    ids = {author_id for author_id, _ in wanted}
    if not ids:
        return {}
    before = max(moment for _, moment in wanted)
    authors = session.execute(select(Author.id, Author.customer_id).where(Author.id.in_(ids))).all()
    customer_of = {a.id: a.customer_id for a in authors}
    customers = {c for c in customer_of.values() if c is not None}
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
        select(Mention.id, Mention.author_id, Mention.platform, Mention.conversation_id, Mention.external_id,
               Mention.created_at, Mention.sentiment_label, QueueItem.state)
        .outerjoin(QueueItem, QueueItem.mention_id == Mention.id)
        .where(Mention.author_id.in_(all_ids), Mention.created_at < before, Mention.is_own.is_(False))
    ).all()
    by_author: dict[int, list[Any]] = defaultdict(list)
    for mention_row in mention_rows:
        by_author[mention_row.author_id].append(mention_row)
    result: dict[tuple[int, datetime], CustomerHistory] = {}
    for author_id, moment in wanted:
        mentions = sorted((r for a in related[author_id] for r in by_author[a] if r.created_at < moment),
                          key=lambda r: (r.created_at, r.id))
        if not mentions:
            result[(author_id, moment)] = CustomerHistory()
            continue
        conversations = {(m.platform, m.conversation_id or m.external_id) for m in mentions}
        complaints = [m for m in mentions if m.sentiment_label == SentimentLabel.NEGATIVE.value]
        result[(author_id, moment)] = CustomerHistory(
            earlier_conversations=len(conversations),
            first_seen=mentions[0].created_at,
            open_complaints=sum(1 for m in complaints if m.state in OPEN_QUEUE_STATES),
            last_complaint_unanswered=bool(complaints) and complaints[-1].state != QueueState.ANSWERED.value,
            repeat_complaint=any(moment - m.created_at <= REPEAT_WINDOW for m in complaints),
        )
    return result


def test_linked_authors_on_two_platforms_share_one_history(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        w = World(s)
        customer = w.customer()
        on_x, on_fb = w.author("x", customer), w.author("facebook", customer)
        stranger = w.author("x")
        w.mention(on_x, T0 - timedelta(days=100), sentiment="positive", state="answered", conversation="c1")
        w.mention(on_x, T0 - timedelta(days=90), sentiment="negative", state="answered", conversation="c1")
        w.mention(on_fb, T0 - timedelta(days=10), sentiment="negative", state="new", conversation="c1")
        w.mention(stranger, T0 - timedelta(days=400), conversation="c1")
        found = histories_at(s, [(on_x, T0), (on_fb, T0), (stranger, T0)])
    # c1 on X and c1 on Facebook are two conversations; the stranger's mention is not theirs
    expected = CustomerHistory(earlier_conversations=2, first_seen=T0 - timedelta(days=100), open_complaints=1,
                               last_complaint_unanswered=True, repeat_complaint=True)
    assert found[(on_x, T0)] == found[(on_fb, T0)] == expected
    assert found[(stranger, T0)] == CustomerHistory(earlier_conversations=1, first_seen=T0 - timedelta(days=400),
                                                    open_complaints=1, last_complaint_unanswered=True)


def test_own_posts_and_mentions_at_or_after_the_moment_do_not_count(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        w = World(s)
        author = w.author()
        w.mention(author, T0 - timedelta(days=5), sentiment="positive", state=None)
        w.mention(author, T0 - timedelta(days=1), own=True, state=None)  # the brand's own post in the thread
        w.mention(author, T0, state="new")  # at the moment: not earlier
        w.mention(author, T0 + MICRO, state="new")
        got = histories(s, [author], before=T0)[author]
    assert got == CustomerHistory(earlier_conversations=1, first_seen=T0 - timedelta(days=5))


def test_several_moments_for_one_author_in_one_call(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        w = World(s)
        author = w.author()
        first = T0 - timedelta(days=60)
        w.mention(author, first, state="answered")
        second = T0 - timedelta(days=2)
        w.mention(author, second, state="claimed")
        moments = [first, first + MICRO, second, T0]
        found = histories_at(s, [(author, m) for m in moments])
    assert found[(author, first)] == CustomerHistory()
    assert found[(author, first + MICRO)] == CustomerHistory(
        earlier_conversations=1, first_seen=first, repeat_complaint=True)  # answered, 1 µs ago
    assert found[(author, second)] == CustomerHistory(earlier_conversations=1, first_seen=first)  # 58 days ago
    assert found[(author, T0)] == CustomerHistory(earlier_conversations=2, first_seen=first, open_complaints=1,
                                                  last_complaint_unanswered=True, repeat_complaint=True)


def test_authors_without_history_get_the_empty_history(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        w = World(s)
        quiet, only_own = w.author(), w.author()
        w.mention(only_own, T0 - timedelta(days=1), own=True, state=None)
        found = histories_at(s, [(quiet, T0), (only_own, T0), (999_999, T0)])
        assert histories_at(s, []) == {} and histories(s, [], T0) == {}
    assert found == {(quiet, T0): CustomerHistory(), (only_own, T0): CustomerHistory(),
                     (999_999, T0): CustomerHistory()}


@pytest.mark.parametrize(("age", "repeat"), [(REPEAT_WINDOW - MICRO, True), (REPEAT_WINDOW, True),
                                             (REPEAT_WINDOW + MICRO, False), (timedelta(days=365), False)])
def test_repeat_complaint_window_is_30_days_inclusive(sessions: sessionmaker[Session], age: timedelta,
                                                      repeat: bool) -> None:
    with sessions.begin() as s:
        w = World(s)
        author = w.author()
        w.mention(author, T0 - age, state="answered")
        w.mention(author, T0 - timedelta(days=3), sentiment="neutral")  # not a complaint: no repeat
        got = histories(s, [author], T0)[author]
    assert got.repeat_complaint is repeat
    assert got.last_complaint_unanswered is False and got.earlier_conversations == 2
    assert got.open_complaints == 0  # the neutral mention's open item is no complaint


def test_a_negative_without_queue_item_is_unanswered_but_not_open(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        w = World(s)
        author = w.author()
        w.mention(author, T0 - timedelta(days=50), state="claimed")
        w.mention(author, T0 - timedelta(days=40), state=None)
        got = histories(s, [author], T0)[author]
    assert got == CustomerHistory(earlier_conversations=2, first_seen=T0 - timedelta(days=50), open_complaints=1,
                                  last_complaint_unanswered=True, repeat_complaint=False)


@pytest.mark.parametrize(("state", "unanswered"), [("answered", False), ("dismissed", True), ("new", True)])
def test_only_the_latest_complaint_decides_unanswered(sessions: sessionmaker[Session], state: str,
                                                      unanswered: bool) -> None:
    with sessions.begin() as s:
        w = World(s)
        author = w.author()
        w.mention(author, T0 - timedelta(days=9), state="new")
        w.mention(author, T0 - timedelta(days=8), state=state)
        w.mention(author, T0 - timedelta(days=1), sentiment="positive", state="new")
        got = histories(s, [author], T0)[author]
    assert got.last_complaint_unanswered is unanswered
    assert got.open_complaints == (2 if state == "new" else 1)


def test_conversations_fall_back_to_the_mentions_own_id(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        w = World(s)
        author = w.author()
        for n, conversation in enumerate(["c1", "c1", None, "", None]):
            w.mention(author, T0 - timedelta(hours=n + 1), conversation=conversation)
        w.mention(author, T0 - timedelta(hours=9), conversation=None, external_id="c1")  # = c1 by its own id
        got = histories(s, [author], T0)[author]
    assert got.earlier_conversations == 4


def test_more_pairs_than_one_chunk(sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    with sessions.begin() as s:
        w = World(s)
        customer = w.customer()
        authors = [w.author("x", customer if n % 3 == 0 else None) for n in range(30)]
        w.mentions([{"author": a, "at": T0 - timedelta(hours=n), "sentiment": "negative", "state": "new",
                     "own": False, "conversation": None, "external_id": None}
                    for n, a in enumerate(authors)])
        wanted = [(a, T0 - timedelta(minutes=m)) for a in authors for m in range(0, 2 * history.CHUNK // 30 + 30)]
        assert len(wanted) > history.CHUNK
        found = histories_at(s, wanted)
        expected = reference(s, wanted)
        monkeypatch.setattr(history, "CHUNK", 7)  # many chunks, padding of every size
        assert histories_at(s, wanted[:200]) == {p: expected[p] for p in wanted[:200]}
    assert found == expected
    assert any(h.earlier_conversations > 1 for h in found.values())  # the customer's authors share


def _random_world(w: World, rng: random.Random) -> tuple[list[int], list[datetime]]:
    """Authors (some linked, on two platforms) and mentions on a coarse time grid, so ties, equal
    moments and window boundaries all happen."""
    customers = [w.customer() for _ in range(3)]
    authors = [w.author(rng.choice(["x", "facebook"]), rng.choice([*customers, None, None]))
               for _ in range(12)]
    times = [T0 - timedelta(days=rng.randrange(0, 70), hours=rng.choice([0, 12])) for _ in range(40)]
    specs = [{"author": rng.choice(authors), "at": rng.choice(times),
              "sentiment": rng.choice(["negative", "negative", "positive", "neutral", None]),
              "state": rng.choice([*OPEN_QUEUE_STATES, "answered", "dismissed", None]),
              "own": rng.random() < 0.15, "conversation": rng.choice(["c1", "c2", "c3", "", None, None]),
              "external_id": None} for _ in range(250)]
    w.mentions(specs)
    moments = sorted({*times, *(t + REPEAT_WINDOW for t in times), *(t + MICRO for t in times), T0})
    return [*authors, 999_999], moments


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_the_python_reference_on_random_data(sessions: sessionmaker[Session], seed: int) -> None:
    rng = random.Random(seed)
    with sessions.begin() as s:
        authors, moments = _random_world(World(s), rng)
        wanted = [(rng.choice(authors), rng.choice(moments)) for _ in range(1_200)]
        found = histories_at(s, wanted)
        expected = reference(s, wanted)
        by_author = histories(s, authors, T0)
        expected_by_author = {a: h for (a, _), h in reference(s, [(a, T0) for a in authors]).items()}
    assert found == expected
    assert by_author == expected_by_author
    # the data exercises every field both ways
    values = list(found.values())
    for field in ("repeat_complaint", "last_complaint_unanswered"):
        assert {getattr(h, field) for h in values} == {True, False}
    assert {h.first_seen is None for h in values} == {True, False}
    assert max(h.open_complaints for h in values) > 1 and max(h.earlier_conversations for h in values) > 3
