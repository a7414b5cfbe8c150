"""team notes tags saved replies corrections

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 18:32:56.567097
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('saved_replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_saved_replies_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_replies')),
    sa.UniqueConstraint('name', name=op.f('uq_saved_replies_name'))
    )
    op.create_table('mention_tags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mention_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tag', sa.String(length=60), nullable=False),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], name=op.f('fk_mention_tags_mention_id_mentions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mention_tags')),
    sa.UniqueConstraint('mention_id', 'tag', name=op.f('uq_mention_tags_mention_id_tag'))
    )
    with op.batch_alter_table('mention_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mention_tags_mention_id'), ['mention_id'], unique=False)

    op.create_table('notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mention_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_notes_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], name=op.f('fk_notes_mention_id_mentions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notes_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notes'))
    )
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notes_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notes_mention_id'), ['mention_id'], unique=False)

    op.create_table('sentiment_corrections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mention_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('original_label', sa.String(length=16), nullable=True),
    sa.Column('corrected_label', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], name=op.f('fk_sentiment_corrections_mention_id_mentions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sentiment_corrections_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sentiment_corrections'))
    )
    with op.batch_alter_table('sentiment_corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sentiment_corrections_mention_id'), ['mention_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sentiment_corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sentiment_corrections_mention_id'))

    op.drop_table('sentiment_corrections')
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notes_mention_id'))
        batch_op.drop_index(batch_op.f('ix_notes_customer_id'))

    op.drop_table('notes')
    with op.batch_alter_table('mention_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mention_tags_mention_id'))

    op.drop_table('mention_tags')
    op.drop_table('saved_replies')

