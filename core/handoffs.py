"""Handoff tickets: a conversation handed to a call-center agent, taken by one, relayed, and given back;
whether a desk can answer now, the queue's order and the expected wait."""

import statistics
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.calendar import BusinessCalendar
from core.conversations import record
from core.db import changed_rows
from core.enums import Language, Service
from core.jobs import AGENTS, DELIVER, enqueue
from core.masking import mask_secrets
from core.models import HandoffMessage, HandoffTicket
from core.staff import agents_at_desk, may_answer


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


class DeskState(StrEnum):
    """Whether a person can answer a handoff now, and if not, why."""

    OPEN = "open"  # the call center's hours, and Slack's agents' channel or an agent with the inbox open
    CLOSED = "closed"  # outside the call center's hours: a person answers from the next opening
    AWAY = "away"  # in hours, but the web inbox is the only desk and nobody has it open
    NONE = "none"  # no desk at all: no Slack agents' channel and no staff account that may answer


OPEN = (TicketStatus.WAITING.value, TicketStatus.ASSIGNED.value)
WAIT_SAMPLES = 20  # the expected wait is the median of the last this many waits …
WAIT_WITHIN = timedelta(days=30)  # … within this period,
MIN_WAIT_SAMPLES = 3  # and is not told from fewer


def desk_state(session: Session, calendar: BusinessCalendar, now: datetime, *, slack: bool) -> DeskState:
    """Whether a person can answer now: the desks configured (`slack`, staff accounts), the hours, presence."""
    if not slack and not may_answer(session):
        return DeskState.NONE
    if not calendar.is_open(Service.CALL_CENTER, now):
        return DeskState.CLOSED
    if slack or agents_at_desk(session, now):
        return DeskState.OPEN
    return DeskState.AWAY


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
    note_event(session, ticket.id, "opened", None, now)
    enqueue(session, AGENTS, f"card:{ticket.id}", {"kind": "card", "ticket": ticket.id}, now)
    return ticket, True


def note_event(session: Session, ticket_id: int, kind: str, author: str | None, now: datetime) -> None:
    """Add what happened to a ticket (opened, taken, resolved…) to its timeline, which both desks show."""
    session.add(HandoffMessage(ticket_id=ticket_id, direction="event", author=author, text=kind,
                               source_key=f"event:{ticket_id}:{kind}:{uuid.uuid4().hex}", at=now,
                               delivery="internal"))


def ticket_by_thread(session: Session, thread_ts: str) -> HandoffTicket | None:
    """The ticket whose card started this agents' thread, or None."""
    return session.scalars(select(HandoffTicket).where(HandoffTicket.thread_ts == thread_ts)).first()


def take(session: Session, ticket_id: int, agent: str, now: datetime, name: str | None = None) -> TakeResult:
    """Give a waiting ticket to `agent` (a Slack user ID, or `staff:<id>` with its display `name`); of two
    agents pressing at once exactly one wins."""
    won = changed_rows(session, update(HandoffTicket).where(HandoffTicket.id == ticket_id,
                                                            HandoffTicket.status == TicketStatus.WAITING.value)
                       .values(status=TicketStatus.ASSIGNED.value, assignee=agent, assignee_name=name,
                               assigned_at=now))
    ticket = session.get(HandoffTicket, ticket_id, populate_existing=True)  # as the UPDATE left it
    if ticket is None or ticket.status == TicketStatus.RESOLVED.value:
        return TakeResult(taken=False, assignee=assignee_shown(ticket) if ticket else None, closed=True)
    if won:
        note_event(session, ticket.id, "taken", name or agent, now)
    return TakeResult(taken=bool(won) or ticket.assignee == agent, assignee=assignee_shown(ticket))


def assignee_shown(ticket: HandoffTicket) -> str | None:
    """Who has the ticket, as people see it: the staff display name, else the Slack user ID."""
    return ticket.assignee_name or ticket.assignee


def close(session: Session, ticket_id: int, how: ClosedHow, now: datetime, agent: str | None = None,
          name: str | None = None) -> bool:
    """Close an open ticket; False if it was closed already (a second press changes nothing)."""
    values: dict[str, object] = {"status": TicketStatus.RESOLVED.value, "closed_at": now, "closed_how": how.value}
    if agent is not None:
        values["assignee"], values["assignee_name"] = agent, name
    closed = changed_rows(session, update(HandoffTicket).where(HandoffTicket.id == ticket_id,
                                                               HandoffTicket.status.in_(OPEN)).values(**values))
    if closed:
        note_event(session, ticket_id, how.value, name or agent, now)
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
                     now: datetime, *, student_number_pattern: str | None = None,
                     signed: bool = False) -> HandoffMessage | None:
    """Keep an agent's reply and queue its delivery to the student, once per `source_key`.

    `author` is a Slack user ID or a staff display name (never an email). The reply also goes into the
    conversation's transcript (the web chat page shows it from there), masked as `relay_from_student` masks.
    `signed` is for a reply written in the web inbox: the student sees it under the author's display name,
    and it is posted in the ticket's Slack thread too.
    """
    message = _add(session, ticket, "agent", author, text, source_key, now, student_number_pattern)
    if message is not None:
        record(session, ticket.conversation_id, "agent", text, now, student_number_pattern=student_number_pattern,
               author=author if signed else f"slack:{author}")
        job: dict[str, object] = {"kind": "agent_message", "message": message.id}
        if signed:  # the student sees the display name; Slack's thread gets the reply too
            job["name"] = author
            enqueue(session, AGENTS, f"mirror:{message.id}", {"kind": "mirror", "message": message.id}, now)
        enqueue(session, DELIVER, f"agent:{message.id}", job, now)
    return message


def add_note(session: Session, ticket: HandoffTicket, text: str, author: str, source_key: str, now: datetime, *,
             student_number_pattern: str | None = None) -> HandoffMessage | None:
    """Keep an internal note on a ticket (agents only; the student never sees it), once per `source_key`;
    it is also posted in the ticket's Slack thread."""
    message = _add(session, ticket, "note", author, text, source_key, now, student_number_pattern)
    if message is not None:
        message.delivery = "internal"
        enqueue(session, AGENTS, f"mirror:{message.id}", {"kind": "mirror", "message": message.id}, now)
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


def timeline(session: Session, ticket_id: int) -> list[HandoffMessage]:
    """Everything on a ticket, oldest first: the student's and agents' messages, notes and events."""
    return list(session.scalars(select(HandoffMessage).where(HandoffMessage.ticket_id == ticket_id)
                                .order_by(HandoffMessage.id)))


def desk_revision(session: Session) -> int:
    """A number that grows whenever any ticket opens, changes hands, closes or gets a message (the inbox's
    live view reloads when it changes)."""
    return session.scalar(select(func.max(HandoffMessage.id))) or 0


def queue_position(session: Session, ticket: HandoffTicket) -> int | None:
    """The ticket's place among the waiting ones (1 is next), or None when it is not waiting."""
    if ticket.status != TicketStatus.WAITING.value:
        return None
    ahead = session.scalar(select(func.count()).select_from(HandoffTicket).where(
        HandoffTicket.status == TicketStatus.WAITING.value,
        (HandoffTicket.opened_at < ticket.opened_at)
        | ((HandoffTicket.opened_at == ticket.opened_at) & (HandoffTicket.id < ticket.id))))
    return (ahead or 0) + 1


def expected_wait(session: Session, now: datetime, position: int,
                  calendar: BusinessCalendar | None = None) -> timedelta | None:
    """How long the ticket at `position` can expect to wait: the median of recent waits for a person, times
    the position; None when too few tickets were taken recently to say. Given the `calendar`, only tickets
    opened in the call center's hours count (one that waited overnight says nothing about the wait now)."""
    rows = session.execute(select(HandoffTicket.opened_at, HandoffTicket.assigned_at).where(
        HandoffTicket.assigned_at.is_not(None), HandoffTicket.assigned_at > now - WAIT_WITHIN,
        HandoffTicket.reason != Reason.AGENT.value)  # an agent's takeover is taken at once: no wait to learn from
        .order_by(HandoffTicket.assigned_at.desc()).limit(WAIT_SAMPLES * 3)).all()
    # `assigned is not None` tells the type checker what the WHERE clause already ensures.
    waits = [(assigned - opened).total_seconds() for opened, assigned in rows
             if assigned is not None and assigned >= opened
             and (calendar is None or calendar.is_open(Service.CALL_CENTER, opened))][:WAIT_SAMPLES]
    if len(waits) < MIN_WAIT_SAMPLES:
        return None
    return timedelta(seconds=statistics.median(waits) * position)


def rate(session: Session, conversation_id: str, answer: str) -> bool:
    """Keep the student's one-tap satisfaction answer on the conversation's latest closed ticket that has
    none yet; False when there is none (a second tap changes nothing)."""
    ticket = session.scalars(select(HandoffTicket).where(
        HandoffTicket.conversation_id == conversation_id, HandoffTicket.status == TicketStatus.RESOLVED.value,
        HandoffTicket.closed_how == ClosedHow.RESOLVED.value).order_by(HandoffTicket.id.desc())).first()
    if ticket is None or ticket.satisfaction is not None:
        return False
    ticket.satisfaction = answer
    return True


@dataclass(frozen=True)
class Satisfaction:
    """The satisfaction answers of tickets resolved since a time."""

    resolved: int
    good: int
    bad: int


def satisfaction_since(session: Session, since: datetime) -> Satisfaction:
    """How many tickets agents resolved since `since`, and how their students rated them."""
    rows = session.execute(select(HandoffTicket.satisfaction, func.count()).where(
        HandoffTicket.closed_how == ClosedHow.RESOLVED.value, HandoffTicket.closed_at >= since)
        .group_by(HandoffTicket.satisfaction)).all()
    counts = {answer: count for answer, count in rows}
    return Satisfaction(resolved=sum(counts.values()), good=counts.get("good", 0), bad=counts.get("bad", 0))
