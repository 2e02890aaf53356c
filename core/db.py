"""Database plumbing: the declarative base, a UTC datetime column type, engines and sessions."""

import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, DateTime, Delete, Engine, MetaData, Update, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from core.clock import require_aware

T = TypeVar("T")
READ_ONLY = "madoguchi_read_only"  # the execution option of a transaction that only reads
BUSY_TIMEOUT_MS = 30_000  # how long a statement waits for another connection's lock
WRITER_WAIT_SECONDS = BUSY_TIMEOUT_MS / 1000  # how long a writer waits for the write lock

# Stable constraint names, so Alembic migrations read the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and returns them aware, on SQLite (which has no time zones) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        utc = require_aware(value).astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout so concurrent writers wait."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        _one_writer_at_a_time(engine)
        return engine
    # No ping before each checkout (a round trip per transaction): a connection the server dropped fails once,
    # and SQLAlchemy then discards every connection of the pool older than that failure.
    # The pool holds a handler's connection for each turn at once (bot/locks.py; the turn's own reads and writes
    # go through connections of their own, core.turns) and the workers'.
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


# Each SQLite engine's writer lock (see _one_writer_at_a_time), for the writes made on a driver connection.
_WRITERS: "weakref.WeakKeyDictionary[Engine, threading.Lock]" = weakref.WeakKeyDictionary()


@contextmanager
def sqlite_write(engine: Engine, dbapi_connection: sqlite3.Connection, *,
                 busy_timeout_off: bool = False) -> Iterator[sqlite3.Connection]:
    """`start_sqlite_write` … `end_sqlite_write` around a block: committed when it ends, rolled back on any
    error."""
    start_sqlite_write(engine, dbapi_connection, busy_timeout_off=busy_timeout_off)
    try:
        yield dbapi_connection
    except BaseException:
        end_sqlite_write(engine, dbapi_connection, commit=False)
        raise
    end_sqlite_write(engine, dbapi_connection, commit=True)


def start_sqlite_write(engine: Engine, dbapi_connection: sqlite3.Connection, *,
                       busy_timeout_off: bool = False) -> None:
    """A write transaction on an SQLite driver connection of `engine`, taken as the engine's own writers take
    theirs: in this process's queue of writers, then BEGIN IMMEDIATE. End it with `end_sqlite_write`, whatever
    happens (core.turns' held writes outlive a block; `sqlite_write` is the block). `busy_timeout_off`: the
    connection's busy timeout is kept at 0 by its owner, who retries its statements itself (`patiently`), so
    BEGIN need not turn it off and on again."""
    _before_writing(engine)
    writer = _WRITERS[engine]
    if not writer.acquire(timeout=WRITER_WAIT_SECONDS):  # bounded, as the engine's writers are
        _begin_immediate(dbapi_connection, busy_timeout_off=busy_timeout_off)  # SQLite's lock decides, then
        _UNQUEUED.add(id(dbapi_connection))
        return
    try:
        _begin_immediate(dbapi_connection, busy_timeout_off=busy_timeout_off)
    except BaseException:
        writer.release()
        raise


def end_sqlite_write(engine: Engine, dbapi_connection: sqlite3.Connection, *, commit: bool) -> None:
    """COMMIT (or ROLLBACK) a transaction of `start_sqlite_write` and give the writer lock back; after a failed
    COMMIT the transaction is rolled back, and the error raised."""
    try:
        if commit:
            try:
                dbapi_connection.execute("COMMIT")
                return
            except BaseException:
                if dbapi_connection.in_transaction:
                    dbapi_connection.execute("ROLLBACK")
                raise
        if dbapi_connection.in_transaction:
            dbapi_connection.execute("ROLLBACK")
    finally:
        if id(dbapi_connection) in _UNQUEUED:
            _UNQUEUED.discard(id(dbapi_connection))
        else:
            _WRITERS[engine].release()


# Connections writing without the writer lock, which they waited for in vain (see start_sqlite_write).
_UNQUEUED: set[int] = set()
# Per engine, what must happen before this thread starts a write (core.turns: commit the turn writes it holds,
# whose transaction has the write lock that the new write would otherwise wait for, on the same thread).
_BEFORE_WRITING: "weakref.WeakKeyDictionary[Engine, list[weakref.WeakMethod[Callable[[], None]]]]" = \
    weakref.WeakKeyDictionary()


def before_writing(engine: Engine, hook: Callable[[], None]) -> None:
    """Call `hook` (a bound method, held weakly) before each write transaction of `engine` starts (SQLite)."""
    hooks = [ref for ref in _BEFORE_WRITING.get(engine, []) if ref() is not None]
    _BEFORE_WRITING[engine] = [*hooks, weakref.WeakMethod(hook)]


def _before_writing(engine: Engine) -> None:
    for ref in _BEFORE_WRITING.get(engine, ()):
        hook = ref()
        if hook is not None:
            hook()


def _one_writer_at_a_time(engine: Engine) -> None:
    """SQLite has one writer at a time. pysqlite's own transaction handling defers BEGIN; we emit BEGIN IMMEDIATE
    ourselves so the write lock is taken at the start, and this process's writers first queue on a lock of ours,
    taken before BEGIN and given back after COMMIT or ROLLBACK: a writer waits its turn instead of polling
    SQLite's busy handler, which sleeps and retries (seconds at the tail under load). A transaction that only
    reads (Core.reading) takes neither. Another process's writers still meet the busy timeout."""
    writer = _WRITERS[engine] = threading.Lock()
    holders: set[int] = set()  # the DBAPI connection holding it (commit and rollback are given that, or its proxy)
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        _before_writing(engine)
        # Bounded: a writer never waits on us longer than SQLite's own busy timeout would have let it.
        if writer.acquire(timeout=WRITER_WAIT_SECONDS):
            holders.add(_raw(conn.connection))
        try:
            _begin_immediate(conn.connection.dbapi_connection)
        except BaseException:
            _give_back(conn.connection)
            raise

    def _give_back(dbapi_connection: Any) -> None:
        raw = _raw(dbapi_connection)
        if raw in holders:
            holders.discard(raw)
            writer.release()

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            _give_back(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            _give_back(dbapi_connection)

    event.listen(engine, "begin", begin)
    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]


def _begin_immediate(dbapi_connection: Any, *, busy_timeout_off: bool = False) -> None:
    """BEGIN IMMEDIATE, waiting for another process's writer in steps of a millisecond or two.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 … 100 ms between tries, so a writer that
    meets another process's transaction of a few milliseconds waits tens of them. Statements other than this
    BEGIN keep the busy timeout: in WAL mode they seldom meet a lock, and then they should wait.
    """
    if busy_timeout_off:
        patiently(lambda: dbapi_connection.execute("BEGIN IMMEDIATE"), "BEGIN IMMEDIATE")
        return
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        patiently(lambda: dbapi_connection.execute("BEGIN IMMEDIATE"), "BEGIN IMMEDIATE")
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def patiently(work: Callable[[], T], statement: str) -> T:
    """Run `work` (statements on an SQLite driver connection whose busy timeout is 0), again every millisecond
    or two while another connection holds the lock it needs, for up to WRITER_WAIT_SECONDS.

    Raises:
        OperationalError: any other driver error, or the lock still held after the wait (as SQLAlchemy would
            have raised it: callers tell a database that is down by this type).
    """
    deadline = time.monotonic() + WRITER_WAIT_SECONDS
    pause = 0.0005
    while True:
        try:
            return work()
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise OperationalError(statement, None, error) from error
        time.sleep(pause)
        pause = min(pause * 2, 0.002)


def _raw(connection: Any) -> int:
    """The identity of the DBAPI connection behind a pool's proxy (or of the DBAPI connection itself)."""
    return id(getattr(connection, "dbapi_connection", None) or connection)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let the "begin" listener control transactions
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs the log at checkpoints, not at every commit: a committed transaction survives
    # the process dying (the log is in the OS's hands), only a power loss or an OS crash can take the last
    # few back, and the database stays consistent. FULL made each turn wait ~5 ms for the disk.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def changed_rows(session: Session, statement: Update | Delete) -> int:
    """Run an UPDATE or DELETE in the session; how many rows it matched.

    Args:
        session: the session (and transaction) to run it in.
        statement: the UPDATE or DELETE.

    Returns:
        The driver's row count: on SQLite and PostgreSQL, the rows the WHERE clause matched.
    """
    # cast: Session.execute is declared to return a Result, which has no rowcount, whatever the statement;
    # an UPDATE's or DELETE's result is in fact a CursorResult.
    return cast(CursorResult[Any], session.execute(statement)).rowcount


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any error."""
    with factory() as session, session.begin():
        yield session
