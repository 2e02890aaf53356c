"""The agents' side of a handoff, in Slack: ticket cards and their threads, take/resolve/hand back, the
`tickets`, `student` and `ready` commands, and the digest of waiting tickets at the call center's opening."""

import logging
import re
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.delivery.inbox import Call, ChannelProcessor, Job
from bot.delivery.notices import latest_conversation_of, reachable
from bot.delivery.reminders import send_in
from bot.handoff.desk import Agent, close_ticket, take_ticket
from bot.ops import logs
from core.clock import TOKYO
from core.conversations import transcript
from core.enums import DeliveryMethod, Language, OrderStatus, Service
from core.errors import DomainError, OrderNotFound
from core.formatting import format_short, format_yen, join_list
from core.fulfilment import mark_shipped
from core.handoffs import (
    ClosedHow,
    Reason,
    TicketStatus,
    open_ticket,
    open_tickets,
    relay_from_agent,
    take,
    ticket_by_thread,
    waiting_since_before,
)
from core.identifiers import normalize_student_number
from core.jobs import AGENTS, enqueue
from core.masking import mask_token
from core.models import ChannelAccount, Conversation, HandoffMessage, HandoffTicket, Order, Reminder, Student
from core.order_texts import explain, status_label, summarize
from core.orders import advance, find_order, recent_orders
from core.reminders import Kind, Status, schedule_ready, schedule_shipped
from core.services import Core
from core.students import find_student
from handlers.messages import say

log = logging.getLogger(__name__)

ACTION_PREFIX = "madoguchi.handoff."
SHIPPED_ACTION_PREFIX = "madoguchi.order.shipped."  # + the order number (action ids are unique in a block)
ACTIONS = re.compile(r"^madoguchi\.(?:handoff\.(take|resolve|back)|order\.shipped\.[A-Z0-9-]{1,16})$")
COMMANDS = frozenset({"tickets", "student", "ready", "shipped", "takeover"})
TRANSCRIPT_LINES = 8  # the conversation's last lines on a ticket card
MAX_SECTION = 2900  # below Block Kit's 3,000 characters per section
# Jobs that name a handoff message rather than a ticket.
MESSAGE_JOBS = frozenset({"relay_failed", "mirror", "student_message"})
# A thread reply also sent to the channel ("Also send to #channel") is still a reply to relay.
REPLY_SUBTYPES = frozenset({None, "thread_broadcast"})
_SLACK_MARKUP = re.compile(r"<([^<>]*)>")


class SlackCaller(Protocol):
    """One paced Web API call with Slack's errors classified for the inbox (RetryAfter, PermanentFailure)."""

    def call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Make the call; the response data."""
        ...


class AgentDesk(ChannelProcessor):
    """The worker's `agents` processor and the handlers of what agents do in their Slack channel."""

    channel = AGENTS

    def __init__(self, core: Core, slack: SlackCaller, agent_channel: str, lang: Language = Language.JA) -> None:
        self.core, self.slack, self.agent_channel, self.lang = core, slack, agent_channel, lang

    # ----- the worker: what to post ----------------------------------------------------------------------

    def prepare(self, job: Job) -> list[dict[str, Any]]:
        """The Slack calls of one job: a card, a student's message in its thread, a note, the digest."""
        payload = job.payload
        kind = payload.get("kind")
        with self.core.transaction() as session:
            if kind == "digest":
                return self._digest(session, datetime.fromisoformat(payload["opening"]))
            if kind in MESSAGE_JOBS:
                return self._about_message(session, kind, payload)
            calls = self._about_ticket(session, kind, payload)
        if calls is None:
            log.error("agents: unknown job kind %r", kind)
            return []
        return calls

    def _about_message(self, session: Session, kind: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """A job that names a message of a ticket's (the job names the message only)."""
        message = session.get(HandoffMessage, int(payload["message"]))
        ticket = session.get(HandoffTicket, message.ticket_id) if message else None
        if kind == "relay_failed":
            return self._in_thread(ticket, self._say("agents.relay_failed", error=payload.get("error", "")))
        if kind == "mirror":  # a reply or an internal note written in the web inbox, shown in the thread too
            if message is None:
                return []
            return self._in_thread(ticket, self._say(f"agents.mirror_{message.direction}",
                                                     agent=_escape(message.author or "?"),
                                                     text=_escape(message.text)))
        # A student's message (core.handoffs.relay_from_student); their <!channel> must not ping agents.
        said = _escape(message.text) if message else ""
        return self._in_thread(ticket, self._say("agents.student_said", text=said))

    def _about_ticket(self, session: Session, kind: Any, payload: dict[str, Any]) -> list[dict[str, Any]] | None:
        """A job that names a ticket; None for a kind of job that is not one."""
        ticket = session.get(HandoffTicket, int(payload["ticket"]))
        if ticket is None:
            return []
        logs.note_conversation(ticket.conversation_id)
        if kind == "card":
            if ticket.thread_ts:
                return []  # posted before a crash: never a second card
            return [{"method": "chat.postMessage", "remember_card": ticket.id,
                     "args": {"channel": self.agent_channel, **self._card(session, ticket)}}]
        if kind == "note":  # what a button did, said in the ticket's thread
            return self._in_thread(ticket, str(payload.get("text") or ""))
        if kind in ("taken", "closed"):
            note = self._status_note(ticket)
            return [*self._card_update(session, ticket), *self._in_thread(ticket, note)]
        if kind == "lost_take":
            return [{"method": "chat.postEphemeral", "args": {
                "channel": self.agent_channel, "user": payload["agent"], "thread_ts": ticket.thread_ts or "",
                "text": self._say("agents.already_taken", agent=mention(ticket))
                if ticket.status != TicketStatus.RESOLVED.value else self._say("agents.already_closed")}}]
        return None

    def send(self, call: Call) -> None:
        """Make one call; a posted card's timestamp becomes its ticket's thread, a digest marks its tickets."""
        part = call.part
        data = self.slack.call(part["method"], part["args"])
        now = self.core.now()
        with self.core.transaction() as session:
            if part.get("remember_card"):
                ticket = session.get(HandoffTicket, int(part["remember_card"]))
                if ticket is not None:
                    ticket.thread_ts, ticket.agent_channel, ticket.posted_at = data.get("ts"), data.get("channel"), now
            for ticket_id in part.get("remember_digest") or ():
                ticket = session.get(HandoffTicket, int(ticket_id))
                if ticket is not None:
                    ticket.posted_at = now

    def _in_thread(self, ticket: HandoffTicket | None, text: str) -> list[dict[str, Any]]:
        if ticket is None:
            return []
        logs.note_conversation(ticket.conversation_id)
        if not ticket.thread_ts:
            # The card is still to be posted (or being retried): wait for it, so the thread keeps its order.
            raise CardNotPosted(f"ticket {ticket.id} has no card yet")
        return [{"method": "chat.postMessage", "args": {"channel": ticket.agent_channel or self.agent_channel,
                                                        "thread_ts": ticket.thread_ts, "text": text}}]

    def _card_update(self, session: Session, ticket: HandoffTicket) -> list[dict[str, Any]]:
        if not ticket.thread_ts:
            return []
        return [{"method": "chat.update", "args": {"channel": ticket.agent_channel or self.agent_channel,
                                                   "ts": ticket.thread_ts, **self._card(session, ticket)}}]

    # ----- the card --------------------------------------------------------------------------------------

    def _card(self, session: Session, ticket: HandoffTicket) -> dict[str, Any]:
        """The ticket as a message: summary fields, what the bot said, the last lines, and the buttons."""
        student = session.get(Student, ticket.student_id) if ticket.student_id else None
        orders = recent_orders(session, student, limit=3) if student else []
        lines = [entry for entry in transcript(session, ticket.conversation_id)][-TRANSCRIPT_LINES:]
        title = self._say("agents.card_title", id=ticket.id, topic=self._topic(ticket.topic))
        fields = [  # the status is ours and names the agent with a mention (<@U…>), so it is not escaped
            ("agents.field.status", self._status(ticket)),
            ("agents.field.reason", _escape(self._say(f"agents.reason.{ticket.reason}"))),
            ("agents.field.lang", _escape(self._say(f"agents.lang.{ticket.lang}"))),
            ("agents.field.channel", _escape(ticket.channel)),
            ("agents.field.student",
             _escape(student.student_number if student else self._say("agents.unidentified"))),
            ("agents.field.orders", _escape(join_list([order.number for order in orders], self.lang) or "-")),
            ("agents.field.waiting", _escape(self._since(ticket.opened_at))),
        ]
        said = "\n".join(f"{self._say('agents.speaker.' + entry.direction)}: {entry.text}" for entry in lines)
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{self._say(key)}*\n{value}"}
                                           for key, value in fields]},
        ]
        if ticket.bot_said:
            blocks.append(_section(f"*{self._say('agents.field.bot_said')}*\n{_escape(ticket.bot_said)}"))
        if said:
            blocks.append(_section(f"*{self._say('agents.field.transcript')}*\n{_escape(said)}"))
        if ticket.status != TicketStatus.RESOLVED.value:
            buttons: list[tuple[str, str | None]] = (
                [("take", "primary")] if ticket.status == TicketStatus.WAITING.value else [])
            buttons += [("resolve", None), ("back", None)]
            blocks.append({"type": "actions", "elements": [
                {"type": "button", "action_id": f"{ACTION_PREFIX}{name}", "value": str(ticket.id),
                 "text": {"type": "plain_text", "text": self._say(f"agents.button.{name}")},
                 **({"style": style} if style else {})} for name, style in buttons]})
            # A paid mail order not yet sent can be marked sent (発送済み) from here, as `/madoguchi shipped` does.
            unsent = [order for order in orders if order.delivery_method is DeliveryMethod.MAIL
                      and order.status in (OrderStatus.PAID, OrderStatus.PROCESSING)]
            if unsent:
                blocks.append({"type": "actions", "elements": [
                    {"type": "button", "action_id": f"{SHIPPED_ACTION_PREFIX}{order.number}",
                     "value": f"{ticket.id}:{order.number}",
                     "text": {"type": "plain_text", "text": self._say("agents.button.shipped", number=order.number)}}
                    for order in unsent]})
        return {"text": title, "blocks": blocks}

    def _status(self, ticket: HandoffTicket) -> str:
        if ticket.status == TicketStatus.RESOLVED.value:
            return self._say(f"agents.status.{ticket.closed_how or 'resolved'}", agent=mention(ticket))
        return self._say(f"agents.status.{ticket.status}", agent=mention(ticket))

    def _status_note(self, ticket: HandoffTicket) -> str:
        if ticket.status == TicketStatus.ASSIGNED.value:
            return self._say("agents.taken", agent=mention(ticket))
        return self._say(f"agents.closed_note.{ticket.closed_how or 'resolved'}", agent=mention(ticket))

    def _topic(self, topic: str | None) -> str:
        return say(f"intents.{topic}", self.lang) if topic else self._say("agents.no_topic")

    def _since(self, at: datetime) -> str:
        minutes = max(0, int((self.core.now() - at).total_seconds() // 60))
        if minutes < 60:
            return self._say("agents.minutes", minutes=minutes)
        return self._say("agents.hours", hours=minutes // 60, minutes=minutes % 60)

    def _say(self, key: str, **values: Any) -> str:
        return say(key, self.lang, **values)

    # ----- the digest at opening time --------------------------------------------------------------------

    def _digest(self, session: Session, opening: datetime) -> list[dict[str, Any]]:
        tickets = waiting_since_before(session, opening)
        if not tickets:
            return []
        lines = [self._ticket_line(ticket) for ticket in tickets]
        text = self._say("agents.digest_title", count=len(tickets)) + "\n" + "\n".join(lines)
        return [{"method": "chat.postMessage", "remember_digest": [ticket.id for ticket in tickets],
                 "args": {"channel": self.agent_channel, "text": text[:MAX_SECTION * 4]}}]

    def _ticket_line(self, ticket: HandoffTicket) -> str:
        assignee = self._say("agents.line_assignee", agent=mention(ticket)) if ticket.assignee else ""
        return self._say("agents.ticket_line", id=ticket.id, status=self._say(f"agents.status_word.{ticket.status}"),
                         topic=self._topic(ticket.topic), language=self._say(f"agents.lang.{ticket.lang}"),
                         channel=ticket.channel, wait=self._since(ticket.opened_at), assignee=assignee)

    # ----- what agents do: thread replies, buttons, commands ---------------------------------------------

    def is_agent_channel(self, channel: str | None) -> bool:
        """True for the agents' channel: everything there is the agents', never a student conversation."""
        return channel == self.agent_channel

    def on_thread_reply(self, event: dict[str, Any]) -> None:
        """An agent's reply in a ticket's thread goes to the student, once per Slack message (its ts)."""
        thread_ts, user, text = event.get("thread_ts"), event.get("user"), from_slack(event.get("text") or "")
        if not thread_ts or not user or not text or event.get("bot_id") or event.get("subtype") not in REPLY_SUBTYPES:
            return
        now = self.core.now()
        with self.core.transaction() as session:
            ticket = ticket_by_thread(session, thread_ts)
            if ticket is None or ticket.status == TicketStatus.RESOLVED.value:
                return  # a chat among agents, or a late note on a closed ticket: nothing to relay
            if ticket.status == TicketStatus.WAITING.value:  # replying is taking the ticket
                result = take(session, ticket.id, user, now)
                if result.taken:
                    enqueue(session, AGENTS, f"taken:{ticket.id}", {"kind": "taken", "ticket": ticket.id}, now)
            relayed = relay_from_agent(session, ticket, text, user, f"slack:{event.get('channel')}:{event['ts']}",
                                       now, student_number_pattern=self.core.profile.student_number_pattern)
        log.info("agents: reply in ticket %s thread by %s %s", ticket.id, mask_token(user),
                 "relayed" if relayed else "seen before")

    def on_action(self, action_id: str, value: str, agent: str) -> None:
        """Take, resolve or hand back a ticket from its card's buttons."""
        match = ACTIONS.match(action_id)
        if match is not None and action_id.startswith(SHIPPED_ACTION_PREFIX):
            ticket_text, _, number = value.partition(":")
            if ticket_text.isdigit():
                note = self._shipped(number, agent)
                with self.core.transaction() as session:
                    enqueue(session, AGENTS, f"note:{ticket_text}:{number}:{self.core.now().timestamp()}",
                            {"kind": "note", "ticket": int(ticket_text), "text": note}, self.core.now())
            return
        if match is None or not value.isdigit():
            return
        ticket_id, what, now, who = int(value), match.group(1), self.core.now(), Agent(agent)
        with self.core.transaction() as session:
            if what == "take":
                result = take_ticket(session, ticket_id, who, now)
                if not result.taken:
                    enqueue(session, AGENTS, f"lost_take:{ticket_id}:{agent}:{now.timestamp()}",
                            {"kind": "lost_take", "ticket": ticket_id, "agent": agent}, now)
                log.info("agents: ticket %d take by %s: %s", ticket_id, mask_token(agent),
                         "won" if result.taken else f"held by {mask_token(result.assignee or '-')}")
                return
            how = ClosedHow.RESOLVED if what == "resolve" else ClosedHow.HANDED_BACK
            if not close_ticket(session, ticket_id, how, who, now):
                enqueue(session, AGENTS, f"lost_take:{ticket_id}:{agent}:{now.timestamp()}",
                        {"kind": "lost_take", "ticket": ticket_id, "agent": agent}, now)

    def on_command(self, words: list[str], channel: str | None, agent: str) -> str | None:
        """The answer to an agents' subcommand (`tickets`, `student N`, `ready O`); None if not one.

        Only in the agents' channel: students share the workspace and must never see these.
        """
        if not words or words[0].lower() not in COMMANDS:
            return None
        if not self.is_agent_channel(channel):
            return self._say("agents.only_here")
        command, argument = words[0].lower(), " ".join(words[1:]).strip()
        if command == "tickets":
            return self._tickets()
        if not argument:
            return self._say("agents.help")
        if command == "student":
            return self._student(argument)
        if command == "takeover":
            return self._take_over(argument, agent)
        if command == "shipped":
            return self._shipped(argument, agent)
        return self._ready(argument, agent)

    def _take_over(self, number: str, agent: str) -> str:
        """An agent takes a student's latest chat conversation (LINE or Slack) over from the bot."""
        now = self.core.now()
        with self.core.transaction() as session:
            student = find_student(session, normalize_student_number(number))
            if student is None:
                return self._say("agents.student_none", number=_escape(number[:32]))
            latest = latest_conversation(session, student.id)
            if latest is None:
                return self._say("agents.takeover_unreachable", number=student.student_number)
            ticket, _ = open_ticket(session, conversation_id=latest.id, channel=latest.channel,
                                    user_id=latest.user_id, student_id=student.id,
                                    lang=Language(latest.lang or Language.JA.value), reason=Reason.AGENT,
                                    topic=None, bot_said=None, now=now)
            if not take_ticket(session, ticket.id, Agent(agent), now).taken:
                return self._say("agents.already_taken", agent=mention(ticket))
            return self._say("agents.takeover_done", id=ticket.id, number=student.student_number)

    def _tickets(self) -> str:
        with self.core.transaction() as session:
            tickets = open_tickets(session)
            if not tickets:
                return self._say("agents.tickets_none")
            return "\n".join([self._say("agents.tickets_title", count=len(tickets)),
                              *(self._ticket_line(ticket) for ticket in tickets)])

    def _student(self, number: str) -> str:
        with self.core.transaction() as session:
            student = find_student(session, normalize_student_number(number))
            if student is None:
                return self._say("agents.student_none", number=_escape(number[:32]))
            orders = recent_orders(session, student, limit=5)
            head = self._say("agents.student_orders", number=student.student_number, year=student.year,
                             department=student.department)
            lines = [self._order_line(order) for order in orders] or [self._say("agents.no_orders")]
            return "\n".join([head, *lines])

    def _order_line(self, order: Order) -> str:
        summary = summarize(order, self.core.profile, self.core.calendar)
        items = join_list([f"{line.name(self.lang)}×{line.copies}" for line in summary.lines], self.lang)
        return self._say("agents.order_line", number=order.number, items=items,
                         status=status_label(order.status, self.lang), total=format_yen(order.total_yen, self.lang),
                         created=format_short(order.created_at, self.lang))

    def _ready(self, number: str, agent: str) -> str:
        now = self.core.now()
        with self.core.transaction() as session:
            try:
                order = find_order(session, number)
                if order.status == OrderStatus.READY:
                    return self._say("agents.ready_already", number=order.number)
                advance(session, order, OrderStatus.READY, now, actor=f"agent:{agent}")
            except OrderNotFound:
                return self._say("agents.ready_not_found", number=_escape(number[:32]))
            except DomainError as refused:
                return self._say("agents.ready_refused", number=order.number,
                                 reason=explain(refused, self.lang, self.core.profile))
            # 「受取可能」 now, then at the pickup time and after three business days while not collected.
            plan = schedule_ready(session, order, self.core.calendar, now)
            first = next((reminder for reminder in plan if reminder.kind == Kind.READY_NOW.value), None)
            return self._notified(session, first, now, "ready", order.number)

    def _shipped(self, number: str, agent: str) -> str:
        """Mark a paid mail order sent (発送済み) and tell the student on their linked accounts."""
        now = self.core.now()
        with self.core.transaction() as session:
            try:
                order = find_order(session, number)
                if not mark_shipped(session, order, now, actor=f"agent:{agent}"):
                    return self._say("agents.shipped_already", number=order.number)
            except OrderNotFound:
                return self._say("agents.ready_not_found", number=_escape(number[:32]))
            except DomainError as refused:
                return self._say("agents.shipped_refused", number=order.number,
                                 reason=explain(refused, self.lang, self.core.profile))
            return self._notified(session, schedule_shipped(session, order, now), now, "shipped", order.number)

    def _notified(self, session: Session, notice: Reminder | None, now: datetime, what: str, number: str) -> str:
        """Send a command's notice to the student at once and say how that went (`agents.<what>_done`, `_deferred`
        in the quiet hours, `_not_notified`); no notice (one was sent before) counts as none sent."""
        if notice is None:
            return self._say(f"agents.{what}_done", number=number, channels=0)
        send_in(session, self.core, notice, now)
        if notice.status == Status.SCHEDULED.value:  # the quiet hours: it goes out in the morning
            return self._say(f"agents.{what}_deferred", number=number, when=format_short(notice.due_at, self.lang))
        if notice.status != Status.SENT.value:
            return self._say(f"agents.{what}_not_notified", number=number, reason=notice.outcome or "-")
        return self._say(f"agents.{what}_done", number=number, channels=int((notice.outcome or "0").split()[0]))


class CardNotPosted(Exception):
    """A thread message whose ticket card is not posted yet: retried after the card (with backoff)."""


def from_slack(markup: str) -> str:
    """An agent's Slack message as plain text for the student: a link keeps its address (`label (url)`),
    a mention or channel keeps only its label, and Slack's `&amp;`, `&lt;`, `&gt;` are unescaped."""
    def resolve(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith(("@", "#", "!")):
            return label
        address = target.removeprefix("mailto:")
        return f"{label} ({address})" if label and label != address else address

    text = _SLACK_MARKUP.sub(resolve, markup)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def queue_opening_digest(core: Core) -> bool:
    """At the call center's opening, queue one digest of the tickets that waited; True when queued.

    The reminder scheduler calls this on its sweep; the job's key is the opening, so the digest is posted
    once per opening whichever process queues it first.
    """
    now = core.now()
    if not core.calendar.is_open(Service.CALL_CENTER, now):
        return False
    hours = core.profile.contact(Service.CALL_CENTER).hours
    opening = datetime.combine(now.astimezone(TOKYO).date(), hours.open, TOKYO)
    with core.transaction() as session:
        if not waiting_since_before(session, opening):
            return False
        return enqueue(session, AGENTS, f"digest:{opening.isoformat()}",
                       {"kind": "digest", "opening": opening.isoformat()}, now)


def latest_conversation(session: Session, student_id: int) -> Conversation | None:
    """The student's most recent conversation on a reachable linked LINE or Slack account."""
    accounts = session.scalars(select(ChannelAccount).where(ChannelAccount.student_id == student_id)).all()
    conversations = [latest_conversation_of(session, account) for account in filter(reachable, accounts)]
    return max(filter(None, conversations), key=lambda conversation: conversation.updated_at, default=None)


def mention(ticket: HandoffTicket) -> str:
    """Who has a ticket, in Slack mrkdwn: a Slack user as a mention, a web inbox agent by display name."""
    if ticket.assignee_name:
        return f"*{_escape(ticket.assignee_name)}*"
    return f"<@{ticket.assignee}>" if ticket.assignee else "?"


class NoSlackDesk(ChannelProcessor):
    """The worker's `agents` processor when no agents' Slack channel is set: tickets wait in the web inbox,
    which reads them from the database, so the desk's jobs have nothing to post."""

    channel = AGENTS

    def prepare(self, job: Job) -> list[dict[str, Any]]:
        """Nothing to post."""
        return []

    def send(self, call: Call) -> None:
        """Never called: `prepare` returns no calls."""


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION]}}


def _escape(text: str) -> str:
    """Text safe in Slack mrkdwn (a student's `<!channel>` must not ping anyone)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def open_ticket_ids(session: Session) -> list[int]:
    """The ids of the open tickets (for tests and the digest)."""
    return list(session.scalars(select(HandoffTicket.id).where(HandoffTicket.status != TicketStatus.RESOLVED.value)))
