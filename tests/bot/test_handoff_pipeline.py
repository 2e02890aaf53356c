"""The pipeline during a handoff: relayed and silent in the call center's hours or once an agent has the
conversation; the bot answers off-hours while the ticket waits; passwords never reach the agents."""

from datetime import datetime

import pytest
from sqlalchemy import select

from core.clock import TOKYO
from core.handoffs import active_ticket, take
from core.models import HandoffMessage
from handlers.turn import Channel, IncomingMessage

SATURDAY = datetime(2026, 11, 28, 11, 0, tzinfo=TOKYO)


def say(pipeline, text=None, payload=None, user="s1", event_id=None):
    return pipeline.handle(IncomingMessage(channel=Channel.WEB, user_id=user, conversation_id=f"web:{user}",
                                           text=text, payload=payload, event_id=event_id))


@pytest.fixture(autouse=True)
def agents_on_slack(core):
    """Slack's agents' channel is the desk here: a ticket reaches someone in the call center's hours."""
    core.agents_on_slack = True


def relayed(core):
    with core.transaction() as session:
        return [message.text for message in session.scalars(
            select(HandoffMessage).where(HandoffMessage.direction != "event").order_by(HandoffMessage.id))]


def test_in_hours_the_students_messages_go_to_the_agents_and_the_bot_is_silent(core, pipeline_for):
    pipeline = pipeline_for(core)
    assert "担当者におつなぎします" in say(pipeline, "担当者と話したいです")[0].text
    assert say(pipeline, "24M1001の第2パスワードは Zq81mnbv77 ですが、ログインできません") == []
    assert say(pipeline, "支払い方法を教えて", event_id="e1") == [], "even a question the bot knows goes to the person"
    assert say(pipeline, "支払い方法を教えて", event_id="e1") == [] and len(relayed(core)) == 2, "a retry relays once"
    [first, second] = relayed(core)
    assert "Zq81mnbv77" not in first and "ログインできません" in first
    assert first.startswith("24M1001の"), "the agents need the student number; only the password is masked"
    assert second == "支払い方法を教えて"
    assert "引き継ぎを取り消しました" in say(pipeline, payload="handoff:cancel")[0].text
    assert "クレジットカード" in say(pipeline, "支払い方法を教えて")[0].text


def test_off_hours_the_bot_keeps_answering_until_an_agent_takes_the_conversation(core, clock, pipeline_for):
    clock.set(SATURDAY)
    pipeline = pipeline_for(core)
    assert "受付時間外" in say(pipeline, "担当者と話したいです")[0].text
    assert "クレジットカード" in say(pipeline, "支払い方法を教えて")[0].text
    assert relayed(core) == []
    with core.transaction() as session:
        take(session, active_ticket(session, "web:s1").id, "UAGENT1", core.now())
    assert say(pipeline, "返金について相談したいです") == []
    assert relayed(core) == ["返金について相談したいです"]
