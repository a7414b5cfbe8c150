"""`openear user add|set|list` (the web app's accounts from the command line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from openear.cli import app

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "brands:\n  - name: Acme\nweb:\n  secret_key: cli-test-secret-key-0123\n"
        f"database:\n  url: sqlite:///{tmp_path / 'cli.db'}\n"
    )
    assert runner.invoke(app, ["--config", str(path), "db", "upgrade"]).exit_code == 0
    return path


def test_user_add_list_and_set(config: Path) -> None:
    base = ["--config", str(config), "user"]
    added = runner.invoke(app, [*base, "add", "root", "--role", "admin", "--password-stdin"],
                          input="a-long-password\n")
    assert added.exit_code == 0, added.output
    assert "created root (admin)" in added.output
    prompted = runner.invoke(app, [*base, "add", "alice"], input="alice-password\nalice-password\n")
    assert prompted.exit_code == 0, prompted.output
    assert "alice-password" not in prompted.output
    duplicate = runner.invoke(app, [*base, "add", "alice", "--password-stdin"], input="whatever-pw\n")
    assert duplicate.exit_code == 2 and "taken" in duplicate.output
    short = runner.invoke(app, [*base, "add", "bob", "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "at least 8" in short.output
    assert runner.invoke(app, [*base, "set", "alice", "--inactive"]).exit_code == 0
    listed = runner.invoke(app, [*base, "list"])
    assert "root" in listed.output and "admin" in listed.output and "deactivated" in listed.output
    last_admin = runner.invoke(app, [*base, "set", "root", "--role", "agent"])
    assert last_admin.exit_code == 2 and "last active admin" in last_admin.output
    assert "serve" in runner.invoke(app, ["--help"]).output
