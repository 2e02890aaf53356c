"""Migrations and models agree, and the schema can be taken down and built again."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core import migrate
from core.db import Base, make_engine


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


def test_downgrade_to_base_and_upgrade_again(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'roundtrip.sqlite3'}")
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()
