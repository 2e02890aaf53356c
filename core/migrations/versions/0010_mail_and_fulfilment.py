"""the mailing address of a 郵送 order, and each paid order's fulfilment (print number, ready time, sent)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DELIVERY = sa.Enum('campus_printer', 'convenience_store', 'mail', 'window_pickup', name='deliverymethod',
                    native_enum=False, length=32)


def upgrade() -> None:
    # A plain ADD COLUMN on both databases (SQLite needs no table copy for a nullable column).
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mailing_address', sa.Text(), nullable=True))
    op.create_table('fulfilments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('delivery_method', _DELIVERY, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('print_number', sa.String(length=32), nullable=True),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ready_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('shipped_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_fulfilments_order_id_orders'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fulfilments')),
    sa.UniqueConstraint('order_id', name=op.f('uq_fulfilments_order_id'))
    )


def downgrade() -> None:
    op.drop_table('fulfilments')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('mailing_address')
