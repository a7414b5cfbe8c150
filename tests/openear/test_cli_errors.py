"""Every user-fixable error of every database-touching command is one message and exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from openear.cli import app

runner = CliRunner()
DB_COMMANDS = [["db", "upgrade"], ["db", "current"], ["user", "list"], ["digest"], ["poll", "--once"]]
COMMANDS = [*DB_COMMANDS, ["config", "check"], ["sources"]]


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("OPENEAR_X_BEARER_TOKEN", "OPENEAR_X_CONSUMER_KEY", "OPENEAR_X_CONSUMER_SECRET",
                 "OPENEAR_X_ACCESS_TOKEN", "OPENEAR_X_ACCESS_TOKEN_SECRET", "OPENEAR_FB_PAGE_TOKEN"):
        monkeypatch.setenv(name, "secret-" + name)
    monkeypatch.setenv("OPENEAR_SECRET_KEY", "cli-secret-value-0123456789")
    monkeypatch.setenv("OPENEAR_DATABASE_URL", f"sqlite:///{tmp_path / 'ok.db'}")
    path = tmp_path / "config.yaml"
    result = runner.invoke(app, ["--config", str(path), "init"])
    assert result.exit_code == 0, result.output
    return path


def _bad_urls(tmp_path: Path) -> dict[str, tuple[str, str]]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    (tmp_path / "a-folder.db").mkdir()
    return {
        "parent is a file": (f"sqlite:///{blocker}/openear.db", "is a file, not a folder"),
        "missing folder": (f"sqlite:///{tmp_path}/nowhere/deeper/openear.db", "does not exist"),
        "path is a folder": (f"sqlite:///{tmp_path}/a-folder.db", "that is a folder"),
        "not a URL": ("not a database url", "not a valid database URL"),
    }


def _assert_one_message(result: object, command: list[str], needle: str) -> None:
    output = getattr(result, "output", "")
    assert getattr(result, "exit_code", None) == 2, (command, output, getattr(result, "exception", None))
    assert "Traceback" not in output and needle in output, (command, output)


@pytest.mark.parametrize("command", DB_COMMANDS, ids=" ".join)
def test_bad_database_paths_and_urls(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     command: list[str]) -> None:
    for _case, (url, needle) in _bad_urls(tmp_path).items():
        monkeypatch.setenv("OPENEAR_DATABASE_URL", url)
        result = runner.invoke(app, ["--config", str(config), *command])
        _assert_one_message(result, command, needle)
    assert not (tmp_path / "nowhere").exists()  # nothing created behind the user's back


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_bad_log_level_is_one_message(config: Path, command: list[str]) -> None:
    result = runner.invoke(app, ["--log-level", "LOUD", "--config", str(config), *command])
    _assert_one_message(result, command, "not a log level")


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_missing_config_file_is_one_message(tmp_path: Path, command: list[str]) -> None:
    result = runner.invoke(app, ["--config", str(tmp_path / "absent.yaml"), *command])
    _assert_one_message(result, command, "absent.yaml")


def test_init_creates_a_missing_folder(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENEAR_DATABASE_URL", f"sqlite:///{tmp_path}/new/place/openear.db")
    result = runner.invoke(app, ["--config", str(tmp_path / "second.yaml"), "init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "place" / "openear.db").exists()


def test_run_refuses_a_facebook_user_token_at_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user token reads every comment list as empty, without an error: `openear run` must not start
    quietly polling nothing. It stops with the fix before any job runs (and never prints the token)."""
    from models.db import make_engine, upgrade
    from sandbox.graph_api import GraphApiEmulator
    from sandbox.x_api import XApiEmulator
    from tests.openear.test_daemon_faults import daemon_env, write_config

    with XApiEmulator(seed=3) as x, GraphApiEmulator(seed=3) as fb:
        db_url = f"sqlite:///{tmp_path / 'run.db'}"
        upgrade(make_engine(db_url))
        config = write_config(tmp_path / "config.yaml", db_url, x, fb)
        user_token = fb.user_token()
        for name, value in {**daemon_env(x, fb), "T_FB": user_token}.items():
            if name.startswith("T_"):
                monkeypatch.setenv(name, value)
        result = runner.invoke(app, ["--config", str(config), "run", "--no-web"])
        _assert_one_message(result, ["run"], "user access token")
        assert f'page_tokens["{fb.page_id}"]' in result.output and user_token not in result.output
        assert "openear running" not in result.output
