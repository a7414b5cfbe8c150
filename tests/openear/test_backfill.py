"""`openear backfill` against the X and Facebook emulators: drained, resumable, idempotent, kill-safe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from models.config_loader import load_config
from models.db import make_engine, session_factory, upgrade
from models.orm import Mention, PollCursor, QueueItem
from openear.app import OpenEar
from openear.cli import app
from openear.commands.backfill_cmd import backfill_config, backfill_order
from sandbox.graph_api import GraphApiEmulator
from sandbox.httpserver import Request
from sandbox.x_api import XApiEmulator
from sandbox.x_query import compile_query
from sandbox.x_store import SUPPORT_USER_ID
from tests.openear.test_daemon_faults import daemon_env

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
QUERY = "(acme OR @acme OR @acme_help OR #AcmeMobile) -is:retweet -from:acme -from:acme_help"
CUSTOMER = "dana_customer"


@pytest.fixture
def emulators() -> Iterator[tuple[XApiEmulator, GraphApiEmulator]]:
    with XApiEmulator(seed=31) as x, GraphApiEmulator(seed=31) as fb:
        x.add_user(CUSTOMER, "Dana")
        yield x, fb


def write_config(tmp_path: Path, x: XApiEmulator, fb: GraphApiEmulator, budget: str = "per_poll: 10",
                 db_url: str | None = None) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f"""
brands:
  - name: Acme Mobile
    accounts: {{x: [acme_help], facebook: ["{fb.page_id}"]}}
    queries: {{x: ['{QUERY}']}}
platforms:
  x: {{base_url: "{x.url}", bearer_token: "${{T_XB}}", consumer_key: "${{T_XCK}}", consumer_secret: "${{T_XCS}}",
      access_token: "${{T_XAT}}", access_token_secret: "${{T_XATS}}", read_budget: {{{budget}}}}}
  facebook: {{base_url: "{fb.url}", page_tokens: {{"{fb.page_id}": "${{T_FB}}"}}}}
database: {{url: "{db_url or f"sqlite:///{tmp_path / 'backfill.db'}"}"}}
classifier: {{model: lexicon}}
web: {{secret_key: "${{T_WEB}}"}}
""")
    return config


def environment(x: XApiEmulator, fb: GraphApiEmulator) -> dict[str, str]:
    """The credentials variables write_config references (those of the daemon fault test)."""
    return {k: v for k, v in daemon_env(x, fb).items() if k.startswith("T_")}


@pytest.fixture
def setup(tmp_path: Path, emulators: tuple[XApiEmulator, GraphApiEmulator],
          monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[XApiEmulator, GraphApiEmulator, sessionmaker[Session]]]:
    x, fb = emulators
    for name, value in environment(x, fb).items():
        monkeypatch.setenv(name, value)
    engine = make_engine(f"sqlite:///{tmp_path / 'backfill.db'}")
    upgrade(engine)
    yield x, fb, session_factory(engine)
    engine.dispose()


def backfill(config: Path, *args: str) -> Any:
    return runner.invoke(app, ["--config", str(config), "backfill", *args])


def expected_x(x: XApiEmulator) -> set[str]:
    """What X still serves: 7 days of search, the support account's mentions and own posts (no retweets)."""
    everything = 10**9
    found, _ = x.store.search(compile_query(QUERY), max_results=everything)
    mentions, _ = x.store.mentions("acme_help", max_results=everything, exclude=frozenset({"retweets"}))
    own, _ = x.store.timeline(SUPPORT_USER_ID, max_results=everything, exclude=frozenset({"retweets"}))
    return {str(t.id) for t in [*found, *mentions, *own]}


def expected_fb(fb: GraphApiEmulator) -> set[str]:
    ids = set()
    for post in fb.store.feed_of(fb.page_id, ("visitor",)):
        ids.add(post.id)
        ids.update(c.id for c in fb.store.comments_of(post, stream=True))  # the page's own answers too
    return ids


def stored(sessions: sessionmaker[Session], platform: str) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Mention.external_id).where(Mention.platform == platform)))


def assert_everything_once(sessions: sessionmaker[Session], x: XApiEmulator, fb: GraphApiEmulator) -> None:
    x_ids, fb_ids = stored(sessions, "x"), stored(sessions, "facebook")
    assert len(x_ids) == len(set(x_ids)) and len(fb_ids) == len(set(fb_ids))
    assert expected_x(x) <= set(x_ids), "an X post was lost"
    assert expected_fb(fb) <= set(fb_ids), "a Facebook comment was lost"
    with sessions() as session:
        items = session.scalars(select(QueueItem.mention_id)).all()
        own_queued = session.scalar(select(func.count()).select_from(QueueItem).join(
            Mention, QueueItem.mention_id == Mention.id).where(Mention.is_own.is_(True)))
    assert len(items) == len(set(items)) and own_queued == 0


def test_backfill_drains_every_source_past_the_per_poll_budget_and_again_stores_nothing(
        tmp_path: Path, setup: tuple[XApiEmulator, GraphApiEmulator, sessionmaker[Session]]) -> None:
    x, fb, sessions = setup
    x.grow(600)
    fb.grow(150)
    config = write_config(tmp_path, x, fb)  # read_budget.per_poll 10: the daemon would need 40+ polls
    first = backfill(config)
    assert first.exit_code == 0, first.output
    assert_everything_once(sessions, x, fb)
    x_count, fb_count = len(stored(sessions, "x")), len(stored(sessions, "facebook"))
    assert x_count > 300 and fb_count > 100
    for name in ("x:Acme Mobile:search:0", "x:Acme Mobile:mentions:acme_help", "x:Acme Mobile:own:acme_help",
                 f"facebook:Acme Mobile:page:{fb.page_id}"):
        assert name in first.output
    assert f"backfill: {x_count + fb_count} new mentions from 4 sources" in first.output
    with sessions() as session:
        own = session.scalar(select(func.count()).select_from(Mention).where(
            Mention.platform == "x", Mention.is_own.is_(True), Mention.in_reply_to_id.is_not(None)))
        assert own and own > 10  # the brand's answers, which the query's -from: leaves out of search
    again = backfill(config)
    assert again.exit_code == 0, again.output
    assert "backfill: 0 new mentions from 4 sources" in again.output
    assert (len(stored(sessions, "x")), len(stored(sessions, "facebook"))) == (x_count, fb_count)


def test_a_rate_limit_stops_that_source_and_the_next_run_goes_on(
        tmp_path: Path, setup: tuple[XApiEmulator, GraphApiEmulator, sessionmaker[Session]]) -> None:
    x, fb, sessions = setup
    x.limits["search"] = 3  # three pages of 100, then this 15-minute window is spent
    x.grow(900)
    fb.grow(30)
    config = write_config(tmp_path, x, fb)
    first = backfill(config)
    assert first.exit_code == 1, first.output
    assert "rate limited" in first.output and "run `openear backfill` again after" in first.output
    assert "goes on where it stopped" in first.output
    x_first = set(stored(sessions, "x"))
    assert 300 <= len(x_first & expected_x(x)) < len(expected_x(x))
    assert expected_fb(fb) <= set(stored(sessions, "facebook"))  # the other sources went on
    x.reset_rate_limits()  # the window is over
    x.limits["search"] = 450
    second = backfill(config, "--source", "x:Acme Mobile:search:0")
    assert second.exit_code == 0, second.output
    assert_everything_once(sessions, x, fb)


def test_the_day_budget_holds(tmp_path: Path,
                              setup: tuple[XApiEmulator, GraphApiEmulator, sessionmaker[Session]]) -> None:
    x, fb, sessions = setup
    x.grow(900)
    config = write_config(tmp_path, x, fb, budget="per_poll: 10, per_day: 200")
    result = backfill(config, "--source", "x:Acme Mobile:search:0")
    assert result.exit_code == 1, result.output
    assert "per_day" in result.output and "again after" in result.output
    assert 100 <= len(stored(sessions, "x")) <= 200


def test_own_sources_are_drained_last(tmp_path: Path,
                                      setup: tuple[XApiEmulator, GraphApiEmulator, sessionmaker[Session]]) -> None:
    x, fb, sessions = setup
    complaint = x.add_tweet(CUSTOMER, "@acme my invoice is wrong again")
    x.add_tweet("acme_help", f"@{CUSTOMER} Sorry! We fixed it and sent a DM", in_reply_to=complaint)
    result = backfill(write_config(tmp_path, x, fb))
    assert result.exit_code == 0, result.output
    assert result.output.index(":own:acme_help") > result.output.index(":mentions:acme_help")
    with sessions() as session:
        state = session.scalar(select(QueueItem.state).join(Mention, QueueItem.mention_id == Mention.id)
                               .where(Mention.external_id == complaint))
    assert state == "answered"
    openear = OpenEar(backfill_config(load_config(tmp_path / "config.yaml")))
    kinds = [s.kind for _, s in backfill_order(openear.sources())]
    assert kinds[-1] == "own" and kinds.index("own") > max(i for i, k in enumerate(kinds) if k != "own")
    assert openear.config.platforms.x is not None and openear.config.platforms.x.read_budget.per_poll == 30_000
    openear.close()


def test_a_page_answer_on_an_old_post_is_read_as_the_brand(
        tmp_path: Path, setup: tuple[XApiEmulator, GraphApiEmulator, sessionmaker[Session]]) -> None:
    """Facebook's own voice comes from the page source itself: a reply the page posts later, on a post
    from 12 days ago, is stored as the brand's with the comment it answers, and closes its item."""
    x, fb, sessions = setup
    config = write_config(tmp_path, x, fb)
    post = fb.add_post("Pat Visitor", "my contract was cancelled", created=time.time() - 12 * 86400)
    comment = fb.add_comment(post, "Pat Visitor", "and nobody calls back", created=time.time() - 12 * 86400 + 60)
    assert backfill(config).exit_code == 0
    answer = fb.add_comment(post, fb.page_id, "Sorry Pat, we call you today", parent=comment)
    result = backfill(config, "--source", f"facebook:Acme Mobile:page:{fb.page_id}")
    assert result.exit_code == 0, result.output
    with sessions() as session:
        mention = session.scalars(select(Mention).where(Mention.external_id == answer)).one()
        assert mention.is_own and mention.in_reply_to_id == comment
        state = session.scalar(select(QueueItem.state).join(Mention, QueueItem.mention_id == Mention.id)
                               .where(Mention.external_id == comment))
    assert state == "answered"


def test_an_unknown_source_is_a_usage_error(tmp_path: Path,
                                            setup: tuple[XApiEmulator, GraphApiEmulator, sessionmaker[Session]]
                                            ) -> None:
    x, fb, _ = setup
    result = backfill(write_config(tmp_path, x, fb), "--source", "x:nope")
    assert result.exit_code == 2 and "x:Acme Mobile:own:acme_help" in result.output


@pytest.mark.slow
def test_sigkill_mid_backfill_loses_and_duplicates_nothing(
        tmp_path: Path, emulators: tuple[XApiEmulator, GraphApiEmulator], db_url: str) -> None:
    x, fb = emulators
    x.grow(3000)
    fb.grow(400)

    def slow(request: Request) -> None:  # a slower platform, so the kills land in the middle
        time.sleep(0.03)

    x.add_hook(slow)
    fb.add_hook(slow)
    config = write_config(tmp_path, x, fb, db_url=db_url)  # each backend (a migrated, empty database)
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    env = {**os.environ, **environment(x, fb), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "backfill.log"
    command = [sys.executable, "-m", "openear.cli", "--config", str(config), "backfill"]

    def progress() -> tuple[int, int]:
        with sessions() as session:
            return (int(session.scalar(select(func.count()).select_from(PollCursor)) or 0),
                    int(session.scalar(select(func.count()).select_from(Mention)) or 0))

    killed = 0
    for _ in range(3):
        before = progress()
        with log.open("ab") as out:
            child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None and progress() == before:
            time.sleep(0.02)  # until a poll committed
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            killed += 1
        child.wait(30)
    assert killed >= 1, "the backfill finished before any kill:\n" + log.read_text(errors="replace")[-3000:]
    final = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert_everything_once(sessions, x, fb)
    x_count, fb_count = len(stored(sessions, "x")), len(stored(sessions, "facebook"))
    assert x_count > 1500 and fb_count > 300
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "backfill: 0 new mentions from 4 sources" in again.stdout, again.stdout
    assert (len(stored(sessions, "x")), len(stored(sessions, "facebook"))) == (x_count, fb_count)
    assert "Traceback" not in log.read_text() + final.stdout + final.stderr
    engine.dispose()
