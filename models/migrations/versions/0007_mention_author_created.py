"""mentions by author and time, for customer history

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 10:00:00

models/history.py aggregates "the mentions of these authors before this moment" in SQL; an index on
(author_id, created_at) turns each of those into a range scan. It replaces the single-column
ix_mentions_author_id (its prefix, so author lookups and the foreign key keep an index) instead of
adding a seventh index that every ingested mention would have to update.
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_mentions_author_created', 'mentions', ['author_id', 'created_at'], unique=False)
    op.drop_index('ix_mentions_author_id', table_name='mentions')


def downgrade() -> None:
    op.create_index('ix_mentions_author_id', 'mentions', ['author_id'], unique=False)
    op.drop_index('ix_mentions_author_created', table_name='mentions')
