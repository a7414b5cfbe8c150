"""Config loading: strict schema, actionable errors with lines and hints, env vars, secrets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from models.config import summary
from models.config_loader import ConfigError, load_config, parse_config
from models.secrets import RedactingFilter

MINIMAL = """\
brands:
  - name: Acme
    queries:
      x: ["acme -is:retweet"]
platforms:
  x:
    bearer_token: ${T_X_BEARER}
web:
  secret_key: ${T_WEB_SECRET}
"""

BEARER = "AAAA-bearer-value-123456"
WEB_SECRET = "web-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_X_BEARER", BEARER)
    monkeypatch.setenv("T_WEB_SECRET", WEB_SECRET)


def problems_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cfg.yaml")
    return info.value


def test_minimal_config_loads_with_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config.brands[0].name == "Acme"
    assert config.platforms.x is not None
    assert config.platforms.x.bearer_token.get_secret_value() == BEARER
    assert config.database.url == "sqlite:///openear.db"
    assert config.schedule.poll_interval_seconds == {}  # each platform's own default (listener.platforms.SPECS)
    assert config.schedule.poll_seconds("x", 60) == 60


def test_unknown_key_names_line_and_suggests_the_closest_key() -> None:
    error = problems_of(MINIMAL.replace("    queries:", "    querys:"))
    [problem] = error.problems
    assert problem.path == "brands[0].querys"
    assert problem.line == 3
    assert problem.hint is not None and "did you mean 'queries'?" in problem.hint
    assert "cfg.yaml:3" in str(error)


def test_quoted_number_for_an_int_says_so() -> None:
    text = MINIMAL + "schedule:\n  poll_interval_seconds:\n    x: \"30\"\n"
    [problem] = problems_of(text).problems
    assert problem.path == "schedule.poll_interval_seconds.x"
    assert problem.line == 12
    assert "expected an integer" in problem.message
    assert problem.hint is not None and "without quotes" in problem.hint


def test_poll_interval_of_an_unknown_platform_is_refused_with_a_suggestion() -> None:
    text = MINIMAL + "schedule:\n  poll_interval_seconds:\n    facebok: 30\n    x: 2\n"
    problems = problems_of(text).problems
    assert [p.path for p in problems] == ["schedule.poll_interval_seconds"]
    assert "unknown platform 'facebok' (did you mean 'facebook'?)" in problems[0].message
    config = parse_config(MINIMAL + "schedule:\n  poll_interval_seconds:\n    facebook: 30\n")
    assert config.schedule.poll_seconds("facebook", 120) == 30 and config.schedule.poll_seconds("x", 60) == 60
    [too_fast] = problems_of(MINIMAL + "schedule:\n  poll_interval_seconds:\n    x: 2\n").problems
    assert "at most every 5 seconds" in too_fast.message


def test_wrong_type_for_a_list_is_reported() -> None:
    [problem] = problems_of(MINIMAL.replace('x: ["acme -is:retweet"]', "x: 5")).problems
    assert problem.path == "brands[0].queries.x"
    assert "expected a list" in problem.message


def test_missing_environment_variable_is_named() -> None:
    text = MINIMAL.replace("${T_WEB_SECRET}", "${T_UNSET_VARIABLE_XYZ}")
    [problem] = problems_of(text).problems
    assert "T_UNSET_VARIABLE_XYZ" in problem.message
    assert problem.path == "web.secret_key"
    assert problem.line == 9


def test_environment_default_is_used_when_unset() -> None:
    config = parse_config(MINIMAL + "database:\n  url: ${T_UNSET_DB_URL:-sqlite:///x.db}\n")
    assert config.database.url == "sqlite:///x.db"


def test_bad_yaml_reports_the_line() -> None:
    error = problems_of(MINIMAL + "schedule:\n  digest_time: [unclosed\n")
    [problem] = error.problems
    assert problem.message.startswith("invalid YAML")
    assert problem.line is not None and problem.line >= 11


def test_all_problems_are_reported_at_once() -> None:
    text = MINIMAL.replace("    queries:", "    querys:") + "queue:\n  sla_hours: -1\n  sla_hourz: 2\n"
    paths = {p.path for p in problems_of(text).problems}
    assert paths == {"brands[0].querys", "queue.sla_hours", "queue.sla_hourz"}


def test_invalid_timezone_and_digest_time() -> None:
    text = MINIMAL + "schedule:\n  timezone: Mars/Base\n  digest_time: '25:00'\n"
    by_path = {p.path: p for p in problems_of(text).problems}
    assert "unknown timezone" in by_path["schedule.timezone"].message
    assert "schedule.digest_time" in by_path


def test_no_brand_is_an_error() -> None:
    error = problems_of("brands: []\nweb:\n  secret_key: ${T_WEB_SECRET}\n")
    assert error.problems[0].path == "brands"


def test_file_not_found_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="openear init"):
        load_config(tmp_path / "missing.yaml")


def test_secrets_never_appear_in_repr_or_summary() -> None:
    config = parse_config(MINIMAL + "database:\n  url: postgresql+psycopg://u:pg-password-42@db/x\n")
    rendered = repr(config) + str(summary(config)) + str(config.model_dump())
    for secret in (BEARER, WEB_SECRET, "pg-password-42"):
        assert secret not in rendered


def test_secrets_are_redacted_in_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    parse_config(MINIMAL)
    logger = logging.getLogger("test.redaction")
    caplog.handler.addFilter(RedactingFilter())
    logger.warning("calling API with token %s", BEARER)
    try:
        raise RuntimeError(f"bad secret {WEB_SECRET}")
    except RuntimeError:
        logger.exception("failed")
    assert BEARER not in caplog.text and WEB_SECRET not in caplog.text
    assert "***" in caplog.text


def test_example_config_at_repo_root_is_valid_and_matches_the_template(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[2]
    for name in ("OPENEAR_X_BEARER_TOKEN", "OPENEAR_X_CONSUMER_KEY", "OPENEAR_X_CONSUMER_SECRET",
                 "OPENEAR_X_ACCESS_TOKEN", "OPENEAR_X_ACCESS_TOKEN_SECRET", "OPENEAR_FB_PAGE_TOKEN"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    monkeypatch.setenv("OPENEAR_SECRET_KEY", "0123456789abcdef0123")
    config = load_config(root / "config.yaml")
    assert config.brands[0].accounts.x == ["acme", "acme_help"]
    template = root / "openear" / "templates" / "config.yaml"
    assert template.read_text() == (root / "config.yaml").read_text()


def test_classifier_retrain_is_checked_at_start_up(tmp_path: Path) -> None:
    on = MINIMAL + "classifier:\n  retrain:\n    enabled: true\n"
    messages = [p.message for p in problems_of(on).problems]
    assert any("needs classifier.retrain.data" in m for m in messages), messages
    nowhere = MINIMAL + f"classifier:\n  retrain:\n    enabled: true\n    data: {tmp_path}\n"
    by_path = {p.path: p for p in problems_of(nowhere).problems}
    assert "holds no */val.tsv" in by_path["classifier.retrain.data"].message
    (tmp_path / "tweeteval").mkdir()
    (tmp_path / "tweeteval" / "val.tsv").write_text("text\tlabel\nok\tneutral\n", encoding="utf-8")
    config = parse_config(nowhere, "cfg.yaml")
    assert config.classifier.retrain.enabled and config.classifier.adapt_priors
