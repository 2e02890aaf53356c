"""A conversation turn's own database work, kept short: what the turn needs to know read in one statement (the
state, the linked student, the open ticket), and what it leaves written in two (the transcript, the state), each
compiled once and run on the driver's connection. On SQLite the read is skipped when nothing but this
connection wrote since it last read or wrote the conversation (`PRAGMA data_version`); on PostgreSQL the
conversation's lock and the read are one round trip, and the writes and the commit another."""

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import ClauseElement, Connection, Dialect, Engine, Table, bindparam, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import Pool
from sqlalchemy.sql.compiler import SQLCompiler

from core.conversations import EXPIRY, ConversationState, state_from_row, state_json
from core.db import UTCDateTime, before_writing, end_sqlite_write, patiently, sqlite_write, start_sqlite_write
from core.handoffs import OPEN
from core.models import ChannelAccount, Conversation, HandoffTicket, TranscriptEntry

T = TypeVar("T")
# PostgreSQL: a conversation's advisory lock, held until the transaction ends (psycopg's placeholder).
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE: no transaction open
_STATEMENT_LOG = logging.getLogger("sqlalchemy.engine.Engine")  # SQLAlchemy's statement log (echo)
log = logging.getLogger(__name__)
# Turns whose writes one held transaction takes at most (see TurnStore.holding_commits): then it is committed.
MAX_HELD_TURNS = 64
# Conversations a turn connection remembers (about a kilobyte each): those of the last few minutes of chats.
REMEMBERED_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class TurnStart:
    """What a turn reads before it answers: the state, and who else has a say in the conversation."""

    state: ConversationState
    linked_student_id: int | None  # the student linked to the chat account (LINE, Slack), or None
    ticket_id: int | None  # the conversation's open handoff ticket, or None
    ticket_status: str | None


# cast: a declarative class's __table__ is its Table, declared as the wider FromClause.
_conversation = cast(Table, Conversation.__table__)
_ticket_of_conversation = (HandoffTicket.conversation_id == bindparam("conversation_id")) \
    & HandoffTicket.status.in_(OPEN)
# Built once: the statement is compiled once and then only executed. The one-row select on the left keeps a row
# (with NULL columns) for a conversation that does not exist yet, so a new chat is still one statement.
_one_row = select(literal(1).label("one")).subquery()
_LOAD = select(
    _conversation.c.channel, _conversation.c.user_id, _conversation.c.lang, _conversation.c.student_id,
    _conversation.c.state_json, _conversation.c.updated_at,
    select(ChannelAccount.student_id).where(ChannelAccount.channel == bindparam("channel"),
                                            ChannelAccount.external_id == bindparam("user_id"))
    .scalar_subquery().label("linked"),
    select(HandoffTicket.id).where(_ticket_of_conversation).order_by(HandoffTicket.id.desc()).limit(1)
    .scalar_subquery().label("ticket_id"),
    select(HandoffTicket.status).where(_ticket_of_conversation).order_by(HandoffTicket.id.desc()).limit(1)
    .scalar_subquery().label("ticket_status"),
).select_from(_one_row.outerjoin(_conversation, _conversation.c.id == bindparam("conversation_id")))

_SAVED_COLUMNS = ("lang", "student_id", "state_json", "updated_at")
_STATE_COLUMNS = ("id", "channel", "user_id", *_SAVED_COLUMNS, "created_at")
_LINE_COLUMNS = ("conversation_id", "direction", "text", "intent", "confidence", "at", "message_ref", "guess",
                 "author", "buttons")  # conversations.transcript_row's keys


class _Statement:
    """A statement compiled once for a dialect, with what it takes to run it on the driver's own cursor."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, binds: tuple[str, ...]) -> None:
        # Expanded once: constant IN lists (the open statuses) rendered into the SQL, nothing left to expand at
        # each run, which gives the values of `binds`.
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))  # a statement's compiler is an SQLCompiler
        expanded = compiled.construct_expanded_state(dict.fromkeys(binds))
        self.sql = expanded.statement
        self._defaults = dict(expanded.parameters)  # the literal binds' values (a constant 1, the statuses)
        self._order = expanded.positiontup  # qmark (SQLite): the bind names in order; pyformat: None

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """The driver's parameters for `values` (by bind name)."""
        if self._order is None:
            return {**self._defaults, **values}
        defaults = self._defaults
        return tuple(values[name] if name in values else defaults[name] for name in self._order)


class _TurnConnection:
    """A driver connection of the turns' own (SQLite), with the turn reads it can answer without asking the
    database again.

    Its busy timeout is 0: each statement is retried in short steps by `patiently` (core.db), not by SQLite's
    busy handler, which sleeps for milliseconds, so BEGIN needs no switching the timeout off and on again.

    It keeps what its last reads and writes of a conversation left in the row (the load statement's columns),
    for as long as no other connection has written anything: SQLite's `PRAGMA data_version` on this connection
    tells, for one short statement instead of the load's three lookups. Anything another connection writes (a
    handoff ticket opened, an account linked, another process's turn) drops them all.
    """

    __slots__ = ("_rows", "_version", "connection", "pool")

    def __init__(self, connection: Any, pool: Pool) -> None:
        self.connection, self.pool = connection, pool
        connection.execute("PRAGMA busy_timeout=0")
        self._version: int | None = None
        self._rows: dict[tuple[str, str, str], tuple[Any, ...]] = {}

    def read(self, sql: str, args: Any) -> tuple[Any, ...]:
        _log_statement(sql, args)
        return patiently(lambda: self.connection.execute(sql, args).fetchone(), sql)

    def remembered(self, key: tuple[str, str, str]) -> tuple[Any, ...] | None:
        """The conversation's load row as this connection left it, if no other connection wrote since."""
        version = patiently(lambda: self.connection.execute("PRAGMA data_version").fetchone()[0],
                            "PRAGMA data_version")
        if version != self._version:
            self._rows.clear()
            self._version = version
            return None
        return self._rows.get(key)

    def remember(self, key: tuple[str, str, str], row: tuple[Any, ...]) -> tuple[Any, ...]:
        if len(self._rows) >= REMEMBERED_ROWS:
            del self._rows[next(iter(self._rows))]  # the one remembered first
        self._rows[key] = row
        return row

    def rewrite(self, key: tuple[str, str, str], conversation: tuple[Any, ...]) -> None:
        """After this connection's commit: the conversation's columns as written, the rest as they were read."""
        row = self._rows.get(key)
        if row is not None:
            self._rows[key] = (*conversation, *row[len(conversation):])


class _PgConnection:
    """A driver connection of the turns' own (PostgreSQL, psycopg), detached from the engine's pool.

    In autocommit mode: the turn sends its own BEGIN with the lock and the read, in one pipeline. psycopg's own
    BEGIN would wait for its answer first (a round trip of its own).
    """

    __slots__ = ("connection", "kept", "pool")

    def __init__(self, connection: Any, pool: Pool) -> None:
        self.connection, self.pool = connection, pool
        connection.autocommit = True
        self.kept = False  # kept idle between turns: the server may have dropped it since


class LockedTurn:
    """PostgreSQL: a turn's driver connection, whose transaction takes the conversation's advisory lock with the
    turn's read (`TurnStore.load`) and ends with its write (`TurnStore.save`); see `TurnStore.locked`."""

    __slots__ = ("conversation_id", "open", "turn")

    def __init__(self, turn: _PgConnection, conversation_id: str) -> None:
        self.turn, self.conversation_id = turn, conversation_id
        self.open = False  # a transaction begun (the lock taken) and not yet committed

    @property
    def connection(self) -> Any:
        return self.turn.connection


class TurnStore:
    """A conversation turn's own statements, compiled once for the engine's dialect and run on the driver's
    connection: SQLAlchemy's work around each statement (compiling caches, execution contexts, events, the
    pool's transaction bookkeeping) cost more than the database itself, on every message.

    On SQLite the read is one statement outside any transaction (WAL lets it read beside a writer) and the write
    one short transaction in the engine's queue of writers (core.db.sqlite_write). On PostgreSQL both run in the
    transaction that holds the conversation's advisory lock (`locked`), given as `held`, each as one round trip
    (psycopg's pipeline mode): BEGIN, the lock and the read; then the writes and COMMIT.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect
        self._load = _Statement(_LOAD, dialect, ("conversation_id", "channel", "user_id"))
        self._insert_lines = _Statement(insert(TranscriptEntry).values(
            {column: bindparam(column) for column in _LINE_COLUMNS}), dialect, _LINE_COLUMNS)
        self._upsert = _Statement(_upsert(dialect.name).values(
            {column: bindparam(column) for column in _STATE_COLUMNS}), dialect, _STATE_COLUMNS)
        # How the UTC datetime columns go in and come out on this dialect (SQLite keeps them as text).
        utc = UTCDateTime().dialect_impl(dialect)
        self._to_db: Callable[[Any], Any] = utc.bind_processor(dialect) or _same
        self._from_db: Callable[[Any], Any] = utc.result_processor(dialect, None) or _same
        self._driver_error: type[Exception] = dialect.loaded_dbapi.Error
        # Driver connections between turns (list.pop and append are atomic).
        self._idle: list[Any] = []
        self._lines_by_count: dict[int, _Statement] = {}  # PostgreSQL: a turn's lines in one INSERT, by count
        # This thread's held turn writes (see holding_commits): .holding, .held (the connection), .turns.
        self._here = threading.local()
        if dialect.name == "sqlite":
            before_writing(engine, self.commit_held)

    @contextmanager
    def locked(self, conversation_id: str) -> Iterator[LockedTurn]:
        """PostgreSQL: a driver connection of the turns' own for the block, whose transaction holds the
        conversation's advisory lock from the turn's read (`load`) until its write (`save`) commits, so that
        several processes take turns. Rolled back when the block ends without a write (a message relayed to an
        agent writes nothing here) or with an error."""
        held = LockedTurn(self._run(lambda: self._take(_PgConnection), "connect"), conversation_id)
        try:
            yield held
        finally:
            self._give_back(held)

    def _give_back(self, held: LockedTurn) -> None:
        """Roll back what `held` left open and keep the connection for the next turn; a broken one is dropped, with
        the others idle."""
        connection = held.connection
        try:
            if held.open or connection.info.transaction_status != _IDLE:
                connection.execute("ROLLBACK")
        except self._driver_error:
            pass  # broken: dropped below
        if connection.closed or connection.broken:
            self._drop_all(held.turn)
            return
        held.turn.kept = True
        self._idle.append(held.turn)

    def _drop_all(self, broken: _PgConnection) -> None:
        """Close a connection the server dropped, and the idle ones: they are as old (the server restarted, or a
        proxy closes idle connections), as SQLAlchemy's pool discards its own older than a failure."""
        broken.connection.close()
        while self._idle:
            self._idle.pop().connection.close()

    def _read_locked(self, held: LockedTurn, args: Any) -> Any:
        """BEGIN, the conversation's lock and the turn's read, sent together and answered together when the
        pipeline ends (its one wait for the server)."""
        connection = held.connection
        held.open = True
        with connection.pipeline():
            connection.execute("BEGIN")
            _log_statement(_LOCK, (held.conversation_id,))
            connection.execute(_LOCK, (held.conversation_id,))
            _log_statement(self._load.sql, args)
            read = connection.execute(self._load.sql, args)
        return read.fetchone()

    def load(self, held: LockedTurn | None, conversation_id: str, channel: str, user_id: str,
             now: datetime) -> TurnStart:
        """The turn's state (new after EXPIRY of silence), the chat account's linked student and the open
        ticket, in one statement; on PostgreSQL after the conversation's lock, in the same round trip."""
        args = self._load.args({"conversation_id": conversation_id, "channel": channel, "user_id": user_id})
        row: Any
        if held is not None:
            def read_locked() -> Any:
                try:
                    return self._read_locked(held, args)
                except self._driver_error:
                    if not held.turn.kept or not (held.connection.closed or held.connection.broken):
                        raise
                # Kept between turns, and dropped by the server since (a restart, a proxy's idle timeout): the
                # turn reads on a new connection (nothing was written), instead of failing the student's message.
                self._drop_all(held.turn)
                held.turn, held.open = self._take(_PgConnection), False
                return self._read_locked(held, args)
            row = self._run(read_locked, self._load.sql)
        else:
            def read() -> Any:
                with self._driver() as turn:
                    return turn.remembered((conversation_id, channel, user_id)) or turn.remember(
                        (conversation_id, channel, user_id), turn.read(self._load.sql, args))
            row = self._run(read, self._load.sql)
        stored_channel, stored_user, lang, student_id, stored, updated_at, linked, ticket_id, ticket_status = row
        updated_at = self._from_db(updated_at)
        fresh = updated_at is None or now - updated_at >= EXPIRY
        state = ConversationState(conversation_id=conversation_id, channel=channel, user_id=user_id) if fresh \
            else state_from_row(conversation_id, stored_channel, stored_user, lang, student_id, stored)
        return TurnStart(state, linked, ticket_id, ticket_status)

    def save(self, held: LockedTurn | None, state: ConversationState, lines: list[dict[str, Any]],
             now: datetime) -> None:
        """Write the turn's transcript lines (`conversations.transcript_row`) in one statement and the state in
        one upsert; on PostgreSQL in `held`, the transaction of the conversation's lock, which then ends."""
        at = self._to_db(now)
        # A turn's lines are written at its `now`: its stored form is worked out once.
        rows = [self._insert_lines.args({**line, "at": at if line["at"] is now else self._to_db(line["at"])})
                for line in lines]
        lang = state.lang.value if state.lang else None
        stored = state_json(state)
        state_row = self._upsert.args({
            "id": state.conversation_id, "channel": state.channel, "user_id": state.user_id, "lang": lang,
            "student_id": state.student_id, "state_json": stored, "created_at": at, "updated_at": at})
        if held is not None:
            # The turn's last statements in its lock's transaction, with its commit, in one round trip. A failed
            # write fails the commit too, and `locked` rolls the transaction back (freeing the lock): the turn's
            # writes are all or nothing, and its failure is logged by the caller.
            def write_locked() -> None:
                connection = held.connection
                with connection.pipeline():
                    if rows:
                        lines_statement = self._lines(len(rows))
                        merged = {f"{name}_{index}": value for index, row in enumerate(rows)
                                  for name, value in cast(dict[str, Any], row).items()}
                        _log_statement(lines_statement.sql, merged)
                        connection.execute(lines_statement.sql, lines_statement.args(merged))
                    _log_statement(self._upsert.sql, state_row)
                    connection.execute(self._upsert.sql, state_row)
                    connection.execute("COMMIT")
                held.open = False
            self._run(write_locked, self._upsert.sql)
            return
        key = (state.conversation_id, state.channel, state.user_id)
        conversation = (state.channel, state.user_id, lang, state.student_id, stored, at)
        def write() -> None:
            if getattr(self._here, "holding", False):
                self._write_held(rows, state_row, key, conversation)
                return
            with self._driver() as turn:
                with sqlite_write(self.engine, turn.connection, busy_timeout_off=True) as writing:
                    self._write(writing, rows, state_row)
                # Committed: what the next turn of the conversation would read back, unless another connection
                # writes first (the chat account's link and the ticket are not the turn's to change).
                turn.rewrite(key, conversation)
        self._run(write, self._upsert.sql)

    def _write(self, connection: Any, rows: list[Any], state_row: Any) -> None:
        if rows:
            _log_statement(self._insert_lines.sql, rows)
            connection.executemany(self._insert_lines.sql, rows)
        _log_statement(self._upsert.sql, state_row)
        connection.execute(self._upsert.sql, state_row)

    @contextmanager
    def holding_commits(self) -> Iterator[None]:
        """Inside the block, this thread's turn writes (SQLite) join one open write transaction, which stays
        open after it until `commit_held`, or until MAX_HELD_TURNS turns are in it, or until this thread starts
        any other write.

        For the event loop's thread, which answers the web chat's turns one after another: a commit (the log's
        pages written, the lock taken and given back) cost a fifth of a turn, and is paid once for the turns the
        loop answers before it comes back to commit them. Each turn's writes are a savepoint of their own, so a
        failed one leaves the others. The next turns of the thread read on the same connection, so a
        conversation's next turn sees its previous one before the commit. Nothing else is held: the reads of
        other threads and processes see the writes once committed, and wait for nothing (WAL).
        """
        self._here.holding = True
        try:
            yield
        finally:
            self._here.holding = False

    def holds_writes(self) -> bool:
        """Whether this thread has turn writes not yet committed (see holding_commits)."""
        return getattr(self._here, "held", None) is not None

    def commit_held(self) -> None:
        """Commit the turn writes this thread holds, if any; a failure is logged, as a turn's own failed write is
        (their students already have their answers), and the transaction rolled back."""
        turn = getattr(self._here, "held", None)
        if turn is None:
            return
        self._here.held = None
        try:
            end_sqlite_write(self.engine, turn.connection, commit=True)
        except Exception:
            log.exception("committing the writes of %d chat turns failed", self._here.turns)
            turn.connection.close()  # its remembered rows were never committed
            return
        self._idle.append(turn)

    def _write_held(self, rows: list[Any], state_row: Any, key: tuple[str, str, str],
                    conversation: tuple[Any, ...]) -> None:
        turn = getattr(self._here, "held", None)
        if turn is None:
            turn = self._take(_TurnConnection)
            try:
                start_sqlite_write(self.engine, turn.connection, busy_timeout_off=True)
            except BaseException:
                turn.connection.close()
                raise
            self._here.held, self._here.turns = turn, 0
        connection = turn.connection
        try:
            connection.execute("SAVEPOINT turn")
            try:
                self._write(connection, rows, state_row)
            except BaseException:
                connection.execute("ROLLBACK TO turn")
                raise
            finally:
                connection.execute("RELEASE turn")
        except self._driver_error:
            if not connection.in_transaction:  # the savepoint could not even be rolled back: all of it is lost
                self._abandon_held()
            raise
        turn.rewrite(key, conversation)  # as written (not yet committed): what this connection now reads
        self._here.turns += 1
        if self._here.turns >= MAX_HELD_TURNS:
            self.commit_held()

    def _abandon_held(self) -> None:
        """Roll back and drop this thread's held writes after an error that leaves their transaction unusable."""
        turn, self._here.held = self._here.held, None
        try:
            end_sqlite_write(self.engine, turn.connection, commit=False)
        except self._driver_error:
            pass  # rolled back or broken: either way never used again
        finally:
            turn.connection.close()

    @contextmanager
    def _driver(self) -> Iterator["_TurnConnection"]:
        """A driver connection of the turns' own (SQLite) for the block: the one holding this thread's turn writes
        if there is one (its reads see them), else one taken from those idle and given back when the block ends.
        After an error it may be mid-transaction or broken: never used again."""
        held = getattr(self._here, "held", None)
        if held is not None:
            try:
                yield held
            except BaseException:
                self._abandon_held()
                raise
            return
        turn = self._take(_TurnConnection)
        try:
            yield turn
        except BaseException:
            turn.connection.close()
            raise
        self._idle.append(turn)

    def _lines(self, count: int) -> _Statement:
        """PostgreSQL: INSERT of `count` transcript lines in one statement (one execution on the server instead
        of one a line), its binds named `<column>_<line>`; compiled once for each count."""
        statement = self._lines_by_count.get(count)
        if statement is None:
            binds = tuple(f"{column}_{index}" for index in range(count) for column in _LINE_COLUMNS)
            statement = self._lines_by_count[count] = _Statement(insert(TranscriptEntry).values(
                [{column: bindparam(f"{column}_{index}") for column in _LINE_COLUMNS} for index in range(count)]),
                self.engine.dialect, binds)
        return statement

    def _take(self, make: Callable[[Any, Pool], T]) -> T:
        """An idle turn connection, or a new one. Opened by the engine's pool, then detached from it: a pool's
        checkout and checkin on every statement cost as much as the statement. An engine disposed of (its pool
        replaced) takes them along (a driver error while opening is the driver's own: `_run` raises it as
        SQLAlchemy would)."""
        pool = self.engine.pool
        while self._idle:
            turn = self._idle.pop()
            if turn.pool is pool:
                return cast(T, turn)
            turn.connection.close()
        pooled = self.engine.raw_connection()
        pooled.detach()  # ours now: closed, not given back, when it is dropped
        return make(pooled.dbapi_connection, pool)

    def _run(self, work: Callable[[], T], sql: str) -> T:
        """Run `work`; a driver error is raised as SQLAlchemy raises it (the web app answers 503 to a database
        that cannot be reached by those types)."""
        try:
            return work()
        except self._driver_error as error:
            raise DBAPIError.instance(sql, None, error, self._driver_error, dialect=self.engine.dialect) from error


def _same(value: Any) -> Any:
    return value


def _log_statement(sql: str, args: object) -> None:
    """Log a statement and its parameters where SQLAlchemy logs its own, when an operator turned that log on: it
    shows the turn's statements too (masked by the log's filter, as SQLAlchemy's are)."""
    if _STATEMENT_LOG.isEnabledFor(logging.INFO):
        _STATEMENT_LOG.info("%s", sql)
        _STATEMENT_LOG.info("[turn] %r", args)


@cache
def _upsert(dialect: str) -> sqlite.Insert | postgresql.Insert:
    """INSERT … ON CONFLICT (id) DO UPDATE of the conversation row, in the dialect's syntax (built once)."""
    inserts: dict[str, Callable[[Table], sqlite.Insert | postgresql.Insert]] = {
        "sqlite": sqlite.insert, "postgresql": postgresql.insert}
    statement = inserts[dialect](_conversation)
    return statement.on_conflict_do_update(index_elements=[_conversation.c.id],
                                           set_={column: statement.excluded[column] for column in _SAVED_COLUMNS})


def lock_conversation(connection: Connection, conversation_id: str) -> None:
    """Hold the conversation's PostgreSQL advisory lock until the connection's transaction ends, so that
    several processes take turns (SQLite runs in one process, where the caller's thread lock is enough); the
    lock a turn takes with its read (`TurnStore.locked`)."""
    connection.exec_driver_sql(_LOCK, (conversation_id,))
