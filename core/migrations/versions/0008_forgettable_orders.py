"""orders outlive a forgotten student: orders.student_id may be NULL

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables whose rows reference orders with ON DELETE CASCADE.
CHILDREN = ('order_items', 'order_events', 'payments')


@contextmanager
def _children_kept() -> Iterator[None]:
    """SQLite alters a column by copying the table and dropping the old one; with foreign keys on (they are,
    see core/db.py, and a pragma cannot turn them off inside the migration's transaction) that drop deletes
    the orders' items, events and payments by cascade. Keep a copy of them and put them back afterwards."""
    if op.get_bind().dialect.name != 'sqlite':
        yield
        return
    for table in CHILDREN:
        op.execute(f'CREATE TEMP TABLE _kept_{table} AS SELECT * FROM {table}')
    yield
    for table in CHILDREN:
        op.execute(f'DELETE FROM {table}')
        op.execute(f'INSERT INTO {table} SELECT * FROM _kept_{table}')
        op.execute(f'DROP TABLE _kept_{table}')


def upgrade() -> None:
    with _children_kept(), op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.alter_column('student_id', existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # Orders of forgotten students have no student to go back to: they cannot be kept by the older schema.
    op.execute('DELETE FROM orders WHERE student_id IS NULL')
    with _children_kept(), op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.alter_column('student_id', existing_type=sa.Integer(), nullable=False)
