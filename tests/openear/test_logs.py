"""Logs: human-readable or JSON lines, and never a secret in either."""

from __future__ import annotations

import json
import logging

import pytest

from models.secrets import register_secret
from openear.logs import setup_logging


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_lines_never_contain_secrets(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "sk-live-0123456789abcdef"
    register_secret(secret)
    setup_logging("INFO", fmt)
    log = logging.getLogger("openear.test")
    log.info("connecting with %s", secret, extra={"source": "x:acme:search:0"})
    try:
        raise ValueError(f"token {secret} rejected")
    except ValueError:
        log.exception("request failed")
    err = capsys.readouterr().err
    assert secret not in err and "***" in err
    if fmt == "json":
        lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert lines[0]["message"] == "connecting with ***" and lines[0]["source"] == "x:acme:search:0"
        assert lines[1]["level"] == "error" and "ValueError" in lines[1]["error"]
    logging.getLogger().handlers.clear()
