"""Lockouts in the database (SQLite and PostgreSQL): failures counted per scoped key within a window, stored only
hashed, swept once no window counts them, and never more attempts than the limit across worker processes."""

import hashlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from core import lockouts, staff
from core.clock import FixedClock
from core.db import make_engine
from core.models import SignInFailure
from core.passwords import decoy_hash, verify_password
from core.services import Core, build_core
from core.settings import Settings
from tests.conftest import at_once

WINDOW = timedelta(minutes=15)
ALICE, BOB = lockouts.key(lockouts.LINE_LINK, "22M3456"), lockouts.key(lockouts.LINE_LINK, "99Z9999")


def fail(core: Core, *keys: str) -> None:
    with core.transaction() as session:
        lockouts.record_failure(session, keys, core.now())


def locked(core: Core, *keys: str, limit: int = 3) -> bool:
    with core.transaction() as session:
        return lockouts.throttled(session, keys, core.now(), limit, WINDOW)


def stored(core: Core) -> list[str]:
    with core.transaction() as session:
        return list(session.scalars(select(SignInFailure.key_hash)))


@pytest.fixture
def make_worker(core: Core, engine: Engine, clock: FixedClock, tmp_path: Path) -> Iterator[Callable[[], Core]]:
    """Builds a core with an engine of its own on the test database, as another worker process has: its own
    connections and (on SQLite) its own writer lock. `core` empties the tables afterwards."""
    engines: list[Engine] = []

    def build() -> Core:
        engines.append(make_engine(engine.url.render_as_string(hide_password=False)))
        settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
        return build_core(settings, clock=clock, engine=engines[-1])

    yield build
    for built in engines:
        built.dispose()


def test_failures_lock_a_key_within_the_window_and_no_other_key(core, clock):
    for _ in range(2):
        fail(core, ALICE)
    assert not locked(core, ALICE)
    fail(core, ALICE)
    assert locked(core, ALICE) and locked(core, BOB, ALICE) and not locked(core, BOB)
    clock.advance(minutes=14, seconds=59)
    assert locked(core, ALICE)
    clock.advance(seconds=1)
    assert not locked(core, ALICE)


def test_only_the_hash_of_a_scoped_key_is_stored(core):
    fail(core, ALICE, lockouts.key(lockouts.STAFF_ADDRESS, "192.0.2.1"))
    assert sorted(stored(core)) == sorted(hashlib.sha256(text.encode()).hexdigest()
                                          for text in ("line-link:22M3456", "address:192.0.2.1"))
    assert not any("22M3456" in value or "192.0.2.1" in value for value in stored(core))


def test_clearing_forgets_the_given_keys_only(core):
    fail(core, ALICE, BOB)
    with core.transaction() as session:
        lockouts.clear(session, [ALICE])
    assert stored(core) == [hashlib.sha256(BOB.encode()).hexdigest()]


def test_failures_no_window_counts_are_swept_when_the_next_is_recorded(core, clock):
    fail(core, ALICE)
    clock.advance(minutes=10)
    fail(core, BOB)
    clock.advance(minutes=5)
    fail(core, BOB)
    assert len(stored(core)) == 2  # ALICE's is 15 minutes old: no lockout counts it any more


def test_a_window_longer_than_failures_are_kept_is_refused(core):
    with core.transaction() as session, pytest.raises(ValueError, match="LONGEST_WINDOW"):
        lockouts.throttled(session, [ALICE], core.now(), 3, lockouts.LONGEST_WINDOW + timedelta(seconds=1))


def test_the_staff_keys_keep_the_meaning_they_had_before_the_table_was_shared(core):
    """Rows the staff sign-in wrote before migration 0014 ("account:<email>") still lock the account."""
    email = "hanako.sato@example.ac.jp"
    with core.transaction() as session:
        staff.create_account(session, email, "correct horse battery", core.now())
        old_key = hashlib.sha256(f"account:{email}".encode()).hexdigest()
        session.add_all(SignInFailure(key_hash=old_key, at=core.now()) for _ in range(staff.MAX_FAILURES))
    with core.transaction() as session:
        result = staff.login(session, email, "correct horse battery", None, core.now())
    assert result.outcome is staff.LoginOutcome.THROTTLED


def test_concurrent_attempts_from_several_workers_are_checked_one_after_another(make_worker, core):
    """Each attempt comes from a worker with its own connections and checks a password (argon2, as the sign-ins
    do) between the check and the failure: exactly `limit` get to the password, however they interleave."""
    limit = 3

    def attempt(worker: Core) -> bool:
        with worker.transaction() as session:
            if lockouts.throttled(session, [ALICE], worker.now(), limit, WINDOW):
                return False
            verify_password(decoy_hash(), "wrong password")
            lockouts.record_failure(session, [ALICE], worker.now())
            return True

    workers = [make_worker() for _ in range(8)]
    checked = at_once(*(partial(attempt, worker) for worker in workers))
    assert checked.count(True) == limit and len(stored(core)) == limit
