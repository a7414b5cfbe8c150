"""`openear db ...`: schema migrations."""

from __future__ import annotations

import typer
from rich.console import Console

from models.config_loader import load_database_config
from models.db import current_revision, head_revision, make_engine, upgrade
from openear.context import CliContext

console = Console()


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="Create and migrate the database.", no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command("upgrade")
    def db_upgrade(ctx: typer.Context) -> None:
        """Apply all pending migrations (safe to run any time)."""
        database = load_database_config(ctx.ensure_object(CliContext).config_path)
        engine = make_engine(database.url)
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
        state = "already up to date" if before == after else f"upgraded {before or 'empty'} -> {after}"
        console.print(f"{database.display_url}: {state}")

    @db_app.command("current")
    def db_current(ctx: typer.Context) -> None:
        """Show the database's schema revision and the code's."""
        database = load_database_config(ctx.ensure_object(CliContext).config_path)
        current = current_revision(make_engine(database.url))
        head = head_revision()
        status = "up to date" if current == head else "outdated: run `openear db upgrade`"
        console.print(f"database: {current or 'empty'}  code: {head}  ({status})")
