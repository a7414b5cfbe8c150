"""customer links (link proposals) and anonymous stats of erased mentions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('link_proposals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('author_a', sa.Integer(), nullable=False),
    sa.Column('author_b', sa.Integer(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_a'], ['authors.id'], name=op.f('fk_link_proposals_author_a_authors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['author_b'], ['authors.id'], name=op.f('fk_link_proposals_author_b_authors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name=op.f('fk_link_proposals_decided_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_link_proposals')),
    sa.UniqueConstraint('author_a', 'author_b', name=op.f('uq_link_proposals_author_a_author_b'))
    )
    op.create_index(op.f('ix_link_proposals_author_a'), 'link_proposals', ['author_a'], unique=False)
    op.create_index(op.f('ix_link_proposals_author_b'), 'link_proposals', ['author_b'], unique=False)
    op.create_index(op.f('ix_link_proposals_state'), 'link_proposals', ['state'], unique=False)
    op.create_table('erased_mention_stats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('brand', sa.String(length=200), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('sentiment', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('answered_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_erased_mention_stats')),
    sa.UniqueConstraint('day', 'brand', 'platform', 'sentiment', name=op.f('uq_erased_mention_stats_day_brand_platform_sentiment'))
    )


def downgrade() -> None:
    op.drop_table('erased_mention_stats')
    op.drop_index(op.f('ix_link_proposals_state'), table_name='link_proposals')
    op.drop_index(op.f('ix_link_proposals_author_b'), table_name='link_proposals')
    op.drop_index(op.f('ix_link_proposals_author_a'), table_name='link_proposals')
    op.drop_table('link_proposals')
