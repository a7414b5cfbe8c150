"""Fixture data for the digest tests: one Berlin day with known answers (see test_digest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pydantic import SecretStr
from sqlalchemy.orm import Session

from models.config import BrandConfig, Config, DatabaseConfig, QueueConfig, ScheduleConfig, WebConfig
from tests.responders.factories import SECRET_KEY, make_author, make_customer, make_mention, make_reply, make_user

DAY = date(2026, 11, 19)  # Berlin, UTC+1: [2026-11-18 23:00Z, 2026-11-19 23:00Z)
NOW = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
BASE = "https://ear.example.com"


def digest_config(db_url: str = "sqlite:///unused.db", **digest: object) -> Config:
    return Config(brands=[BrandConfig(name="Acme Mobile", timezone="Europe/Berlin")],
                  web=WebConfig(secret_key=SecretStr(SECRET_KEY), public_url=BASE + "/"),
                  queue=QueueConfig(sla_hours=4.0), database=DatabaseConfig(url=db_url),
                  schedule=ScheduleConfig(digest_time="08:00", timezone="Europe/Berlin"), **digest)  # type: ignore[arg-type]


@dataclass
class Seeded:
    ids: dict[str, int]


def at(hour: int, minute: int = 0, day: int = 19) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def seed_day(session: Session) -> Seeded:
    """10 inbound mentions in the day (7 negative), replies by alice and bob in openear, one answer written on X
    itself (m4, after 20 min), two complaints waiting."""
    alice, bob = make_user(session, "alice"), make_user(session, "bob")
    carol_customer = make_customer(session, "Carol Customer")
    carol = make_author(session, "carol", customer=carol_customer)
    ids: dict[str, int] = {}

    def mention(name: str, text: str, created: datetime, **kw: object) -> None:
        ids[name] = make_mention(session, text, created_at=created, **kw).id  # type: ignore[arg-type]

    mention("old", "my plan is fine", at(9, day=19) - timedelta(days=60), author=carol, sentiment="neutral",
            state="answered")
    mention("m1", "My internet is down again since morning", at(8), handle="u1")
    mention("m2", "Internet down in Berlin, no signal at all", at(9), handle="u2")
    mention("m3", "internet down and the router keeps rebooting", at(10), handle="u3")
    mention("m4", "I was charged twice on my bill", at(11), handle="u4", state="answered")  # answered on X itself
    mention("m5", "Charged twice again, refund please @AcmeMobile", at(12), author=carol)
    mention("m6", "router broken <script>alert(1)</script> & nobody cares", at(22, 30), handle="dave",
            state="claimed", assignee=alice, claimed_at=at(22, 40))  # 23:30 Berlin: still the 19th
    mention("m7", "worst shop ever", at(13), handle="u7", state="dismissed")
    mention("m8", "How do I change my plan?", at(14), handle="u8", sentiment="neutral")
    mention("m9", "Love the new 5G plan", at(15), handle="u9", sentiment="positive")
    mention("m10", "Acme page post", at(16), handle="fbuser", platform="facebook", sentiment=None)
    mention("own", "We are looking into it", at(16, 30), handle="acme", is_own=True)
    mention("own_m4", "@u4 Sorry, the second charge is refunded", at(11, 20), handle="acme", is_own=True)
    mention("next", "internet down at night", at(23, 30), handle="u11")  # 00:30 Berlin on the 20th
    mention("prev", "internet down yesterday", at(22, 30, day=18), handle="u12", state="answered")  # 23:30 the 18th
    session.flush()
    from models.orm import Mention

    answer = session.get_one(Mention, ids["own_m4"])
    answer.in_reply_to_id = session.get_one(Mention, ids["m4"]).external_id
    session.flush()

    def reply(name: str, user: object, minutes: float) -> None:
        make_reply(session, session.get_one(Mention, ids[name]), user, sent_after=timedelta(minutes=minutes))  # type: ignore[arg-type]

    reply("m1", alice, 30)
    reply("m2", alice, 60)
    reply("m3", bob, 360)  # late: the SLA is 4 h
    reply("m8", bob, 10)
    reply("prev", bob, 630)  # sent at 09:00Z on the 19th: counts for bob's day, not for the day's response times
    make_reply(session, session.get_one(Mention, ids["m1"]), bob, sent_after=timedelta(hours=2))  # not the first
    make_reply(session, session.get_one(Mention, ids["m5"]), alice, state="failed", error="rate limited")
    return Seeded(ids)


# --------------------------------------------------------------------------- a support thread set over three days
# Customers on X and Facebook, the brand's support accounts answering natively (from the platforms' own apps)
# and through openear (whose platform posts the poller ingests as own mentions too), late answers, answers
# after the day, none at all, thank-you messages, a hidden comment, an edited post, Berlin day edges.
# `expects` is the hand label "needs an answer" (False for hidden ones and closing messages); the tests
# compute every digest figure from this list in plain Python.


def t(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


@dataclass(frozen=True)
class Post:
    key: str
    at: datetime
    text: str
    author: str
    platform: str = "x"
    label: str | None = "negative"
    neg: float = 0.9
    own: bool = False
    reply_to: str | None = None  # key of the post answered
    revision: bool = False  # the post was edited: it has a revision id, and answers may target that
    to_revision: bool = False  # (own posts) answers the target's revision id
    hidden: bool = False
    state: str | None = "new"  # queue state (None: not queued)
    expects: bool = True


@dataclass(frozen=True)
class Sent:
    mention: str
    agent: str
    at: datetime
    post: str | None = None  # key of the own post the platform created (ingested by the poller)
    state: str = "sent"


THREADS: tuple[Post, ...] = (
    # history: earlier conversations of dana and emil
    Post("h_dana", t(15, 10, month=10), "question about my contract", "dana", label="neutral", neg=0.1,
         state="answered"),
    Post("h_emil", t(10, 9, month=10), "question about my bill", "emil", label="neutral", neg=0.1, state="answered"),
    # the 18th (Berlin): [17th 23:00Z, 18th 23:00Z)
    Post("x8", t(17, 23, 30), "No signal in Munich at all", "finn", state="answered"),  # 00:30 Berlin, the 18th
    Post("o8", t(18, 0, 0, 5), "@finn Sorry, a mast is down; fixed by noon", "acme", own=True, reply_to="x8"),
    Post("x1", t(18, 8), "My internet is down since this morning", "gina", state="answered"),
    Post("o1", t(18, 8, 12), "@gina We're on it, please restart the router", "acme", own=True, reply_to="x1"),
    Post("x2", t(18, 9), "I was charged twice on my bill", "hugo", state="answered"),
    Post("o2", t(18, 9, 29, 58), "@hugo The second charge is refunded", "acme", own=True, reply_to="x2"),
    Post("x3", t(18, 10), "Thanks, sorted now!", "hugo", label="positive", neg=0.02, reply_to="o2", expects=False),
    Post("o3", t(18, 10, 5), "@hugo Glad to help!", "acme", own=True, reply_to="x3"),
    Post("f1", t(18, 12), "App crashes when I log in", "julia", platform="facebook", state="dismissed"),
    Post("of1", t(18, 20), "Sorry Julia, an update is out", "Acme Mobile", platform="facebook", own=True,
         reply_to="f1"),  # dismissed in the queue, answered on Facebook 8 h later anyway
    Post("f2", t(18, 13), "buy followers cheap", "spam", platform="facebook", hidden=True, state=None, expects=False),
    Post("x5", t(18, 14), "Danke, hat geklappt!", "emil", neg=0.6, expects=False),  # read as mildly negative
    Post("x6", t(18, 15), "Thanks for nothing, still broken", "dana", neg=0.95),
    Post("x7", t(18, 16), "worst shop ever", "ivan", state="dismissed"),
    Post("x4", t(18, 22, 30), "How do I change my plan?", "kai", label="neutral", neg=0.1, state="answered"),
    # the 19th: [18th 23:00Z, 19th 23:00Z)
    Post("x9", t(18, 23, 10), "Roaming not working in Austria", "lena", state="answered"),  # 00:10 Berlin
    Post("o9", t(19, 5), "@lena Roaming is back", "acme", own=True, reply_to="x9"),
    Post("x10", t(19, 9), "Internet weg seit gestern", "mia_k", state="answered"),
    Post("o10", t(19, 9, 40), "@mia_k Wir prüfen das", "acme", own=True, reply_to="x10"),
    Post("x11", t(19, 10), "Love the new 5G plan", "nora", label="positive", neg=0.05),
    Post("x12", t(19, 11), "Refund please, order #12345", "otto", state="answered"),
    Post("o12n", t(19, 11, 3), "@otto Looking into it", "acme", own=True, reply_to="x12"),
    Post("o12", t(19, 11, 5, 2), "@otto Refund is on its way", "acme", own=True, reply_to="x12"),
    Post("ftop", t(19, 11, 30), "Question about my bill", "paula", platform="facebook", label="neutral", neg=0.2),
    Post("f3", t(19, 12), "Still no refund for my order", "quinn", platform="facebook", reply_to="ftop",
         state="answered"),
    # openear's reply to f3: Facebook files it under the top-level comment
    Post("of3", t(19, 12, 20, 1), "Quinn, the refund is on its way", "Acme Mobile", platform="facebook", own=True,
         reply_to="ftop"),
    Post("x13", t(19, 14), "Thanks @AcmeMobile, all good now", "gina", label="positive", neg=0.03, expects=False),
    Post("x14", t(19, 15), "My data plan is not activated", "rolf", revision=True, state="answered"),
    Post("o14", t(19, 15, 10), "@rolf Activated now", "acme", own=True, reply_to="x14", to_revision=True),
    Post("x15", t(19, 20), "Bill is wrong this month", "sara"),
    Post("o15", t(20, 9), "@sara Corrected, sorry", "acme", own=True, reply_to="x15"),  # after the 19th's digest
    Post("x17", t(19, 22, 45), "Can't log in to the app", "tom", state="answered"),  # 23:45 Berlin
    Post("o17", t(19, 23, 14, 50), "@tom Try again now", "acme", own=True, reply_to="x17"),
    # the 20th: [19th 23:00Z, 20th 23:00Z)
    Post("x16", t(20, 8), "Where is my SIM card?", "uwe", label="neutral", neg=0.3, state="answered"),
    Post("o16", t(20, 8, 20, 3), "@uwe It ships today", "acme", own=True, reply_to="x16"),
    Post("x18", t(20, 9), "Danke für die schnelle Hilfe!", "nora", label="positive", neg=0.02, expects=False),
    Post("x19", t(20, 10), "thanks, but it is still not working", "tom", neg=0.7),
)

SENT: tuple[Sent, ...] = (
    Sent("x8", "alice", t(18, 0), post="o8"),  # the platform post is stamped 5 s later
    Sent("x2", "alice", t(18, 9, 30), post="o2"),  # the platform post is stamped 2 s earlier
    Sent("x4", "bob", t(19, 7)),  # the next morning, at the 18th's digest time exactly; post not ingested yet
    Sent("x10", "alice", t(19, 9, 5), state="failed"),
    Sent("x12", "bob", t(19, 11, 5), post="o12"),  # a native answer came 2 minutes earlier
    Sent("f3", "carol", t(19, 12, 20), post="of3"),
    Sent("x17", "bob", t(19, 23, 15), post="o17"),
    Sent("x16", "bob", t(20, 8, 20), post="o16"),
)


def seed_threads(session: Session) -> dict[str, int]:
    """THREADS and SENT in the database; post key -> mention id."""
    from models.orm import Mention

    users = {name: make_user(session, name) for name in ("alice", "bob", "carol")}
    ids: dict[str, int] = {}
    rows: dict[str, Mention] = {}
    for p in THREADS:
        author = make_author(session, p.author, platform=p.platform, is_brand=p.own)
        row = make_mention(session, p.text, author=author, platform=p.platform, created_at=p.at, sentiment=p.label,
                           negative=p.neg, is_own=p.own, queued=p.state is not None and not p.own,
                           state=p.state or "new", language="de" if p.text.startswith(("Danke", "Internet weg"))
                           else "en")
        row.hidden = p.hidden
        row.score_negative = p.neg
        if p.revision:
            row.revision_id = f"{row.external_id}-edited"
        rows[p.key], ids[p.key] = row, row.id
    for p in THREADS:
        if p.reply_to:
            target = rows[p.reply_to]
            rows[p.key].in_reply_to_id = target.revision_id if p.to_revision else target.external_id
            rows[p.key].conversation_id = target.conversation_id or target.external_id
    session.flush()
    for s in SENT:
        reply = make_reply(session, rows[s.mention], users[s.agent], state=s.state,
                           sent_after=s.at - rows[s.mention].created_at)
        if s.post:
            reply.platform_reply_id = rows[s.post].external_id
    session.flush()
    return ids
