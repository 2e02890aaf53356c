"""metric tallies (counters kept past deleted rows) and the bot's best guess on transcript lines

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('metric_tallies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('series', sa.String(length=64), nullable=False),
    sa.Column('labels', sa.String(length=255), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_tallies')),
    sa.UniqueConstraint('series', 'labels', name='uq_metric_tallies_series_labels')
    )
    # A plain ADD COLUMN on both databases (SQLite needs no table copy for a nullable column).
    with op.batch_alter_table('transcript_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guess', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('transcript_entries', schema=None) as batch_op:
        batch_op.drop_column('guess')
    op.drop_table('metric_tallies')
