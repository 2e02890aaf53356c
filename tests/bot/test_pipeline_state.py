"""The pipeline's memory: state saved per conversation, forgotten after 30 minutes of silence, one message
at a time per conversation, and transcripts stored with secrets masked."""

import threading

import pytest
from sqlalchemy import select

from bot.pipeline import Pipeline
from bot.wiring import build_handlers
from core.conversations import load_state
from core.models import TranscriptEntry
from handlers.turn import Channel, IncomingMessage


def say(pipeline, text, user="u1", **extra):
    return pipeline.handle(IncomingMessage(channel=Channel.WEB, user_id=user, conversation_id=f"web:{user}",
                                           text=text, **extra))


def state_of(core, user="u1"):
    with core.transaction() as session:
        return load_state(session, f"web:{user}", "web", user, core.now())


def test_misses_are_remembered_and_expire_after_30_minutes_of_silence(core, clock, pipeline_for):
    pipeline = pipeline_for(core)
    say(pipeline, "ぬふぁ なにゅ")
    assert state_of(core).misses == 1
    clock.advance(minutes=29, seconds=59)
    assert state_of(core).misses == 1
    clock.advance(seconds=1)
    assert state_of(core).misses == 0  # silent for 30 minutes: a fresh conversation


def test_the_language_choice_is_kept_for_the_conversation(core, pipeline_for):
    from core.enums import Language

    pipeline = pipeline_for(core)
    pipeline.handle(IncomingMessage(channel=Channel.WEB, user_id="u1", conversation_id="web:u1",
                                    payload="intent:contact", lang_hint=Language.EN))
    assert state_of(core).lang is Language.EN
    replies = say(pipeline, "問い合わせ先は？")
    assert "Student Support Division" in replies[0].text  # the student's choice wins over the message


def test_a_pasted_password_is_masked_in_the_transcript(core, pipeline_for):
    pipeline = pipeline_for(core)
    say(pipeline, "第2パスワードを Kq7mZp2Lx にしたいのですが大丈夫ですか")
    with core.transaction() as session:
        stored = list(session.scalars(select(TranscriptEntry.text)))
    assert stored, "the turn was not recorded"
    assert all("Kq7mZp2Lx" not in line for line in stored)
    assert any("[password]" in line for line in stored)


def test_student_numbers_stay_readable_in_the_transcript_for_agents(core, pipeline_for):
    say(pipeline_for(core), "学籍番号は24M1001です")
    with core.transaction() as session:
        first = session.scalars(select(TranscriptEntry.text).order_by(TranscriptEntry.id)).first()
    assert first == "学籍番号は24M1001です"


def concurrent_misses(pipelines, count=6):
    """Send `count` unrelated questions for one conversation from as many threads at once."""
    barrier = threading.Barrier(count)
    errors = []

    def send(index):
        try:
            barrier.wait()
            say(pipelines[index % len(pipelines)], "ぬふぁ なにゅ")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_messages_of_one_conversation_are_handled_one_at_a_time(core, pipeline_for):
    """Six misses at once: without serialization, turns would read the same state and lose counts."""
    pipeline = pipeline_for(core)
    concurrent_misses([pipeline])
    assert state_of(core).misses == 6
    with core.transaction() as session:
        directions = list(session.scalars(select(TranscriptEntry.direction).order_by(TranscriptEntry.id)))
    assert directions == ["in", "out"] * 6  # each question stored right before its own answer


def test_two_processes_take_turns_on_postgresql(core, understander):
    if core.engine.dialect.name != "postgresql":
        pytest.skip("several processes share a conversation only on PostgreSQL; SQLite runs one process")
    # Two pipelines do not share thread locks, like two web workers: only the advisory lock orders them.
    pipelines = [Pipeline(core, understander, *build_handlers()) for _ in range(2)]
    concurrent_misses(pipelines)
    assert state_of(core).misses == 6


@pytest.mark.parametrize("bare", ["24M1001", "2", "k7pm-3qxa", "２４Ｍ１００１"])
def test_a_message_without_words_keeps_the_conversation_language(core, pipeline_for, bare):
    pipeline = pipeline_for(core)
    say(pipeline, "問い合わせ先を教えてください")
    replies = say(pipeline, bare)
    assert state_of(core).last_lang.value == "ja"
    assert not any("Student Support Division" in getattr(reply, "text", "") for reply in replies)


def test_an_english_conversation_stays_english_for_a_bare_number(core, pipeline_for):
    pipeline = pipeline_for(core)
    say(pipeline, "I forgot my second password")
    say(pipeline, "25M1002")
    assert state_of(core).last_lang.value == "en"


def test_a_typed_order_number_is_a_status_question_answered_after_a_sign_in(core, pipeline_for):
    replies = say(pipeline_for(core), "注文番号はK7PM-3QXAです")
    text = "\n".join(getattr(reply, "text", "") for reply in replies)
    assert "ご注文の状況は、ご本人にのみお知らせしています" in text and "理解できませんでした" not in text


def test_a_linked_chat_account_stays_identified_after_the_state_expires(core, clock, pipeline_for):
    from core.models import ChannelAccount
    from core.students import create_student

    with core.transaction() as session:
        student = create_student(session, student_number="24M1001", department="medicine", year=3, now=core.now())
        session.add(ChannelAccount(channel="line", external_id="U123", student_id=student.id, following=True,
                                   linked_at=core.now(), created_at=core.now(), updated_at=core.now()))
    pipeline = pipeline_for(core)
    message = IncomingMessage(channel=Channel.LINE, user_id="U123", conversation_id="line:U123",
                              text="成績証明書を申請したい")
    clock.advance(hours=2)
    replies = pipeline.handle(message)
    text = "\n".join(getattr(reply, "text", "") for reply in replies)
    assert "学籍番号（例" not in text  # the order form does not ask who the student is
    with core.transaction() as session:
        assert load_state(session, "line:U123", "line", "U123", core.now()).student_id == student.id
