"""mention embeddings for suggested replies; the saved reply a reply started from

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 12:00:00

The classifier's sentence embedding of each customer mention is kept, int8-quantized
(models/vectors.py: 384 bytes for the default encoder), in `mention_vectors`, keyed by the encoder
that made it so a model change never compares vectors of two spaces. `replies.saved_reply_id` names
the saved reply a draft started from, so suggestions can group past answers by it. Older mentions
have no vector: the suggestion index embeds them on first use.
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'mention_vectors',
        sa.Column('mention_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('model', sa.String(length=64), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], name=op.f('fk_mention_vectors_mention_id_mentions'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('mention_id', name=op.f('pk_mention_vectors')),
    )
    with op.batch_alter_table('replies') as batch:
        batch.add_column(sa.Column('saved_reply_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_replies_saved_reply_id_saved_replies'), 'saved_replies',
                                 ['saved_reply_id'], ['id'], ondelete='SET NULL')
    op.create_index(op.f('ix_replies_sent_at'), 'replies', ['sent_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_replies_sent_at'), table_name='replies')
    with op.batch_alter_table('replies') as batch:
        batch.drop_constraint(op.f('fk_replies_saved_reply_id_saved_replies'), type_='foreignkey')
        batch.drop_column('saved_reply_id')
    op.drop_table('mention_vectors')
