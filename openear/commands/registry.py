"""Every command group beyond config/db, in one explicit list (the CLI's only extension point)."""

from __future__ import annotations

from collections.abc import Callable

import typer

COMMANDS: list[Callable[[typer.Typer], None]] = []
