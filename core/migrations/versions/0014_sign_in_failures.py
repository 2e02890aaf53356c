"""one table of failed sign-ins for every lockout (staff sign-in, LINE account linking)

The staff table is renamed with its rows; their keys keep their meaning ("account:<email>", "address:<ip>",
see core.lockouts: a stored SHA-256 cannot be re-keyed). On PostgreSQL the primary key and the id sequence are
renamed too, so a migrated database and a new one have the same names.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rename(old: str, new: str) -> None:
    op.drop_index(f'ix_{old}_key_at', table_name=old)
    op.drop_index(f'ix_{old}_at', table_name=old)
    op.rename_table(old, new)
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute(f'ALTER TABLE {new} RENAME CONSTRAINT pk_{old} TO pk_{new}')
        sequence = bind.scalar(sa.text("SELECT pg_get_serial_sequence(:table, 'id')"), {'table': new})
        if sequence is not None:
            op.execute(f'ALTER SEQUENCE {sequence} RENAME TO {new}_id_seq')
    op.create_index(f'ix_{new}_at', new, ['at'], unique=False)
    op.create_index(f'ix_{new}_key_at', new, ['key_hash', 'at'], unique=False)


def upgrade() -> None:
    _rename('staff_login_failures', 'sign_in_failures')


def downgrade() -> None:
    # The LINE-linking rows stay: their keys never equal a staff key, and staff sign-ins sweep them within minutes.
    _rename('sign_in_failures', 'staff_login_failures')
