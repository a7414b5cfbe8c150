"""The CLI: help texts, init, config check, db commands, friendly errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from openear.cli import app

runner = CliRunner()
SECRET = "cli-secret-value-0123456789"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("OPENEAR_X_BEARER_TOKEN", "OPENEAR_X_CONSUMER_KEY", "OPENEAR_X_CONSUMER_SECRET",
                 "OPENEAR_X_ACCESS_TOKEN", "OPENEAR_X_ACCESS_TOKEN_SECRET", "OPENEAR_FB_PAGE_TOKEN"):
        monkeypatch.setenv(name, SECRET + name)
    monkeypatch.setenv("OPENEAR_SECRET_KEY", SECRET)
    monkeypatch.setenv("OPENEAR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return tmp_path


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "config", "db"):
        assert command in result.output


def test_every_command_comes_from_the_registry_in_help_order() -> None:
    import typer

    from openear.commands import config_cmd, db_cmd, registry

    assert registry.COMMANDS[:2] == [config_cmd.register, db_cmd.register]  # config and db are listed too
    group = typer.main.get_group(app)
    assert group.list_commands(typer.Context(group)) == [
        "init", "poll", "sources", "sandbox", "run", "backfill", "demo", "classify", "eval-classifier",
        "train-classifier", "serve", "digest", "config", "db", "classifier", "user", "customer",
    ]


def test_init_writes_config_and_creates_the_database(env: Path) -> None:
    config = env / "config.yaml"
    result = runner.invoke(app, ["--config", str(config), "init"])
    assert result.exit_code == 0, result.output
    assert config.exists() and (env / "cli.db").exists()
    result = runner.invoke(app, ["--config", str(config), "db", "current"])
    assert "up to date" in result.output
    again = runner.invoke(app, ["--config", str(config), "init"])
    assert again.exit_code == 2 and "--force" in again.output


def test_config_check_prints_a_summary_without_secrets(env: Path) -> None:
    config = env / "config.yaml"
    runner.invoke(app, ["--config", str(config), "init"])
    result = runner.invoke(app, ["config", "check", str(config)])
    assert result.exit_code == 0, result.output
    assert "Acme Mobile" in result.output
    assert SECRET not in result.output


def test_the_shipped_config_gets_no_warnings(env: Path) -> None:
    config = env / "config.yaml"
    runner.invoke(app, ["--config", str(config), "init"])
    result = runner.invoke(app, ["config", "check", str(config)])
    assert result.exit_code == 0 and "warning" not in result.output


def test_config_check_warns_when_answers_or_pages_cannot_be_read(env: Path) -> None:
    config = env / "warn.yaml"
    config.write_text("""
brands:
  - name: Blind
    queries: {x: ["blind -from:blind"]}
    accounts: {facebook: ["111", "222"]}
  - name: Fine
    queries: {x: ["fine"]}
    accounts: {x: [fine_help], facebook: ["333"]}
platforms:
  x: {bearer_token: "${OPENEAR_X_BEARER_TOKEN}"}
  facebook: {page_tokens: {"222": "${OPENEAR_FB_PAGE_TOKEN}", "333": "${OPENEAR_FB_PAGE_TOKEN}"}}
web: {secret_key: "${OPENEAR_SECRET_KEY}"}
""")
    result = runner.invoke(app, ["config", "check", str(config)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning")]
    assert len(warnings) == 2, result.output
    assert "'Blind' has X queries but no own X account (brands[0].accounts.x)" in warnings[0]
    assert "unanswered" in warnings[0]
    assert "'Blind' lists Facebook pages without a token (111)" in warnings[1]
    assert "platforms.facebook.page_tokens" in warnings[1]
    assert SECRET not in result.output
    no_facebook = env / "nofb.yaml"
    no_facebook.write_text(config.read_text().split("  facebook: {page_tokens")[0] +
                           'web: {secret_key: "${OPENEAR_SECRET_KEY}"}\n')
    result = runner.invoke(app, ["config", "check", str(no_facebook)])
    assert "'Fine' lists Facebook pages without a token (333)" in result.output


def test_config_check_error_is_a_message_not_a_traceback(env: Path) -> None:
    bad = env / "bad.yaml"
    bad.write_text("brands:\n  - name: A\n    languagez: [en]\nweb:\n  secret_key: ${OPENEAR_SECRET_KEY}\n")
    result = runner.invoke(app, ["config", "check", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml:3" in result.output and "did you mean 'languages'" in result.output
    assert "Traceback" not in result.output
    assert SECRET not in result.output


def test_db_upgrade_is_idempotent(env: Path) -> None:
    config = env / "config.yaml"
    config.write_text("brands: []\ndatabase:\n  url: ${OPENEAR_DATABASE_URL}\n")
    first = runner.invoke(app, ["--config", str(config), "db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "upgraded empty" in first.output
    second = runner.invoke(app, ["--config", str(config), "db", "upgrade"])
    assert "already up to date" in second.output


def test_db_upgrade_on_a_dead_database_says_what_to_check(env: Path) -> None:
    config = env / "config.yaml"
    config.write_text("database:\n  url: postgresql+psycopg://nobody:pw-secret-1@127.0.0.1:1/x?connect_timeout=2\n")
    result = runner.invoke(app, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 2
    assert "cannot reach the database" in result.output
    assert "pw-secret-1" not in result.output


def test_train_classifier_from_corrections_learns_the_complaint_score(env: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """No sentiment corrections (nothing retrained), but enough answered/dismissed mentions: the complaint
    score is learned, gated and switched; a second run without new outcomes learns nothing."""
    from models.db import make_engine, session_factory
    from models.sentiment import versions
    from tests.responders.test_learning import outcomes

    monkeypatch.setenv("OPENEAR_DATA_DIR", str(env / "data"))
    config = env / "config.yaml"
    assert runner.invoke(app, ["--config", str(config), "init"]).exit_code == 0
    engine = make_engine(f"sqlite:///{env / 'cli.db'}")
    with session_factory(engine).begin() as session:
        outcomes(session, 120, lambda _m, question: question)
    engine.dispose()
    (env / "datasets").mkdir()
    args = ["--config", str(config), "train-classifier", "--data", str(env / "datasets"), "--from-corrections",
            "--min-outcomes", "20"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "fewer than the 50 needed" in result.output and "now active" in result.output
    assert versions.active_complaint_model() is not None
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "no new answered or dismissed mentions" in again.output, again.output
    rolled = runner.invoke(app, ["--config", str(config), "classifier", "rollback"])
    assert rolled.exit_code == 0 and "active classifier: shipped" in rolled.output, rolled.output
    assert versions.active_complaint_model() is None
    from sqlalchemy import select

    from models.orm import AuditEvent

    engine = make_engine(f"sqlite:///{env / 'cli.db'}")
    with session_factory(engine)() as session:
        assert [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))] == [
            "classifier_switch", "classifier_rollback"]
    engine.dispose()


def test_train_classifier_refuses_embedding_distillation_without_a_teacher(env: Path) -> None:
    (env / "datasets").mkdir()
    result = runner.invoke(app, ["train-classifier", "--data", str(env / "datasets"), "--embed-distil", "1"])
    assert result.exit_code == 2 and "--teacher" in result.output, result.output
