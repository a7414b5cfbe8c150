"""`openear digest`: build a brand's daily digest, write it as HTML, or archive and send it (once)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from openear.context import CliContext, UsageError

console = Console()


def _out_path(out: Path, brand: str, several: bool) -> Path:
    if not several:
        return out
    slug = re.sub(r"[^a-z0-9]+", "-", brand.lower()).strip("-")
    return out.with_name(f"{out.stem}-{slug}{out.suffix or '.html'}")


def register(app: typer.Typer) -> None:
    @app.command("digest")
    def digest(
        ctx: typer.Context,
        day: str | None = typer.Option(None, "--date", help="Local day YYYY-MM-DD (default: yesterday in the "
                                                            "brand's timezone)."),
        brand: str | None = typer.Option(None, "--brand", help="Only this brand (default: every brand)."),
        send: bool = typer.Option(False, "--send", help="Archive and email it (never twice for a brand-day)."),
        out: Path | None = typer.Option(None, "--out", help="Write the HTML (images inlined) to this file."),
    ) -> None:
        """Build the managers' daily digest; --out writes it as a browser-ready HTML file."""
        from responders.digest.archive import send_due
        from responders.digest.build import build_digest
        from responders.digest.render import digest_trend, inline_images, render_digest

        openear = ctx.ensure_object(CliContext).app()
        config = openear.config
        names = [b.name for b in config.brands]
        if brand is not None and brand not in names:
            raise UsageError(f"no brand named {brand!r}; configured: {', '.join(names)}")
        try:
            wanted = date.fromisoformat(day) if day else None
        except ValueError:
            raise UsageError(f"--date {day!r} is not a date like 2026-03-29") from None
        now = openear.clock()
        chosen = [brand] if brand else names
        for name in chosen:
            the_day = wanted or now.astimezone(ZoneInfo(config.brand(name).timezone)).date() - timedelta(days=1)
            with openear.sessions() as session:
                data = build_digest(session, config, name, the_day, now=now, embedder=openear.embedder)
                trend = digest_trend(session, data)
            rendered = render_digest(data, trend)
            console.print(f"{name} {the_day}: {rendered.subject}", highlight=False, soft_wrap=True)
            if out is not None:
                path = _out_path(out, name, len(chosen) > 1)
                path.write_text(inline_images(rendered.html, rendered.images), encoding="utf-8")
                console.print(f"  wrote {path}", highlight=False, soft_wrap=True)
            if send:
                outcome = send_due(config, openear.sessions, name, the_day, now, embedder=openear.embedder)
                console.print(f"  {outcome.status}" + (f": {outcome.error}" if outcome.error else ""),
                              highlight=False, soft_wrap=True)
                if outcome.status == "failed":
                    raise typer.Exit(1)
