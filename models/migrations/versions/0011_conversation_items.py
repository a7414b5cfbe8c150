"""queue items are customer conversations

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 14:10:00

A queue item used to be one mention; now it is one customer's conversation: `thread_key`
(platform:thread:author id, where the thread is the X conversation or the Facebook post),
`waiting_since` (the first unanswered customer message) and `messages` (customer messages in it).
Existing items get the key and waiting time of their mention. Where one customer's thread had
several open items, the one being worked on (claimed first, else the newest) stays open and holds
them all; the others are closed as dismissed with reason "merged" (their mentions stay, and the
thread shows them). A unique partial index then keeps one open item per conversation. Two indexes
find a mention's answers: the brand's posts by (platform, in_reply_to_id), openear's replies by
(platform, platform_reply_id).
"""
from collections import defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

OPEN = sa.text("state IN ('new', 'claimed')")


def upgrade() -> None:
    op.add_column('queue_items', sa.Column('thread_key', sa.String(length=300), nullable=True))
    op.add_column('queue_items', sa.Column('waiting_since', sa.DateTime(timezone=True), nullable=True))
    op.add_column('queue_items', sa.Column('messages', sa.Integer(), nullable=False, server_default='1'))
    op.execute(
        "UPDATE queue_items SET "
        "thread_key = (SELECT m.platform || ':' || COALESCE(m.conversation_id, m.external_id) || ':' || "
        "CAST(m.author_id AS VARCHAR(20)) FROM mentions m WHERE m.id = queue_items.mention_id), "
        "waiting_since = (SELECT m.created_at FROM mentions m WHERE m.id = queue_items.mention_id)")
    _merge_open_duplicates()
    op.create_index('ux_queue_items_open_thread', 'queue_items', ['thread_key'], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index('ix_queue_items_thread', 'queue_items', ['thread_key', 'id'])
    # the answers of a mention (responders.answers): the brand's posts replying to it, openear's replies
    op.create_index('ix_mentions_reply_to', 'mentions', ['platform', 'in_reply_to_id'])
    op.create_index('ix_replies_platform_reply', 'replies', ['platform', 'platform_reply_id'])


def _merge_open_duplicates() -> None:
    bind = op.get_bind()
    items = sa.table('queue_items', sa.column('id'), sa.column('thread_key'), sa.column('state'),
                     sa.column('waiting_since'), sa.column('messages'), sa.column('mention_id'),
                     sa.column('closed_at'), sa.column('dismiss_reason'), sa.column('version'),
                     sa.column('claimed_at'))
    mentions = sa.table('mentions', sa.column('id'), sa.column('created_at'))
    doubled = (sa.select(items.c.thread_key).where(items.c.state.in_(['new', 'claimed']))
               .group_by(items.c.thread_key).having(sa.func.count() > 1))
    rows = bind.execute(
        sa.select(items.c.id, items.c.thread_key, items.c.state, items.c.waiting_since, items.c.claimed_at,
                  mentions.c.created_at)
        .join(mentions, mentions.c.id == items.c.mention_id)
        .where(items.c.state.in_(['new', 'claimed']), items.c.thread_key.in_(doubled))
    ).all()
    groups: dict[str, list[sa.Row[tuple[object, ...]]]] = defaultdict(list)
    for row in rows:
        groups[row.thread_key].append(row)
    now = datetime.now(UTC)
    for group in groups.values():
        claimed = sorted((r for r in group if r.state == 'claimed'), key=lambda r: (r.claimed_at, r.id))
        keeper = claimed[0] if claimed else max(group, key=lambda r: (r.created_at, r.id))
        waiting = min(r.waiting_since for r in group)
        bind.execute(items.update().where(items.c.id == keeper.id)
                     .values(waiting_since=waiting, messages=len(group), version=items.c.version + 1))
        bind.execute(items.update().where(items.c.id.in_([r.id for r in group if r.id != keeper.id]))
                     .values(state='dismissed', dismiss_reason='merged', closed_at=now, version=items.c.version + 1))


def downgrade() -> None:
    op.drop_index('ix_replies_platform_reply', table_name='replies')
    op.drop_index('ix_mentions_reply_to', table_name='mentions')
    op.drop_index('ix_queue_items_thread', table_name='queue_items')
    op.drop_index('ux_queue_items_open_thread', table_name='queue_items')
    op.drop_column('queue_items', 'messages')
    op.drop_column('queue_items', 'waiting_since')
    op.drop_column('queue_items', 'thread_key')
