"""edited posts and hidden comments on the one mention row

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 13:30:00

X gives an edited post a new id; openear keeps one row per edit chain (the first id) and records
which version its text is (`revision_id`, the newest read) and when it was written (`edited_at`).
`hidden` marks what the platform hides from the public (a comment the page moderated on Facebook):
stored as history, never queued or answered. Existing rows: no revision, not edited, not hidden.
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode: a batch on SQLite rebuilds `mentions` and would drop the
# full-text triggers of migration 0004 (SQLite adds and, since 3.35, drops columns in place).


def upgrade() -> None:
    op.add_column('mentions', sa.Column('revision_id', sa.String(length=128), nullable=True))
    op.add_column('mentions', sa.Column('edited_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('mentions', sa.Column('hidden', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column('mentions', 'hidden')
    op.drop_column('mentions', 'edited_at')
    op.drop_column('mentions', 'revision_id')
