"""the agents' inbox on the web: staff roles and names, presence, ticket assignee names and satisfaction

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('staff_accounts') as batch:
        batch.add_column(sa.Column('role', sa.String(length=16), server_default='admin', nullable=False))
        batch.add_column(sa.Column('display_name', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('desk_seen_at', core.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('handoff_tickets') as batch:
        batch.add_column(sa.Column('assignee_name', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('satisfaction', sa.String(length=8), nullable=True))
    with op.batch_alter_table('transcript_entries') as batch:
        batch.add_column(sa.Column('author', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('buttons', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('transcript_entries') as batch:
        batch.drop_column('buttons')
        batch.drop_column('author')
    with op.batch_alter_table('handoff_tickets') as batch:
        batch.drop_column('satisfaction')
        batch.drop_column('assignee_name')
    with op.batch_alter_table('staff_accounts') as batch:
        batch.drop_column('desk_seen_at')
        batch.drop_column('display_name')
        batch.drop_column('role')
