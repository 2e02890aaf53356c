"""A conversation turn's own database work, kept short: what the turn needs to know read in one statement (the
state, the linked student, the open ticket), and what it leaves written in two (the transcript, the state)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite

from core.conversations import EXPIRY, ConversationState, state_from_row, state_json
from core.handoffs import OPEN
from core.models import ChannelAccount, Conversation, HandoffTicket, TranscriptEntry


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


def load_turn(connection: Connection, conversation_id: str, channel: str, user_id: str, now: datetime) -> TurnStart:
    """The turn's state (new after EXPIRY of silence), the chat account's linked student and the open ticket."""
    row = connection.execute(
        _LOAD, {"conversation_id": conversation_id, "channel": channel, "user_id": user_id}).one()
    fresh = row.updated_at is None or now - row.updated_at >= EXPIRY
    state = ConversationState(conversation_id=conversation_id, channel=channel, user_id=user_id) if fresh \
        else state_from_row(conversation_id, row.channel, row.user_id, row.lang, row.student_id, row.state_json)
    return TurnStart(state, row.linked, row.ticket_id, row.ticket_status)


def save_turn(connection: Connection, state: ConversationState, lines: list[dict[str, Any]], now: datetime) -> None:
    """Write the turn's transcript lines (`conversations.transcript_row`) in one statement, the state in one
    upsert."""
    if lines:
        connection.execute(insert(TranscriptEntry), lines)
    values = {"id": state.conversation_id, "channel": state.channel, "user_id": state.user_id,
              "lang": state.lang.value if state.lang else None, "student_id": state.student_id,
              "state_json": state_json(state), "created_at": now, "updated_at": now}
    connection.execute(_upsert(connection.dialect.name), values)


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
