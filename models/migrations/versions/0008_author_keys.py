"""matching keys per author, for incremental link proposals

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:40:00

The link-proposal job ran every 30 minutes over every author and two days of mention texts, so its
time and memory grew with the size of the database. `author_keys` holds each author's blocking keys
(and, for X authors, the lower-cased handle), derived again whenever the author changes
(`authors.keys_at` < `updated_at`); the job then reads only the authors that share a key with a new
one. Existing authors get their keys on the job's first run after the upgrade.
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'author_keys',
        sa.Column('key', sa.String(length=120), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['author_id'], ['authors.id'], name=op.f('fk_author_keys_author_id_authors'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('key', 'author_id', name=op.f('pk_author_keys')),
    )
    op.create_index(op.f('ix_author_keys_author_id'), 'author_keys', ['author_id'], unique=False)
    op.add_column('authors', sa.Column('keys_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_authors_first_seen', 'authors', ['first_seen_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_authors_first_seen', table_name='authors')
    op.drop_column('authors', 'keys_at')  # SQLite >= 3.35 drops it in place: the FTS triggers stay
    op.drop_index(op.f('ix_author_keys_author_id'), table_name='author_keys')
    op.drop_table('author_keys')
