"""Logging for the CLI and the daemon: human-readable or JSON lines, secrets always redacted."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from models.secrets import RedactingFilter, redact


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("source", "mention", "reply", "job"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of each record (it may be replaced, e.g. in tests)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


# Libraries and frameworks whose INFO lines are routine chatter (matplotlib's categorical-units notes on every
# digest chart, APScheduler's "Adding job tentatively" per job at start-up, alembic's plugin and migration
# steps, httpx's request lines, ...). They are held at WARNING, so their warnings and errors (a job that
# raised, a retried connection) still show; with --log-level DEBUG they speak again. openear's own loggers
# (models.*, listener.*, responders.*, openear.*, sandbox.*) always follow the chosen level.
LIBRARY_LOGGERS = (
    "matplotlib",  # includes matplotlib.font_manager and matplotlib.category
    "PIL",
    "apscheduler",  # apscheduler.executors.default logs a job's exception at ERROR: still shown
    "alembic",  # `openear db upgrade` prints its own summary; alembic's step lines stay quiet, as before
    "urllib3",
    "httpx",
    "httpcore",
    "httpx2",  # httpx's successor (starlette's test client, huggingface_hub)
    "httpcore2",
    "multipart",
    "python_multipart",
    "mail.log",  # aiosmtpd (the demo's mail drop)
)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = StderrHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    chosen = root.level
    # NOTSET: inherit the root's level (DEBUG); otherwise at least WARNING (ERROR stays ERROR)
    library_level = logging.NOTSET if chosen <= logging.DEBUG else max(chosen, logging.WARNING)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(library_level)
