"""SQLite writers of two processes (two engines on one file, each with its own writer lock): the second waits
for the first in short steps, not SQLite's busy schedule, and gives up with the database's error when the first
holds the lock past the wait."""

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from core import db
from core.db import make_engine


@pytest.fixture()
def two_processes(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = make_engine(url), make_engine(url)
    with first.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    yield first, second
    first.dispose()
    second.dispose()


def test_a_writer_of_another_process_gets_the_lock_soon_after_it_is_given_back(two_processes):
    first, second = two_processes
    held = threading.Event()
    waited: list[float] = []

    def hold_for_a_moment() -> None:
        with first.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
            held.set()
            time.sleep(0.135)  # between two of SQLite's tries (at 128 and 178 ms)
        waited.append(time.monotonic())  # given back

    holder = threading.Thread(target=hold_for_a_moment)
    holder.start()
    held.wait(5)
    with second.begin() as connection:  # waits for the first
        got = time.monotonic()
        connection.execute(text("INSERT INTO t VALUES (2)"))
    holder.join()
    with second.connect() as connection:
        assert connection.execute(text("SELECT x FROM t ORDER BY x")).scalars().all() == [1, 2]
    # SQLite's own busy handler would sleep up to 25 ms between tries by then; ours at most 2 ms.
    assert got - waited[0] < 0.02
    with second.connect() as connection:  # statements other than BEGIN keep the busy timeout
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == db.BUSY_TIMEOUT_MS


def test_a_writer_gives_up_with_the_database_error_after_the_wait(two_processes, monkeypatch):
    first, second = two_processes
    monkeypatch.setattr(db, "WRITER_WAIT_SECONDS", 0.05)
    with first.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(OperationalError, match="locked"), second.begin() as other:
            other.execute(text("INSERT INTO t VALUES (2)"))
    with second.begin() as connection:  # the failed writer gave its lock back: the next one goes ahead
        connection.execute(text("INSERT INTO t VALUES (3)"))
