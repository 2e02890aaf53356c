"""Handoff tickets: a conversation handed to a call-center agent, taken by one, relayed, and given back."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.conversations import record
from core.enums import Language
from core.jobs import AGENTS, DELIVER, enqueue
from core.masking import mask_secrets
from core.models import HandoffMessage, HandoffTicket


class TicketStatus(StrEnum):
    """Where a ticket stands."""

    WAITING = "waiting"  # no agent yet
    ASSIGNED = "assigned"  # an agent owns the conversation; the bot is silent
    RESOLVED = "resolved"  # closed; see ClosedHow


class ClosedHow(StrEnum):
    """How a ticket was closed."""

    RESOLVED = "resolved"  # an agent finished it
    HANDED_BACK = "handed_back"  # an agent gave the conversation back to the bot
    WITHDRAWN = "withdrawn"  # the student stopped waiting


class Reason(StrEnum):
    """Why a conversation went to a person."""

    ASKED = "asked"  # the student asked for a person
    MISSES = "misses"  # the bot missed twice and the student accepted the offer of a person
    REFUND_DISPUTE = "refund_dispute"  # the student disputes the no-refund rule
    ACCOUNT = "account"  # an account problem the reset flow cannot fix
    COMPLAINT = "complaint"
    AGENT = "agent"  # an agent took the conversation over from the agents' side


OPEN = (TicketStatus.WAITING.value, TicketStatus.ASSIGNED.value)


@dataclass(frozen=True)
class TakeResult:
    """The outcome of pressing "take": `taken` by this agent, or who has it, or closed."""

    taken: bool
    assignee: str | None
    closed: bool = False


def active_ticket(session: Session, conversation_id: str) -> HandoffTicket | None:
    """The conversation's open ticket (waiting or assigned), or None."""
    return session.scalars(select(HandoffTicket).where(HandoffTicket.conversation_id == conversation_id,
                                                       HandoffTicket.status.in_(OPEN))
                           .order_by(HandoffTicket.id.desc())).first()


def open_ticket(session: Session, *, conversation_id: str, channel: str, user_id: str, student_id: int | None,
                lang: Language, reason: Reason, topic: str | None, bot_said: str | None,
                now: datetime) -> tuple[HandoffTicket, bool]:
    """Open a ticket and the job that posts its card to the agents; an open one is returned as it is.

    Returns the ticket and whether it is new.
    """
    existing = active_ticket(session, conversation_id)
    if existing is not None:
        return existing, False
    ticket = HandoffTicket(conversation_id=conversation_id, channel=channel, user_id=user_id, student_id=student_id,
                           lang=lang.value, reason=reason.value, topic=topic,
                           bot_said=mask_secrets(bot_said) if bot_said else None,
                           status=TicketStatus.WAITING.value, opened_at=now)
    session.add(ticket)
    session.flush()
    enqueue(session, AGENTS, f"card:{ticket.id}", {"kind": "card", "ticket": ticket.id}, now)
    return ticket, True


def ticket_by_thread(session: Session, thread_ts: str) -> HandoffTicket | None:
    """The ticket whose card started this agents' thread, or None."""
    return session.scalars(select(HandoffTicket).where(HandoffTicket.thread_ts == thread_ts)).first()


def take(session: Session, ticket_id: int, agent: str, now: datetime) -> TakeResult:
    """Give a waiting ticket to `agent`; of two agents pressing at once exactly one wins."""
    won = session.execute(update(HandoffTicket).where(HandoffTicket.id == ticket_id,
                                                      HandoffTicket.status == TicketStatus.WAITING.value)
                          .values(status=TicketStatus.ASSIGNED.value, assignee=agent, assigned_at=now)).rowcount
    ticket = session.get(HandoffTicket, ticket_id, populate_existing=True)  # as the UPDATE left it
    if ticket is None or ticket.status == TicketStatus.RESOLVED.value:
        return TakeResult(taken=False, assignee=ticket.assignee if ticket else None, closed=True)
    return TakeResult(taken=bool(won) or ticket.assignee == agent, assignee=ticket.assignee)


def close(session: Session, ticket_id: int, how: ClosedHow, now: datetime, agent: str | None = None) -> bool:
    """Close an open ticket; False if it was closed already (a second press changes nothing)."""
    values: dict[str, object] = {"status": TicketStatus.RESOLVED.value, "closed_at": now, "closed_how": how.value}
    if agent is not None:
        values["assignee"] = agent
    closed = session.execute(update(HandoffTicket).where(HandoffTicket.id == ticket_id,
                                                         HandoffTicket.status.in_(OPEN)).values(**values)).rowcount
    return bool(closed)


def relay_from_student(session: Session, ticket: HandoffTicket, text: str, source_key: str, now: datetime, *,
                       student_number_pattern: str | None = None) -> HandoffMessage | None:
    """Keep a student's message for the ticket's thread and queue its posting; None if seen before.

    Passwords are masked; student numbers (given the profile's pattern) are kept, as agents need them.
    """
    message = _add(session, ticket, "student", None, text, source_key, now, student_number_pattern)
    if message is not None:
        enqueue(session, AGENTS, f"student:{message.id}", {"kind": "student_message", "message": message.id}, now)
    return message


def relay_from_agent(session: Session, ticket: HandoffTicket, text: str, author: str, source_key: str,
                     now: datetime, *, student_number_pattern: str | None = None) -> HandoffMessage | None:
    """Keep an agent's thread reply and queue its delivery to the student, once per `source_key`.

    The reply also goes into the conversation's transcript (the web chat page shows it from there), masked
    as `relay_from_student` masks.
    """
    message = _add(session, ticket, "agent", author, text, source_key, now, student_number_pattern)
    if message is not None:
        record(session, ticket.conversation_id, "agent", text, now, student_number_pattern=student_number_pattern)
        enqueue(session, DELIVER, f"agent:{message.id}", {"kind": "agent_message", "message": message.id}, now)
    return message


def _add(session: Session, ticket: HandoffTicket, direction: str, author: str | None, text: str,
         source_key: str, now: datetime, student_number_pattern: str | None) -> HandoffMessage | None:
    seen = session.scalar(select(HandoffMessage.id).where(HandoffMessage.source_key == source_key[:200]))
    if seen is not None:
        return None
    message = HandoffMessage(ticket_id=ticket.id, direction=direction, author=author,
                             text=mask_secrets(text, (), student_number_pattern), source_key=source_key[:200],
                             at=now, delivery="pending")
    session.add(message)
    session.flush()
    return message


def set_delivery(session: Session, message_id: int, delivery: str) -> None:
    """Record whether a relayed message reached its side: sent or failed."""
    session.execute(update(HandoffMessage).where(HandoffMessage.id == message_id).values(delivery=delivery))


def open_tickets(session: Session) -> list[HandoffTicket]:
    """Waiting and assigned tickets, the longest waiting first."""
    return list(session.scalars(select(HandoffTicket).where(HandoffTicket.status.in_(OPEN))
                                .order_by(HandoffTicket.opened_at, HandoffTicket.id)))


def waiting_since_before(session: Session, opening: datetime) -> list[HandoffTicket]:
    """Waiting tickets not posted to the agents since `opening` (the digest at opening time lists them)."""
    return list(session.scalars(select(HandoffTicket).where(
        HandoffTicket.status == TicketStatus.WAITING.value,
        (HandoffTicket.posted_at.is_(None)) | (HandoffTicket.posted_at < opening),
    ).order_by(HandoffTicket.opened_at, HandoffTicket.id)))
