"""Handing over to a person, called directly: the ticket, the hours, waiting, and stopping the wait."""

import json
from datetime import datetime

import pytest
from sqlalchemy import select

from core.clock import TOKYO
from core.conversations import record
from core.enums import Language
from core.handoffs import active_ticket
from core.models import HandoffTicket, InboundEvent
from handlers import handoff
from intents.types import Intent
from tests.handlers.conftest import all_text, payloads

TUESDAY_MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
# Friday 20 November 2026, 17:30: the call center has closed, and Monday the 23rd is 勤労感謝の日.
FRIDAY_EVENING = datetime(2026, 11, 20, 17, 30, tzinfo=TOKYO)


@pytest.fixture(autouse=True)
def agents_on_slack(core):
    """Slack's agents' channel is the desk here (the web inbox's desks are tested below, with that named)."""
    core.agents_on_slack = True


def jobs(core, processor="agents"):
    with core.transaction() as session:
        return [json.loads(payload) for payload in session.scalars(
            select(InboundEvent.payload).where(InboundEvent.channel == processor).order_by(InboundEvent.id))]


def tickets(core):
    with core.transaction() as session:
        return [(t.conversation_id, t.status, t.reason, t.lang, t.topic, t.bot_said)
                for t in session.scalars(select(HandoffTicket).order_by(HandoffTicket.id))]


@pytest.mark.parametrize("lang", list(Language))
def test_asking_for_a_person_in_hours_opens_one_ticket_with_what_the_bot_said(core, make_ctx, lang):
    ctx = make_ctx(Intent.HUMAN_AGENT, lang=lang, now=TUESDAY_MORNING)
    ctx.state.last_intent = "refund"
    with core.transaction() as session:
        record(session, "web:u", "out", "一度お支払いいただいた料金は返金できません。", TUESDAY_MORNING)
    replies = handoff.human_agent(ctx)
    expected = "担当者におつなぎします" if lang is Language.JA else "connecting you to a staff member"
    assert expected in all_text(replies)
    assert payloads(replies) == [handoff.CANCEL_WAIT]
    [(conversation, status, reason, stored_lang, topic, bot_said)] = tickets(core)
    assert (conversation, status, reason, stored_lang, topic) == ("web:u", "waiting", "asked", lang.value, "refund")
    assert "返金できません" in bot_said
    assert [job["kind"] for job in jobs(core)] == ["card"]

    again = handoff.human_agent(make_ctx(Intent.HUMAN_AGENT, lang=lang, now=TUESDAY_MORNING, state=ctx.state))
    assert ("ただいま担当者におつなぎしています" if lang is Language.JA else "please wait here") in all_text(again)
    assert len(tickets(core)) == 1 and len(jobs(core)) == 1


def test_off_hours_before_a_holiday_monday_says_tuesday_nine_and_the_bot_keeps_helping(core, make_ctx):
    replies = handoff.human_agent(make_ctx(Intent.HUMAN_AGENT, lang=Language.EN, now=FRIDAY_EVENING))
    text = all_text(replies)
    assert "The call center is closed now" in text and "from Tue, Nov 24, 9:00" in text
    assert "intent:payment_methods" in payloads(replies) and handoff.CANCEL_WAIT in payloads(replies)
    assert tickets(core)[0][1] == "waiting"

    ja = all_text(handoff.human_agent(make_ctx(Intent.HUMAN_AGENT, now=FRIDAY_EVENING)))
    assert "11月24日（火）9:00以降" in ja


def test_the_reason_comes_from_the_button(core, make_ctx):
    handoff.human_agent(make_ctx(Intent.HUMAN_AGENT, payload="handoff:refund_dispute", now=TUESDAY_MORNING))
    assert tickets(core)[0][2] == "refund_dispute"


def test_stopping_the_wait_closes_the_ticket_and_tells_the_agents(core, make_ctx):
    handoff.human_agent(make_ctx(Intent.HUMAN_AGENT, now=TUESDAY_MORNING))
    replies = handoff.human_agent(make_ctx(Intent.HUMAN_AGENT, payload=handoff.CANCEL_WAIT, now=TUESDAY_MORNING))
    assert "引き継ぎを取り消しました" in all_text(replies)
    with core.transaction() as session:
        assert active_ticket(session, "web:u") is None
        ticket = session.scalars(select(HandoffTicket)).one()
        assert (ticket.status, ticket.closed_how) == ("resolved", "withdrawn")
    assert [job["kind"] for job in jobs(core)] == ["card", "closed"]

    twice = handoff.human_agent(make_ctx(Intent.HUMAN_AGENT, payload=handoff.CANCEL_WAIT, now=TUESDAY_MORNING))
    assert "引き継ぎはありません" in all_text(twice) and len(jobs(core)) == 2
