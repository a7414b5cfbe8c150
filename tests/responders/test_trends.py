"""Trends (responders/trends.py) on a hand-made week of mentions, on SQLite and PostgreSQL.

Every expected figure below is worked out by hand from `seed` (the comments say how), not by the code
under test. SLA 4 h; the trends are taken at NOW = Fri 2026-11-20 09:00 UTC; days are UTC days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from models.orm import Mention
from responders.answers import is_closing
from responders.queue.items import thread_key
from responders.trends import Series, Trends, trends
from tests.responders.factories import item_of, make_author, make_mention, make_reply, make_user

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SLA_HOURS = 4.0
FIRST, LAST = date(2026, 11, 12), date(2026, 11, 18)  # Thu .. Wed
START, END = datetime(2026, 11, 12, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def seed(session: Session) -> dict[str, int]:
    """The customer mentions (all of brand Acme Mobile), with what happened to them:

    a0   Tue 10 09:00 x        negative  never answered                     (before the period)
    a00  Wed 11 08:00 x        negative  alice, 50 h later (Fri 13 10:00)   (before the period)
    a1   Thu 12 08:00 x        negative  alice after 30 min; her reply came back as an own post a minute later
                                         (one answer), bob replied again later (not the first)
    a2   Thu 12 10:00 x        neutral   bob after 6 h (late)
    a3   Thu 12 11:00 facebook positive  never answered (alice's reply failed)
    a4   Fri 13 09:00 x        negative  answered on X itself after 20 min (an own post, no agent)
    a8b  Fri 13 19:00 facebook negative  never answered; an earlier message of a8's conversation (no queue item
                                         of its own): dismissed with it on Sat 14 12:30
    a5   Fri 13 20:00 x        negative  hidden on the platform: expects no answer
    a6   Fri 13 21:00 x        unscored  "thanks, sorted now": a closing message, expects no answer
    a7   Sat 14 10:00 x        negative  alice after 2 h
    a8   Sat 14 12:00 facebook negative  dismissed 30 min later, never answered
    a11  Sat 14 15:00 x        positive  answered in openear after 10 min by a user since deleted
    a9   Mon 16 08:00 x        negative  bob after 20 h (Tue 17 04:00, late)
    a10  Wed 18 22:00 x        neutral   alice's reply is sent Fri 20 10:00, after NOW: not answered yet
    """
    alice, bob = make_user(session, "alice"), make_user(session, "bob")
    ids: dict[str, int] = {}

    def mention(name: str, text: str, created: datetime, sentiment: str | None, platform: str = "x",
                **kw: Any) -> Mention:
        m = make_mention(session, text, created_at=created, sentiment=sentiment, platform=platform,
                         handle=kw.pop("handle", f"u_{name}"), **kw)
        ids[name] = m.id
        return m

    def own(text: str, created: datetime, answers: Mention) -> Mention:
        m = make_mention(session, text, created_at=created, platform=answers.platform, handle="acme", is_own=True)
        m.in_reply_to_id = answers.external_id
        return m

    a0 = mention("a0", "no internet for days", at(10, 9), "negative")
    a00 = mention("a00", "my bill is wrong", at(11, 8), "negative")
    a1 = mention("a1", "My internet is down", at(12, 8), "negative")
    a2 = mention("a2", "How do I change my plan", at(12, 10), "neutral")
    a3 = mention("a3", "Love the new plan", at(12, 11), "positive", "facebook")
    a4 = mention("a4", "I was charged twice on my bill", at(13, 9), "negative")
    customer8 = make_author(session, "u_a8", platform="facebook")
    a8b = mention("a8b", "hello? anyone", at(13, 19), "negative", "facebook", author=customer8,
                  conversation_id="conv8", queued=False)
    a5 = mention("a5", "router broken again", at(13, 20), "negative")
    a6 = mention("a6", "thanks, sorted now", at(13, 21), None)
    a7 = mention("a7", "still no signal in Berlin", at(14, 10), "negative")
    a8 = mention("a8", "worst shop ever", at(14, 12), "negative", "facebook", author=customer8,
                 conversation_id="conv8", state="dismissed")
    a11 = mention("a11", "great product", at(14, 15), "positive")
    a9 = mention("a9", "refund please", at(16, 8), "negative")
    a10 = mention("a10", "where is my order", at(18, 22), "neutral")
    a5.hidden = True
    item_of(session, a8.id).thread_key = thread_key("facebook", "conv8", a8.external_id, customer8.id)
    session.flush()
    assert item_of(session, a8.id).closed_at == at(14, 12, 30)

    make_reply(session, a00, alice, sent_after=timedelta(hours=50))
    reply1 = make_reply(session, a1, alice, sent_after=timedelta(minutes=30))
    reply1.platform_reply_id = own("@u_a1 on it", at(12, 8, 31), a1).external_id
    make_reply(session, a1, bob, sent_after=timedelta(hours=3))
    make_reply(session, a2, bob, sent_after=timedelta(hours=6))
    make_reply(session, a3, alice, state="failed", error="rate limited")
    own("@u_a4 refunded", at(13, 9, 20), a4)
    make_reply(session, a7, alice, sent_after=timedelta(hours=2))
    make_reply(session, a11, None, sent_after=timedelta(minutes=10))
    make_reply(session, a9, bob, sent_after=timedelta(hours=20))
    make_reply(session, a10, alice, sent_after=timedelta(hours=36))
    session.flush()
    # the definitions the expectations rely on (responders/answers.py): only a6 is a closing message
    for m in (a0, a00, a1, a2, a3, a4, a8b, a5, a7, a8, a11, a9, a10):
        assert not is_closing(m.text, m.sentiment_label, m.score_negative), m.text
    assert is_closing(a6.text, a6.sentiment_label, a6.score_negative)
    return ids


Row = tuple[int, int, int, int, int, int, int, float | None, float | None, float | None, int, int]


def rows(series: Series) -> list[Row]:
    """(day of month, negative, neutral, positive, unscored, to answer, answered, rate, median s, p90 s, late,
    backlog) per bucket."""
    return [(b.start.day, b.negative, b.neutral, b.positive, b.unscored, b.to_answer, b.answered, b.response_rate,
             b.median_response_seconds, b.p90_response_seconds, b.answered_late, b.backlog) for b in series.buckets]


def empty(day: int, backlog: int) -> Row:
    return (day, 0, 0, 0, 0, 0, 0, None, None, None, 0, backlog)


# Backlog at a day's end (the next 00:00 UTC): expecting an answer, created >= 4 h before, not answered and not
# dismissed by then. Always waiting from the 12th on: a0 and a3. Also a00 at the end of the 12th (answered 13th
# 10:00), a8b at the end of the 13th (created 19:00, dismissed with a8 on the 14th), a9 at the end of the 16th
# (answered 17th 04:00). a10 (22:00 on the 18th) is not 4 h old at the 18th's end.
OVERALL_DAYS: list[Row] = [
    # a1 neg, a2 neu, a3 pos; a1 30 min + a2 6 h: median 3 h 15 = 11700 s, p90 (2nd of 2) 21600; a2 late
    (12, 1, 1, 1, 0, 3, 2, 0.6667, 11700.0, 21600.0, 1, 3),  # backlog a0, a00, a3
    # a4, a8b, a5 neg, a6 unscored; a5 hidden and a6 closing: 2 expect an answer, a4's 20 min is the one answer
    (13, 3, 0, 0, 1, 2, 1, 0.5, 1200.0, 1200.0, 0, 3),  # backlog a0, a3, a8b
    # a7, a8 neg, a11 pos; a7 2 h, a11 10 min: median 65 min = 3900 s, p90 7200
    (14, 2, 0, 1, 0, 3, 2, 0.6667, 3900.0, 7200.0, 0, 2),  # a0, a3
    empty(15, 2),
    (16, 1, 0, 0, 0, 1, 1, 1.0, 72000.0, 72000.0, 1, 3),  # a9 after 20 h, late; backlog a0, a3, a9
    empty(17, 2),
    (18, 0, 1, 0, 0, 1, 0, 0.0, None, None, 0, 2),  # a10, its answer comes after NOW
]


def test_daily_overall(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        seed(session)
    with sessions() as session:
        result = trends(session, start=START, end=END, granularity="day", sla_hours=SLA_HOURS, now=NOW)
    assert isinstance(result, Trends)
    assert result.starts == tuple(date(2026, 11, d) for d in range(12, 19))
    assert (result.start, result.end) == (START, END)
    assert [s.group for s in result.series] == ["All mentions"] and result.series[0] == result.overall
    assert rows(result.overall) == OVERALL_DAYS
    assert [b.volume for b in result.overall.buckets] == [3, 4, 3, 0, 1, 0, 1]


def test_weekly_buckets_start_on_monday(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        seed(session)
    with sessions() as session:  # Thu 12 .. Wed 18 widens to the weeks of Mon 9 and Mon 16 (to Mon 23 00:00)
        result = trends(session, start=START, end=END, granularity="week", sla_hours=SLA_HOURS, now=NOW)
    assert result.starts == (date(2026, 11, 9), date(2026, 11, 16))
    assert (result.start, result.end) == (at(9, 0), at(23, 0))
    assert rows(result.overall) == [
        # week of the 9th: a0 a00 a1 a2 a3 a4 a8b a5 a6 a7 a8 a11: negative a0 a00 a1 a4 a8b a5 a7 a8 (8), neutral a2,
        # positive a3 a11, unscored a6; 10 expect an answer (not a5, a6); answered a00 (50 h = 180000 s, late),
        # a1 1800, a2 21600 (late), a4 1200, a7 7200, a11 600: median (1800 + 7200) / 2, p90 the 6th of 6
        (9, 8, 1, 2, 1, 10, 6, 0.6, 4500.0, 180000.0, 2, 2),  # backlog at Mon 16 00:00: a0, a3
        # week of the 16th: a9 (answered after 20 h), a10; its end is after NOW, so the backlog is NOW's: a0, a3,
        # a10 (4 h old since Thu 19 02:00; its answer comes after NOW)
        (16, 1, 1, 0, 0, 2, 1, 0.5, 72000.0, 72000.0, 1, 3),
    ]


def test_daily_per_platform_and_platform_filter(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        seed(session)
    with sessions() as session:
        by_platform = trends(session, start=START, end=END, granularity="day", sla_hours=SLA_HOURS, now=NOW,
                             by="platform")
        facebook_only = trends(session, start=START, end=END, granularity="day", sla_hours=SLA_HOURS, now=NOW,
                               platform="facebook")
    facebook = [  # a3 (waiting from the 12th on), a8b (waiting at the 13th's end), a8 (dismissed)
        (12, 0, 0, 1, 0, 1, 0, 0.0, None, None, 0, 1),
        (13, 1, 0, 0, 0, 1, 0, 0.0, None, None, 0, 2),
        (14, 1, 0, 0, 0, 1, 0, 0.0, None, None, 0, 1),
        empty(15, 1), empty(16, 1), empty(17, 1), empty(18, 1),
    ]
    x = [  # waiting: a0 always, a00 at the 12th's end, a9 at the 16th's
        (12, 1, 1, 0, 0, 2, 2, 1.0, 11700.0, 21600.0, 1, 2),
        (13, 2, 0, 0, 1, 1, 1, 1.0, 1200.0, 1200.0, 0, 1),  # a4, a5 (hidden), a6 (closing)
        (14, 1, 0, 1, 0, 2, 2, 1.0, 3900.0, 7200.0, 0, 1),
        empty(15, 1),
        (16, 1, 0, 0, 0, 1, 1, 1.0, 72000.0, 72000.0, 1, 2),
        empty(17, 1),
        (18, 0, 1, 0, 0, 1, 0, 0.0, None, None, 0, 1),
    ]
    assert [(s.group, rows(s)) for s in by_platform.series] == [("facebook", facebook), ("x", x)]
    assert rows(by_platform.overall) == OVERALL_DAYS
    assert facebook_only.platform == "facebook" and rows(facebook_only.overall) == facebook


def test_daily_per_agent(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        seed(session)
    with sessions() as session:
        result = trends(session, start=START, end=END, granularity="day", sla_hours=SLA_HOURS, now=NOW, by="agent")
    got = {s.group: rows(s) for s in result.series}
    assert list(got) == ["(deleted user)", "(not answered)", "(on the platform)", "alice", "bob"]

    def only(*found: Row) -> list[Row]:
        by_day = {r[0]: r for r in found}
        return [by_day.get(d, empty(d, 0)) for d in range(12, 19)]

    assert got["(deleted user)"] == only((14, 0, 0, 1, 0, 1, 1, 1.0, 600.0, 600.0, 0, 0))  # a11
    assert got["(on the platform)"] == only((13, 1, 0, 0, 0, 1, 1, 1.0, 1200.0, 1200.0, 0, 0))  # a4
    # alice answered a00 first (waiting at the 12th's end, answered the 13th), a1 (30 min; her reply and the
    # own post it became are one answer) and a7 (2 h); a10's reply comes after NOW
    assert got["alice"] == only((12, 1, 0, 0, 0, 1, 1, 1.0, 1800.0, 1800.0, 0, 1),
                                (14, 1, 0, 0, 0, 1, 1, 1.0, 7200.0, 7200.0, 0, 0))
    # bob: a2 (6 h, late), a9 (20 h, late; waiting at the 16th's end); his second reply to a1 is not a first answer
    assert got["bob"] == only((12, 0, 1, 0, 0, 1, 1, 1.0, 21600.0, 21600.0, 1, 0),
                              (16, 1, 0, 0, 0, 1, 1, 1.0, 72000.0, 72000.0, 1, 1))
    # no answer: a0 (before the period, always waiting), a3, a8b, a5 (hidden), a6 (closing), a8 (dismissed), a10
    assert got["(not answered)"] == [
        (12, 0, 0, 1, 0, 1, 0, 0.0, None, None, 0, 2),
        (13, 2, 0, 0, 1, 1, 0, 0.0, None, None, 0, 3),
        (14, 1, 0, 0, 0, 1, 0, 0.0, None, None, 0, 2),
        empty(15, 2), empty(16, 2), empty(17, 2),
        (18, 0, 1, 0, 0, 1, 0, 0.0, None, None, 0, 2),
    ]
    assert rows(result.overall) == OVERALL_DAYS  # the groups split the mentions
    for i, bucket in enumerate(result.overall.buckets):
        assert bucket.backlog == sum(s.buckets[i].backlog for s in result.series)
        assert bucket.volume == sum(s.buckets[i].volume for s in result.series)


def test_backlog_is_taken_at_each_bucket_end(sessions: sessionmaker[Session]) -> None:
    """A bucket ending after NOW takes its backlog at NOW; a later NOW sees a10's answer."""
    with sessions.begin() as session:
        seed(session)
    with sessions() as session:
        today = trends(session, start=at(19, 0), end=at(21, 0), granularity="day", sla_hours=SLA_HOURS, now=NOW)
        later = trends(session, start=at(19, 0), end=at(21, 0), granularity="day", sla_hours=SLA_HOURS,
                       now=at(21, 0))
        short_sla = trends(session, start=START, end=END, granularity="day", sla_hours=1.0, now=NOW)
    # 19th's end: a0, a3, a10 (past the SLA since 02:00); the 20th at NOW 09:00: the same
    assert [b.backlog for b in today.overall.buckets] == [3, 3]
    # taken at the 20th's end with NOW the 21st: a10 answered at the 20th 10:00
    assert [b.backlog for b in later.overall.buckets] == [3, 2]
    # SLA 1 h: late are a2 (6 h), a7 (2 h) and a9 (20 h); a1 (30 min), a4 (20 min), a11 (10 min) are not
    assert [b.answered_late for b in short_sla.overall.buckets] == [1, 0, 1, 0, 1, 0, 0]
    # waiting: a8b (19:00) and a10 (22:00) are past 1 h at their day's end; a8 was dismissed at 12:30, before
    # it was 1 h old (13:00)
    assert [b.backlog for b in short_sla.overall.buckets] == [3, 3, 2, 2, 3, 2, 3]


def test_brand_filter_and_local_days(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        make_mention(session, "my router is broken", created_at=at(12, 23, 30), brand="Acme Mobile", handle="late")
        make_mention(session, "other brand, broken", created_at=at(12, 12), brand="Other Brand", handle="other")
    with sessions() as session:
        utc = trends(session, start=START, end=at(14, 0), granularity="day", sla_hours=SLA_HOURS, now=NOW)
        acme = trends(session, start=START, end=at(14, 0), granularity="day", sla_hours=SLA_HOURS, now=NOW,
                      brand="Acme Mobile")
        # Berlin (UTC+1 in November): 23:30 UTC on the 12th is 00:30 on the 13th; its days start at 23:00 UTC
        berlin = trends(session, start=at(11, 23), end=at(13, 23), granularity="day", sla_hours=SLA_HOURS,
                        now=NOW, brand="Acme Mobile", timezone="Europe/Berlin")
    assert [b.volume for b in utc.overall.buckets] == [2, 0]
    assert [b.volume for b in acme.overall.buckets] == [1, 0]
    assert berlin.starts == (date(2026, 11, 12), date(2026, 11, 13)) and berlin.start == at(11, 23)
    assert [b.volume for b in berlin.overall.buckets] == [0, 1]
    # both unanswered: waiting at the end of Berlin's 13th (23:00 UTC), Acme's one only
    assert [b.backlog for b in berlin.overall.buckets] == [0, 1]


def test_bad_arguments(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        with pytest.raises(ValueError, match="granularity"):
            trends(session, start=START, end=END, granularity="month", sla_hours=4, now=NOW)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            trends(session, start=END, end=START, granularity="day", sla_hours=4, now=NOW)
        with pytest.raises(ValueError, match="more than 400 days"):
            trends(session, start=START - timedelta(days=500), end=END, granularity="day", sla_hours=4, now=NOW)
        assert len(trends(session, start=START - timedelta(days=500), end=END, granularity="week", sla_hours=4,
                          now=NOW).starts) == 73
