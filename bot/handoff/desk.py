"""What an agent does to a ticket, from either desk (the web inbox or Slack): take, reply, note, resolve or hand
back. Each change is shown at the other desk (the ticket's Slack card and thread) and reaches the student once."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot.delivery.notices import deliver_later
from core.enums import Language
from core.handoffs import ClosedHow, TakeResult, TicketStatus, add_note, close, relay_from_agent, take
from core.jobs import AGENTS, enqueue
from core.models import HandoffMessage, HandoffTicket, StaffAccount
from core.staff import shown_name
from handlers import basic
from handlers.handoff import feedback_buttons
from handlers.messages import say
from handlers.replies import Reply, Text


@dataclass(frozen=True)
class Agent:
    """Who acts: a Slack user (`id` is their user ID, no name) or a staff account (`staff:<id>`, display name)."""

    id: str
    name: str | None = None

    @classmethod
    def staff(cls, account: StaffAccount) -> "Agent":
        """The web inbox's agent for a staff account: known by display name, never by email."""
        return cls(id=f"staff:{account.id}", name=shown_name(account))

    @property
    def shown(self) -> str:
        """How the agent is named on the ticket: the display name, else the Slack user ID."""
        return self.name or self.id


def take_ticket(session: Session, ticket_id: int, agent: Agent, now: datetime) -> TakeResult:
    """Take a waiting ticket; the winner's take is shown on the Slack card and the student is told once."""
    result = take(session, ticket_id, agent.id, now, agent.name)
    if result.taken:
        ticket = session.get(HandoffTicket, ticket_id)
        if ticket is not None:
            enqueue(session, AGENTS, f"taken:{ticket_id}", {"kind": "taken", "ticket": ticket_id}, now)
            deliver_later(session, key=f"taken:{ticket_id}", channel=ticket.channel, user_id=ticket.user_id,
                          conversation_id=ticket.conversation_id,
                          replies=[Text(say("handoff.taken", Language(ticket.lang)))], now=now)
    return result


def reply(session: Session, ticket: HandoffTicket, agent: Agent, text: str, key: str, now: datetime, *,
          student_number_pattern: str | None) -> HandoffMessage | None:
    """Send a web inbox agent's reply to the student once per `key` (replying to a waiting ticket takes it);
    None when it was sent before or the ticket is closed."""
    if ticket.status == TicketStatus.RESOLVED.value:
        return None
    if ticket.status == TicketStatus.WAITING.value and not take_ticket(session, ticket.id, agent, now).taken:
        return None  # another agent took it first: their conversation now
    return relay_from_agent(session, ticket, text, agent.shown, key, now,
                            student_number_pattern=student_number_pattern, signed=agent.name is not None)


def note(session: Session, ticket: HandoffTicket, agent: Agent, text: str, key: str, now: datetime, *,
         student_number_pattern: str | None) -> HandoffMessage | None:
    """Keep an internal note (never sent to the student) once per `key`; also posted in the Slack thread."""
    return add_note(session, ticket, text, agent.shown, key, now, student_number_pattern=student_number_pattern)


def close_ticket(session: Session, ticket_id: int, how: ClosedHow, agent: Agent, now: datetime) -> bool:
    """Resolve a ticket or hand it back to the bot; the Slack card shows it and the student gets the closing
    message (with the satisfaction question after a resolve) once. False when it was closed already."""
    if not close(session, ticket_id, how, now, agent=agent.id, name=agent.name):
        return False
    ticket = session.get(HandoffTicket, ticket_id)
    if ticket is not None:
        enqueue(session, AGENTS, f"closed:{ticket_id}", {"kind": "closed", "ticket": ticket_id}, now)
        deliver_later(session, key=f"closed:{ticket_id}", channel=ticket.channel, user_id=ticket.user_id,
                      conversation_id=ticket.conversation_id, replies=closing(ticket, how), now=now)
    return True


def closing(ticket: HandoffTicket, how: ClosedHow) -> list[Reply]:
    """What the student reads when an agent closes the ticket: the satisfaction question, or the menu."""
    lang = Language(ticket.lang)
    if how is ClosedHow.RESOLVED:
        return [Text(say("handoff.resolved", lang), feedback_buttons(lang))]
    return [Text(say("handoff.handed_back", lang), basic.main_menu(lang))]
