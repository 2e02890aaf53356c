"""Waiting for a person, through the whole pipeline: typing 「ボットに戻る」 (or "back to the bot") leaves the queue;
a message that merely mentions the bot does not; while nobody is at the desk the bot keeps answering and the
ticket waits; once an agent has it, messages relay; the queue line is told once per change of position."""

import json

import pytest
from sqlalchemy import select

from core import staff
from core.handoffs import ClosedHow, TicketStatus, active_ticket, take
from core.models import HandoffMessage, HandoffTicket, InboundEvent
from handlers.turn import Channel, IncomingMessage

PASSWORD = "correct horse battery"


def say(pipeline, text=None, payload=None, user="s1", event_id=None):
    """The bot's replies to one web chat message."""
    return pipeline.handle(IncomingMessage(channel=Channel.WEB, user_id=user, conversation_id=f"web:{user}",
                                           text=text, payload=payload, event_id=event_id))


def said(replies) -> str:
    return "\n".join(getattr(reply, "text", "") for reply in replies)


def buttons(replies) -> list[str]:
    return [button.payload for reply in replies for button in getattr(reply, "quick_replies", ())]


def relayed(core) -> list[str]:
    """What reached the agents from students (not the tickets' events)."""
    with core.transaction() as session:
        return list(session.scalars(select(HandoffMessage.text).where(HandoffMessage.direction == "student")
                                    .order_by(HandoffMessage.id)))


def tickets(core) -> list[tuple[str, str, str | None]]:
    with core.transaction() as session:
        return [(t.conversation_id, t.status, t.closed_how)
                for t in session.scalars(select(HandoffTicket).order_by(HandoffTicket.id))]


def agents_jobs(core) -> list[str]:
    with core.transaction() as session:
        return [json.loads(payload)["kind"] for payload in session.scalars(
            select(InboundEvent.payload).where(InboundEvent.channel == "agents").order_by(InboundEvent.id))]


def web_agent(core, *, at_desk: bool) -> None:
    """An agent account for the web inbox, with the inbox open now or not."""
    with core.transaction() as session:
        account = staff.create_account(session, "yamada@example.ac.jp", PASSWORD, core.now(), role=staff.Role.AGENT,
                                       display_name="山田")
        if at_desk:
            staff.at_desk(session, account, core.now())


def ticket_of(core, user: str = "s1") -> int:
    with core.transaction() as session:
        return active_ticket(session, f"web:{user}").id


# --- leaving the queue by typing ------------------------------------------------------------------------------


JA = ("担当者と話したいです", "引き継ぎを取り消しました", "支払い方法を教えて", "クレジットカード")
EN = ("I want to talk to a person", "I have cancelled the handover", "how can I pay?", "credit card")


@pytest.mark.parametrize(("ask", "leave", "withdrawn", "question", "answer"), [
    (JA[0], "ボットに戻る", *JA[1:]),
    (JA[0], "待つのやめます", *JA[1:]),
    (JA[0], "ボットとの会話に戻る", *JA[1:]),  # the button's label, typed
    (JA[0], "あ、やっぱり大丈夫です。ボットに戻してください", *JA[1:]),
    (EN[0], "Never mind, take me back to the bot", *EN[1:]),
    (EN[0], "back to the bot", *EN[1:]),
])
def test_typing_back_to_the_bot_leaves_the_queue_and_the_bot_answers_again(core, pipeline_for, ask, leave,
                                                                           withdrawn, question, answer):
    core.agents_on_slack = True  # in hours with Slack's agents' channel: messages go to the agents
    pipeline = pipeline_for(core)
    say(pipeline, ask)
    assert tickets(core) == [("web:s1", TicketStatus.WAITING.value, None)]

    left = say(pipeline, leave)
    assert withdrawn in said(left), said(left)
    assert tickets(core) == [("web:s1", TicketStatus.RESOLVED.value, ClosedHow.WITHDRAWN.value)]
    assert agents_jobs(core) == ["card", "closed"], "the agents are told the student stopped waiting"
    assert relayed(core) == [], "leaving is not a message for the agents"

    assert answer in said(say(pipeline, question)).lower()
    assert relayed(core) == []


def test_leaving_by_typing_works_while_nobody_is_at_the_desk_too(core, pipeline_for):
    web_agent(core, at_desk=False)
    pipeline = pipeline_for(core)
    assert "席を外しています" in said(say(pipeline, "担当者と話したいです"))
    assert "引き継ぎを取り消しました" in said(say(pipeline, "ボットに戻る"))
    assert tickets(core) == [("web:s1", TicketStatus.RESOLVED.value, ClosedHow.WITHDRAWN.value)]
    assert agents_jobs(core) == ["card", "closed"]


def test_typing_back_to_the_bot_with_no_ticket_is_no_withdrawal(core, pipeline_for):
    core.agents_on_slack = True
    pipeline = pipeline_for(core)
    replies = say(pipeline, "ボットに戻る")
    assert "引き継ぎを取り消しました" not in said(replies)
    assert tickets(core) == [] and agents_jobs(core) == []


@pytest.mark.parametrize("text", [
    "ボットの案内どおりにしてもログインできません",
    "the bot said I can pay at a konbini, is that right?",
    "ボットに戻る方法は？",
    "ボットに戻るボタンを押したらどうなりますか",
    "ボットに戻るとどうなりますか",
    "ボットに戻りたくないです",
    "I don't want to go back to the bot",
    "人は待たないといけませんか",
    "待ちはいいけど早くしてほしい",
    "担当者はいいですね、助かります",
])
def test_a_message_that_mentions_the_bot_goes_to_the_agents_and_keeps_the_place(core, pipeline_for, text):
    core.agents_on_slack = True
    pipeline = pipeline_for(core)
    say(pipeline, "担当者と話したいです")
    assert say(pipeline, text) == [], "the bot answered while a person has the conversation"
    assert relayed(core) == [text]
    assert tickets(core) == [("web:s1", TicketStatus.WAITING.value, None)]
    assert agents_jobs(core) == ["card", "student_message"]


# --- nobody at the desk, then an agent ----------------------------------------------------------------------


def test_while_nobody_is_at_the_desk_the_bot_answers_and_the_ticket_waits_until_an_agent_takes_it(core, pipeline_for):
    web_agent(core, at_desk=False)
    pipeline = pipeline_for(core)
    asked = said(say(pipeline, "担当者と話したいです"))
    assert "席を外しています" in asked and "おつなぎします" not in asked and "082-207-4262" in asked

    assert "クレジットカード" in said(say(pipeline, "支払い方法を教えて"))
    assert relayed(core) == [], "nobody would read it"
    assert tickets(core) == [("web:s1", TicketStatus.WAITING.value, None)]

    with core.transaction() as session:
        assert take(session, ticket_of(core), "staff:1", core.now(), "山田").taken
    assert say(pipeline, "支払い方法を教えて") == [], "a person has it now: the bot is silent"
    assert say(pipeline, "第2パスワードを忘れました") == []
    assert relayed(core) == ["支払い方法を教えて", "第2パスワードを忘れました"]


def test_a_waiting_ticket_relays_once_an_agent_opens_the_inbox(core, clock, pipeline_for):
    web_agent(core, at_desk=False)
    pipeline = pipeline_for(core)
    say(pipeline, "担当者と話したいです")
    assert "クレジットカード" in said(say(pipeline, "支払い方法を教えて"))

    with core.transaction() as session:
        staff.at_desk(session, staff.find_account(session, "yamada@example.ac.jp"), core.now())
    first = say(pipeline, "返金について相談したいです")
    assert "クレジットカード" not in said(first) and relayed(core) == ["返金について相談したいです"]
    assert "順番待ち：1番目です" in said(first), "the student learns their place once a desk can answer"

    clock.advance(minutes=2)  # the inbox was closed: past the 90 seconds of presence
    assert "クレジットカード" in said(say(pipeline, "支払い方法を教えて"))
    assert relayed(core) == ["返金について相談したいです"]


# --- the queue line -----------------------------------------------------------------------------------------


def test_the_queue_line_is_told_once_per_change_of_position(core, clock, pipeline_for):
    core.agents_on_slack = True
    pipeline = pipeline_for(core)
    say(pipeline, "担当者と話したいです", user="s0")
    clock.advance(minutes=1)
    asked = said(say(pipeline, "担当者と話したいです"))
    assert "担当者におつなぎします" in asked and "順番待ち：2番目です" in asked

    assert say(pipeline, "ログインできません") == [], "the position did not change: not told again"
    assert say(pipeline, "24M1001です") == []

    with core.transaction() as session:  # the student ahead is taken: one place up
        assert take(session, ticket_of(core, "s0"), "UAGENT1", core.now()).taken
    moved = say(pipeline, "まだですか")
    assert len(moved) == 1 and "順番待ち：1番目です" in said(moved)
    assert buttons(moved) == ["handoff:cancel"]
    assert say(pipeline, "よろしくお願いします") == [], "told once"

    with core.transaction() as session:
        assert take(session, ticket_of(core), "UAGENT2", core.now()).taken
    assert say(pipeline, "ありがとうございます") == [], "no queue once a person has it"
    assert relayed(core) == ["ログインできません", "24M1001です", "まだですか", "よろしくお願いします",
                             "ありがとうございます"]


def test_the_queue_line_in_english_and_after_a_student_ahead_leaves(core, clock, pipeline_for):
    core.agents_on_slack = True
    pipeline = pipeline_for(core)
    say(pipeline, "担当者と話したいです", user="s0")
    clock.advance(seconds=30)
    assert "You are number 2 in the queue" in said(say(pipeline, "I want to talk to a person"))
    assert say(pipeline, "I cannot log in") == []

    assert "引き継ぎを取り消しました" in said(say(pipeline, "ボットに戻る", user="s0"))
    clock.advance(seconds=30)
    moved = said(say(pipeline, "are you there?"))
    assert "You are number 1 in the queue" in moved and 'Send "back to the bot"' in moved
    assert say(pipeline, "hello?") == []
