"""webhook notifications a poll is still to read

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 19:30:00

Instagram reports @mentions of the brand on other accounts' media only by webhook (field
`mentions`, with the media and comment id). The web app's webhook endpoint stores each one in
`platform_notifications` (once: Meta retries deliveries); the Instagram mentions source of each
account reads them by `received_at` (its cursor keeps the newest one read and the ids read just
before it; models/inbox.py says why ids alone would not do), and the poll stores cursor and mentions
in one transaction, so each mention is stored exactly once.
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'platform_notifications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('platform', sa.String(length=20), nullable=False),
        sa.Column('account_id', sa.String(length=64), nullable=False),
        sa.Column('media_id', sa.String(length=64), nullable=False),
        sa.Column('comment_id', sa.String(length=64), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_notifications')),
        sa.UniqueConstraint('platform', 'account_id', 'media_id', 'comment_id',
                            name='uq_platform_notifications_ref'),
    )
    op.create_index('ix_platform_notifications_received', 'platform_notifications', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_platform_notifications_received', table_name='platform_notifications')
    op.drop_table('platform_notifications')
