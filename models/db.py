"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL (team backend)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from models.errors import OpenEarError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
T = TypeVar("T")


class DatabaseError(OpenEarError):
    """The database cannot be used as it is; the message says what to do."""


class SchemaOutdated(DatabaseError):
    pass


# PostgreSQL's "try the transaction again" states: serialization_failure, deadlock_detected
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def lost_a_race(exc: BaseException) -> bool:
    """Whether `exc` means a concurrent writer got there first (an optimistic version check failed,
    or PostgreSQL aborted the transaction as a serialization failure or deadlock victim): the
    transaction was rolled back whole and running it again is the fix."""
    if isinstance(exc, StaleDataError):
        return True
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _check_sqlite_folder(path: Path, *, create: bool) -> None:
    folder = path.parent
    blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise DatabaseError(f"database.url names the SQLite file {path}, but {blocking} is a file, not a folder; "
                            "choose another path")
    if path.exists() and path.is_dir():
        raise DatabaseError(f"database.url names the SQLite file {path}, but that is a folder; add a file name")
    if not folder.exists():
        if not create:
            raise DatabaseError(f"the folder {folder} of the SQLite database {path.name} does not exist; "
                                "create it (mkdir -p) or run `openear init`")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the folder {folder} for the SQLite database: {exc.strerror}") from None


def make_engine(url: str, *, create_parent: bool = False, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout on every connection.

    A SQLite file's folder must exist (`create_parent=True`, for `openear init` and the demo, creates it);
    a missing folder or one that is a file is a DatabaseError that says so, not a traceback.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(
            f"database.url {url!r} is not a valid database URL; examples: sqlite:///openear.db, "
            "postgresql+psycopg://user@127.0.0.1:5432/openear"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            _check_sqlite_folder(Path(parsed.database), create=create_parent)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def insert_into(session: Session, model: type[DeclarativeBase]) -> Any:
    """A Core INSERT into `model`'s table in the session's dialect, so it knows ON CONFLICT (SQLite, PostgreSQL).

    Core, not an ORM bulk insert: the ORM leaves a row's None columns out of its INSERT and splits
    a batch wherever that changes, which makes the batch sizes (and SQL texts) unbounded again.
    """
    dialect = session.get_bind().dialect.name
    table = cast(Table, model.__table__)
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def pow2_batches(items: Sequence[T], largest: int = 512) -> Iterator[Sequence[T]]:
    """`items` in batches whose sizes are powers of two, at most `largest` (437 -> 256, 128, 32, 16, 4, 1).

    A multi-row INSERT or an IN list is a different SQL text for every row count, and each text
    the daemon runs stays prepared in the driver's per-connection statement cache (pysqlite keeps
    128; a 500-row INSERT of 20 columns holds ~0.9 MB). Power-of-two batches keep that to a few
    texts per statement, so memory stops growing once each size has been seen.
    """
    largest = 1 << (max(largest, 1).bit_length() - 1)
    start = 0
    while start < len(items):
        left = len(items) - start
        size = largest if left >= largest else 1 << (left.bit_length() - 1)
        yield items[start : start + size]
        start += size


def pow2_ceil(n: int) -> int:
    """The smallest power of two >= n (1 for 0 and 1)."""
    return 1 << max(n - 1, 0).bit_length()


def pow2_padded(items: Sequence[T]) -> list[T]:
    """`items` padded to a power-of-two length by repeating the last one (for IN lists: same result)."""
    return [*items, *[items[-1]] * (pow2_ceil(len(items)) - len(items))] if items else []


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise DatabaseError(_unreachable(engine, exc)) from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every pending migration (idempotent)."""
    try:
        command.upgrade(alembic_config(engine), revision)
    except OperationalError as exc:
        raise DatabaseError(_unreachable(engine, exc)) from None


def check_schema(engine: Engine) -> None:
    """Refuse to run on a database whose schema is not the code's."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaOutdated(f"the database {where} has no openear schema yet; run `openear db upgrade`")
    known = {rev.revision for rev in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}
    if current not in known:
        raise SchemaOutdated(
            f"the database {where} is at revision {current}, which this openear does not know "
            "(it was migrated by a newer version); upgrade openear"
        )
    raise SchemaOutdated(
        f"the database {where} is at revision {current}, the code needs {head}; run `openear db upgrade`"
    )


def _unreachable(engine: Engine, exc: OperationalError) -> str:
    where = engine.url.render_as_string(hide_password=True)
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return (
        f"cannot reach the database {where}: {reason}. Check database.url in the config and that the "
        "server is running; nothing was written."
    )
