"""Shared fixtures: databases on both backends, a fake clock.

Every storage test takes `sessions` (or `engine`) and runs twice: on SQLite and on PostgreSQL.
PostgreSQL comes from OPENEAR_TEST_PG_URL (default: the local server with trust auth); each test
run creates its own database there and drops it at the end. Set OPENEAR_TEST_PG=off to skip the
PostgreSQL half explicitly (CI never does).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from models.db import head_revision, make_engine, session_factory, upgrade
from models.orm import Base
from models.sentiment import encoder_build as _encoder_build
from tests.support import FakeClock

PG_ADMIN_URL = os.environ.get("OPENEAR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _pg_enabled() -> bool:
    return os.environ.get("OPENEAR_TEST_PG", "on") != "off"


class PgDatabases:
    """Creates throw-away PostgreSQL databases on the test server and drops them afterwards."""

    def __init__(self) -> None:
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def create(self) -> str:
        name = f"openear_test_{uuid.uuid4().hex[:12]}"
        try:
            with self.admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # pragma: no cover - environment problem
            pytest.fail(
                f"PostgreSQL at {PG_ADMIN_URL} is not usable ({exc}); start it (.ci/run does) or set "
                "OPENEAR_TEST_PG=off to skip the PostgreSQL half"
            )
        self.created.append(name)
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    databases = PgDatabases()
    yield databases
    databases.drop_all()


@pytest.fixture
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database (no schema) on the backend the test is parametrized with."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    if not _pg_enabled():
        pytest.skip("OPENEAR_TEST_PG=off")
    return request.getfixturevalue("pg_databases").create()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_migrated(pg_databases: PgDatabases) -> str:
    url = pg_databases.create()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not _pg_enabled():
        pytest.skip("OPENEAR_TEST_PG=off")
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each backend."""
    if backend == "sqlite":
        path = tmp_path / "openear.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("_pg_migrated")
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("DROP TABLE IF EXISTS apscheduler_jobs"))
        # a test may have moved the schema revision (an "outdated schema" test): back to head
        conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()})
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


# ----------------------------------------------------------------------------- the default encoder
@pytest.fixture(scope="session")
def encoder_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """(session) A data dir holding the default encoder, built from scratch from the pip packages (~5-10 s)."""
    try:
        files = _encoder_build.source_files()
    except _encoder_build.EncoderBuildError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("openear-data")
    start = time.perf_counter()
    _encoder_build.build_encoder(_encoder_build.encoder_dir(root), files)
    print(f"encoder built from scratch in {time.perf_counter() - start:.1f}s")
    return root


@pytest.fixture()
def own_data_dir(encoder_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """OPENEAR_DATA_DIR of this test's own (classifier versions, caches) sharing the session's built encoder."""
    root = tmp_path / "openear-data"
    root.mkdir()
    (root / "encoders").symlink_to(encoder_root / "encoders", target_is_directory=True)
    monkeypatch.setenv("OPENEAR_DATA_DIR", str(root))
    return root
