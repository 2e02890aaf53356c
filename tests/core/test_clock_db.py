"""Clocks (settable, aware only) and the UTCDateTime column type on the test database."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from core.clock import TOKYO, FixedClock, SystemClock, require_aware
from core.db import make_session_factory, transaction
from core.models import Student
from core.students import create_student, find_student

# --- clocks --------------------------------------------------------------------------------------------------


def test_fixed_clock_stands_still_until_moved():
    at = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
    clock = FixedClock(at)
    assert clock.now() == at
    assert clock.now() == at  # asking again does not move it
    clock.set(datetime(2027, 1, 4, 8, 30, tzinfo=TOKYO))
    assert clock.now() == datetime(2027, 1, 4, 8, 30, tzinfo=TOKYO)


def test_fixed_clock_advance_returns_and_keeps_the_new_time():
    clock = FixedClock(datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO))
    moved = clock.advance(minutes=29, seconds=59)
    assert moved == datetime(2026, 11, 24, 10, 29, 59, tzinfo=TOKYO)
    assert clock.now() == moved
    assert clock.advance(days=1, hours=-1) == datetime(2026, 11, 25, 9, 29, 59, tzinfo=TOKYO)
    assert clock.advance(weeks=1).date().isoformat() == "2026-12-02"
    assert clock.now().tzinfo is not None


def test_fixed_clock_fixture_is_the_documented_tuesday(clock):
    assert clock.now() == datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
    assert clock.now().weekday() == 1


@pytest.mark.parametrize("naive", [datetime(2026, 11, 24, 10, 0), datetime(2026, 1, 1)])
def test_fixed_clock_rejects_naive_datetimes(naive):
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(naive)
    clock = FixedClock(datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO))
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(naive)
    assert clock.now() == datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)  # a refused set leaves the clock alone


def test_require_aware():
    aware = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
    assert require_aware(aware) is aware
    with pytest.raises(ValueError, match="2026-11-24T10:00:00"):
        require_aware(datetime(2026, 11, 24, 10, 0))


def test_system_clock_is_aware_utc():
    now = SystemClock().now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=1)


# --- UTCDateTime on the test database ------------------------------------------------------------------------

def add_student(core, created_at: datetime, number: str = "24M1001") -> None:
    with core.transaction() as session:
        create_student(session, student_number=number, department="medicine", year=3, now=created_at)


@pytest.mark.parametrize("stored", [
    datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO),
    datetime(2026, 11, 24, 0, 30, 15, 123456, tzinfo=TOKYO),  # the previous day in UTC, with microseconds
    datetime(2026, 11, 24, 15, 30, tzinfo=UTC),
    datetime(2026, 11, 24, 20, 0, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2027, 1, 1, 0, 0, tzinfo=TOKYO),  # a new year in Tokyo, still the old year in UTC
])
def test_aware_datetime_round_trips_as_utc(core, stored):
    add_student(core, stored)
    with core.transaction() as session:  # a new session: the value comes from the database
        student = find_student(session, "24M1001")
        assert student.created_at == stored
        assert student.created_at.tzinfo is not None
        assert student.created_at.utcoffset() == timedelta(0)
        assert student.created_at.microsecond == stored.microsecond
        assert student.email_verified_at is None  # None round-trips too


def test_stored_value_is_utc_in_the_database(core):
    add_student(core, datetime(2026, 11, 24, 8, 0, tzinfo=TOKYO))  # 2026-11-23 23:00 UTC
    with core.engine.connect() as connection:
        raw = connection.execute(text("SELECT created_at FROM students")).scalar_one()
    if isinstance(raw, str):  # SQLite keeps the text SQLAlchemy wrote
        assert raw.startswith("2026-11-23 23:00:00")
    else:
        assert raw == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
        assert raw.utcoffset() is not None


def test_aware_datetimes_compare_correctly_in_queries(core):
    add_student(core, datetime(2026, 11, 24, 8, 0, tzinfo=TOKYO), "24M1001")   # 23:00 UTC on the 23rd
    add_student(core, datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO), "24M1002")  # 01:00 UTC on the 24th
    cutoff = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # between the two, in another time zone
    with core.transaction() as session:
        later = session.scalars(select(Student.student_number).where(Student.created_at > cutoff)).all()
        exact = session.scalars(select(Student.student_number).where(
            Student.created_at == datetime(2026, 11, 23, 23, 0, tzinfo=UTC))).all()
        ordered = session.scalars(select(Student.student_number).order_by(Student.created_at.desc())).all()
    assert later == ["24M1002"]
    assert exact == ["24M1001"]
    assert ordered == ["24M1002", "24M1001"]


def test_naive_datetime_is_rejected_when_stored(core):
    with pytest.raises(StatementError) as caught, core.transaction() as session:
        session.add(Student(student_number="24M1001", department="medicine", year=3,
                            created_at=datetime(2026, 11, 24, 10, 0),
                            updated_at=datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)))
        session.flush()
    assert isinstance(caught.value.orig, ValueError)
    assert "timezone-aware" in str(caught.value.orig)
    with core.transaction() as session:
        assert session.scalars(select(Student)).all() == []


def test_naive_datetime_is_rejected_in_a_query(core):
    with pytest.raises(StatementError) as caught, core.transaction() as session:
        session.scalars(select(Student).where(Student.created_at > datetime(2026, 11, 24))).all()
    assert isinstance(caught.value.orig, ValueError)


def test_db_transaction_commits_or_rolls_back(core):
    factory = make_session_factory(core.engine)
    with transaction(factory) as session:
        create_student(session, student_number="24M1001", department="medicine", year=3, now=core.now())
    with pytest.raises(RuntimeError), transaction(factory) as session:
        create_student(session, student_number="24M1002", department="medicine", year=3, now=core.now())
        raise RuntimeError("boom")
    with transaction(factory) as session:
        assert session.scalars(select(Student.student_number)).all() == ["24M1001"]
    with transaction(factory) as session:
        student = find_student(session, "24M1001")
    # objects stay readable after commit (expire_on_commit=False)
    assert student.student_number == "24M1001" and student.created_at == core.now()
