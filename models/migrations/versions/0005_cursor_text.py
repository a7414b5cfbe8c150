"""poll cursors hold adapter state of any size (Facebook keeps per-post watermarks)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 18:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('poll_cursors', schema=None) as batch_op:
        batch_op.alter_column('cursor', existing_type=sa.String(length=500), type_=sa.Text(), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('poll_cursors', schema=None) as batch_op:
        batch_op.alter_column('cursor', existing_type=sa.Text(), type_=sa.String(length=500), existing_nullable=True)
