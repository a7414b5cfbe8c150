"""`openear backfill`: read everything the platforms still serve, source by source, until drained.

X's recent search reaches back 7 days and an account's timelines 800 (mentions) and 3,200 (own
posts) posts; Facebook serves the posts of `lookback_days` with all their comments. The daemon's
polls read a source's backlog a read budget at a time; backfill polls each source again and again
through the normal `Poller` (the same dedupe, intake and one transaction per poll) until a poll
brings nothing and leaves the cursor where it was:

- `platforms.x.read_budget.per_poll` is lifted to its maximum (fewer, larger polls); `per_day` and
  the platforms' rate limits hold. A limit stops that source: its cursor is stored after every poll,
  so `openear backfill` again after the printed time goes on where it stopped.
- Sources of the brands' own posts (kind "own") come last, so the complaints they answer are stored
  first and the intake closes them.
- A kill at any moment loses and duplicates nothing (the poll's transaction); a second run stores
  nothing new. Each poll holds the source's poll lock, as the daemon's polls do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from listener.locks import NamedLocks
from listener.platforms.base import PlatformAdapter, PlatformError, RateLimited, Source
from listener.poller import Poller, PollResult
from models.config import Config, ReadBudget
from openear.context import CliContext, UsageError

console = Console()
MAX_POLLS = 10_000  # per source and run: a feed that never stops would otherwise never let go
PER_POLL_MAX: int = next(m.le for m in ReadBudget.model_fields["per_poll"].metadata
                         if hasattr(m, "le"))  # the config's own maximum


@dataclass
class Outcome:
    """How the backfill of one source went."""

    source: str
    polls: int = 0
    fetched: int = 0
    new: int = 0
    duplicates: int = 0
    closed: int = 0  # queue items the brand's own posts closed
    status: str = "drained"  # drained | rate limited | failed | busy | poll limit
    retry_at: datetime | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status == "drained"


def backfill_config(config: Config) -> Config:
    """The config with X's per-poll read budget at its maximum (the day budget stays)."""
    x = config.platforms.x
    if x is None:
        return config
    budget = x.read_budget.model_copy(update={"per_poll": PER_POLL_MAX})
    platforms = config.platforms.model_copy(update={"x": x.model_copy(update={"read_budget": budget})})
    return config.model_copy(update={"platforms": platforms})


def backfill_order(sources: list[tuple[PlatformAdapter, Source]]) -> list[tuple[PlatformAdapter, Source]]:
    """Customers' sources first, then the brands' own posts (an answer closes only a stored complaint)."""
    return sorted(sources, key=lambda pair: pair[1].kind == "own")


def drain(poller: Poller, adapter: PlatformAdapter, source: Source, locks: NamedLocks, *,
          max_polls: int = MAX_POLLS, on_poll: Callable[[Outcome], None] | None = None) -> Outcome:
    """Poll `source` until a poll brings nothing and keeps the cursor, a limit stops it, or `max_polls`."""
    outcome = Outcome(source.name)
    while outcome.polls < max_polls:
        with locks.hold(f"poll:{source.name}") as mine:
            if not mine:
                outcome.status, outcome.error = "busy", "another openear instance is polling this source"
                return outcome
            before = poller.cursor(source.name)
            try:
                result = poller.poll_once(adapter, source)
            except RateLimited as exc:
                outcome.status, outcome.retry_at, outcome.error = "rate limited", exc.retry_at, str(exc)
                return outcome
            except PlatformError as exc:
                outcome.status, outcome.error = "failed", f"{type(exc).__name__}: {exc}"
                return outcome
        _count(outcome, result)
        if on_poll is not None:
            on_poll(outcome)
        if result.retry_at is not None:  # read part of the backlog, then met a limit: the rest waits
            outcome.status, outcome.retry_at, outcome.error = "rate limited", result.retry_at, result.error
            return outcome
        if result.fetched == 0 and result.cursor == before:
            return outcome
    outcome.status = "poll limit"
    return outcome


def _count(outcome: Outcome, result: PollResult) -> None:
    outcome.polls += 1
    outcome.fetched += result.fetched
    outcome.new += result.new
    outcome.duplicates += result.duplicates
    outcome.closed += result.closed_by_own_reply


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def register(app: typer.Typer) -> None:
    @app.command("backfill")
    def backfill(
        ctx: typer.Context,
        source: str | None = typer.Option(None, "--source", help="Only this source (see `openear sources`)."),
        max_polls: int = typer.Option(MAX_POLLS, "--max-polls", min=1, help="Polls per source at most."),
    ) -> None:
        """Read everything the platforms still serve (X: 7 days of search, the accounts' timelines;
        Facebook: the look-back window) until every source is drained. Exit code 1 when a source
        stopped at a limit or failed: run it again later, it goes on where it stopped."""
        from openear.app import OpenEar

        cli = ctx.ensure_object(CliContext)
        openear = OpenEar(backfill_config(cli.config))
        try:
            openear.check_schema()
            chosen = openear.sources(source)
            if source and not chosen:
                names = ", ".join(s.name for _, s in openear.sources()) or "none configured"
                raise UsageError(f"no source named {source!r}; sources: {names}")
            openear.preflight()
            outcomes = _run(openear.poller, backfill_order(chosen), NamedLocks(openear.engine), max_polls)
        finally:
            openear.close()
        _report(outcomes)
        if not all(o.done for o in outcomes):
            raise typer.Exit(1)


def _run(poller: Poller, sources: list[tuple[PlatformAdapter, Source]], locks: NamedLocks,
         max_polls: int) -> list[Outcome]:
    outcomes = []
    columns = (SpinnerColumn(finished_text="✓"), TextColumn("{task.description}"),
               TextColumn("{task.fields[state]}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        for adapter, source in sources:
            task = progress.add_task(source.name, total=None, state="polling")

            def show(outcome: Outcome, task: TaskID = task) -> None:
                progress.update(task, state=f"{outcome.polls} polls, {outcome.new} new, "
                                            f"{outcome.duplicates} known")

            outcome = drain(poller, adapter, source, locks, max_polls=max_polls, on_poll=show)
            state = f"{outcome.polls} polls, {outcome.new} new: {outcome.status}"
            if outcome.retry_at is not None:
                state += f", goes on at {_when(outcome.retry_at)}"
            progress.update(task, total=1, completed=1, state=state)
            outcomes.append(outcome)
    return outcomes


def _report(outcomes: list[Outcome]) -> None:
    table = Table("source", "polls", "fetched", "new", "known", "answered", "status")
    for o in outcomes:
        table.add_row(o.source, str(o.polls), str(o.fetched), str(o.new), str(o.duplicates), str(o.closed),
                      o.status if o.done else f"[yellow]{o.status}[/]")
    console.print(table)
    for o in outcomes:
        if o.status == "rate limited" and o.retry_at is not None:
            console.print(f"[yellow]{o.source}[/]: {o.error}; run `openear backfill` again after "
                          f"{_when(o.retry_at)}: it goes on where it stopped", soft_wrap=True, highlight=False)
        elif not o.done:
            console.print(f"[red]{o.source}[/]: {o.status}: {o.error or 'more to read'}; run `openear backfill` "
                          "again to go on", soft_wrap=True, highlight=False)
    total = sum(o.new for o in outcomes)
    console.print(f"backfill: {total} new mentions from {len(outcomes)} sources", highlight=False)
