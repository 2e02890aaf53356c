"""Handoff tickets in the database: one open ticket per conversation, take and close once, relays once."""

import json
from datetime import datetime, timedelta

from sqlalchemy import select

from core.clock import TOKYO
from core.conversations import transcript
from core.enums import Language
from core.handoffs import (
    ClosedHow,
    Reason,
    TicketStatus,
    active_ticket,
    close,
    open_ticket,
    relay_from_agent,
    relay_from_student,
    take,
    waiting_since_before,
)
from core.models import HandoffMessage, InboundEvent

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)


def new_ticket(session, conversation="line:U1", now=NOW):
    return open_ticket(session, conversation_id=conversation, channel="line", user_id="U1", student_id=None,
                       lang=Language.JA, reason=Reason.ASKED, topic="refund",
                       bot_said="パスワードは Abc12345xyz です", now=now)


def jobs(session, processor):
    return [json.loads(payload) for payload in session.scalars(
        select(InboundEvent.payload).where(InboundEvent.channel == processor).order_by(InboundEvent.id))]


def test_a_conversation_has_one_open_ticket_and_its_card_job(core):
    with core.transaction() as session:
        ticket, new = new_ticket(session)
        again, new_again = new_ticket(session)
        assert new and not new_again and again.id == ticket.id
        assert "Abc12345xyz" not in ticket.bot_said, "what the bot said is stored masked"
        assert jobs(session, "agents") == [{"kind": "card", "ticket": ticket.id, "job": f"card:{ticket.id}"}]
        assert active_ticket(session, "line:U1").id == ticket.id


def test_take_once_then_close_once_then_a_new_ticket_may_open(core):
    with core.transaction() as session:
        ticket, _ = new_ticket(session)
        first = take(session, ticket.id, "UAGENT1", NOW)
        second = take(session, ticket.id, "UAGENT2", NOW)
        again = take(session, ticket.id, "UAGENT1", NOW)
        assert (first.taken, first.assignee) == (True, "UAGENT1")
        assert (second.taken, second.assignee, second.closed) == (False, "UAGENT1", False)
        assert again.taken, "pressing take twice is not a loss"
        assert close(session, ticket.id, ClosedHow.RESOLVED, NOW, agent="UAGENT1")
        assert not close(session, ticket.id, ClosedHow.HANDED_BACK, NOW)
        assert take(session, ticket.id, "UAGENT2", NOW).closed
        session.refresh(ticket)
        assert (ticket.status, ticket.closed_how) == (TicketStatus.RESOLVED.value, "resolved")
        assert active_ticket(session, "line:U1") is None
        assert new_ticket(session)[1], "after a closed ticket the student can ask again"


def test_relays_happen_once_per_source_and_an_agent_reply_enters_the_transcript(core):
    with core.transaction() as session:
        ticket, _ = new_ticket(session)
        assert relay_from_student(session, ticket, "受け取りについて", "line:U1:evt1", NOW) is not None
        assert relay_from_student(session, ticket, "受け取りについて", "line:U1:evt1", NOW) is None
        reply = relay_from_agent(session, ticket, "明日13時から受け取れます", "UAGENT1", "slack:C1:1.2", NOW)
        assert relay_from_agent(session, ticket, "明日13時から受け取れます", "UAGENT1", "slack:C1:1.2", NOW) is None
        assert [job["kind"] for job in jobs(session, "agents")] == ["card", "student_message"]
        assert jobs(session, "deliver") == [{"kind": "agent_message", "message": reply.id,
                                             "job": f"agent:{reply.id}"}]
        assert [(line.direction, line.text) for line in transcript(session, "line:U1")] == [
            ("agent", "明日13時から受け取れます")]
        assert session.scalar(select(HandoffMessage.delivery).where(HandoffMessage.id == reply.id)) == "pending"


def test_the_digest_lists_waiting_tickets_not_posted_since_the_opening(core):
    opening = datetime(2026, 11, 24, 9, 0, tzinfo=TOKYO)
    with core.transaction() as session:
        overnight, _ = new_ticket(session, "line:U1", now=opening - timedelta(hours=15))
        overnight.posted_at = opening - timedelta(hours=15)
        unposted, _ = new_ticket(session, "line:U2", now=opening - timedelta(hours=2))
        fresh, _ = new_ticket(session, "line:U3", now=opening + timedelta(minutes=5))
        fresh.posted_at = opening + timedelta(minutes=5)
        taken, _ = new_ticket(session, "line:U4", now=opening - timedelta(hours=1))
        take(session, taken.id, "UAGENT1", opening)
        assert [t.id for t in waiting_since_before(session, opening)] == [overnight.id, unposted.id]


def test_relays_mask_passwords_but_keep_student_numbers_for_the_agents(core):
    pattern = core.profile.student_number_pattern
    with core.transaction() as session:
        ticket, _ = new_ticket(session)
        asked = relay_from_student(session, ticket, "24M1001です。パスワードは Abc12345xyz", "k1", NOW,
                                   student_number_pattern=pattern)
        told = relay_from_agent(session, ticket, "24M1001 さんの申請を確認しました", "UAGENT1", "k2", NOW,
                                student_number_pattern=pattern)
        assert asked.text.startswith("24M1001です") and "Abc12345xyz" not in asked.text
        assert told.text == "24M1001 さんの申請を確認しました"
        assert transcript(session, "line:U1")[-1].text == told.text
