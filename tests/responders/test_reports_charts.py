"""The Reports page's trends on the web (charts, table, CSV, parameters, roles) and the digest's trend chart.

The dataset and its hand-computed figures are those of tests/responders/test_trends.py (`seed`); the
clock of the web app stands at its NOW (Fri 2026-11-20 09:00 UTC), SLA 4 h, days in UTC.
"""

from __future__ import annotations

import csv
import email
import html
import io
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from models.config import DigestConfig, SmtpConfig
from responders.charts import CHARTS
from responders.digest import render as digest_render
from responders.digest.archive import send_due
from responders.digest.build import build_digest
from responders.digest.deliver import build_message
from responders.digest.render import RenderedDigest, digest_trend, inline_images, render_digest
from tests.responders.digest_fixtures import DAY, digest_config, seed_day
from tests.responders.digest_fixtures import NOW as DIGEST_NOW
from tests.responders.factories import login, make_mention, make_user
from tests.responders.test_trends import seed

Client = Callable[[], TestClient]
PNG = b"\x89PNG\r\n\x1a\n"
WEEK = "from=2026-11-12&to=2026-11-18"
IMG_RE = re.compile(r'<img src="(/reports/charts/([a-z-]+)\.png\?[^"]*)"')


def manager_client(sessions: sessionmaker[Session], new_client: Client) -> TestClient:
    with sessions.begin() as session:
        seed(session)
        make_user(session, "boss", "manager")
    return login(new_client(), "boss")


def page_table(page: str) -> tuple[list[str], list[list[str]]]:
    """The headings and cells of the page's trend table."""
    match = re.search(r'<table class="list trends">(.*?)</table>', page, re.S)
    assert match, "no trend table"
    head, body = match.group(1).split("</thead>")
    cells = [[html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", tr, re.S)]
             for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)]
    return [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", head)], cells


def csv_rows(client: TestClient, query: str) -> tuple[list[str], list[list[str]]]:
    response = client.get(f"/reports.csv?{query}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment;")
    header, *rows = list(csv.reader(io.StringIO(response.text)))
    return header, rows


# --------------------------------------------------------------------------- the page, its table and the CSV


def test_page_shows_tiles_charts_and_the_table_the_csv_repeats(sessions: sessionmaker[Session],
                                                               new_client: Client) -> None:
    boss = manager_client(sessions, new_client)
    response = boss.get(f"/reports?{WEEK}&by=agent")
    assert response.status_code == 200
    page = response.text
    assert "answered of" in page and "<h1>Team report</h1>" in page  # the tiles are still there
    srcs = [(html.unescape(src), name) for src, name in IMG_RE.findall(page)]
    query = "from=2026-11-12&to=2026-11-18&granularity=day&by=agent"
    assert srcs == [(f"/reports/charts/{name}.png?{query}", name)
                    for name in ("volume", "response-rate", "response-time", "backlog")]
    headings, table = page_table(page)
    header, rows = csv_rows(boss, query)
    assert rows == table and len(header) == len(headings) == 14
    assert header[:3] == ["group", "start", "mentions"] and headings[:3] == ["Group", "From", "Mentions"]
    assert len(rows) == 5 * 7  # five groups, seven days
    # (columns: group, day, mentions, negative, neutral, positive, unscored, to answer, answered, rate %,
    # median min, p90 min, late, waiting past the SLA at the end) figures of test_trends.py's by-agent case
    assert ["alice", "2026-11-12", "1", "1", "0", "0", "0", "1", "1", "100.0", "30.0", "30.0", "0", "1"] in rows
    assert ["bob", "2026-11-16", "1", "1", "0", "0", "0", "1", "1", "100.0", "1200.0", "1200.0", "1", "1"] in rows
    assert ["(not answered)", "2026-11-13", "3", "2", "0", "0", "1", "1", "0", "0.0", "", "", "0", "3"] in rows
    assert ["(on the platform)", "2026-11-13", "1", "1", "0", "0", "0", "1", "1", "100.0", "20.0", "20.0", "0",
            "0"] in rows
    assert ["(deleted user)", "2026-11-15", "0", "0", "0", "0", "0", "0", "0", "", "", "", "0", "0"] in rows


def test_default_period_overall_and_per_platform(sessions: sessionmaker[Session], new_client: Client) -> None:
    boss = manager_client(sessions, new_client)
    page = boss.get("/reports").text
    # the last 28 days up to the clock's day (Fri 20 Nov): 24 Oct .. 20 Nov, per day, overall
    assert 'src="/reports/charts/volume.png?from=2026-10-24&amp;to=2026-11-20&amp;granularity=day&amp;by=overall"' \
        in page
    _, table = page_table(page)
    assert len(table) == 28 and table[0][1] == "2026-10-24" and table[-1][1] == "2026-11-20"
    by_day = {row[1]: row for row in table}
    # the 12th: a1, a2, a3; 2 of 3 answered; median 195 min, p90 360 min; a2 late; waiting a0, a00, a3
    assert by_day["2026-11-12"] == ["All mentions", "2026-11-12", "3", "1", "1", "1", "0", "3", "2", "66.7",
                                    "195.0", "360.0", "1", "3"]
    # the 10th: a0, never answered, waiting at the day's end; the 11th: a00, answered by alice 50 h (3000 min)
    # later, late, waiting with a0 at the 11th's end
    assert by_day["2026-11-10"][2:] == ["1", "1", "0", "0", "0", "1", "0", "0.0", "", "", "0", "1"]
    assert by_day["2026-11-11"][2:] == ["1", "1", "0", "0", "0", "1", "1", "100.0", "3000.0", "3000.0", "1", "2"]
    assert by_day["2026-11-20"][2:] == ["0", "0", "0", "0", "0", "0", "0", "", "", "", "0", "3"]  # at NOW
    weekly = boss.get(f"/reports?{WEEK}&granularity=week&by=platform").text
    _, table = page_table(weekly)
    assert [row[:3] for row in table] == [["Facebook", "2026-11-09", "3"], ["Facebook", "2026-11-16", "0"],
                                          ["X", "2026-11-09", "9"], ["X", "2026-11-16", "2"]]
    assert csv_rows(boss, "from=2026-11-12&to=2026-11-18&granularity=week&by=platform")[1] == table
    only_x = page_table(boss.get(f"/reports?{WEEK}&platform=x").text)[1]
    assert [row[2] for row in only_x] == ["2", "3", "2", "0", "1", "0", "1"]  # x's volumes (a8b, a3, a8 are FB)


def test_chart_routes_return_the_same_png_twice(sessions: sessionmaker[Session], new_client: Client) -> None:
    boss = manager_client(sessions, new_client)
    for name in CHARTS:
        for query in (WEEK, f"{WEEK}&granularity=week&by=agent", f"{WEEK}&by=platform&platform=facebook"):
            first = boss.get(f"/reports/charts/{name}.png?{query}")
            assert first.status_code == 200 and first.headers["content-type"] == "image/png", (name, query)
            assert first.content.startswith(PNG) and len(first.content) > 2000
            assert boss.get(f"/reports/charts/{name}.png?{query}").content == first.content, (name, query)
    volume, rate = (boss.get(f"/reports/charts/{n}.png?{WEEK}").content for n in ("volume", "response-rate"))
    assert volume != rate
    assert boss.get(f"/reports/charts/pie.png?{WEEK}").status_code == 404


@pytest.mark.parametrize(("query", "message"), [
    ("from=2026-13-01", "&#39;from&#39; must be a date as YYYY-MM-DD"),
    ("to=yesterday", "&#39;to&#39; must be a date as YYYY-MM-DD"),
    ("from=0001-01-01", "between the years 1971 and 9998"),
    ("from=2026-11-18&to=2026-11-12", "&#39;from&#39; must not be after &#39;to&#39;"),
    ("granularity=month", "&#39;granularity&#39; must be one of day, week"),
    ("by=team", "&#39;by&#39; must be one of overall, platform, agent"),
    ("platform=myspace", "&#39;platform&#39; must be one of"),
    ("from=2020-01-01&to=2026-11-18", "At most 400 days at a time"),
])
def test_bad_parameters_answer_400(sessions: sessionmaker[Session], new_client: Client, query: str,
                                   message: str) -> None:
    boss = manager_client(sessions, new_client)
    for path in ("/reports", "/reports.csv", "/reports/charts/volume.png"):
        response = boss.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert message in response.text, (path, response.text[-2000:])


def test_only_managers_see_reports(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as session:
        make_user(session, "alice")
    agent = login(new_client(), "alice")
    anonymous = new_client()
    for path in ("/reports", f"/reports.csv?{WEEK}", f"/reports/charts/volume.png?{WEEK}"):
        assert agent.get(path).status_code == 403, path
        refused = anonymous.get(path, follow_redirects=False)
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login"), path


# --------------------------------------------------------------------------- the digest's chart


def _parse(rendered: RenderedDigest) -> tuple[str, list[EmailMessage]]:
    raw = build_message(rendered, sender="digest@acme.example", recipients=["boss@example.com"],
                        msg_id="<t@acme.example>").as_bytes()
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage) and msg.get_content_type() == "multipart/related"
    alternative, *images = msg.iter_parts()
    html_part = list(alternative.iter_parts())[1]
    assert isinstance(html_part, EmailMessage)
    return str(html_part.get_content()), [i for i in images if isinstance(i, EmailMessage)]


def test_digest_email_carries_the_14_day_trend_chart_inline(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        seed_day(session)
    with sessions() as session:
        data = build_digest(session, digest_config(), "Acme Mobile", DAY, now=DIGEST_NOW)
        trend = digest_trend(session, data)
    # Berlin days 6..19 Nov; the 19th has m1..m10, the 18th "prev" (23:30 Berlin); "next" is the 20th's
    assert [d.isoformat() for d in (trend.starts[0], trend.starts[-1])] == ["2026-11-06", "2026-11-19"]
    assert [b.volume for b in trend.overall.buckets] == [0] * 12 + [1, 10]
    rendered = render_digest(data, trend)
    assert len(rendered.images) == 1
    (cid, png), = rendered.images.items()
    assert png.startswith(PNG) and f'src="cid:{cid}"' in rendered.html and "last 14 days" in rendered.html
    assert render_digest(data, trend).images == rendered.images  # deterministic
    fallback = render_digest(data)  # without the trend: the digest's own 8 days
    assert "last 8 days" in fallback.html and list(fallback.images.values()) != [png]
    page, images = _parse(rendered)
    assert [str(i["Content-ID"]) for i in images] == [f"<{cid}>"] and f'src="cid:{cid}"' in page
    assert images[0].get_content_type() == "image/png" and images[0].get_content_disposition() == "inline"
    assert images[0].get_content() == png
    inlined = inline_images(rendered.html, rendered.images)  # the archived file's version
    assert "cid:" not in inlined and "data:image/png;base64," in inlined


def test_digest_still_sends_when_the_chart_fails(sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with sessions.begin() as session:
        seed_day(session)

    def broken(*_args: Any, **_kw: Any) -> bytes:
        raise RuntimeError("no matplotlib today")

    monkeypatch.setattr(digest_render, "volume_chart", broken)
    with sessions() as session:
        data = build_digest(session, digest_config(), "Acme Mobile", DAY, now=DIGEST_NOW)
        trend = digest_trend(session, data)
    with caplog.at_level(logging.ERROR, logger="responders.digest.render"):
        rendered = render_digest(data, trend)
    assert not rendered.images and "cid:" not in rendered.html and "Volume and sentiment" in rendered.html
    assert "Answered: 5 of 10 mentions expecting an answer (50%)" in rendered.text
    assert any("trend chart could not be drawn" in r.getMessage() for r in caplog.records)

    sent: list[tuple[str, list[EmailMessage]]] = []

    def transport(rendered: RenderedDigest, *_args: Any, **_kw: Any) -> str:
        sent.append(_parse(rendered))
        return "<sent@acme.example>"

    config = digest_config(digest=DigestConfig(recipients=["boss@example.com"], smtp=SmtpConfig(
        host="127.0.0.1", port=25, security="none", sender="digest@acme.example")))
    outcome = send_due(config, sessions, "Acme Mobile", DAY, DIGEST_NOW, transport=transport)
    assert outcome.status == "sent" and len(sent) == 1
    page, images = sent[0]
    assert images == [] and "cid:" not in page and "Volume and sentiment" in page


# --------------------------------------------------------------------------- complaint topics


def topic_rows(page: str) -> list[tuple[str, int]]:
    match = re.search(r'<table class="list topics">(.*?)</table>', page, re.S)
    assert match, "no topic table"
    return [(html.unescape(label), int(count)) for label, count in
            re.findall(r"<tr><td><b>(.*?)</b></td><td>(\d+)</td>", match.group(1))]


def test_topics_group_the_periods_complaints(sessions: sessionmaker[Session], new_client: Client) -> None:
    """Only the period's inbound complaints (negative, not hidden) of the chosen platform are grouped."""
    crash, billing = "The app crashes at login again", "Billing charged my card twice this month"
    with sessions.begin() as session:
        make_user(session, "boss", "manager")
        at = datetime(2026, 11, 14, 9, tzinfo=UTC)
        for i in range(3):
            make_mention(session, crash, handle=f"crash{i}", created_at=at + timedelta(hours=i))
        for i in range(2):
            make_mention(session, billing, handle=f"bill{i}", platform="facebook", created_at=at)
        # none of these count: hidden, not a complaint, the brand's own post, before the period
        make_mention(session, crash, handle="hid", created_at=at).hidden = True
        make_mention(session, crash, handle="happy", sentiment="positive", negative=0.05, created_at=at)
        make_mention(session, crash, handle="acme", is_own=True, queued=False, created_at=at)
        for i in range(3):
            make_mention(session, billing, handle=f"old{i}", platform="facebook",
                         created_at=datetime(2026, 11, 11, 9, tzinfo=UTC))
    boss = login(new_client(), "boss")
    rows = topic_rows(boss.get(f"/reports?{WEEK}").text)
    assert [count for _, count in rows] == [3, 2]
    assert "crashes" in rows[0][0] and "billing" in rows[1][0].lower()
    only_facebook = topic_rows(boss.get(f"/reports?{WEEK}&platform=facebook").text)
    assert [count for _, count in only_facebook] == [2]
    quiet = boss.get("/reports?from=2026-11-16&to=2026-11-18").text
    assert topic_rows(quiet) == [] and "No recurring complaint topics in this period." in quiet
