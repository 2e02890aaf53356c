"""What the agents' inbox shows, read in one transaction: the queue, the desk's counts, the satisfaction results
and a ticket's handoff packet, transcript and timeline, labelled in the staff member's language."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import TOKYO
from core.conversations import transcript
from core.enums import Language, Service
from core.formatting import format_short, format_yen, join_list
from core.handoffs import (
    OPEN,
    ClosedHow,
    TicketStatus,
    assignee_shown,
    desk_revision,
    open_tickets,
    satisfaction_since,
    timeline,
)
from core.i18n import core_messages, t
from core.links import hours_text
from core.models import HandoffTicket, Order, Student
from core.order_texts import status_label, summarize
from core.orders import recent_orders
from core.services import Core
from core.staff import agents_at_desk
from handlers.messages import handler_messages, say

SATISFACTION_WITHIN = timedelta(days=30)
ORDERS_SHOWN = 5
TRANSCRIPT_SHOWN = 100  # the conversation's last lines; older ones rarely matter to a handoff
# The canned replies of desk.yaml, in the order the reply box offers them.
CANNED = ("greeting", "checking", "sign_in", "anything_else", "call_center")


@dataclass(frozen=True)
class DeskCounts:
    """What the live view watches: the desk's revision, and how many tickets are open and waiting."""

    revision: int
    open: int
    waiting: int


def desk_counts(session: Session) -> DeskCounts:
    """The desk's revision and its open and waiting tickets, counted now."""
    by_status = dict(session.execute(select(HandoffTicket.status, func.count()).where(
        HandoffTicket.status.in_(OPEN)).group_by(HandoffTicket.status)).all())
    return DeskCounts(revision=desk_revision(session), open=sum(by_status.values()),
                      waiting=by_status.get(TicketStatus.WAITING.value, 0))


@dataclass(frozen=True)
class QueueRow:
    """One open ticket in the queue."""

    id: int
    waiting: bool
    status: str
    lang: str
    reason: str
    topic: str
    channel: str
    waited: str


@dataclass(frozen=True)
class Queue:
    """The queue page: open tickets (waiting first, the longest waiting first), the call center's hours, who is
    at the desk, and how students rated the tickets resolved lately."""

    rows: tuple[QueueRow, ...]
    counts: DeskCounts
    open_now: bool
    call_center: str
    at_desk: int
    resolved: int
    good: int
    bad: int
    share_good: str


def queue(session: Session, core: Core, lang: Language, now: datetime) -> Queue:
    """The queue as the staff member reads it now."""
    # A stable sort: the waiting first, each part still longest waiting first as open_tickets gives them.
    tickets = sorted(open_tickets(session), key=lambda ticket: ticket.status != TicketStatus.WAITING.value)
    rows = tuple(QueueRow(id=ticket.id, waiting=ticket.status == TicketStatus.WAITING.value,
                          status=status_text(ticket, lang), lang=language_label(ticket.lang, lang),
                          reason=reason_label(ticket.reason, lang), topic=topic_label(ticket.topic, lang),
                          channel=ticket.channel, waited=since(ticket.opened_at, ticket.assigned_at or now, lang))
                 for ticket in tickets)
    open_now = core.calendar.is_open(Service.CALL_CENTER, now)
    hours = core.profile.contact(Service.CALL_CENTER).hours
    call_center = (t("desk.inbox.open_now", lang, hours=hours_text(hours, lang)) if open_now else
                   t("desk.inbox.closed_now", lang,
                     when=format_short(core.calendar.next_opening(Service.CALL_CENTER, now), lang)))
    rated = satisfaction_since(session, now - SATISFACTION_WITHIN)
    answers = rated.good + rated.bad
    return Queue(rows=rows, counts=desk_counts(session), open_now=open_now, call_center=call_center,
                 at_desk=agents_at_desk(session, now), resolved=rated.resolved, good=rated.good, bad=rated.bad,
                 share_good=f"{rated.good / answers * 100:.0f}%" if answers else "–")


@dataclass(frozen=True)
class Line:
    """One line of a transcript or a ticket's timeline; `kind` is its direction (in, out, agent, note for the
    transcript; student, agent, note, event for the timeline)."""

    kind: str
    who: str
    text: str
    at: str


@dataclass(frozen=True)
class OrderRow:
    """One of the student's recent orders."""

    number: str
    items: str
    status: str
    total: str
    created: str


@dataclass(frozen=True)
class TicketPage:
    """A ticket's page: the handoff packet, the masked transcript, the timeline, and the canned replies in the
    ticket's language."""

    id: int
    status: str
    status_text: str
    assignee: str | None
    lang: str
    lang_label: str
    reason: str
    topic: str
    channel: str
    student_number: str | None
    opened: str
    waited: str
    bot_said: str | None
    orders: tuple[OrderRow, ...]
    transcript: tuple[Line, ...]
    timeline: tuple[Line, ...]
    satisfaction: str | None
    canned: tuple[tuple[str, str], ...]

    @property
    def waiting(self) -> bool:
        """No agent has it yet."""
        return self.status == TicketStatus.WAITING.value

    @property
    def closed(self) -> bool:
        """Resolved, handed back or withdrawn: nothing more to do."""
        return self.status == TicketStatus.RESOLVED.value


def ticket_page(session: Session, core: Core, ticket_id: int, lang: Language, now: datetime,
                agent_name: str) -> TicketPage | None:
    """The ticket's page for a staff member known to students as `agent_name`, or None when there is no such
    ticket."""
    ticket = session.get(HandoffTicket, ticket_id)
    if ticket is None:
        return None
    student = session.get(Student, ticket.student_id) if ticket.student_id else None
    orders = recent_orders(session, student, limit=ORDERS_SHOWN) if student else []
    return TicketPage(
        id=ticket.id, status=ticket.status, status_text=status_text(ticket, lang), assignee=assignee_shown(ticket),
        lang=ticket.lang, lang_label=language_label(ticket.lang, lang), reason=reason_label(ticket.reason, lang),
        topic=topic_label(ticket.topic, lang), channel=ticket.channel,
        student_number=student.student_number if student else None, opened=format_short(ticket.opened_at, lang),
        waited=since(ticket.opened_at, (ticket.assigned_at or ticket.closed_at or now), lang),
        bot_said=ticket.bot_said, orders=tuple(_order_row(core, order, lang) for order in orders),
        transcript=tuple(_transcript_line(entry.direction, entry.author, entry.text, entry.at, lang)
                         for entry in transcript(session, ticket.conversation_id)[-TRANSCRIPT_SHOWN:]),
        timeline=tuple(_timeline_line(message.direction, message.author, message.text, message.at,
                                      message.delivery, lang) for message in timeline(session, ticket.id)),
        satisfaction=_satisfaction(ticket, lang),
        canned=tuple((key, canned_text(core, key, Language(ticket.lang), agent_name)) for key in CANNED))


def canned_text(core: Core, key: str, lang: Language, agent_name: str) -> str:
    """A canned reply in the student's language, naming the agent and the call center where it says so."""
    contact = core.profile.contact(Service.CALL_CENTER)
    return t(f"desk.canned.{key}", lang, agent=agent_name, name=contact.name(lang), phone=contact.phone or "-",
             hours=hours_text(contact.hours, lang))


# --- labels -----------------------------------------------------------------------------------------------


def status_text(ticket: HandoffTicket, lang: Language) -> str:
    """Where the ticket stands, naming its agent by display name."""
    agent = assignee_shown(ticket) or "?"
    if ticket.status == TicketStatus.RESOLVED.value:
        return t(f"desk.status.{ticket.closed_how or ClosedHow.RESOLVED.value}", lang, agent=agent)
    return t(f"desk.status.{ticket.status}", lang, agent=agent)


def language_label(code: str, lang: Language) -> str:
    """A ticket's language in words."""
    return _handler_text(f"agents.lang.{code}", lang, code)


def reason_label(reason: str, lang: Language) -> str:
    """Why the conversation went to a person, in words."""
    return _handler_text(f"agents.reason.{reason}", lang, reason)


def topic_label(topic: str | None, lang: Language) -> str:
    """The bot's guess (an intent name) in words, as its "did you mean" buttons name it."""
    return _handler_text(f"intents.{topic}", lang, topic) if topic else t("desk.no_topic", lang)


def since(start: datetime, now: datetime, lang: Language) -> str:
    """How long from `start` to `now`, in minutes or hours and minutes."""
    minutes = max(0, int((now - start).total_seconds() // 60))
    if minutes < 60:
        return t("desk.minutes", lang, minutes=minutes)
    return t("desk.hours", lang, hours=minutes // 60, minutes=minutes % 60)


def _handler_text(key: str, lang: Language, fallback: str) -> str:
    # A value stored before its label existed (an intent since renamed) shows as stored rather than failing.
    return say(key, lang) if handler_messages().has(key) else fallback


def _when(at: datetime) -> str:
    return f"{at.astimezone(TOKYO):%m/%d %H:%M}"


def _order_row(core: Core, order: Order, lang: Language) -> OrderRow:
    summary = summarize(order, core.profile, core.calendar)
    return OrderRow(number=summary.number,
                    items=join_list([f"{line.name(lang)}×{line.copies}" for line in summary.lines], lang),
                    status=status_label(summary.status, lang), total=format_yen(summary.total_yen, lang),
                    created=format_short(summary.created_at, lang))


def _transcript_line(direction: str, author: str | None, text: str, at: datetime, lang: Language) -> Line:
    who = t(f"desk.speaker.{direction}", lang) if direction in ("in", "out", "agent", "note") else direction
    if direction == "agent" and author:
        who = f"{who} {author.removeprefix('slack:')}"
    return Line(kind=direction, who=who, text=text, at=_when(at))


def _timeline_line(direction: str, author: str | None, text: str, at: datetime, delivery: str,
                   lang: Language) -> Line:
    if direction == "event":
        key = f"desk.event.{text}"
        said = t(key, lang, agent=author or "?") if core_messages().has(key) else text
        return Line(kind="event", who="", text=said, at=_when(at))
    if direction == "student":
        who = t("desk.timeline.student", lang)
    else:
        who = t(f"desk.timeline.{'note' if direction == 'note' else 'agent'}", lang, agent=author or "?")
    if direction == "agent" and delivery == "failed":
        who = f"{who} — {t('desk.timeline.failed', lang)}"
    return Line(kind=direction, who=who, text=text, at=_when(at))


def _satisfaction(ticket: HandoffTicket, lang: Language) -> str | None:
    # Only a resolve asks the student; a hand-back or a withdrawal has no rating to show.
    if ticket.closed_how != ClosedHow.RESOLVED.value:
        return None
    answer = {"good": "desk.inbox.good", "bad": "desk.inbox.bad"}.get(ticket.satisfaction or "",
                                                                      "desk.ticket.no_answer")
    return t("desk.ticket.satisfaction", lang, answer=t(answer, lang))
