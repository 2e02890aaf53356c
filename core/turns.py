"""A conversation turn's own database work, kept short: what the turn needs to know read in one statement (the
state, the linked student, the open ticket), and what it leaves written in two (the transcript, the state), each
compiled once and run on the driver's connection."""

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import ClauseElement, Connection, Dialect, Engine, Table, bindparam, insert, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import Pool
from sqlalchemy.sql.compiler import SQLCompiler

from core.conversations import EXPIRY, ConversationState, state_from_row, state_json
from core.db import UTCDateTime, sqlite_write
from core.handoffs import OPEN
from core.models import ChannelAccount, Conversation, HandoffTicket, TranscriptEntry

T = TypeVar("T")
_STATEMENT_LOG = logging.getLogger("sqlalchemy.engine.Engine")  # SQLAlchemy's statement log (echo)


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
        merged = {**self._defaults, **values}
        return tuple(merged[name] for name in self._order) if self._order is not None else merged


class TurnStore:
    """A conversation turn's own statements, compiled once for the engine's dialect and run on the driver's
    connection: SQLAlchemy's work around each statement (compiling caches, execution contexts, events, the
    pool's transaction bookkeeping) cost more than the database itself, on every message.

    On SQLite the read is one statement outside any transaction (WAL lets it read beside a writer) and the write
    one short transaction in the engine's queue of writers (core.db.sqlite_write). On PostgreSQL both run in the
    transaction that holds the conversation's advisory lock (bot/locks.py), given as `held`.
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
        # Driver connections between turns, each with the pool that opened it (list.pop and append are atomic).
        self._idle: list[tuple[Any, Pool]] = []

    def load(self, held: Connection | None, conversation_id: str, channel: str, user_id: str,
             now: datetime) -> TurnStart:
        """The turn's state (new after EXPIRY of silence), the chat account's linked student and the open
        ticket, in one statement."""
        args = self._load.args({"conversation_id": conversation_id, "channel": channel, "user_id": user_id})
        row: Any
        if held is not None:
            row = held.exec_driver_sql(self._load.sql, args).one()
        else:
            def read() -> Any:
                with self._driver() as connection:
                    _log_statement(self._load.sql, args)
                    return connection.execute(self._load.sql, args).fetchone()
            row = self._run(read, self._load.sql)
        stored_channel, stored_user, lang, student_id, stored, updated_at, linked, ticket_id, ticket_status = row
        updated_at = self._from_db(updated_at)
        fresh = updated_at is None or now - updated_at >= EXPIRY
        state = ConversationState(conversation_id=conversation_id, channel=channel, user_id=user_id) if fresh \
            else state_from_row(conversation_id, stored_channel, stored_user, lang, student_id, stored)
        return TurnStart(state, linked, ticket_id, ticket_status)

    def save(self, held: Connection | None, state: ConversationState, lines: list[dict[str, Any]],
             now: datetime) -> None:
        """Write the turn's transcript lines (`conversations.transcript_row`) in one statement and the state in
        one upsert; on PostgreSQL in a savepoint of `held`, so that a failed write leaves its lock's transaction
        usable."""
        at = self._to_db(now)
        rows = [self._insert_lines.args({**line, "at": self._to_db(line["at"])}) for line in lines]
        state_row = self._upsert.args({
            "id": state.conversation_id, "channel": state.channel, "user_id": state.user_id,
            "lang": state.lang.value if state.lang else None, "student_id": state.student_id,
            "state_json": state_json(state), "created_at": at, "updated_at": at})
        if held is not None:
            with held.begin_nested():
                if rows:
                    held.exec_driver_sql(self._insert_lines.sql, rows)
                held.exec_driver_sql(self._upsert.sql, state_row)
            return
        def write() -> None:
            with self._driver() as connection, sqlite_write(self.engine, connection) as writing:
                if rows:
                    _log_statement(self._insert_lines.sql, rows)
                    writing.executemany(self._insert_lines.sql, rows)
                _log_statement(self._upsert.sql, state_row)
                writing.execute(self._upsert.sql, state_row)
        self._run(write, self._upsert.sql)

    @contextmanager
    def _driver(self) -> Iterator[Any]:
        """A driver connection of the turns' own (SQLite), taken from those idle or opened, and given back when the
        block ends. Opened by the engine's pool, then detached from it: a pool's checkout and checkin on every
        statement cost as much as the statement. An engine disposed of (its pool replaced) takes them along (a
        driver error while opening is the driver's own: `_run` raises it as SQLAlchemy would)."""
        pool = self.engine.pool
        while self._idle:
            connection, opened_by = self._idle.pop()
            if opened_by is pool:
                break
            connection.close()
        else:
            pooled = self.engine.raw_connection()
            pooled.detach()  # ours now: closed, not given back, when it is dropped
            connection, opened_by = pooled.dbapi_connection, pool
        try:
            yield connection
        except BaseException:
            connection.close()  # after an error it may be mid-transaction or broken: never reused
            raise
        self._idle.append((connection, opened_by))

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
    several processes take turns (SQLite runs in one process, where the caller's thread lock is enough)."""
    connection.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": conversation_id})
