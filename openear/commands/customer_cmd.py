"""`openear customer show|export|erase|propose-links`: customer memory and the customer's rights (GDPR)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from sqlalchemy import select

from listener.platforms import SPECS
from models.orm import Author
from openear.context import CliContext, UsageError
from responders.customers import gdpr, propose_links
from responders.customers.overview import customer_overview, resolve

REF_HELP = (f"A customer id, {', '.join(s.reference_hint() for s in SPECS.values())} "
            "(an unlinked author gets a customer).")


def register(app: typer.Typer) -> None:
    customer_app = typer.Typer(help="Customer memory across platforms; export and erasure (GDPR).",
                               no_args_is_help=True)
    app.add_typer(customer_app, name="customer")

    @customer_app.command("show")
    def show(ctx: typer.Context, ref: str = typer.Argument(..., help=REF_HELP)) -> None:
        """Customer since, identities, earlier conversations with their outcome, notes and tags."""
        openear = ctx.ensure_object(CliContext).app()
        with openear.sessions.begin() as session:
            overview = customer_overview(session, resolve(session, ref, openear.clock()))
            assert overview is not None
            c = overview.customer
            typer.echo(f"customer #{c.id} {c.display_name or ''} since {overview.since:%Y-%m-%d}")
            for a in overview.authors:
                typer.echo(f"  {a.platform}: {a.display_name or ''} @{a.handle or a.external_id}")
            for v in overview.conversations:
                by = f" by {v.outcome.by}" if v.outcome.by else ""
                typer.echo(f"  {v.started_at:%Y-%m-%d} {v.platform} {v.outcome.state}{by}: {v.text[:80]}")
            typer.echo(f"  open complaints: {overview.open_complaints}; tags: {', '.join(overview.tags)}")
            for n in overview.notes:
                typer.echo(f"  note: {n.text}")

    @customer_app.command("export")
    def export(ctx: typer.Context, ref: str = typer.Argument(..., help=REF_HELP),
               out: Path | None = typer.Option(None, "--out", help="Write the JSON here (default: stdout).")) -> None:
        """Everything openear stores about the customer, as JSON."""
        openear = ctx.ensure_object(CliContext).app()
        with openear.sessions.begin() as session:
            data = gdpr.export_customer(session, resolve(session, ref, openear.clock(), create=False),
                                        now=openear.clock())
        text = json.dumps(data, ensure_ascii=False, indent=2)
        if out is None:
            typer.echo(text)
        else:
            out.write_text(text, encoding="utf-8")
            typer.echo(f"exported customer #{data['customer']['id']} to {out}")

    @customer_app.command("erase")
    def erase(ctx: typer.Context, ref: str = typer.Argument(..., help=REF_HELP),
              yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")) -> None:
        """Delete the customer and everything about them; only anonymous counts remain."""
        openear = ctx.ensure_object(CliContext).app()
        with openear.sessions.begin() as session:
            customer_id = resolve(session, ref, openear.clock(), create=False)
            if not yes and not typer.confirm(f"Erase customer #{customer_id} and everything about them?"):
                raise UsageError("not erased")
            summary = gdpr.erase_customer(session, customer_id, None, openear.clock(),
                                           openear.config.timezones())
        typer.echo(f"erased customer #{customer_id}: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.items())))

    @customer_app.command("propose-links")
    def propose(ctx: typer.Context) -> None:
        """Look for identities on different platforms that may be one person; store and print the proposals."""
        openear = ctx.ensure_object(CliContext).app()
        with openear.sessions.begin() as session:
            made = propose_links(session, openear.clock())
            names = {a.id: a for a in session.scalars(select(Author).where(
                Author.id.in_({p.author_a for p in made} | {p.author_b for p in made})))}
            for p in made:
                a, b = names[p.author_a], names[p.author_b]
                typer.echo(f"#{p.id} {p.confidence:.2f} {a.platform}:{a.handle or a.display_name} ~ "
                              f"{b.platform}:{b.handle or b.display_name}: {'; '.join(p.evidence)}")
            typer.echo(f"{len(made)} new proposals; review them at /customers")
