"""A turn's own database work stays short: one statement reads what the turn needs (state, linked student, open
ticket), one writes the transcript and one the state; the write lock is taken once, at the end."""

import re

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError, OperationalError

from core.conversations import ConversationState, transcript_row
from core.handoffs import TicketStatus
from core.models import ChannelAccount, Conversation, HandoffTicket, TranscriptEntry
from core.students import create_student
from handlers.turn import Channel, IncomingMessage


def statements_of_a_turn(core, pipeline, message, tmp_path) -> tuple[list[str], int]:
    """The statements the turn ran as the driver sent them, and the round trips they took: on SQLite every
    statement (an executemany shows once per row); on PostgreSQL as libpq's trace of the wire shows them, each
    wait for the server's answers (a Sync) a round trip."""
    seen: list[str] = []
    trace_file = tmp_path / "libpq.trace"

    def trace(dbapi_connection, _record, _proxy):
        if core.engine.dialect.name == "sqlite":
            dbapi_connection.set_trace_callback(lambda statement: seen.append(" ".join(statement.split())))
        else:
            dbapi_connection.pgconn.trace(traced.fileno())

    core.engine.dispose()  # the turn's connection is opened anew, through the traced checkout
    event.listen(core.engine, "checkout", trace)
    with trace_file.open("w") as traced:
        try:
            pipeline.handle(message)
        finally:
            event.remove(core.engine, "checkout", trace)
            core.engine.dispose()  # the traced connections go with the pool (the turns' own are dropped with it)
    round_trips = 0
    if core.engine.dialect.name != "sqlite":
        # One message a record, each after its time (a statement's own new lines are in its record).
        records = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\t)", trace_file.read_text())
        frontend = [record.split("\t", 4)[3:] for record in records if "\tF\t" in record]
        seen = [" ".join(fields[1].split('" "', 1)[1].rsplit('"', 1)[0].split()) for fields in frontend
                if fields[0] == "Parse"] + [fields[1].strip().strip('"') for fields in frontend
                                             if fields[0] == "Query"]
        # Syncs sent back to back are one wait (psycopg's pipeline ends a BEGIN with one of its own).
        kinds = [fields[0] for fields in frontend if fields[0] != "Flush"]
        round_trips = sum(1 for index, kind in enumerate(kinds) if kind == "Sync" and (
            index + 1 == len(kinds) or kinds[index + 1] != "Sync") and "Parse" in kinds[:index])
    return [statement for statement in seen if not statement.startswith("PRAGMA")], round_trips


def web(text: str, user: str = "u1") -> IncomingMessage:
    return IncomingMessage(channel=Channel.WEB, user_id=user, conversation_id=f"web:{user}", text=text)


def test_a_question_from_the_guide_reads_once_and_writes_twice(core, pipeline_for, tmp_path):
    pipeline = pipeline_for(core)
    pipeline.handle(web("こんにちは"))  # the conversation exists: its row is updated, not created
    statements, round_trips = statements_of_a_turn(core, pipeline, web("支払い方法を教えてください"), tmp_path)
    if core.engine.dialect.name == "sqlite":
        # The read outside any transaction; the write lock only for the write, which is one transaction.
        read, begin, *lines, state, commit = statements
        assert read.startswith("SELECT") and "handoff_tickets" in read and "channel_accounts" in read
        assert (begin, commit) == ("BEGIN IMMEDIATE", "COMMIT"), statements
        assert len(lines) >= 2 and all(line.startswith("INSERT INTO transcript_entries") for line in lines)
    else:
        # One transaction: the lock with the read, then the lines in one INSERT, the state and the commit.
        begin, lock, read, insert_lines, state, commit = statements
        assert (begin, commit) == ("BEGIN", "COMMIT") and lock.startswith("SELECT pg_advisory_xact_lock"), statements
        assert read.startswith("SELECT") and "handoff_tickets" in read and "channel_accounts" in read
        assert insert_lines.startswith("INSERT INTO transcript_entries") and "), (" in insert_lines
        assert round_trips == 2, statements
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
    with pipeline.locks.hold_turn("line:U12", pipeline.turns) as held, pytest.raises(IntegrityError):
        pipeline.turns.load(held, "line:U12", "line", "U12", now)
        pipeline.turns.save(held, gone, [transcript_row("line:U12", "in", "こんにちは", now)], now)
    # Nothing of it was kept, and the conversation's lock is free: its next message is answered.
    replies = pipeline.handle(IncomingMessage(channel=Channel.LINE, user_id="U12", conversation_id="line:U12",
                                              text="問い合わせ先は？"))
    assert replies
    with core.transaction() as session:
        directions = session.scalars(select(TranscriptEntry.direction).where(
            TranscriptEntry.conversation_id == "line:U12").order_by(TranscriptEntry.id)).all()
    assert directions[0] == "in" and len(directions) == 1 + len(replies)


def test_a_turn_connection_the_server_dropped_meanwhile_is_replaced_without_failing_the_turn(core, pipeline_for):
    if core.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL: the turns' own connections outlive a server that went away")
    pipeline = pipeline_for(core)
    pipeline.handle(web("こんにちは"))
    [idle] = pipeline.turns._idle
    with core.engine.connect() as connection:  # as a restarted server (or a proxy's idle timeout) drops it
        connection.exec_driver_sql("SELECT pg_terminate_backend(%s)", (idle.connection.info.backend_pid,))
    turn = pipeline.answer(web("支払い方法を教えてください"))
    assert turn.intents  # answered, on a new connection
    assert idle.connection.closed and [kept.connection for kept in pipeline.turns._idle] != [idle.connection]
    with core.transaction() as session:
        lines = session.scalars(select(TranscriptEntry.direction).where(
            TranscriptEntry.conversation_id == "web:u1")).all()
    assert lines.count("in") == 2  # both turns stored


def test_a_database_that_cannot_be_reached_fails_the_turn(core, pipeline_for, monkeypatch):
    if core.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL: the turns' own connections")
    pipeline = pipeline_for(core)
    pipeline.handle(web("こんにちは"))
    [idle] = pipeline.turns._idle
    with core.engine.connect() as connection:
        connection.exec_driver_sql("SELECT pg_terminate_backend(%s)", (idle.connection.info.backend_pid,))
    # The server is gone for good: the turn's new connection cannot be opened either (the pool's idle ones
    # closed: the same pool, which the turn's kept connection came from).
    core.engine.pool.dispose()
    monkeypatch.setattr(core.engine.pool, "_creator", lambda *_: (_ for _ in ()).throw(
        core.engine.dialect.loaded_dbapi.OperationalError("connection refused")))
    with pytest.raises(OperationalError):  # the web app answers this one 503 (the database went away)
        pipeline.answer(web("支払い方法を教えてください"))
