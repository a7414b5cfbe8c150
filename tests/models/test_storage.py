"""Storage on SQLite and PostgreSQL: migrations, uniqueness, state machines, schema checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from models.db import (
    DatabaseError,
    SchemaOutdated,
    alembic_config,
    check_schema,
    current_revision,
    head_revision,
    make_engine,
    upgrade,
)
from models.domain import IllegalTransition, QueueState, ReplyState
from models.orm import Author, Base, Mention, QueueItem, Reply


def add_mention(session: Session, external_id: str = "1", platform: str = "x", text: str = "hello") -> Mention:
    author = session.scalar(select(Author).where(Author.platform == platform, Author.external_id == "a1"))
    if author is None:
        author = Author(platform=platform, external_id="a1", handle="someone")
        session.add(author)
    mention = Mention(platform=platform, external_id=external_id, brand="Acme", source="x:acme:search:0",
                      text=text, created_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC), author=author)
    session.add(mention)
    session.flush()
    return mention


@pytest.mark.parametrize("empty_db_url", ["sqlite", "postgresql"], indirect=True)
def test_migrations_run_up_from_empty(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    assert current_revision(engine) is None
    with pytest.raises(SchemaOutdated, match="openear db upgrade"):
        check_schema(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    check_schema(engine)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    upgrade(engine)  # idempotent
    engine.dispose()


def _schema_diff(engine: Engine) -> list[object]:
    """What autogenerate would change to make the database match the ORM (nothing, when in sync)."""
    def include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        # dialect-specific search structures of migration 0004 live only in the migration (see env.py)
        return not (type_ == "table" and name and "_fts" in name) and not (
            type_ == "index" and name and name.startswith("ix_trgm_"))

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include})
        return list(compare_metadata(context, Base.metadata))


@pytest.mark.parametrize("empty_db_url", ["sqlite", "postgresql"], indirect=True)
def test_migrations_match_the_orm_and_0007_downgrades(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    upgrade(engine)
    assert _schema_diff(engine) == []
    assert "ix_mentions_author_created" in {i["name"] for i in inspect(engine).get_indexes("mentions")}
    command.downgrade(alembic_config(engine), "0006")
    names = {i["name"] for i in inspect(engine).get_indexes("mentions")}
    assert "ix_mentions_author_id" in names and "ix_mentions_author_created" not in names
    upgrade(engine)
    assert _schema_diff(engine) == []
    engine.dispose()


def test_outdated_schema_is_refused_with_the_fixing_command(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff'")
    with pytest.raises(SchemaOutdated, match="newer version"):
        check_schema(engine)
    engine.dispose()


def test_dead_database_gives_an_actionable_error() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    with pytest.raises(DatabaseError, match="cannot reach the database"):
        check_schema(engine)


def test_platform_and_external_id_are_unique(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        add_mention(session, "100")
        add_mention(session, "100", platform="facebook")  # same id, other platform: fine
    with pytest.raises(IntegrityError), sessions.begin() as session:
        add_mention(session, "100")
    with sessions() as session:
        assert session.scalar(select(Mention).where(Mention.external_id == "100", Mention.platform == "x"))
        assert len(session.scalars(select(Mention)).all()) == 2


def test_hostile_text_round_trips(sessions: sessionmaker[Session]) -> None:
    hostile = "<script>alert('x')</script> \u202eRTL\u202c 😡🔥 " + "Ä" * 10_000
    with sessions.begin() as session:
        add_mention(session, "h1", text=hostile)
    with sessions() as session:
        stored = session.scalar(select(Mention.text).where(Mention.external_id == "h1"))
    assert stored == hostile


def test_datetimes_come_back_timezone_aware(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        add_mention(session, "t1")
    with sessions() as session:
        created = session.scalar(select(Mention.created_at))
    assert created == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_queue_state_machine_allows_the_documented_path(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        mention = add_mention(session)
        item = QueueItem(mention=mention, brand="Acme")
        session.add(item)
        session.flush()
        item.transition(QueueState.CLAIMED)
        item.transition(QueueState.ANSWERED)
        assert item.closed_at is not None
        item.transition(QueueState.NEW)  # reopened when the customer writes again
        assert item.claimed_at is None


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], QueueState.ANSWERED),
        ([QueueState.CLAIMED, QueueState.ANSWERED], QueueState.CLAIMED),
        ([QueueState.DISMISSED], QueueState.ANSWERED),
        ([QueueState.DISMISSED], QueueState.CLAIMED),
    ],
)
def test_queue_state_machine_rejects_illegal_transitions(path: list[QueueState], illegal: QueueState) -> None:
    item = QueueItem(state=QueueState.NEW.value)
    for step in path:
        item.transition(step)
    before = item.state
    with pytest.raises(IllegalTransition, match="cannot go from"):
        item.transition(illegal)
    assert item.state == before


def test_reply_state_machine() -> None:
    reply = Reply(state=ReplyState.DRAFT.value)
    with pytest.raises(IllegalTransition):
        reply.transition(ReplyState.SENT)
    reply.transition(ReplyState.SENDING)
    reply.transition(ReplyState.FAILED)
    reply.transition(ReplyState.SENDING)
    reply.transition(ReplyState.SENT)
    assert reply.sent_at is not None
    with pytest.raises(IllegalTransition):
        reply.transition(ReplyState.SENDING)


def test_concurrent_claims_fail_on_the_version_check(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        item = QueueItem(mention=add_mention(session), brand="Acme")
        session.add(item)
    first, second = sessions(), sessions()
    a = first.get(QueueItem, item.id)
    b = second.get(QueueItem, item.id)
    assert a is not None and b is not None
    a.transition(QueueState.CLAIMED)
    first.commit()
    b.transition(QueueState.CLAIMED)
    with pytest.raises(StaleDataError):
        second.commit()
    first.close()
    second.close()


def test_foreign_keys_are_enforced(engine: Engine, sessions: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(QueueItem(mention_id=999_999, brand="Acme"))


AUTHOR_A1 = ("INSERT INTO authors (platform, external_id, is_brand, first_seen_at, updated_at) "
             "VALUES ('x', 'a1', false, '2026-12-01 10:00:00+00:00', '2026-12-01 10:00:00+00:00')")
"""One author row, written in raw SQL for the migration tests (the ORM is the head revision's)."""


@pytest.mark.parametrize("empty_db_url", ["sqlite", "postgresql"], indirect=True)
def test_0010_adds_revisions_in_place_keeping_rows_and_search_triggers(empty_db_url: str) -> None:
    """Migration 0010 must not rebuild `mentions` (a rebuild on SQLite drops 0004's search triggers)."""
    engine = make_engine(empty_db_url)
    command.upgrade(alembic_config(engine), "0009")
    with engine.begin() as conn:
        conn.exec_driver_sql(AUTHOR_A1)
        conn.exec_driver_sql(
            "INSERT INTO mentions (platform, external_id, brand, source, text, created_at, fetched_at, author_id, "
            "is_own) SELECT 'x', '1', 'Acme', 's', 'router broken', '2026-12-01 10:00:00+00:00', "
            "'2026-12-01 10:00:00+00:00', id, false FROM authors")
    triggers_before = _mention_triggers(engine)
    upgrade(engine)
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT text, hidden, revision_id, edited_at FROM mentions").one()
    assert tuple(row) == ("router broken", False, None, None)
    assert _mention_triggers(engine) == triggers_before
    if engine.dialect.name == "sqlite":
        assert triggers_before == {"mentions_fts_ai", "mentions_fts_ad", "mentions_fts_au"}
    engine.dispose()


def _mention_triggers(engine: Engine) -> set[str]:
    if engine.dialect.name != "sqlite":
        return set()
    with engine.connect() as conn:
        return {r[0] for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'mentions'")}


@pytest.mark.parametrize("empty_db_url", ["sqlite", "postgresql"], indirect=True)
def test_0011_turns_items_into_conversations_and_merges_a_customers_open_items(empty_db_url: str) -> None:
    """Before 0011 each mention had its item: one customer's three open items in one thread become one
    (the claimed one survives and holds all three); other threads and customers keep theirs."""
    engine = make_engine(empty_db_url)
    command.upgrade(alembic_config(engine), "0010")
    t = "'2026-12-01 10:0{}:00+00:00'"
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        run("INSERT INTO users (username, password_hash, role, active, created_at) "
            "VALUES ('alice', 'x', 'agent', true, " + t.format(0) + ")")
        for author in ("a1", "a2"):
            run("INSERT INTO authors (platform, external_id, is_brand, first_seen_at, updated_at) "
                f"VALUES ('x', '{author}', false, {t.format(0)}, {t.format(0)})")
        rows = [("1", "a1", "c1", 1, "new"), ("2", "a1", "c1", 2, "claimed"), ("3", "a1", "c1", 3, "new"),
                ("4", "a2", "c1", 4, "new"), ("5", "a1", "c9", 5, "new"), ("6", "a1", "c1", 6, "answered")]
        for ext, author, conv, minute, state in rows:
            run("INSERT INTO mentions (platform, external_id, brand, source, text, created_at, fetched_at, "
                f"author_id, conversation_id, is_own) SELECT 'x', '{ext}', 'Acme', 's', 'help', {t.format(minute)}, "
                f"{t.format(minute)}, id, '{conv}', false FROM authors WHERE external_id = '{author}'")
            claimed = (", assignee_id, claimed_at", ", (SELECT id FROM users), " + t.format(9)) \
                if state == "claimed" else ("", "")
            run(f"INSERT INTO queue_items (mention_id, brand, state, priority, created_at, updated_at, version"
                f"{claimed[0]}) SELECT id, 'Acme', '{state}', 0.5, {t.format(minute)}, {t.format(minute)}, 1"
                f"{claimed[1]} FROM mentions WHERE external_id = '{ext}'")
    upgrade(engine)
    with engine.connect() as conn:
        got = conn.exec_driver_sql(
            "SELECT m.external_id, q.state, q.dismiss_reason, q.messages, q.thread_key FROM queue_items q "
            "JOIN mentions m ON m.id = q.mention_id ORDER BY m.external_id").all()
        a1, a2 = (conn.exec_driver_sql(f"SELECT id FROM authors WHERE external_id = '{a}'").scalar()
                  for a in ("a1", "a2"))
        waiting = conn.exec_driver_sql("SELECT q.waiting_since FROM queue_items q JOIN mentions m ON "
                                       "m.id = q.mention_id WHERE m.external_id = '2'").scalar()
    assert [tuple(r) for r in got] == [
        ("1", "dismissed", "merged", 1, f"x:c1:{a1}"), ("2", "claimed", None, 3, f"x:c1:{a1}"),
        ("3", "dismissed", "merged", 1, f"x:c1:{a1}"), ("4", "new", None, 1, f"x:c1:{a2}"),
        ("5", "new", None, 1, f"x:c9:{a1}"), ("6", "answered", None, 1, f"x:c1:{a1}")]
    assert str(waiting).startswith("2026-12-01 10:01:00")  # the first of the merged messages
    assert _schema_diff(engine) == []
    engine.dispose()


@pytest.mark.parametrize("empty_db_url", ["sqlite", "postgresql"], indirect=True)
def test_0012_copies_the_unadapted_scores_as_raw_posteriors(empty_db_url: str) -> None:
    """Scores stored before 0012 were never adapted: they become the raw posteriors the daemon seeds from."""
    engine = make_engine(empty_db_url)
    command.upgrade(alembic_config(engine), "0011")
    with engine.begin() as conn:
        conn.exec_driver_sql(AUTHOR_A1)
        for external_id, scores in (("1", "0.7, 0.2, 0.1"), ("2", "NULL, NULL, NULL")):
            conn.exec_driver_sql(
                "INSERT INTO mentions (platform, external_id, brand, source, text, created_at, fetched_at, "
                "author_id, is_own, hidden, score_negative, score_neutral, score_positive) SELECT 'x', "
                f"'{external_id}', 'Acme', 's', 'late again', '2026-12-01 10:00:00+00:00', "
                f"'2026-12-01 10:00:00+00:00', id, false, false, {scores} FROM authors")
    triggers_before = _mention_triggers(engine)
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT external_id, raw_negative, raw_neutral, raw_positive FROM mentions "
                                    "ORDER BY external_id").all()
    assert [tuple(r) for r in rows] == [("1", 0.7, 0.2, 0.1), ("2", None, None, None)]
    assert _mention_triggers(engine) == triggers_before
    engine.dispose()
