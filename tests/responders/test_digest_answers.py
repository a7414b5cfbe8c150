"""Answers on true definitions: the digest and the team report over a realistic support thread set (both backends).

Every figure is compared with values computed here, in plain Python, from the fixture list
(tests/responders/digest_fixtures.py: THREADS, SENT), not with the code under test.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from models.vectors import HashEmbedder
from responders.answers import DEFINITIONS, first_answers, is_closing
from responders.digest.build import DigestData, build_digest
from responders.digest.render import render_digest
from responders.reports import team_report
from responders.topics import group_topics
from tests.responders.digest_fixtures import SENT, THREADS, Post, digest_config, seed_threads, t

BERLIN = ZoneInfo("Europe/Berlin")
SLA = timedelta(hours=4)
POSTS = {p.key: p for p in THREADS}


# --------------------------------------------------------------------------- the independent model


@dataclass(frozen=True)
class Expected:
    at: datetime
    agent: str | None
    via: str


def expected_answer(p: Post, now: datetime) -> Expected | None:
    """The first public answer of a customer post, read off the fixture lists."""
    reply_posts = {s.post: s for s in SENT if s.post and s.state == "sent"}
    found: list[tuple[datetime, int, str | None, str]] = []
    for s in SENT:
        if s.mention == p.key and s.state == "sent" and s.at <= now:
            at = min(s.at, POSTS[s.post].at) if s.post else s.at
            found.append((at, 0, s.agent, "openear"))
    for o in THREADS:
        if not o.own or o.reply_to != p.key or o.at > now:
            continue
        sent = reply_posts.get(o.key)
        if sent is not None:
            if sent.mention == p.key:  # the same answer as the reply above
                found.append((min(o.at, sent.at) if sent.at <= now else o.at, 0, sent.agent, "openear"))
        else:
            found.append((o.at, 1, None, "platform"))
    if not found:
        return None
    at, _, agent, via = min(found)
    return Expected(at, agent, via)


def local_day(p: Post) -> date:
    return p.at.astimezone(BERLIN).date()


def nearest_rank(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-len(ordered) * pct // 100)  # ceil
    return ordered[max(int(rank) - 1, 0)]


def expected_digest(day: date, now: datetime) -> dict[str, object]:
    customer = [p for p in THREADS if not p.own and local_day(p) == day]
    to_answer = [p for p in customer if p.expects]
    answers = {p.key: expected_answer(p, now) for p in to_answer}
    answered = [p for p in to_answer if answers[p.key]]
    complaints = [p for p in to_answer if p.label == "negative"]
    complaints_answered = [p for p in complaints if answers[p.key]]
    delays = {p.key: max((answers[p.key].at - p.at).total_seconds(), 0.0)  # type: ignore[union-attr]
              for p in answered}
    unanswered_open = [p for p in to_answer if not answers[p.key] and p.state != "dismissed" and p.at <= now - SLA]
    waiting = sorted((p for p in unanswered_open if p.label == "negative"), key=lambda p: p.at)
    per_agent: dict[str, list[float]] = {}
    for p in answered:
        a = answers[p.key]
        assert a is not None
        if a.agent:
            per_agent.setdefault(a.agent, []).append(delays[p.key])
    labels = {"negative": 0, "neutral": 0, "positive": 0, "unclassified": 0}
    platforms: dict[str, int] = {}
    for p in customer:
        labels[p.label or "unclassified"] += 1
        platforms[p.platform] = platforms.get(p.platform, 0) + 1
    times = list(delays.values())
    return {
        "volume": len(customer), "to_answer": len(to_answer), "answered": len(answered),
        "response_rate": round(len(answered) / len(to_answer), 4) if to_answer else None,
        "complaints": len(complaints), "answered_publicly": len(complaints_answered),
        "broadcast_only": len(complaints) - len(complaints_answered),
        "complaint_response_rate": round(len(complaints_answered) / len(complaints), 4) if complaints else None,
        "dismissed": sum(1 for p in complaints if not answers[p.key] and p.state == "dismissed"),
        "waiting": [p.key for p in waiting], "waiting_total": len(waiting),
        "responded": len(answered), "median_response_s": statistics.median(times) if times else None,
        "p90_response_s": nearest_rank(times, 90),
        "answered_late": sum(1 for d in times if d > SLA.total_seconds()),
        "unanswered_late": len(unanswered_open),
        "sla_breaches": sum(1 for d in times if d > SLA.total_seconds()) + len(unanswered_open),
        "agents": sorted(((name, len(v), statistics.median(v)) for name, v in per_agent.items()),
                         key=lambda a: (-a[1], a[0])),
        "answered_in_openear": sum(1 for a in answers.values() if a and a.via == "openear"),
        "answered_on_platform": sum(1 for a in answers.values() if a and a.via == "platform"),
        "closing": sum(1 for p in customer if not p.expects and not p.hidden),
        "hidden": sum(1 for p in customer if p.hidden),
        "labels": labels, "platforms": platforms,
        "complaint_texts": [p.text for p in complaints],
    }


def actual(d: DigestData, ids: dict[str, int]) -> dict[str, object]:
    keys = {v: k for k, v in ids.items()}
    return {
        "volume": d.volume, "to_answer": d.to_answer, "answered": d.answered, "response_rate": d.response_rate,
        "complaints": d.complaints, "answered_publicly": d.answered_publicly, "broadcast_only": d.broadcast_only,
        "complaint_response_rate": d.complaint_response_rate, "dismissed": d.dismissed,
        "waiting": [keys[w.mention_id] for w in d.waiting], "waiting_total": d.waiting_total,
        "responded": d.responded, "median_response_s": d.median_response_s, "p90_response_s": d.p90_response_s,
        "answered_late": d.answered_late, "unanswered_late": d.unanswered_late, "sla_breaches": d.sla_breaches,
        "agents": [(a.username, a.answered, a.median_response_s) for a in d.agents],
        "answered_in_openear": d.answered_in_openear, "answered_on_platform": d.answered_on_platform,
        "closing": d.closing, "hidden": d.hidden,
        "labels": {tr.label: tr.count for tr in d.trends}, "platforms": {p.platform: p.total for p in d.platforms},
    }


CASES = [  # (local day, when the digest is built)
    (date(2026, 11, 18), t(19, 7)),
    (date(2026, 11, 19), t(20, 7)),
    (date(2026, 11, 19), t(21, 7)),  # rebuilt later: x15's answer of the 20th 09:00Z now counts
    (date(2026, 11, 20), t(21, 7)),
]


# --------------------------------------------------------------------------- tests


def test_the_model_reads_the_fixture_as_intended() -> None:
    """Guards the independent computation itself on a few hand-checked threads."""
    assert expected_answer(POSTS["x1"], t(19, 7)) == Expected(t(18, 8, 12), None, "platform")
    assert expected_answer(POSTS["x2"], t(19, 7)) == Expected(t(18, 9, 29, 58), "alice", "openear")
    assert expected_answer(POSTS["x8"], t(19, 7)) == Expected(t(18, 0), "alice", "openear")
    assert expected_answer(POSTS["x12"], t(20, 7)) == Expected(t(19, 11, 3), None, "platform")
    assert expected_answer(POSTS["ftop"], t(20, 7)) is None  # openear's answer to f3 filed under it
    assert expected_answer(POSTS["x15"], t(20, 7)) is None
    assert expected_answer(POSTS["x15"], t(21, 7)) == Expected(t(20, 9), None, "platform")
    assert expected_answer(POSTS["x4"], t(19, 7)) == Expected(t(19, 7), "bob", "openear")
    # x14 is answered on its edited revision: the model has no revision ids, so it relies on reply_to
    assert expected_answer(POSTS["x14"], t(20, 7)) == Expected(t(19, 15, 10), None, "platform")


@pytest.mark.parametrize(("day", "now"), CASES, ids=[f"{d}@{n:%dT%H}" for d, n in CASES])
def test_every_digest_figure_matches_the_threads(sessions: sessionmaker[Session], day: date, now: datetime) -> None:
    with sessions.begin() as session:
        ids = seed_threads(session)
    with sessions() as session:
        d = build_digest(session, digest_config(), "Acme Mobile", day, now=now)
    want = expected_digest(day, now)
    texts = want.pop("complaint_texts")
    assert actual(d, ids) == want
    # topics: exactly the day's complaints (hand-listed above), grouped as group_topics groups them
    groups = group_topics(texts, HashEmbedder().embed(texts), extra_stop=frozenset({"acme", "mobile"}))  # type: ignore[arg-type]
    assert [(tp.term, tp.count) for tp in d.topics] == [(g.label, g.size) for g in groups]
    assert all(tp.count >= 2 and set(tp.examples) <= set(texts) for tp in d.topics)  # type: ignore[arg-type]
    # nobody-answered lists never hold closing messages or answered mentions
    closing = {ids[p.key] for p in THREADS if not p.expects}
    assert not closing & {w.mention_id for w in (*d.waiting, *d.loyal_waiting)}
    for w in d.loyal_waiting:
        p = next(p for p in THREADS if ids[p.key] == w.mention_id)
        assert p.label == "negative" and expected_answer(p, now) is None and p.at < datetime.fromisoformat(d.end)
    rendered = render_digest(d)
    for line in DEFINITIONS.values():
        assert line in rendered.text


def test_the_figures_in_words(sessions: sessionmaker[Session]) -> None:
    """The 18th, spelled out: what the replay of real support tweets showed blank."""
    with sessions.begin() as session:
        ids = seed_threads(session)
    with sessions() as session:
        d = build_digest(session, digest_config(), "Acme Mobile", date(2026, 11, 18), now=t(19, 7))
    # x8 (00:30 Berlin) x1 x2 x3 f1 f2 x5 x6 x7 x4; x3 and x5 say thanks, f2 is hidden
    assert (d.volume, d.to_answer, d.answered, d.closing, d.hidden) == (10, 7, 5, 2, 1)
    # 30 min (alice, openear; its platform copy is not a second answer), 12 min (X), 29:58 (alice), 8 h (Facebook,
    # after a dismissal), 8 h 30 (bob, the next morning)
    assert (d.answered_in_openear, d.answered_on_platform, d.answered_late) == (3, 2, 2)
    assert d.median_response_s == 30 * 60 and d.p90_response_s == 8.5 * 3600
    assert [(a.username, a.answered) for a in d.agents] == [("alice", 2), ("bob", 1)]
    assert [w.mention_id for w in d.waiting] == [ids["x6"]]  # not "Danke, hat geklappt!" (x5)
    assert [w.mention_id for w in d.loyal_waiting] == [ids["x6"]]
    text = render_digest(d).text
    assert ("Answered: 5 of 7 mentions expecting an answer (71%); not expecting one: 2 closing messages, 1 hidden"
            in text)
    assert "(3 in openear, 2 on the platform)" in text


def test_first_answers_per_mention(sessions: sessionmaker[Session]) -> None:
    """Each mention's answered_at, answered_by and via, against the model (all days, as of the 21st)."""
    now = t(21, 7)
    with sessions.begin() as session:
        ids = seed_threads(session)
    from models.orm import Mention, User

    with sessions() as session:
        got = first_answers(session, Mention.brand == "Acme Mobile", now=now)
        names = {u.id: u.username for u in session.query(User)}
    for p in THREADS:
        if p.own:
            assert ids[p.key] not in got
            continue
        want = expected_answer(p, now)
        a = got.get(ids[p.key])
        assert (None if a is None else (a.answered_at, names.get(a.answered_by or 0), a.via)) == (
            None if want is None else (want.at, want.agent, want.via)), p.key


def test_team_report_uses_the_same_definitions(sessions: sessionmaker[Session]) -> None:
    now = t(21, 7)
    with sessions.begin() as session:
        seed_threads(session)
    with sessions() as session:
        r = team_report(session, now=now, days=4, sla_hours=4.0)
    since = now - timedelta(days=4)
    posts = [p for p in THREADS if not p.own and since <= p.at < now and p.expects]
    answers = {p.key: expected_answer(p, now) for p in posts}
    delays = [max((a.at - p.at).total_seconds(), 0.0) for p in posts if (a := answers[p.key])]
    assert (r.to_answer, r.answered) == (len(posts), len(delays))
    assert r.response_rate == round(len(delays) / len(posts), 4)
    assert r.median_response_seconds == statistics.median(delays)
    assert r.p90_response_seconds == nearest_rank(delays, 90)
    assert r.answered_late == sum(1 for d in delays if d > 4 * 3600)
    assert r.answered_on_platform == sum(1 for a in answers.values() if a and a.via == "platform")
    sent = [s for s in SENT if s.state == "sent" and since <= s.at <= now]
    assert r.replies_sent == len(sent) and r.replies_failed == 1
    by_agent: dict[str, list[float]] = {}
    for p in posts:
        a = answers[p.key]
        if a and a.agent:
            by_agent.setdefault(a.agent, []).append(max((a.at - p.at).total_seconds(), 0.0))
    assert [(a.username, a.replies, a.answered, a.median_response_seconds) for a in r.agents] == [
        (name, sum(1 for s in sent if s.agent == name), len(by_agent.get(name, [])),
         statistics.median(by_agent[name]) if by_agent.get(name) else None) for name in ("alice", "bob", "carol")]


def test_erased_mentions_keep_answered_on_the_new_definition(sessions: sessionmaker[Session]) -> None:
    """Erasing f1 (dismissed in the queue, answered on Facebook) and x6 (unanswered) keeps the 18th's answer counts."""
    from responders.customers.gdpr import delete_mentions

    config, day, now = digest_config(), date(2026, 11, 18), t(19, 7)
    with sessions.begin() as session:
        ids = seed_threads(session)
    with sessions() as session:
        before = build_digest(session, config, "Acme Mobile", day, now=now)
    with sessions.begin() as session:
        delete_mentions(session, [ids["f1"], ids["x6"]], config.timezones())
    with sessions() as session:
        after = build_digest(session, config, "Acme Mobile", day, now=now)
    for name in ("volume", "to_answer", "answered", "response_rate", "complaints", "answered_publicly",
                 "broadcast_only", "complaint_response_rate"):
        assert getattr(after, name) == getattr(before, name), name
    assert (after.erased, after.responded, after.waiting_total) == (2, before.responded - 1, 0)


@pytest.mark.parametrize(("text", "label", "neg", "closing"), [
    ("Thanks, sorted now!", "positive", 0.02, True),
    ("thx, all good now", "neutral", 0.2, True),
    ("That did it, cheers", None, None, True),
    ("Working again, thank you", "positive", 0.1, True),
    ("Danke, hat geklappt!", "negative", 0.6, True),  # short thank-yous often read as mildly negative
    ("Vielen Dank, läuft wieder", "neutral", 0.3, True),
    ("Alles klar, danke euch", "positive", 0.05, True),
    ("Danke, hat geklappt!", "negative", 0.9, False),  # the classifier is sure: not a closing message
    ("Thanks for nothing, still broken", "negative", 0.7, False),
    ("thanks, but it is still not working", "neutral", 0.4, False),
    ("Thanks! Can you check my order?", "neutral", 0.2, False),
    ("Danke, aber das Internet geht immer noch nicht", "neutral", 0.4, False),
    ("Danke für nichts", "negative", 0.5, False),
    ("thanks, worst support ever", "negative", 0.6, False),
    ("Thanks, my parcel is lost", "neutral", 0.4, False),
    ("My internet is down", "negative", 0.9, False),
    ("Love the new 5G plan", "positive", 0.02, False),  # praise, not a closing: it may deserve an answer
])
def test_closing_messages(text: str, label: str | None, neg: float | None, closing: bool) -> None:
    assert is_closing(text, label, neg) is closing


def test_fixture_days_sit_on_berlin_edges() -> None:
    assert local_day(POSTS["x8"]) == date(2026, 11, 18) and POSTS["x8"].at.date() == date(2026, 11, 17)
    assert local_day(POSTS["x9"]) == date(2026, 11, 19) and POSTS["x9"].at.date() == date(2026, 11, 18)
    assert local_day(POSTS["x17"]) == date(2026, 11, 19) and POSTS["x17"].at.astimezone(UTC).hour == 22
