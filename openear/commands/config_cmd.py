"""`openear init` and `openear config check`."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import typer
from rich.console import Console
from rich.pretty import Pretty

from models.config import Config, summary
from models.config_loader import load_config, load_database_config
from models.db import make_engine, upgrade
from openear.context import CliContext, UsageError

console = Console()


def config_template() -> str:
    """The documented example config (the same text as config.yaml at the repo root)."""
    return files("openear").joinpath("templates/config.yaml").read_text(encoding="utf-8")


def config_warnings(config: Config) -> list[str]:
    """What a valid config still gets wrong: listening that cannot see the brand's answers, pages unread."""
    warnings = []
    x, fb, ig = config.platforms.x, config.platforms.facebook, config.platforms.instagram
    for i, brand in enumerate(config.brands):
        if brand.accounts.instagram and (ig is None or ig.enabled):
            missing_ig = [a for a in brand.accounts.instagram if ig is None or a not in ig.account_tokens]
            if missing_ig:
                where = "platforms.instagram.account_tokens" if ig is not None else \
                    "a platforms.instagram section with tokens"
                warnings.append(f"brand {brand.name!r} lists Instagram accounts without a token "
                                f"({', '.join(missing_ig)}): they are not read; add {where} for each (the page "
                                "access token of the Facebook page the account is connected to)")
        if brand.queries.x and not brand.accounts.x and x is not None and x.enabled:
            warnings.append(f"brand {brand.name!r} has X queries but no own X account (brands[{i}].accounts.x): "
                            "its answers on X are never read, so every complaint stays unanswered in the queue "
                            "and the digest; add the handles the brand answers from")
        if not brand.accounts.facebook or (fb is not None and not fb.enabled):
            continue
        missing = [page for page in brand.accounts.facebook if fb is None or page not in fb.page_tokens]
        if missing:
            where = "platforms.facebook.page_tokens" if fb is not None else "a platforms.facebook section with tokens"
            warnings.append(f"brand {brand.name!r} lists Facebook pages without a token ({', '.join(missing)}): "
                            f"they are not read; add {where} for each (the page access token)")
    public = config.web.public_url or ""
    if ig is not None and ig.enabled and ig.webhooks is not None and not public.startswith("https://"):
        warnings.append("platforms.instagram.webhooks is set but web.public_url is not an https:// address: Meta "
                        "delivers @mentions only to a public HTTPS callback; set web.public_url and subscribe "
                        "<web.public_url>/webhooks/instagram to the Instagram field `mentions` in the App Dashboard")
    return warnings


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
        for warning in config_warnings(config):
            console.print(f"[yellow]warning[/]: {warning}", soft_wrap=True, highlight=False)

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
