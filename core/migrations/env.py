"""Alembic environment: runs migrations on the connection madoguchi hands it."""

from alembic import context

from core import models  # noqa: F401  (registers every table on the metadata)
from core.db import Base
from core.migrate import include_name

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    include_name=include_name,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite can only alter tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
