"""`openear poll`, `openear sandbox` and `openear run`: listening, from one poll to the daemon."""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import asdict
from types import FrameType

import typer
from rich.console import Console
from rich.table import Table

from openear.context import CliContext, UsageError

console = Console()


def register(app: typer.Typer) -> None:
    @app.command("poll")
    def poll(
        ctx: typer.Context,
        once: bool = typer.Option(False, "--once", help="Poll every source once and exit."),
        source: str | None = typer.Option(None, "--source", help="Only this source (see `openear sources`)."),
        as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    ) -> None:
        """Poll the configured sources once and print what came in (new, duplicates, errors)."""
        if not once:
            raise UsageError("use `openear poll --once` for a single poll, or `openear run` for the daemon")
        openear = ctx.ensure_object(CliContext).app()
        if source and not openear.sources(source):
            names = ", ".join(s.name for _, s in openear.sources()) or "none configured"
            raise UsageError(f"no source named {source!r}; sources: {names}")
        results = openear.poll_all(source)
        if as_json:
            console.print_json(json.dumps([asdict(r) for r in results], default=str))
            raise typer.Exit(1 if any(r.error for r in results) else 0)
        table = Table("source", "fetched", "new", "duplicates", "queued", "own", "cursor", "status")
        for r in results:
            table.add_row(r.source, str(r.fetched), str(r.new), str(r.duplicates), str(r.queued), str(r.own),
                          _short(r.cursor), "[red]error[/]" if r.error else "ok")
        console.print(table)
        for r in results:
            if r.error:
                console.print(f"[red]error[/] {r.source}: {r.error}", soft_wrap=True, highlight=False)
        for r in results:
            for warning in r.warnings:
                console.print(f"[yellow]warning[/] {r.source}: {warning}")
        if any(r.error for r in results):
            raise typer.Exit(1)

    @app.command("sources")
    def sources(ctx: typer.Context) -> None:
        """List the sources the configuration polls."""
        for _, source in ctx.ensure_object(CliContext).app().sources():
            console.print(f"{source.name}\t{source.kind}\t{source.target}")

    @app.command("sandbox")
    def sandbox(
        x_port: int = typer.Option(8701, "--x-port", help="Port of the X API v2 emulator."),
        fb_port: int = typer.Option(8702, "--fb-port", help="Port of the Facebook Graph API emulator."),
        rate: float = typer.Option(1.0, "--rate", help="New posts per second in the live feed (0: none)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the generated feed."),
        backlog: int = typer.Option(200, "--backlog", help="Posts already there at start."),
    ) -> None:
        """Run the platform emulators (with a live feed) until Ctrl-C."""
        from sandbox.graph_api import GraphApiEmulator
        from sandbox.x_api import XApiEmulator

        x = XApiEmulator(seed=seed, port=x_port).start()
        fb = GraphApiEmulator(seed=seed, port=fb_port).start()
        try:
            x.grow(backlog)
            fb.grow(backlog)
            if rate > 0:
                x.start_live(rate)
                fb.start_live(rate)
            creds = x.credentials
            console.print(f"X API v2 emulator: {x.url}  (bearer token {creds.bearer_token!r}, consumer key "
                          f"{creds.consumer_key!r}, consumer secret {creds.consumer_secret!r}, access token "
                          f"{creds.access_token!r}, access token secret {creds.access_token_secret!r})")
            console.print(f"Graph API emulator: {fb.url}  (page {fb.page_id}, page token {fb.page_token()!r})")
            console.print("point platforms.x.base_url and platforms.facebook.base_url at them; Ctrl-C stops")
            _wait_for_signal()
        finally:
            x.stop()
            fb.stop()

    @app.command("run")
    def run(
        ctx: typer.Context,
        web: bool = typer.Option(True, "--web/--no-web", help="Also serve the web app (default)."),
    ) -> None:
        """The daemon: poll, classify, dispatch replies, expire claims, send digests, until SIGTERM."""
        openear = ctx.ensure_object(CliContext).app()
        openear.preflight()  # a wrong kind of token fails here, loudly, not as empty polls
        daemon = openear.build_daemon()
        daemon.start()
        console.print(f"openear running: {len(daemon.job_ids)} jobs ({', '.join(daemon.job_ids)})")
        try:
            if web:
                from openear.web import serve

                serve(openear)
            else:
                _wait_for_signal()
        finally:
            console.print("stopping: finishing the current batch")
            daemon.shutdown(wait=True)
            openear.close()


def _short(cursor: str | None, width: int = 24) -> str:
    """Cursors can be JSON state (Facebook); the table shows their start."""
    if not cursor:
        return "-"
    return cursor if len(cursor) <= width else cursor[: width - 1] + "…"


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            time.sleep(0)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
