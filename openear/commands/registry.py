"""Every command group of the CLI, in one explicit list (its only extension point), in `openear --help` order."""

from __future__ import annotations

from collections.abc import Callable

import typer

from openear.commands import backfill_cmd, config_cmd, db_cmd, demo_cmd, listen_cmd


def _optional(module: str) -> list[Callable[[typer.Typer], None]]:
    """Command groups whose layer may be absent from a slim install."""
    from importlib import import_module

    try:
        return [import_module(module).register]
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise  # a real import error inside the module: never hide it
        return []


COMMANDS: list[Callable[[typer.Typer], None]] = [
    config_cmd.register,
    db_cmd.register,
    listen_cmd.register,
    backfill_cmd.register,
    demo_cmd.register,
    *_optional("openear.commands.classifier_cmd"),
    *_optional("openear.commands.web_cmd"),
    *_optional("openear.commands.customer_cmd"),
    *_optional("openear.commands.digest_cmd"),
]
