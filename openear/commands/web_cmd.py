"""`openear serve` (the review queue web app) and `openear user ...` (team accounts)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from models.domain import Role
from models.orm import User
from openear.context import CliContext, UsageError
from responders.auth import create_user, list_users, update_user
from responders.errors import NotFound

console = Console()


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("no password on standard input")
        return password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        host: str | None = typer.Option(None, "--host", help="Bind address (default: web.host in the config)."),
        port: int | None = typer.Option(None, "--port", help="Port (default: web.port in the config)."),
    ) -> None:
        """Run the review queue web app (the team's inbox) until Ctrl-C."""
        from openear.web import serve as serve_web

        openear = ctx.ensure_object(CliContext).app()
        web = openear.config.web
        console.print(f"review queue on http://{host or web.host}:{port or web.port}/ (Ctrl-C stops)")
        serve_web(openear, host, port)

    user_app = typer.Typer(help="Team accounts: agents, managers, admins.", no_args_is_help=True)
    app.add_typer(user_app, name="user")

    @user_app.command("add")
    def user_add(
        ctx: typer.Context,
        name: str = typer.Argument(..., help="Username (letters, digits, . _ @ -)."),
        role: Role = typer.Option(Role.AGENT, "--role", help="agent, manager or admin."),
        password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    ) -> None:
        """Create a user; the password is asked for (twice) unless --password-stdin."""
        openear = ctx.ensure_object(CliContext).app()
        password = _read_password(password_stdin)
        with openear.sessions.begin() as session:
            user = create_user(session, name, password, role.value, now=openear.clock())
            console.print(f"created {user.username} ({user.role})")

    @user_app.command("set")
    def user_set(
        ctx: typer.Context,
        name: str = typer.Argument(..., help="Username."),
        role: Role | None = typer.Option(None, "--role", help="New role."),
        active: bool | None = typer.Option(None, "--active/--inactive", help="Reactivate or deactivate."),
        password_stdin: bool = typer.Option(False, "--password-stdin", help="Read a new password from stdin."),
        new_password: bool = typer.Option(False, "--password", help="Prompt for a new password."),
    ) -> None:
        """Change a user's role, activation or password."""
        openear = ctx.ensure_object(CliContext).app()
        password = _read_password(password_stdin) if (password_stdin or new_password) else None
        with openear.sessions.begin() as session:
            user_id = session.scalar(select(User.id).where(User.username == name))
            if user_id is None:
                raise NotFound(f"no user named {name!r}; `openear user list` shows them")
            user = update_user(session, user_id, now=openear.clock(), actor_id=None,
                               role=role.value if role else None, active=active, password=password)
            console.print(f"{user.username}: {user.role}, {'active' if user.active else 'deactivated'}")

    @user_app.command("list")
    def user_list(ctx: typer.Context) -> None:
        """List the team's accounts."""
        openear = ctx.ensure_object(CliContext).app()
        with openear.sessions() as session:
            users = list_users(session)
        table = Table("username", "role", "status", "created")
        for user in users:
            table.add_row(user.username, user.role, "active" if user.active else "deactivated",
                          f"{user.created_at:%Y-%m-%d}")
        console.print(table if users else "no users yet: `openear user add NAME --role admin`")
