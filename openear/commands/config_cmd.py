"""`openear init` and `openear config check`."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import typer
from rich.console import Console
from rich.pretty import Pretty

from models.config import summary
from models.config_loader import load_config, load_database_config
from models.db import make_engine, upgrade
from openear.context import CliContext, UsageError

console = Console()


def config_template() -> str:
    """The documented example config (the same text as config.yaml at the repo root)."""
    return files("openear").joinpath("templates/config.yaml").read_text(encoding="utf-8")


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(help="Inspect and validate the configuration.", no_args_is_help=True)
    app.add_typer(config_app, name="config")

    @config_app.command("check")
    def check(
        ctx: typer.Context,
        path: Path | None = typer.Argument(None, help="Config file (default: --config, then config.yaml)."),
    ) -> None:
        """Validate a config file and print a summary (secrets redacted)."""
        target = path or ctx.ensure_object(CliContext).config_path
        config = load_config(target)
        console.print(f"[green]ok[/]: {target} is valid")
        console.print(Pretty(summary(config)))

    @app.command("init")
    def init(
        ctx: typer.Context,
        path: Path | None = typer.Argument(None, help="Where to write the config (default: --config)."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing config file."),
    ) -> None:
        """Write a documented config file and create the database it names."""
        target = path or ctx.ensure_object(CliContext).config_path
        if target.exists() and not force:
            raise UsageError(f"{target} exists already; pass --force to overwrite it")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(config_template(), encoding="utf-8")
        console.print(f"wrote {target}")
        database = load_database_config(target)
        upgrade(make_engine(database.url, create_parent=True))
        console.print(f"database ready: {database.display_url}")
        console.print("next: set the environment variables it references, then `openear config check`")
