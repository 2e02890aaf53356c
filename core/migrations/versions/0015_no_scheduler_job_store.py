"""APScheduler's job store goes: the reminder rows are the only schedule (bot/delivery/scheduler.py's sweep)

Before this, the scheduler created `apscheduler_jobs` itself and kept one date job per reminder in it; those jobs
name a function that no longer exists. Downgrading leaves the table away: an older scheduler creates it again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute('DROP TABLE IF EXISTS apscheduler_jobs')


def downgrade() -> None:
    pass
