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


LIBRARIES = ("matplotlib", "matplotlib.font_manager", "matplotlib.category", "PIL.PngImagePlugin",
             "apscheduler.scheduler", "apscheduler.executors.default", "urllib3.connectionpool", "httpx", "httpx2",
             "python_multipart.multipart", "alembic.runtime.migration")
OWN = ("models.db", "listener.poller", "responders.dispatch", "openear.app", "sandbox.httpserver")


def _emit_everywhere() -> None:
    for name in (*LIBRARIES, *OWN):
        logging.getLogger(name).debug("debug from %s", name)
        logging.getLogger(name).info("info from %s", name)
        logging.getLogger(name).warning("warning from %s", name)


def test_library_chatter_is_quiet_at_info_and_openear_lines_are_not(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO")
    try:
        _emit_everywhere()
        err = capsys.readouterr().err
        for name in OWN:
            assert f"info from {name}\n" in err and f"warning from {name}\n" in err
            assert f"debug from {name}\n" not in err
        for name in LIBRARIES:
            assert f"info from {name}\n" not in err and f"debug from {name}\n" not in err
            assert f"warning from {name}\n" in err  # a library's warnings and errors still show
    finally:
        logging.getLogger().handlers.clear()


def test_debug_lets_the_libraries_speak_again_and_error_silences_their_warnings(
        capsys: pytest.CaptureFixture[str]) -> None:
    try:
        setup_logging("DEBUG")
        _emit_everywhere()
        err = capsys.readouterr().err
        for name in (*LIBRARIES, *OWN):
            assert f"debug from {name}\n" in err and f"info from {name}\n" in err
        setup_logging("ERROR")
        _emit_everywhere()
        assert "from " not in capsys.readouterr().err
    finally:
        setup_logging("INFO")
        logging.getLogger().handlers.clear()


def test_a_digest_chart_and_scheduler_start_up_log_nothing_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    """The real sources: matplotlib's categorical-units note (five per digest chart), APScheduler's jobs."""
    import io

    import matplotlib
    from apscheduler.schedulers.background import BackgroundScheduler

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    setup_logging("INFO")
    try:
        figure = Figure()
        ax = figure.add_subplot()
        ax.bar(["Wed\n18 Nov", "Thu\n19 Nov"], [3, 5])  # date-like labels, as the digest's volume chart has
        figure.savefig(io.BytesIO(), format="png")
        BackgroundScheduler().add_job(print, "interval", hours=1, id="quiet-probe")  # "Adding job tentatively"
        logging.getLogger("openear.app").info("daemon started")
        err = capsys.readouterr().err
        assert "daemon started" in err
        assert "matplotlib" not in err and "apscheduler" not in err, err
        setup_logging("DEBUG")  # the same calls are logged when asked for: the probe above is not vacuous
        ax.bar(["Fri\n20 Nov"], [1])
        BackgroundScheduler().add_job(print, "interval", hours=1, id="loud-probe")
        err = capsys.readouterr().err
        assert "matplotlib.category" in err and "Adding job tentatively" in err, err
    finally:
        setup_logging("INFO")
        logging.getLogger().handlers.clear()
