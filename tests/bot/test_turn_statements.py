"""A turn's own database work stays short: one statement reads what the turn needs (state, linked student, open
ticket), one writes the transcript and one the state; the write lock is taken once, at the end."""

from sqlalchemy import event, select

from core.handoffs import TicketStatus
from core.models import ChannelAccount, Conversation, HandoffTicket, TranscriptEntry
from core.students import create_student
from handlers.turn import Channel, IncomingMessage


def statements_of_a_turn(core, pipeline, message) -> tuple[list[str], list[str]]:
    """The statements the turn ran, as SQLAlchemy sent them (a bulk insert is one), and on SQLite the
    transaction statements the driver saw (BEGIN IMMEDIATE goes to the DBAPI connection directly)."""
    seen: list[str] = []
    begins: list[str] = []

    def note(_conn, _cursor, statement, _parameters, _context, _executemany):
        seen.append(" ".join(statement.split()))

    def trace(dbapi_connection, _record, _proxy):
        dbapi_connection.set_trace_callback(lambda statement: begins.append(statement) if statement.startswith(
            "BEGIN") else None)

    sqlite = core.engine.dialect.name == "sqlite"
    event.listen(core.engine, "before_cursor_execute", note)
    if sqlite:
        event.listen(core.engine, "checkout", trace)
    try:
        pipeline.handle(message)
    finally:
        event.remove(core.engine, "before_cursor_execute", note)
        if sqlite:
            event.remove(core.engine, "checkout", trace)
            core.engine.dispose()  # the pooled connections' trace callbacks go with them
    return seen, begins


def web(text: str, user: str = "u1") -> IncomingMessage:
    return IncomingMessage(channel=Channel.WEB, user_id=user, conversation_id=f"web:{user}", text=text)


def test_a_question_from_the_guide_reads_once_and_writes_twice(core, pipeline_for):
    pipeline = pipeline_for(core)
    pipeline.handle(web("こんにちは"))  # the conversation exists: its row is updated, not created
    statements, begins = statements_of_a_turn(core, pipeline, web("支払い方法を教えてください"))
    work = [statement for statement in statements if not statement.startswith(("BEGIN", "SAVEPOINT", "RELEASE",
                                                                                 "SELECT pg_advisory"))]
    assert len(work) == 3, statements
    assert work[0].startswith("SELECT") and "handoff_tickets" in work[0] and "channel_accounts" in work[0]
    assert work[1].startswith("INSERT INTO transcript_entries")
    assert work[2].startswith("INSERT INTO conversations") and "ON CONFLICT" in work[2]
    if core.engine.dialect.name == "sqlite":  # the write lock only for the write, never for the read
        assert begins == ["BEGIN", "BEGIN IMMEDIATE"]


def test_the_one_read_finds_the_linked_student_and_the_open_ticket(core, pipeline_for):
    now = core.now()
    with core.transaction() as session:
        student = create_student(session, student_number="24M1001", department="medicine", year=3, now=now)
        session.add(ChannelAccount(channel="line", external_id="U9", student_id=student.id, following=True,
                                   linked_at=now, created_at=now, updated_at=now))
        session.add(HandoffTicket(conversation_id="line:U9", channel="line", user_id="U9", lang="ja",
                                  reason="asked", status=TicketStatus.ASSIGNED.value, assignee="staff:1",
                                  opened_at=now))
    pipeline = pipeline_for(core)
    pipeline.handle(IncomingMessage(channel=Channel.LINE, user_id="U9", conversation_id="line:U9",
                                    text="まだですか"))
    with core.transaction() as session:
        row = session.get(Conversation, "line:U9")
        lines = session.scalars(select(TranscriptEntry.direction).where(
            TranscriptEntry.conversation_id == "line:U9")).all()
    assert row is not None and row.student_id == student.id  # who the linked account is
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
