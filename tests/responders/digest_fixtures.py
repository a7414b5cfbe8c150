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
    """10 inbound mentions in the day (7 negative), replies by alice and bob, two complaints waiting."""
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
    mention("m4", "I was charged twice on my bill", at(11), handle="u4", state="answered")
    mention("m5", "Charged twice again, refund please @AcmeMobile", at(12), author=carol)
    mention("m6", "router broken <script>alert(1)</script> & nobody cares", at(22, 30), handle="dave",
            state="claimed", assignee=alice, claimed_at=at(22, 40))  # 23:30 Berlin: still the 19th
    mention("m7", "worst shop ever", at(13), handle="u7", state="dismissed")
    mention("m8", "How do I change my plan?", at(14), handle="u8", sentiment="neutral")
    mention("m9", "Love the new 5G plan", at(15), handle="u9", sentiment="positive")
    mention("m10", "Acme page post", at(16), handle="fbuser", platform="facebook", sentiment=None)
    mention("own", "We are looking into it", at(16, 30), handle="acme", is_own=True)
    mention("next", "internet down at night", at(23, 30), handle="u11")  # 00:30 Berlin on the 20th
    mention("prev", "internet down yesterday", at(22, 30, day=18), handle="u12", state="answered")  # 23:30 the 18th
    session.flush()
    from models.orm import Mention

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
