"""A realistic multi-day support thread set replayed through the X emulator, polled as the daemon
polls (search with the shipped query style, the account's mentions, its own timeline), then the
daily digests. Every figure is compared with values computed here from the raw thread list.

The brand answers mostly from X itself (its answers start with the customer's handle and mention
nobody else, so only the own-timeline source can see them), once through openear's dispatcher, and
some complaints stay unanswered. Follow-ups in one thread must be one queue item.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from listener.platforms.x import XBrand, XPlatform
from models.config import BrandConfig, Config, DatabaseConfig, QueueConfig, ScheduleConfig, WebConfig
from models.orm import Mention, QueueItem, Reply, User
from responders.digest.build import build_digest
from responders.dispatch import Dispatcher
from sandbox.feed import SUPPORT_HANDLE
from sandbox.x_api import XApiEmulator
from tests.support import FakeClock, make_poller

QUERY = "(@acme_help OR acme) -is:retweet -from:acme_help"  # the shipped style: excludes the brand's posts
DAY1 = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Post:
    key: str
    at: datetime
    author: str
    text: str
    answers: str | None = None  # the key of the customer post a brand post replies to
    follows: str | None = None  # the key of the customer's earlier post this one replies to


def _m(day: int, hour: int, minute: int = 0) -> datetime:
    return DAY1 + timedelta(days=day, hours=hour, minutes=minute)


CUSTOMERS = ["jana_b", "tom_k", "lea_m", "ben_r", "ida_s", "max_w"]
# three days (UTC = the brand's timezone here); minutes chosen so medians and p90s differ per day
THREADS = [
    Post("j1", _m(0, 8, 0), "jana_b", "@acme_help my router drops every evening"),
    Post("a_j1", _m(0, 8, 7), SUPPORT_HANDLE, "@jana_b sorry! Which model is it?", answers="j1"),
    Post("j2", _m(0, 8, 20), "jana_b", "@acme_help the FritzBox 7590, still dropping", follows="a_j1"),
    Post("a_j2", _m(0, 9, 5), SUPPORT_HANDLE, "@jana_b thanks, we reset the line now", answers="j2"),
    Post("t1", _m(0, 10, 0), "tom_k", "@acme_help invoice charged twice this month"),
    Post("a_t1", _m(0, 16, 30), SUPPORT_HANDLE, "@tom_k we refunded the second charge", answers="t1"),
    Post("l1", _m(0, 13, 0), "lea_m", "@acme_help no signal in Hamburg since noon"),
    Post("b1", _m(1, 7, 30), "ben_r", "@acme_help app login fails with error 500"),
    Post("a_b1", _m(1, 7, 42), SUPPORT_HANDLE, "@ben_r a fix is rolling out within the hour", answers="b1"),
    Post("i1", _m(1, 11, 0), "ida_s", "@acme_help wrong tariff on my contract"),
    Post("i2", _m(1, 11, 4), "ida_s", "@acme_help hello? anyone there?", follows="i1"),
    Post("i3", _m(1, 11, 9), "ida_s", "@acme_help third time I ask", follows="i2"),
    Post("a_i3", _m(1, 12, 1), SUPPORT_HANDLE, "@ida_s we changed the tariff back", answers="i3"),
    Post("m1", _m(1, 21, 0), "max_w", "@acme_help roaming not working in Austria"),
    Post("a_m1", _m(2, 6, 15), SUPPORT_HANDLE, "@max_w roaming is active again", answers="m1"),
    Post("t2", _m(2, 9, 0), "tom_k", "@acme_help refund still not on my account"),
    Post("l2", _m(2, 10, 0), "lea_m", "@acme_help still no signal, day three"),
]
OPENEAR_ANSWER = ("l2", _m(2, 10, 25), "Lea, a technician is on the way to the mast")
NOW = _m(3, 7, 0)  # the digests are built the next morning


def _expected(day: int, answers: dict[str, datetime]) -> dict[str, Any]:
    """The day's figures from the raw threads: customer posts of the day, answered when some brand
    post replies to them (or openear answered them) by NOW; first response = earliest answer - post."""
    posts = [p for p in THREADS if p.author != SUPPORT_HANDLE and p.at.date() == (DAY1 + timedelta(days=day)).date()]
    waits = [(answers[p.key] - p.at).total_seconds() for p in posts if p.key in answers and answers[p.key] <= NOW]
    ordered = sorted(waits)
    return {"volume": len(posts), "answered": len(waits),
            "response_rate": len(waits) / len(posts) if posts else None,
            "median": statistics.median(waits) if waits else None,
            "p90": ordered[math.ceil(0.9 * len(ordered)) - 1] if ordered else None,
            "late": sum(1 for w in waits if w > 4 * 3600)}


def _config() -> Config:
    return Config(brands=[BrandConfig(name="Acme", timezone="UTC")],
                  web=WebConfig(secret_key="replay-secret-key-0123456789"),  # type: ignore[arg-type]
                  queue=QueueConfig(sla_hours=4.0), database=DatabaseConfig(url="sqlite:///unused.db"),
                  schedule=ScheduleConfig(timezone="UTC"))


def test_native_and_openear_answers_give_every_digest_figure(sessions: sessionmaker[Session]) -> None:
    clock = FakeClock(DAY1)
    ids: dict[str, str] = {}
    with XApiEmulator(seed=5, clock=clock.timestamp) as x:
        for handle in CUSTOMERS:
            x.add_user(handle, handle.replace("_", " ").title(), followers=300)
        credentials: dict[str, Any] = x.credentials.as_dict()
        adapter = XPlatform([XBrand("Acme", [QUERY], [SUPPORT_HANDLE])], **credentials,
                            base_url=x.url, clock=clock, timeout=2)
        poller = make_poller(sessions, _LexiconStub(), clock=clock)

        def poll_all() -> None:
            for source in adapter.sources():
                poller.poll_once(adapter, source)

        answer_key, answer_at, answer_text = OPENEAR_ANSWER
        for post in sorted(THREADS, key=lambda p: p.at):
            clock.now_value = post.at
            parent = ids.get(post.answers or post.follows or "")
            ids[post.key] = x.add_tweet(post.author, post.text, in_reply_to=parent)
            clock.advance(minutes=1)
            poll_all()  # the daemon polls every minute
        # an agent answers Lea's second complaint in openear; the dispatcher posts it to X
        clock.now_value = answer_at
        with sessions.begin() as session:
            agent = User(username="alice", password_hash="x", role="agent")
            mention = session.scalar(select(Mention).where(Mention.external_id == ids[answer_key]))
            assert mention is not None
            session.add(agent)
            session.flush()
            session.add(Reply(mention_id=mention.id, platform="x", text=f"@lea_m {answer_text}",
                              idempotency_key="replay-1", user_id=agent.id))
        [sent] = Dispatcher(sessions, {"x": adapter}, clock=clock).dispatch_due()
        assert sent.state == "sent"
        clock.now_value = NOW
        poll_all()
        poll_all()

    answers = {p.answers: p.at for p in THREADS if p.answers}
    answers[answer_key] = answer_at
    with sessions() as session:
        own = session.scalars(select(Mention.external_id).where(Mention.is_own.is_(True))).all()
        assert len(own) == len([p for p in THREADS if p.author == SUPPORT_HANDLE]) + 1  # every answer, once
        items = session.execute(select(QueueItem.state, QueueItem.messages)).all()
        # one item per customer conversation: jana's thread (2), tom (2 threads), lea (2), ben, ida's 3, max
        assert sorted(m for _, m in items) == [1, 1, 1, 1, 1, 1, 2, 3]
        assert sorted(s for s, _ in items).count("new") == 2  # lea's first and tom's second: unanswered
        for day in range(3):
            digest = build_digest(session, _config(), "Acme", date(2026, 11, 16 + day), now=NOW)
            expected = _expected(day, answers)
            got = {"volume": digest.volume, "answered": digest.answered, "response_rate": digest.response_rate,
                   "median": digest.median_response_s, "p90": digest.p90_response_s, "late": digest.answered_late}
            assert got == expected, (day, got, expected)
            assert digest.to_answer == digest.volume  # no hidden or closing messages in this set
        day3 = build_digest(session, _config(), "Acme", date(2026, 11, 18), now=NOW)
        assert (day3.answered_in_openear, day3.answered_on_platform) == (1, 0)  # t2 has no answer
        assert [a.username for a in day3.agents] == ["alice"]


class _LexiconStub:
    def classify(self, texts: list[str]) -> list[Any]:
        from models.sentiment import LexiconClassifier

        return LexiconClassifier().classify(texts)
