"""review queue indexes and text search

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 10:00:00

- open queue items ranked by priority: a partial index (priority DESC, id, ...) WHERE state IN (new,
  claimed) that also covers the item's filter columns, so walking the ranking reads no table rows
- the mention columns the queue filters on, covered by one index on (id, platform, sentiment, ...)
- closed items by closing time, replies by state (failed replies, the dispatcher), audit by object
- text search (case-insensitive substring on mention text and author handle/name):
  PostgreSQL: pg_trgm GIN indexes (ILIKE '%...%' uses them);
  SQLite: FTS5 trigram tables kept in sync by triggers (mentions_fts, authors_fts).

Note for later SQLite migrations: a batch operation that *recreates* `mentions` or `authors`
drops their triggers; re-create them with the trigger statements in SQLITE_FTS below.
"""
import sqlite3

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OPEN = sa.text("state IN ('new', 'claimed')")

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS mentions_fts USING fts5("
    "text, content='mentions', content_rowid='id', tokenize='trigram')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS authors_fts USING fts5("
    "handle, display_name, content='authors', content_rowid='id', tokenize='trigram')",
    """CREATE TRIGGER IF NOT EXISTS mentions_fts_ai AFTER INSERT ON mentions BEGIN
      INSERT INTO mentions_fts(rowid, text) VALUES (new.id, new.text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS mentions_fts_ad AFTER DELETE ON mentions BEGIN
      INSERT INTO mentions_fts(mentions_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS mentions_fts_au AFTER UPDATE OF text ON mentions BEGIN
      INSERT INTO mentions_fts(mentions_fts, rowid, text) VALUES ('delete', old.id, old.text);
      INSERT INTO mentions_fts(rowid, text) VALUES (new.id, new.text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS authors_fts_ai AFTER INSERT ON authors BEGIN
      INSERT INTO authors_fts(rowid, handle, display_name) VALUES (new.id, new.handle, new.display_name);
    END""",
    """CREATE TRIGGER IF NOT EXISTS authors_fts_ad AFTER DELETE ON authors BEGIN
      INSERT INTO authors_fts(authors_fts, rowid, handle, display_name)
      VALUES ('delete', old.id, old.handle, old.display_name);
    END""",
    """CREATE TRIGGER IF NOT EXISTS authors_fts_au AFTER UPDATE OF handle, display_name ON authors BEGIN
      INSERT INTO authors_fts(authors_fts, rowid, handle, display_name)
      VALUES ('delete', old.id, old.handle, old.display_name);
      INSERT INTO authors_fts(rowid, handle, display_name) VALUES (new.id, new.handle, new.display_name);
    END""",
    "INSERT INTO mentions_fts(mentions_fts) VALUES ('rebuild')",
    "INSERT INTO authors_fts(authors_fts) VALUES ('rebuild')",
]

PG_TRGM = [
    "CREATE INDEX IF NOT EXISTS ix_trgm_mentions_text ON mentions USING gin (text gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_trgm_authors_handle ON authors USING gin (handle gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_trgm_authors_display_name ON authors USING gin (display_name gin_trgm_ops)",
]


def _sqlite_has_fts5_trigram() -> bool:
    try:
        probe = sqlite3.connect(":memory:")
        probe.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')")
        probe.close()
        return True
    except sqlite3.Error:
        return False


def upgrade() -> None:
    bind = op.get_bind()
    op.create_index('ix_queue_items_open_priority', 'queue_items',
                    [sa.text('priority DESC'), 'id', 'mention_id', 'state', 'brand', 'assignee_id'],
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index('ix_mentions_queue_filters', 'mentions',
                    ['id', 'platform', 'sentiment_label', 'language', 'created_at', 'author_id'])
    op.create_index('ix_queue_items_state_closed', 'queue_items', ['state', 'closed_at'])
    op.create_index('ix_replies_state', 'replies', ['state'])
    op.create_index('ix_audit_events_object', 'audit_events', ['object_type', 'object_id'])
    if bind.dialect.name == "sqlite":
        if _sqlite_has_fts5_trigram():
            for statement in SQLITE_FTS:
                op.execute(statement)
    elif bind.dialect.name == "postgresql":
        available = bind.exec_driver_sql(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'").scalar() is not None
        if available:
            nested = bind.begin_nested()
            try:
                bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                nested.commit()
            except sa.exc.DBAPIError:  # no privilege: search still works, without an index
                nested.rollback()
                available = False
        if available:
            for statement in PG_TRGM:
                op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("mentions_fts_ai", "mentions_fts_ad", "mentions_fts_au",
                     "authors_fts_ai", "authors_fts_ad", "authors_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS mentions_fts")
        op.execute("DROP TABLE IF EXISTS authors_fts")
    elif bind.dialect.name == "postgresql":
        for name in ("ix_trgm_mentions_text", "ix_trgm_authors_handle", "ix_trgm_authors_display_name"):
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index('ix_audit_events_object', table_name='audit_events')
    op.drop_index('ix_replies_state', table_name='replies')
    op.drop_index('ix_queue_items_state_closed', table_name='queue_items')
    op.drop_index('ix_mentions_queue_filters', table_name='mentions')
    op.drop_index('ix_queue_items_open_priority', table_name='queue_items')
