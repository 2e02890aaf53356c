"""Migrations and models agree, the schema can be taken down and built again, and migrations keep the rows."""

import os
from collections.abc import Iterator
from datetime import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, Integer, String, column, insert, inspect, select, table, text
from sqlalchemy.sql.expression import TableClause

from core import migrate
from core.clock import TOKYO
from core.db import Base, UTCDateTime, make_engine
from tests.conftest import postgres_schema


def differences(connection):
    context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                           "include_name": migrate.include_name})
    return compare_metadata(context, Base.metadata)


def test_the_migrated_schema_matches_the_models(engine):
    with engine.connect() as connection:
        assert differences(connection) == [], "models changed without a migration: run core.migrate.revision()"


def test_the_schedulers_job_table_is_not_ours_to_migrate(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY)")
    with engine.connect() as connection:
        assert differences(connection) == []
    engine.dispose()


def test_the_database_is_at_the_newest_revision(engine):
    assert migrate.current_revision(engine) == migrate.head_revision()


@pytest.fixture
def blank(tmp_path) -> Iterator[Engine]:
    """An empty database of the kind the tests run on: a new SQLite file, or a new PostgreSQL schema."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        engine = make_engine(f"sqlite:///{tmp_path / 'blank.sqlite3'}")
        yield engine
        engine.dispose()
        return
    with postgres_schema(url, "blank") as engine:
        yield engine


def test_downgrade_to_base_and_upgrade_again(blank):
    migrate.upgrade(blank)
    migrate.downgrade(blank, "base")
    assert migrate.current_revision(blank) is None
    migrate.upgrade(blank)
    assert migrate.current_revision(blank) == migrate.head_revision()
    with blank.connect() as connection:
        assert differences(connection) == []


FAILURE = {"key_hash": "a" * 64, "at": datetime(2026, 12, 8, 10, 0, tzinfo=TOKYO)}


def failure_table(name: str) -> TableClause:
    """The columns of the failure table the migration renames, under either name."""
    return table(name, column("id", Integer()), column("key_hash", String()), column("at", UTCDateTime()))


def failures(engine: Engine, name: str) -> list[tuple[str, datetime]]:
    rows = failure_table(name)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(rows.c.key_hash, rows.c.at).order_by(rows.c.id))]


def add_failure(engine: Engine, name: str, **values: object) -> None:
    with engine.begin() as connection:
        connection.execute(insert(failure_table(name)).values({**FAILURE, **values}))


def test_the_staff_sign_in_failures_become_the_shared_table_with_their_rows_and_back(blank):
    migrate.upgrade(blank, "0013")
    add_failure(blank, "staff_login_failures")
    migrate.upgrade(blank, "0014")
    assert failures(blank, "sign_in_failures") == [(FAILURE["key_hash"], FAILURE["at"])]
    assert "staff_login_failures" not in inspect(blank).get_table_names()
    add_failure(blank, "sign_in_failures", key_hash="b" * 64)  # the id still counts on from the renamed table's
    if blank.dialect.name == "postgresql":
        with blank.connect() as connection:
            sequence = connection.scalar(text("SELECT pg_get_serial_sequence('sign_in_failures', 'id')"))
        assert sequence.endswith(".sign_in_failures_id_seq")
        assert inspect(blank).get_pk_constraint("sign_in_failures")["name"] == "pk_sign_in_failures"
    migrate.downgrade(blank, "0013")
    assert [key_hash for key_hash, _ in failures(blank, "staff_login_failures")] == ["a" * 64, "b" * 64]
    assert "sign_in_failures" not in inspect(blank).get_table_names()
