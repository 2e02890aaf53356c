"""Handing a conversation to a call-center agent: open the ticket, say when a person will answer, and let
the student stop waiting; the satisfaction answer after an agent closes it."""

import math
from datetime import datetime

from sqlalchemy.orm import Session

from core.calendar import BusinessCalendar
from core.conversations import transcript
from core.enums import Language, Service
from core.formatting import format_short
from core.handoffs import (
    ClosedHow,
    DeskState,
    Reason,
    active_ticket,
    close,
    desk_state,
    expected_wait,
    open_ticket,
    queue_position,
    rate,
)
from core.jobs import AGENTS, enqueue
from core.models import HandoffTicket
from handlers import basic
from handlers.messages import say
from handlers.payloads import AskPerson, Payload, RateHandoff, Rating, StopWaiting, decode, encode
from handlers.registry import HandlerRegistry
from handlers.replies import QuickReply, Reply, Text
from handlers.turn import TurnContext
from intents.types import Intent

CANCEL_WAIT = encode(StopWaiting())  # the pipeline routes every `handoff:` payload to the human_agent intent
BOT_SAID_LINES = 3  # the bot's last answers shown on the agents' card


def person_button(ctx: TurnContext, reason: Reason) -> QuickReply:
    """A button that hands the conversation to a person, for `reason`."""
    return QuickReply(say("handoff.person_button", ctx.lang), encode(AskPerson(reason)))


def cancel_wait_button(ctx: TurnContext) -> QuickReply:
    """A button that stops waiting for a person and returns to the bot."""
    return QuickReply(say("handoff.cancel_button", ctx.lang), CANCEL_WAIT)


def feedback_buttons(lang: Language) -> tuple[QuickReply, ...]:
    """The one-tap satisfaction question's answers (asked after an agent closes a ticket)."""
    return (QuickReply(say("handoff.feedback_good", lang), feedback_payload(Rating.GOOD)),
            QuickReply(say("handoff.feedback_bad", lang), feedback_payload(Rating.BAD)))


def feedback_payload(rating: Rating) -> str:
    """The payload of a satisfaction answer, e.g. `handoff:feedback:good`."""
    return encode(RateHandoff(rating))


def _reason(tapped: Payload | None) -> Reason:
    return tapped.reason if isinstance(tapped, AskPerson) else Reason.ASKED


def _bot_said(ctx: TurnContext) -> str:
    with ctx.core.transaction() as session:
        lines = [entry.text for entry in transcript(session, ctx.state.conversation_id) if entry.direction == "out"]
    return "\n---\n".join(lines[-BOT_SAID_LINES:])


def human_agent(ctx: TurnContext) -> list[Reply]:
    """Hand the conversation to a person: a ticket for the agents, and the truth about when one answers.

    A person is promised only when a desk can answer now (Slack's agents' channel, or an agent with the web
    inbox open, in the call center's hours); otherwise the student hears when one will, gets the call
    center's contacts, and the bot keeps helping meanwhile.
    """
    tapped = decode(ctx.message.payload or "")
    if isinstance(tapped, StopWaiting):
        return _stop_waiting(ctx)
    if isinstance(tapped, RateHandoff):
        with ctx.core.transaction() as session:
            rate(session, ctx.state.conversation_id, tapped.rating.value)
        return [Text(say("handoff.feedback_thanks", ctx.lang), basic.main_menu(ctx.lang))]
    topic = ctx.state.last_intent if ctx.state.last_intent not in (None, Intent.HUMAN_AGENT.value) else None
    ctx.state.end_form()  # a person takes it from here: no "shall we continue?" after this answer
    with ctx.core.transaction() as session:
        ticket, new = open_ticket(
            session, conversation_id=ctx.state.conversation_id, channel=ctx.message.channel.value,
            user_id=ctx.message.user_id, student_id=ctx.state.student_id, lang=ctx.lang, reason=_reason(tapped),
            topic=topic, bot_said=_bot_said(ctx), now=ctx.now)
        desk = desk_state(session, ctx.core.calendar, ctx.now, slack=ctx.core.agents_on_slack)
        queue = queue_line(session, ticket, ctx.lang, ctx.now, ctx.core.calendar) if desk is DeskState.OPEN else ""
    if desk is DeskState.OPEN:
        key = "handoff.connecting" if new else "handoff.already_waiting"
        return [Text(f"{say(key, ctx.lang)}\n{queue}".strip(), (cancel_wait_button(ctx),))]
    call_center = basic.contact_entry(ctx, Service.CALL_CENTER)
    if desk is DeskState.CLOSED:
        opening = ctx.core.calendar.next_opening(Service.CALL_CENTER, ctx.now)
        text = say("handoff.off_hours", ctx.lang, hours=basic.office_hours(ctx, Service.CALL_CENTER),
                   when=format_short(opening, ctx.lang), contact=call_center)
    else:  # nobody at the web inbox now (AWAY), or no desk at all (NONE): no person is promised
        text = say(f"handoff.{desk.value}", ctx.lang, contact=call_center)
    return [Text(text, (*basic.main_menu(ctx.lang)[:11], cancel_wait_button(ctx)))]


def queue_line(session: Session, ticket: HandoffTicket, lang: Language, now: datetime,
               calendar: BusinessCalendar) -> str:
    """「順番待ち: 2番目です（目安: 約6分）」 for a waiting ticket; empty once an agent has it."""
    position = queue_position(session, ticket)
    if position is None:
        return ""
    wait = expected_wait(session, now, position, calendar)
    if wait is None:
        return say("handoff.queue", lang, position=position)
    return say("handoff.queue_wait", lang, position=position, minutes=max(1, math.ceil(wait.total_seconds() / 60)))


def _stop_waiting(ctx: TurnContext) -> list[Reply]:
    with ctx.core.transaction() as session:
        ticket = active_ticket(session, ctx.state.conversation_id)
        if ticket is None or not close(session, ticket.id, ClosedHow.WITHDRAWN, ctx.now):
            return [Text(say("handoff.not_waiting", ctx.lang), basic.main_menu(ctx.lang))]
        enqueue(session, AGENTS, f"withdrawn:{ticket.id}", {"kind": "closed", "ticket": ticket.id}, ctx.now)
    return [Text(say("handoff.withdrawn", ctx.lang), basic.main_menu(ctx.lang))]


def register(registry: HandlerRegistry) -> None:
    """Wire human_agent (typed requests, the offer after two misses, and the `handoff:` buttons)."""
    registry.register(Intent.HUMAN_AGENT, human_agent)
