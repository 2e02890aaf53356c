"""The web chat's turns on SQLite: their writes held in one transaction until the event loop commits them together;
what each turn reads is the database's, or what its connection remembers while no other connection writes."""

import asyncio
import logging
import time

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.web.loop_turns import LoopTurns
from core.conversations import ConversationState, transcript_row
from core.enums import Language
from core.models import Conversation, TranscriptEntry
from core.students import create_student
from core.turns import MAX_HELD_TURNS
from handlers.messages import say
from handlers.turn import Channel, IncomingMessage
from tests.bot.test_turn_statements import linked_and_taken_by_an_agent, web

UNREADABLE = "ぬふぁ なにゅ"  # twice in a row: the second time the bot offers a person (the misses are counted)


@pytest.fixture
def sqlite_only(core):
    if core.engine.dialect.name != "sqlite":
        pytest.skip("turn writes are held on SQLite's event loop; PostgreSQL turns commit with their lock")


def lines_of(core, conversation_id: str) -> int:
    """The transcript lines another connection sees (only what is committed)."""
    with core.reading() as session:
        return session.scalar(select(func.count()).select_from(TranscriptEntry)
                              .where(TranscriptEntry.conversation_id == conversation_id))


def texts(replies) -> str:
    return "\n".join(getattr(reply, "text", "") for reply in replies)


def test_held_turns_are_stored_at_the_commit_and_read_by_the_next_turn_before_it(core, pipeline_for, sqlite_only):
    pipeline = pipeline_for(core)
    with pipeline.turns.holding_commits():
        first = pipeline.handle(web(UNREADABLE, "u1"))
        pipeline.handle(web("こんにちは", "u2"))
    assert pipeline.turns.holds_writes()
    assert (lines_of(core, "web:u1"), lines_of(core, "web:u2")) == (0, 0)  # not committed: nobody else sees them
    with pipeline.turns.holding_commits():
        second = pipeline.handle(web(UNREADABLE, "u1"))
    # The second turn read the first's state (one miss) on the holding connection: it offers a person.
    assert say("fallback.offer_person", Language.JA) not in texts(first)
    assert say("fallback.offer_person", Language.JA) in texts(second)
    pipeline.turns.commit_held()
    assert not pipeline.turns.holds_writes()
    assert lines_of(core, "web:u1") == 4 and lines_of(core, "web:u2") >= 2
    with core.reading() as session:
        assert session.get(Conversation, "web:u1") is not None


def test_another_write_on_the_same_thread_commits_the_held_turns_first(core, pipeline_for, sqlite_only):
    pipeline = pipeline_for(core)
    with pipeline.turns.holding_commits():
        pipeline.handle(web("問い合わせ先は？", "u3"))
    started = time.monotonic()
    with core.transaction() as session:  # would wait for the held write lock (30 s) without the hook
        create_student(session, student_number="24M1009", department="medicine", year=2, now=core.now())
    assert time.monotonic() - started < 5
    assert not pipeline.turns.holds_writes() and lines_of(core, "web:u3") >= 2


def test_a_turn_whose_write_fails_leaves_the_others_of_its_commit(core, pipeline_for, sqlite_only):
    pipeline = pipeline_for(core)
    # A state naming a student who does not exist (deleted while the turn ran): its upsert breaks a foreign key.
    gone = ConversationState(conversation_id="line:U10", channel="line", user_id="U10", student_id=987654)
    with pipeline.turns.holding_commits():
        pipeline.handle(web("こんにちは", "u4"))
        with pytest.raises(IntegrityError):
            pipeline.turns.save(None, gone, [transcript_row("line:U10", "in", "こんにちは", core.now())], core.now())
        pipeline.handle(web("ありがとう", "u5"))
    pipeline.turns.commit_held()
    assert lines_of(core, "web:u4") >= 2 and lines_of(core, "web:u5") >= 2
    assert lines_of(core, "line:U10") == 0  # its lines went with its savepoint
    with core.reading() as session:
        assert session.get(Conversation, "line:U10") is None


def test_a_held_transaction_is_committed_once_it_holds_the_most_turns(core, pipeline_for, sqlite_only):
    pipeline = pipeline_for(core)
    with pipeline.turns.holding_commits():
        for number in range(MAX_HELD_TURNS):
            pipeline.handle(web("こんにちは", f"m{number}"))
        assert not pipeline.turns.holds_writes()  # the last one committed them all
        pipeline.handle(web("こんにちは", "m-next"))
        assert pipeline.turns.holds_writes()
    assert lines_of(core, "web:m0") >= 2 and lines_of(core, "web:m-next") == 0
    pipeline.turns.commit_held()


def turn_reads(caplog) -> int:
    """The turn loads that asked the database (the statement log shows the turns' own statements)."""
    return sum(1 for record in caplog.records if record.getMessage().startswith("SELECT conversations.channel"))


def test_a_turn_reads_again_only_after_another_connection_wrote(core, pipeline_for, sqlite_only, caplog):
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine.Engine")
    pipeline = pipeline_for(core)
    user = IncomingMessage(channel=Channel.LINE, user_id="U11", conversation_id="line:U11", text="こんにちは")
    pipeline.handle(user)
    pipeline.handle(user)
    assert turn_reads(caplog) == 1  # the second turn: nobody else wrote, its connection knew the row
    # Another connection links the account and a person takes the chat.
    student_id = linked_and_taken_by_an_agent(core, "U11", "24M1011")
    replies = pipeline.handle(IncomingMessage(channel=Channel.LINE, user_id="U11", conversation_id="line:U11",
                                              text="まだですか"))
    assert turn_reads(caplog) == 2
    assert replies == []  # relayed to the agent who has the ticket: the bot said nothing
    with core.reading() as session:
        assert session.get(Conversation, "line:U11").student_id == student_id


def test_chat_answers_come_after_their_turns_are_stored(chat_server, sqlite_only):
    async def many() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=chat_server.url, timeout=30) as client:
            async def two(user: str) -> list[httpx.Response]:
                first = await client.post("/api/chat", json={"user": user, "text": UNREADABLE})
                second = await client.post("/api/chat", json={"user": user, "text": UNREADABLE})
                return [first, second]
            pairs = await asyncio.gather(*(two(f"held{number}") for number in range(12)))
            return [response for pair in pairs for response in pair]

    responses = asyncio.run(many())
    assert all(response.status_code == 200 for response in responses)
    offered = say("fallback.offer_person", Language.JA)
    for number in range(12):
        # Each user's second message saw the first (a person offered), and everything is stored.
        assert lines_of(chat_server.core, f"web:held{number}") == 4
    assert sum(offered in response.json()["replies"][0]["text"] for response in responses) == 12


def test_the_writes_of_a_turn_that_raised_are_committed_without_another_request(core, pipeline_for, sqlite_only):
    pipeline = pipeline_for(core)
    loop_turns = LoopTurns(pipeline.turns)

    def answered_then_failed() -> None:
        pipeline.handle(web("こんにちは", "r1"))  # stored (held) ...
        raise RuntimeError("the answer could not be rendered")  # ... and then the request fails

    async def one_request() -> None:
        with pytest.raises(RuntimeError):
            loop_turns.answer(answered_then_failed)
        for _ in range(3):  # a few passes of the loop, no other request
            await asyncio.sleep(0)

    asyncio.run(one_request())
    assert not pipeline.turns.holds_writes()
    assert lines_of(core, "web:r1") >= 2
