"""The scheduler's daily retention job: on the first sweep from 03:30 Japan time (the core's clock), once a
day, deleting what is older than the profile's retention; and `madoguchi retention run`."""

import secrets
from datetime import datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.cli.ops import retention
from bot.delivery.scheduler import Scheduler
from core.clock import TOKYO
from core.models import TranscriptEntry
from tests.core.test_retention import aged


@pytest.fixture
def scheduler(core):
    made = Scheduler(core, lock_key=secrets.randbits(62), standby_retry=0.05)
    yield made
    made.stop()
    made.close()


def lines(core) -> int:
    with core.transaction() as session:
        return session.scalar(select(func.count(TranscriptEntry.id))) or 0


def test_the_purge_runs_once_a_day_from_half_past_three_japan_time(core, clock, scheduler):
    clock.set(datetime(2026, 11, 25, 3, 29, tzinfo=TOKYO))
    aged(core, clock, 181)
    assert scheduler.tick().retention is None and lines(core) == 2, "not before 03:30"

    clock.advance(minutes=1)
    sweep = scheduler.tick()
    assert sweep.retention is not None and sweep.retention.deleted["transcript_entries"] == 2
    assert lines(core) == 0

    clock.advance(minutes=1)
    aged(core, clock, 200)
    assert scheduler.tick().retention is None, "once a day"
    assert lines(core) == 2

    clock.set(datetime(2026, 11, 26, 3, 30, tzinfo=TOKYO))
    assert scheduler.tick().retention.deleted["transcript_entries"] == 2  # type: ignore[union-attr]


def test_a_scheduler_started_later_in_the_day_purges_on_its_first_sweep(core, clock, scheduler):
    aged(core, clock, 181)  # the clock stands at 10:00
    assert scheduler.tick().retention.total > 0  # type: ignore[union-attr]
    assert lines(core) == 0


def test_a_failing_purge_does_not_stop_the_sweep(core, clock, scheduler, caplog):
    core.profile = core.profile.model_copy(update={"retention_days": 0})  # past validation: the purge refuses it
    sweep = scheduler.tick()
    assert sweep.retention is None and "reminder sweep: retention failed" in caplog.text


def test_retention_run_dry_run_counts_and_deletes_nothing(core, clock, monkeypatch, tmp_path, engine):
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DEMO_DATA", "false")
    monkeypatch.chdir(tmp_path)
    # The command runs on the system clock: data from 400 days before it is old by any retention.
    clock.set(datetime.now(TOKYO))
    aged(core, clock, 400)

    dry = CliRunner().invoke(retention, ["run", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "transcript_entries        2 would delete" in dry.output and lines(core) == 2

    done = CliRunner().invoke(retention, ["run", "--days", "365"])
    assert done.exit_code == 0, done.output
    assert "365 days" in done.output and "transcript_entries        2 deleted" in done.output
    assert lines(core) == 0
