"""handoffs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 03:26:48.780974
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('transcript_entries', schema=None) as batch_op:
        batch_op.alter_column('direction', existing_type=sa.String(length=3), type_=sa.String(length=8),
                              existing_nullable=False)
    op.create_table('handoff_tickets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=True),
    sa.Column('lang', sa.String(length=2), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('topic', sa.String(length=32), nullable=True),
    sa.Column('bot_said', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assignee', sa.String(length=64), nullable=True),
    sa.Column('opened_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('assigned_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_how', sa.String(length=16), nullable=True),
    sa.Column('agent_channel', sa.String(length=32), nullable=True),
    sa.Column('thread_ts', sa.String(length=32), nullable=True),
    sa.Column('posted_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['student_id'], ['students.id'], name=op.f('fk_handoff_tickets_student_id_students'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handoff_tickets'))
    )
    with op.batch_alter_table('handoff_tickets', schema=None) as batch_op:
        batch_op.create_index('ix_handoff_tickets_conversation_status', ['conversation_id', 'status'], unique=False)
        batch_op.create_index('ix_handoff_tickets_status_opened', ['status', 'opened_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_handoff_tickets_thread_ts'), ['thread_ts'], unique=False)

    op.create_table('handoff_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('author', sa.String(length=64), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('source_key', sa.String(length=200), nullable=False),
    sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivery', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['handoff_tickets.id'], name=op.f('fk_handoff_messages_ticket_id_handoff_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handoff_messages')),
    sa.UniqueConstraint('source_key', name='uq_handoff_messages_source_key')
    )
    with op.batch_alter_table('handoff_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handoff_messages_ticket_id'), ['ticket_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('handoff_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handoff_messages_ticket_id'))

    op.drop_table('handoff_messages')
    with op.batch_alter_table('handoff_tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handoff_tickets_thread_ts'))
        batch_op.drop_index('ix_handoff_tickets_status_opened')
        batch_op.drop_index('ix_handoff_tickets_conversation_status')

    op.drop_table('handoff_tickets')
    with op.batch_alter_table('transcript_entries', schema=None) as batch_op:
        batch_op.alter_column('direction', existing_type=sa.String(length=8), type_=sa.String(length=3),
                              existing_nullable=False)
