"""`openear poll --once` against the X emulator, through the real config and wiring."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openear.cli import app
from sandbox.x_api import XApiEmulator

runner = CliRunner()


@pytest.fixture
def emulator() -> Iterator[XApiEmulator]:
    with XApiEmulator(seed=5) as server:
        server.grow(120)
        yield server


def write_config(tmp_path: Path, emulator: XApiEmulator) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f"""
brands:
  - name: Acme
    accounts: {{x: [acme_help]}}
    queries: {{x: ["acme OR @acme OR @acme_help -is:retweet"]}}
platforms:
  x:
    base_url: {emulator.url}
    bearer_token: ${{T_BEARER}}
    consumer_key: ${{T_CK}}
    consumer_secret: ${{T_CS}}
    access_token: ${{T_AT}}
    access_token_secret: ${{T_ATS}}
database:
  url: sqlite:///{tmp_path / "poll.db"}
classifier:
  model: lexicon
web:
  secret_key: ${{T_WEB}}
""")
    return config


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, emulator: XApiEmulator) -> None:
    creds = emulator.credentials
    for name, value in {"T_BEARER": creds.bearer_token, "T_CK": creds.consumer_key, "T_CS": creds.consumer_secret,
                        "T_AT": creds.access_token, "T_ATS": creds.access_token_secret,
                        "T_WEB": "web-secret-for-tests-123"}.items():
        monkeypatch.setenv(name, value)


def test_poll_once_stores_and_summarises(tmp_path: Path, emulator: XApiEmulator, env: None) -> None:
    config = write_config(tmp_path, emulator)
    refused = runner.invoke(app, ["--config", str(config), "poll", "--once"])
    assert refused.exit_code == 2 and "openear db upgrade" in refused.output  # no schema yet
    assert runner.invoke(app, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    first = runner.invoke(app, ["--config", str(config), "poll", "--once"])
    assert first.exit_code == 0, first.output
    assert "x:Acme:search:0" in first.output and "x:Acme:mentions:acme_help" in first.output
    again = runner.invoke(app, ["--config", str(config), "poll", "--once", "--source", "x:Acme:search:0", "--json"])
    assert again.exit_code == 0
    [result] = json.loads(again.stdout)
    assert result["source"] == "x:Acme:search:0" and result["new"] == 0 and result["error"] is None


def test_poll_with_a_wrong_token_says_what_to_fix(tmp_path: Path, emulator: XApiEmulator, env: None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_BEARER", "revoked-bearer-token-9")
    config = write_config(tmp_path, emulator)
    runner.invoke(app, ["--config", str(config), "db", "upgrade"])
    result = runner.invoke(app, ["--config", str(config), "poll", "--once", "--source", "x:Acme:search:0"])
    assert result.exit_code == 1
    assert "AuthFailed" in result.output and "bearer_token" in result.output
    assert "revoked-bearer-token-9" not in result.output and "Traceback" not in result.output


def test_unknown_source_lists_the_configured_ones(tmp_path: Path, emulator: XApiEmulator, env: None) -> None:
    config = write_config(tmp_path, emulator)
    runner.invoke(app, ["--config", str(config), "db", "upgrade"])
    result = runner.invoke(app, ["--config", str(config), "poll", "--once", "--source", "nope"])
    assert result.exit_code == 2 and "x:Acme:search:0" in result.output
