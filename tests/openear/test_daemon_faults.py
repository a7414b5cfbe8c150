"""The real daemon (`openear run`) as a subprocess, killed with SIGKILL at random moments.

The emulators run in this test process (they outlive every daemon) with a live feed; the test
queues replies while the daemons come and go. Afterwards: every post the X query matches and every
Facebook comment is stored exactly once, and every reply reached the platform exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_engine, session_factory, upgrade
from models.domain import ReplyState
from models.orm import Mention, Reply
from sandbox.graph_api import GraphApiEmulator
from sandbox.graph_store import PostRecord
from sandbox.x_api import XApiEmulator
from sandbox.x_query import compile_query

QUERY = "(acme OR @acme OR @acme_help OR #AcmeMobile) -is:retweet -from:acme -from:acme_help"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def emulators() -> Iterator[tuple[XApiEmulator, GraphApiEmulator]]:
    with XApiEmulator(seed=21) as x, GraphApiEmulator(seed=21) as fb:
        x.grow(40)
        fb.grow(20)
        yield x, fb


def write_config(path: Path, db_url: str, x: XApiEmulator, fb: GraphApiEmulator) -> Path:
    path.write_text(f"""
brands:
  - name: Acme Mobile
    accounts: {{x: [acme_help], facebook: ["{fb.page_id}"]}}
    queries: {{x: ['{QUERY}']}}
platforms:
  x: {{base_url: "{x.url}", bearer_token: "${{T_XB}}", consumer_key: "${{T_XCK}}", consumer_secret: "${{T_XCS}}",
      access_token: "${{T_XAT}}", access_token_secret: "${{T_XATS}}"}}
  facebook: {{base_url: "{fb.url}", page_tokens: {{"{fb.page_id}": "${{T_FB}}"}}}}
database: {{url: "{db_url}"}}
classifier: {{model: lexicon}}
schedule: {{poll_interval_seconds: {{x: 5, facebook: 5}}, jitter_seconds: 0}}
web: {{secret_key: "${{T_WEB}}"}}
""")
    return path


def daemon_env(x: XApiEmulator, fb: GraphApiEmulator) -> dict[str, str]:
    c = x.credentials
    return {**os.environ, "T_XB": c.bearer_token, "T_XCK": c.consumer_key, "T_XCS": c.consumer_secret,
            "T_XAT": c.access_token, "T_XATS": c.access_token_secret, "T_FB": fb.page_token(),
            "T_WEB": "fault-test-secret-0123456789", "PYTHONUNBUFFERED": "1"}


def start_daemon(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "openear.cli", "--config", str(config), "run", "--no-web"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def queue_replies(sessions: sessionmaker[Session], rng: random.Random, count: int) -> None:
    """Agents answer some unanswered inbound mentions (as the web app would: a draft reply)."""
    with sessions.begin() as session:
        answered = select(Reply.mention_id).where(Reply.mention_id.is_not(None))
        candidates = session.scalars(
            select(Mention.id).where(Mention.is_own.is_(False), Mention.id.not_in(answered)).limit(50)
        ).all()
        for mention_id in rng.sample(list(candidates), min(count, len(candidates))):
            mention = session.get(Mention, mention_id)
            assert mention is not None
            session.add(Reply(mention_id=mention_id, platform=mention.platform,
                              text=f"Thanks, we are on it ({mention_id})", idempotency_key=f"fault-{mention_id}"))


def settle(sessions: sessionmaker[Session], x: XApiEmulator, fb: GraphApiEmulator, deadline: float) -> None:
    """Wait until every reply is sent and every expected post and comment is stored."""
    while time.monotonic() < deadline:
        if not missing_posts(sessions, x, fb) and pending_replies(sessions) == 0:
            return
        time.sleep(0.5)


def expected_x_ids(x: XApiEmulator) -> set[str]:
    found, _ = x.store.search(compile_query(QUERY), max_results=10**9)
    return {str(t.id) for t in found}


def expected_fb_ids(fb: GraphApiEmulator) -> set[str]:
    ids = set()
    for post in fb.store.feed_of(fb.page_id, ("visitor",)):
        ids.add(post.id)
        ids.update(c.id for c in fb.store.comments_of(post, stream=True) if not c.author.is_page)
    return ids


def stored_ids(sessions: sessionmaker[Session], platform: str) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Mention.external_id).where(Mention.platform == platform)))


def missing_posts(sessions: sessionmaker[Session], x: XApiEmulator, fb: GraphApiEmulator) -> set[str]:
    return (expected_x_ids(x) - set(stored_ids(sessions, "x"))) | (expected_fb_ids(fb) - set(stored_ids(sessions,
                                                                                                       "facebook")))


def pending_replies(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Reply).where(
            Reply.state != ReplyState.SENT.value)) or 0)


def assert_exactly_once(sessions: sessionmaker[Session], x: XApiEmulator, fb: GraphApiEmulator) -> None:
    x_ids, fb_ids = stored_ids(sessions, "x"), stored_ids(sessions, "facebook")
    assert len(x_ids) == len(set(x_ids)) and len(fb_ids) == len(set(fb_ids))
    assert expected_x_ids(x) <= set(x_ids), "an X post was lost"
    assert expected_fb_ids(fb) <= set(fb_ids), "a Facebook comment was lost"
    with sessions() as session:
        replies = session.execute(select(Reply.platform, Mention.external_id, Reply.state, Reply.text)
                                  .join(Mention, Reply.mention_id == Mention.id)).all()
    assert replies, "the test queued no replies"
    assert {r.state for r in replies} == {ReplyState.SENT.value}, "a reply was lost"
    for platform, external_id, _, text in replies:
        if platform == "x":
            ours, _ = x.store.search(lambda t, target=int(external_id), text=text: (  # type: ignore[misc]
                t.in_reply_to_tweet_id == target and t.author.username == "acme_help" and t.text.endswith(text)
            ), max_results=10)
            assert len(ours) == 1, f"X post {external_id}: {len(ours)} replies"
        else:
            node = fb.store.node(external_id)
            post = getattr(node, "post", node)  # a comment's post, or the post itself
            assert isinstance(post, PostRecord)
            ours = [c for c in fb.store.comments_of(post, stream=True) if c.author.is_page and c.message == text]
            assert len(ours) == 1, f"Facebook {external_id}: {len(ours)} replies"


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    tmp_path: Path, emulators: tuple[XApiEmulator, GraphApiEmulator]
) -> None:
    x, fb = emulators
    db_url = f"sqlite:///{tmp_path / 'daemon.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    sessions = session_factory(engine)
    config, env, log = write_config(tmp_path / "config.yaml", db_url, x, fb), daemon_env(x, fb), tmp_path / "log"
    x.start_live(8)
    fb.start_live(4)
    rng = random.Random(1234)
    for _ in range(20):
        daemon = start_daemon(config, env, log)
        time.sleep(rng.uniform(0.8, 3.5))
        queue_replies(sessions, rng, 2)
        time.sleep(rng.uniform(0.0, 0.6))
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
    x.stop_live()
    fb.stop_live()
    final = start_daemon(config, env, log)
    try:
        settle(sessions, x, fb, time.monotonic() + 90)
    finally:
        final.send_signal(signal.SIGTERM)
        assert final.wait(30) == 0, log.read_text()[-3000:]
    assert_exactly_once(sessions, x, fb)
    assert "Traceback" not in log.read_text()
    engine.dispose()


@pytest.mark.slow
def test_two_daemons_on_one_postgresql_database(pg_databases, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                 emulators: tuple[XApiEmulator, GraphApiEmulator]) -> None:
    x, fb = emulators
    db_url = pg_databases.create()
    engine = make_engine(db_url)
    upgrade(engine)
    sessions = session_factory(engine)
    config, env = write_config(tmp_path / "config.yaml", db_url, x, fb), daemon_env(x, fb)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    x.start_live(8)
    fb.start_live(4)
    rng = random.Random(99)
    daemons = [start_daemon(config, env, log) for log in logs]
    try:
        for round_ in range(8):
            time.sleep(rng.uniform(1.0, 2.5))
            queue_replies(sessions, rng, 3)
            if round_ % 3 == 2:  # now and then one instance dies and comes back
                victim = rng.randrange(2)
                daemons[victim].send_signal(signal.SIGKILL)
                daemons[victim].wait(10)
                daemons[victim] = start_daemon(config, env, logs[victim])
        x.stop_live()
        fb.stop_live()
        settle(sessions, x, fb, time.monotonic() + 90)
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        codes = [d.wait(30) for d in daemons]
    texts = [log.read_text() for log in logs]
    assert codes == [0, 0], [first_traceback(t) or t[-2000:] for t in texts]
    assert_exactly_once(sessions, x, fb)
    # losing a write race to the other instance is expected and retried, never an unexpected error
    assert not any("Traceback" in t for t in texts), [first_traceback(t) for t in texts]
    engine.dispose()


def first_traceback(log: str) -> str:
    """The first traceback in a daemon's log (the failure summary would show only the log's tail)."""
    start = log.find("Traceback")
    return log[max(0, start - 300): start + 3000] if start >= 0 else ""
