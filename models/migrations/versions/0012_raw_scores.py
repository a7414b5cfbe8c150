"""raw classifier posteriors on each mention

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 10:00:00

The daemon adapts the classifier to each brand's class mix (models/sentiment/adaptive.py): the
stored scores are corrected by the brand's prior shift, `raw_negative` / `raw_neutral` /
`raw_positive` are the classifier's posteriors before it, from which a restarted daemon refills each
brand's window. Scores stored before this revision were never adapted, so they are copied in as the
raw posteriors: the daemon adapts from its first start after the upgrade.
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode: a batch on SQLite rebuilds `mentions` and would drop the
# full-text triggers of migration 0004 (SQLite adds and, since 3.35, drops columns in place).
COLUMNS = ('raw_negative', 'raw_neutral', 'raw_positive')


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column('mentions', sa.Column(name, sa.Float(), nullable=True))
    # the full-text triggers of 0004 fire on `text` only; this touches scores
    op.execute('UPDATE mentions SET raw_negative = score_negative, raw_neutral = score_neutral, '
               'raw_positive = score_positive WHERE score_negative IS NOT NULL')


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column('mentions', name)
