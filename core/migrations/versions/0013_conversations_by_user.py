"""conversations found by their chat user (a reminder's or a notice's language is the latest conversation's)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_conversations_user', 'conversations', ['user_id', 'channel'])


def downgrade() -> None:
    op.drop_index('ix_conversations_user', table_name='conversations')
