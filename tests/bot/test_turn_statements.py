"""A turn's own database work stays short: one statement reads what the turn needs (state, linked student, open
ticket), one writes the transcript and one the state; the write lock is taken once, at the end."""

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from core.conversations import ConversationState, transcript_row
from core.handoffs import TicketStatus
from core.models import ChannelAccount, Conversation, HandoffTicket, TranscriptEntry
from core.students import create_student
from handlers.turn import Channel, IncomingMessage


def statements_of_a_turn(core, pipeline, message) -> list[str]:
    """The statements the turn ran: on SQLite every statement the driver ran (the turn's statements go to the
    driver's connection directly; an executemany shows once per row), on PostgreSQL as SQLAlchemy sent them."""
    seen: list[str] = []

    def note(_conn, _cursor, statement, _parameters, _context, _executemany):
        seen.append(" ".join(statement.split()))

    def trace(dbapi_connection, _record, _proxy):
        dbapi_connection.set_trace_callback(lambda statement: seen.append(" ".join(statement.split())))

    sqlite = core.engine.dialect.name == "sqlite"
    if sqlite:
        core.engine.dispose()  # the turn's connection is opened anew, through the traced checkout
    event.listen(core.engine, "checkout" if sqlite else "before_cursor_execute", trace if sqlite else note)
    try:
        pipeline.handle(message)
    finally:
        event.remove(core.engine, "checkout" if sqlite else "before_cursor_execute", trace if sqlite else note)
        if sqlite:
            core.engine.dispose()  # the pooled connections' trace callbacks go with them
    return [statement for statement in seen if not statement.startswith("PRAGMA")]


def web(text: str, user: str = "u1") -> IncomingMessage:
    return IncomingMessage(channel=Channel.WEB, user_id=user, conversation_id=f"web:{user}", text=text)


def test_a_question_from_the_guide_reads_once_and_writes_twice(core, pipeline_for):
    pipeline = pipeline_for(core)
    pipeline.handle(web("こんにちは"))  # the conversation exists: its row is updated, not created
    statements = statements_of_a_turn(core, pipeline, web("支払い方法を教えてください"))
    if core.engine.dialect.name == "sqlite":
        # The read outside any transaction; the write lock only for the write, which is one transaction.
        read, begin, *lines, state, commit = statements
        assert read.startswith("SELECT") and "handoff_tickets" in read and "channel_accounts" in read
        assert (begin, commit) == ("BEGIN IMMEDIATE", "COMMIT"), statements
        assert len(lines) >= 2 and all(line.startswith("INSERT INTO transcript_entries") for line in lines)
    else:
        assert not [statement for statement in statements if statement.startswith(("SAVEPOINT", "RELEASE"))]
        work = [statement for statement in statements if not statement.startswith(("BEGIN", "SELECT pg_advisory"))]
        assert len(work) == 3, statements
        read, insert_lines, state = work
        assert read.startswith("SELECT") and "handoff_tickets" in read and "channel_accounts" in read
        assert insert_lines.startswith("INSERT INTO transcript_entries")  # one executemany
    assert state.startswith("INSERT INTO conversations") and "ON CONFLICT" in state


def linked_and_taken_by_an_agent(core, user_id: str, student_number: str) -> int:
    """A LINE user linked to a new student, whose conversation an agent has taken; the student's id."""
    now = core.now()
    with core.transaction() as session:
        student = create_student(session, student_number=student_number, department="medicine", year=3, now=now)
        session.add(ChannelAccount(channel="line", external_id=user_id, student_id=student.id, following=True,
                                   linked_at=now, created_at=now, updated_at=now))
        session.add(HandoffTicket(conversation_id=f"line:{user_id}", channel="line", user_id=user_id, lang="ja",
                                  reason="asked", status=TicketStatus.ASSIGNED.value, assignee="staff:1",
                                  opened_at=now))
        session.flush()
        return student.id


def test_the_one_read_finds_the_linked_student_and_the_open_ticket(core, pipeline_for):
    student_id = linked_and_taken_by_an_agent(core, "U9", "24M1001")
    pipeline = pipeline_for(core)
    pipeline.handle(IncomingMessage(channel=Channel.LINE, user_id="U9", conversation_id="line:U9",
                                    text="まだですか"))
    with core.transaction() as session:
        row = session.get(Conversation, "line:U9")
        lines = session.scalars(select(TranscriptEntry.direction).where(
            TranscriptEntry.conversation_id == "line:U9")).all()
    assert row is not None and row.student_id == student_id  # who the linked account is
    assert lines == ["in"]  # relayed to the agent who has the ticket: the bot said nothing


def test_a_new_conversation_is_created_by_the_same_upsert(core, pipeline_for):
    pipeline = pipeline_for(core)
    pipeline.handle(web("問い合わせ先は？", user="new"))
    pipeline.handle(web("ありがとう", user="new"))
    with core.transaction() as session:
        row = session.get(Conversation, "web:new")
        count = len(session.scalars(select(TranscriptEntry.id).where(
            TranscriptEntry.conversation_id == "web:new")).all())
    assert row is not None and row.created_at <= row.updated_at
    assert count >= 4


def test_a_turn_whose_write_fails_stores_nothing_and_frees_the_conversation(core, pipeline_for):
    pipeline = pipeline_for(core)
    now = core.now()
    # A state naming a student who does not exist (deleted while the turn ran): its upsert breaks a foreign key.
    gone = ConversationState(conversation_id="line:U12", channel="line", user_id="U12", student_id=987654)
    with pipeline.locks.hold("line:U12") as held, pytest.raises(IntegrityError):
        pipeline.turns.save(held, gone, [transcript_row("line:U12", "in", "こんにちは", now)], now)
    # Nothing of it was kept, and the conversation's lock is free: its next message is answered.
    replies = pipeline.handle(IncomingMessage(channel=Channel.LINE, user_id="U12", conversation_id="line:U12",
                                              text="問い合わせ先は？"))
    assert replies
    with core.transaction() as session:
        directions = session.scalars(select(TranscriptEntry.direction).where(
            TranscriptEntry.conversation_id == "line:U12").order_by(TranscriptEntry.id)).all()
    assert directions[0] == "in" and len(directions) == 1 + len(replies)
