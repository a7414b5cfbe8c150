"""The `openear` command line: one Typer app; each command group lives in openear/commands/."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from models.errors import OpenEarError
from models.secrets import redact
from openear.commands import registry
from openear.context import CliContext
from openear.logs import setup_logging

err_console = Console(stderr=True)
USER_ERRORS = (OpenEarError,)  # the root of openear's one exception tree (models/errors.py)


class FriendlyGroup(TyperGroup):
    """Turns the errors a user can fix into a clear message and exit code 2, never a traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            err_console.print(f"[bold red]error:[/] {redact(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class LogFormat(str, enum.Enum):
    text = "text"
    json = "json"


app = typer.Typer(
    name="openear",
    cls=FriendlyGroup,
    help="Hear every brand mention on X and Facebook, rank the complaints, answer them in public.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Path = typer.Option(
        Path("config.yaml"), "--config", "-c", envvar="OPENEAR_CONFIG", help="Path of the config file."
    ),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
    log_format: LogFormat = typer.Option(LogFormat.text, "--log-format", help="text (default) or json lines."),
) -> None:
    """openear: social-media listening and response."""
    if log_level.upper() not in LOG_LEVELS:
        raise typer.BadParameter(f"{log_level!r} is not a log level; use one of {', '.join(LOG_LEVELS)}",
                                 param_hint="--log-level")
    setup_logging(log_level, log_format.value)
    ctx.obj = CliContext(config_path=config)


def _register_commands() -> None:
    """Every command group comes from one explicit list, in `--help` order (no magic)."""
    for register in registry.COMMANDS:
        register(app)


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
