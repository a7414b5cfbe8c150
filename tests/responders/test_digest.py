"""The digest's numbers on known fixture data (SQLite and PostgreSQL), DST days, the empty day, rendering."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from markupsafe import escape
from sqlalchemy.orm import Session, sessionmaker

from models.vectors import HashEmbedder
from responders.answers import DEFINITIONS, percentile
from responders.digest.archive import due_day
from responders.digest.build import build_digest, day_bounds
from responders.digest.render import inline_images, render_digest
from responders.topics import group_topics
from tests.responders.digest_fixtures import BASE, DAY, NOW, digest_config, seed_day
from tests.responders.factories import make_mention


def test_known_answers(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        ids = seed_day(session).ids
    with sessions() as session:
        d = build_digest(session, digest_config(), "Acme Mobile", DAY, now=NOW)
    assert (d.start, d.end, d.hours) == ("2026-11-18T23:00:00+00:00", "2026-11-19T23:00:00+00:00", 24.0)
    assert d.volume == 10
    assert {t.label: t.count for t in d.trends} == {"negative": 7, "neutral": 1, "positive": 1, "unclassified": 1}
    assert [(p.platform, p.total, p.negative) for p in d.platforms] == [("x", 9, 7), ("facebook", 1, 0)]
    assert [(s.day, s.total) for s in d.series][-2:] == [("2026-11-18", 1), ("2026-11-19", 10)]
    assert len(d.series) == 8
    negative = next(t for t in d.trends if t.label == "negative")
    assert negative.previous_avg == round(1 / 7, 2) and negative.change_pct is not None and negative.change_pct > 0
    assert d.spike
    # answers: m1, m2, m3, m8 in openear, m4 on X itself
    assert (d.to_answer, d.answered, d.response_rate, d.closing, d.hidden) == (10, 5, 0.5, 0, 0)
    assert (d.complaints, d.answered_publicly, d.broadcast_only, d.dismissed) == (7, 4, 3, 1)
    assert d.complaint_response_rate == round(4 / 7, 4)
    assert [w.mention_id for w in d.waiting] == [ids["m5"], ids["m6"]] and d.waiting_total == 2
    assert d.waiting[0].url == f"{BASE}/mentions/{ids['m5']}"
    assert d.waiting[0].hours_waiting == 19.0
    # first responses: 10, 20 (on X), 30, 60, 360 minutes; unanswered past the SLA: m5, m6, m9, m10 (m7 dismissed)
    assert (d.responded, d.answered_in_openear, d.answered_on_platform) == (5, 4, 1)
    assert d.median_response_s == 30 * 60 and d.p90_response_s == 360 * 60
    assert (d.answered_late, d.unanswered_late, d.sla_breaches) == (1, 4, 5)
    # per agent: the day's mentions they answered first (bob's reply to "prev" belongs to the 18th)
    assert [(a.username, a.answered, a.median_response_s) for a in d.agents] == [
        ("alice", 2, 45 * 60), ("bob", 2, 185 * 60)]
    # loyal customer: carol had an earlier conversation
    assert [(w.mention_id, w.customer, w.earlier_conversations) for w in d.loyal_waiting] == [
        (ids["m5"], "Carol Customer", 1)]
    # topics, grouped by lexical vectors here (no stored vectors: the HashEmbedder): m2 and m3 both say "internet
    # down", m4 and m5 "charged twice"; m1 ("internet is down") may join the first; m6 (router) and m7 are one-offs
    assert len(d.topics) == 2
    internet, charged = d.topics
    assert "internet down" in internet.term and internet.count in (2, 3)
    assert len(internet.examples) == 2 and set(internet.examples) <= {
        "My internet is down again since morning", "Internet down in Berlin, no signal at all",
        "internet down and the router keeps rebooting"}
    assert "charged twice" in charged.term and charged.count == 2
    assert set(charged.examples) == {"I was charged twice on my bill", "Charged twice again, refund please @AcmeMobile"}
    assert not d.empty


def test_rendered_html_is_escaped_and_links_to_mentions(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        ids = seed_day(session).ids
    with sessions() as session:
        d = build_digest(session, digest_config(), "Acme Mobile", DAY, now=NOW)
    r = render_digest(d)
    assert "<script>" not in r.html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; nobody" in r.html
    assert f'href="{BASE}/mentions/{ids["m6"]}"' in r.html
    assert [f"cid:{cid}" in r.html for cid in r.images] == [True]
    assert r.images and all(png.startswith(b"\x89PNG") for png in r.images.values())
    assert f"{BASE}/mentions/{ids['m5']}" in r.text and "<script>" in r.text
    assert "Answered: 5 of 10 mentions expecting an answer (50%)" in r.text
    assert "Complaints answered: 4 of 7 (57%); 3 got none (1 dismissed)" in r.text
    assert "median 30 min, p90 6 h 00 min over 5 answered (4 in openear, 1 on the platform)" in r.text
    assert "- alice: 2, median 45 min" in r.text and "- bob: 2, median 3 h 05 min" in r.text
    assert "SLA breaches: 5 (1 answered late, 4 unanswered past the SLA)" in r.text
    for line in DEFINITIONS.values():  # each figure says what it counts
        assert line in r.text and str(escape(line)) in r.html
    assert "10 mentions, 7 complaints, 3 unanswered, 50% answered overall" in r.subject
    inlined = inline_images(r.html, r.images)
    assert "cid:" not in inlined and "data:image/png;base64," in inlined


def test_empty_day_says_so(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        d = build_digest(session, digest_config(), "Acme Mobile", DAY, now=NOW)
    assert d.empty and d.volume == 0 and d.median_response_s is None and not d.spike
    r = render_digest(d)
    assert "A quiet day" in r.html and "quiet day" in r.text and not r.images
    assert "no mentions" in r.subject
    assert len(r.html) < 6000


def test_dst_days_are_23_and_25_hours(sessions: sessionmaker[Session]) -> None:
    spring, autumn = date(2026, 3, 29), date(2026, 10, 25)
    assert day_bounds(spring, "Europe/Berlin") == (datetime(2026, 3, 28, 23, tzinfo=UTC),
                                                   datetime(2026, 3, 29, 22, tzinfo=UTC))
    assert day_bounds(autumn, "Europe/Berlin") == (datetime(2026, 10, 24, 22, tzinfo=UTC),
                                                   datetime(2026, 10, 25, 23, tzinfo=UTC))
    with sessions.begin() as session:
        # 23:30 local on the switch days and on the days before them
        for created in (datetime(2026, 3, 28, 22, 30, tzinfo=UTC), datetime(2026, 3, 29, 21, 30, tzinfo=UTC),
                        datetime(2026, 10, 24, 21, 30, tzinfo=UTC), datetime(2026, 10, 25, 22, 30, tzinfo=UTC),
                        datetime(2026, 10, 25, 23, 30, tzinfo=UTC)):  # the last: 00:30 on the 26th
            make_mention(session, "dst", created_at=created)
    config = digest_config()
    with sessions() as session:
        for day, hours in ((spring, 23.0), (autumn, 25.0), (spring - timedelta(days=1), 24.0),
                           (autumn - timedelta(days=1), 24.0), (autumn + timedelta(days=1), 24.0)):
            d = build_digest(session, config, "Acme Mobile", day, now=NOW)
            assert (d.volume, d.hours) == (1, hours), day
    with sessions() as session:  # closed here: an open session would block the next test's TRUNCATE
        r = render_digest(build_digest(session, config, "Acme Mobile", spring, now=NOW))
    assert "23-hour day" in r.html


def test_percentile_and_topics_units() -> None:
    assert percentile([], 90) is None
    assert percentile([float(i) for i in range(1, 11)], 90) == 9.0
    assert percentile([5.0], 90) == 5.0
    texts = ["Mein Internet ist wieder weg", "Internet weg seit gestern!", "Rechnung falsch", "rechnung doppelt"]
    groups = group_topics(texts, HashEmbedder().embed(texts))
    assert [g.members for g in groups] == [(0, 1), (2, 3)]
    assert "internet" in groups[0].label and groups[1].label == "rechnung"  # the words each pair shares


def test_due_day_follows_the_digest_time() -> None:
    config = digest_config()  # 08:00 Europe/Berlin
    assert due_day(config, "Acme Mobile", datetime(2026, 11, 20, 7, 30, tzinfo=UTC)) == date(2026, 11, 19)
    assert due_day(config, "Acme Mobile", datetime(2026, 11, 20, 6, 59, tzinfo=UTC)) == date(2026, 11, 18)
    # summer time: 08:00 Berlin is 06:00 UTC
    assert due_day(config, "Acme Mobile", datetime(2026, 7, 1, 6, 0, tzinfo=UTC)) == date(2026, 6, 30)


def test_erased_mentions_keep_the_days_counts(sessions: sessionmaker[Session]) -> None:
    """An erasure or retention leaves anonymous counts per brand-local day; the digest adds them back."""
    from responders.customers.gdpr import delete_mentions

    config = digest_config()
    with sessions.begin() as session:
        ids = seed_day(session).ids
    with sessions() as session:
        before = [build_digest(session, config, "Acme Mobile", d, now=NOW) for d in (DAY, DAY + timedelta(days=1))]
    # an answered complaint, an unanswered one at 23:30 Berlin, a Facebook post, and one at 00:30 Berlin
    # the next day (the 19th in UTC): each must stay on its local day
    gone = [ids[name] for name in ("m4", "m6", "m10", "next")]
    with sessions.begin() as session:
        assert delete_mentions(session, gone, config.timezones())["mentions"] == 4
    with sessions() as session:
        after = [build_digest(session, config, "Acme Mobile", d, now=NOW) for d in (DAY, DAY + timedelta(days=1))]
    for old, new in zip(before, after, strict=True):
        assert (new.volume, new.series) == (old.volume, old.series)
        assert (new.trends, new.platforms) == (old.trends, old.platforms)
        assert (new.complaints, new.answered_publicly, new.broadcast_only) == (
            old.complaints, old.answered_publicly, old.broadcast_only)
    assert (before[0].erased, after[0].erased, after[1].erased) == (0, 3, 1)
    assert after[0].waiting_total == before[0].waiting_total - 1  # no times: not in the waiting list
    assert "3 since erased" in render_digest(after[0]).text
