"""Messages to a student outside a turn (an agent's reply, a closing message, a notice): the `deliver` jobs
of the worker, sent on the student's own channel exactly once."""

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from bot.delivery import inbox
from bot.delivery.inbox import Call, ChannelProcessor, PermanentFailure
from bot.ops import logs
from bot.pipeline import reply_text
from core.conversations import transcript_row
from core.enums import Language
from core.handoffs import set_delivery
from core.jobs import AGENTS, DELIVER, chunks, enqueue, enqueue_many
from core.models import ChannelAccount, Conversation, HandoffMessage, HandoffTicket, Student, TranscriptEntry
from core.services import Core
from handlers.messages import say
from handlers.replies import Reply, Text, from_json, to_json
from handlers.turn import Channel

log = logging.getLogger(__name__)


class StudentSender(Protocol):
    """A channel's way to reach a student unprompted (LINE push, Slack DM)."""

    def render_push(self, user_id: str | list[str], replies: list[Reply]) -> list[dict[str, Any]]:
        """The API calls that deliver `replies` to the user, or to each of a list of users (JSON-serializable)."""
        ...

    def send_push(self, part: dict[str, Any], key: str) -> None:
        """Make one of those calls; `key` is the same on every attempt (LINE's X-Line-Retry-Key)."""
        ...


# Channels whose students read what we send from the transcript (the web chat page asks for it).
TRANSCRIPT_CHANNELS = frozenset({Channel.WEB.value, Channel.TERMINAL.value})

Job = tuple[str, dict[str, Any]]  # a `deliver` job's key and payload, for `core.jobs.enqueue_many`


class Latest(NamedTuple):
    """What a notice needs of a chat account's most recent conversation."""

    id: str
    lang: str | None


def replies_job(*, channel: str, user_id: str, conversation_id: str, replies: list[Reply]) -> dict[str, Any]:
    """The payload of a `deliver` job sending `replies` to one user."""
    return {"kind": "replies", "channel": channel, "user": user_id, "conversation": conversation_id,
            "replies": to_json(replies)}


def deliver_later(session: Session, *, key: str, channel: str, user_id: str, conversation_id: str,
                  replies: list[Reply], now: datetime) -> bool:
    """Queue replies for a student, once per `key`, in the caller's transaction (with what caused them)."""
    return enqueue(session, DELIVER, key, replies_job(channel=channel, user_id=user_id,
                                                      conversation_id=conversation_id, replies=replies), now)


def reachable(account: ChannelAccount) -> bool:
    """Whether a chat account may be messaged unprompted: a LINE account only while it follows the bot."""
    return account.channel != Channel.LINE.value or account.following


def latest_conversation_of(session: Session, account: ChannelAccount) -> Conversation | None:
    """The chat account's most recent conversation (its language is the one to write in), or None."""
    return session.scalars(select(Conversation).where(
        Conversation.channel == account.channel, Conversation.user_id == account.external_id,
    ).order_by(Conversation.updated_at.desc())).first()


def latest_conversations(session: Session, accounts: Iterable[ChannelAccount]) -> dict[tuple[str, str], Latest]:
    """`latest_conversation_of` for many accounts at once, by (channel, external id); those without none."""
    wanted = {(account.channel, account.external_id) for account in accounts}
    found: dict[tuple[str, str], tuple[datetime, Latest]] = {}
    for chunk in chunks(sorted({user for _, user in wanted})):
        query = select(Conversation.channel, Conversation.user_id, Conversation.id, Conversation.lang,
                       Conversation.updated_at).where(Conversation.user_id.in_(chunk))
        for channel, user, conversation_id, lang, updated_at in session.execute(query):
            key = (channel, user)
            if key in wanted and (key not in found or updated_at > found[key][0]):
                found[key] = (updated_at, Latest(conversation_id, lang))
    return {key: latest for key, (_, latest) in found.items()}


def notice_jobs(key: str, accounts: Iterable[ChannelAccount], preferred: Language,
                latest: dict[tuple[str, str], Latest], compose: Callable[[Language], list[Reply]]) -> list[Job]:
    """The jobs of a notice to each reachable account of one student (see `notify_student`), each in the
    language of that account's latest conversation (from `latest_conversations`), else `preferred`."""
    jobs: list[Job] = []
    said: dict[Language, list[Reply]] = {}
    for account in filter(reachable, accounts):  # a blocked LINE account cannot be reached, and must not be
        conversation = latest.get((account.channel, account.external_id))
        lang = Language(conversation.lang) if conversation is not None and conversation.lang else preferred
        if lang not in said:
            said[lang] = compose(lang)
        jobs.append((f"{key}:{account.channel}:{account.external_id}", replies_job(
            channel=account.channel, user_id=account.external_id,
            conversation_id=conversation.id if conversation else "", replies=said[lang])))
    return jobs


def notify_student(session: Session, student_id: int, key: str, compose: Callable[[Language], list[Reply]],
                   now: datetime) -> int:
    """Queue a notice to every reachable chat account linked to the student, each in the language of that
    account's conversation, else the student's own; once per `key` and account. The number queued."""
    preferred = session.scalar(select(Student.preferred_language).where(Student.id == student_id)) or Language.JA
    accounts = session.scalars(select(ChannelAccount).where(ChannelAccount.student_id == student_id)).all()
    jobs = notice_jobs(key, accounts, Language(preferred), latest_conversations(session, accounts), compose)
    return len(enqueue_many(session, DELIVER, jobs, now))


class Delivery(ChannelProcessor):
    """The worker's `deliver` processor."""

    channel = DELIVER

    def __init__(self, core: Core, senders: dict[str, StudentSender]) -> None:
        self.core = core
        self.senders = senders

    def prepare(self, job: inbox.Job) -> list[dict[str, Any]]:
        """Render the job's message for the student's channel; [] when the transcript already shows it."""
        channel, user_id, replies = self._what(job.payload)
        if channel in TRANSCRIPT_CHANNELS:
            self._delivered(job.payload)
            return []
        sender = self.senders.get(channel)
        if sender is None:
            raise PermanentFailure(f"{channel} is not connected: no way to reach the student")
        return [{"sender": channel, **part} for part in sender.render_push(user_id, replies)]

    def send(self, call: Call) -> None:
        """Send one part; after the last one the relayed message is marked sent."""
        part = {key: value for key, value in call.part.items() if key != "sender"}
        self.senders[call.part["sender"]].send_push(part, f"{call.payload['job']}:{call.index}")
        self._delivered(call.payload)  # after every part: marking sent twice is harmless

    def failed(self, job: inbox.Job, error: str) -> None:
        """A relay that could not reach the student is marked in the agents' thread."""
        payload = job.payload
        if payload.get("kind") != "agent_message":
            log.error("delivery %s to a student failed: %s", payload.get("job"), error)
            return
        with self.core.transaction() as session:
            set_delivery(session, int(payload["message"]), "failed")
            enqueue(session, AGENTS, f"relay_failed:{payload['message']}",
                    {"kind": "relay_failed", "message": int(payload["message"]), "error": error[:300]},
                    self.core.now())

    def _what(self, payload: dict[str, Any]) -> tuple[str, Any, list[Reply]]:
        """The channel, the user and the replies of a job."""
        if payload.get("kind") == "replies":
            replies = from_json(payload["replies"])
            if payload["channel"] in TRANSCRIPT_CHANNELS:
                self._record(payload["conversation"], replies)
            return payload["channel"], payload["user"], replies
        if payload.get("kind") == "multicast":  # one message to many LINE users (a period reminder)
            return payload["channel"], list(payload["users"]), from_json(payload["replies"])
        if payload.get("kind") == "agent_message":
            with self.core.transaction() as session:
                message = session.get(HandoffMessage, int(payload["message"]))
                ticket = session.get(HandoffTicket, message.ticket_id) if message else None
                if message is None or ticket is None:
                    raise PermanentFailure(f"relayed message {payload['message']} is gone")
                logs.note_conversation(ticket.conversation_id)
                lang = Language(ticket.lang)
                name = payload.get("name")  # a web inbox agent's display name; a Slack user ID is never shown
                text = (say("handoff.from_agent_named", lang, name=name, text=message.text) if name
                        else say("handoff.from_agent", lang, text=message.text))
                return ticket.channel, ticket.user_id, [Text(text)]
        raise PermanentFailure(f"unknown delivery {payload.get('kind')!r}")

    def _record(self, conversation_id: str, replies: list[Reply]) -> None:
        """The notice in the transcript, where the web chat shows it: one statement for all its lines."""
        now = self.core.now()
        lines = [transcript_row(conversation_id, "note", reply_text(reply), now,
                                buttons=[(button.label, button.payload)
                                         for button in getattr(reply, "quick_replies", ())])
                 for reply in replies]
        if lines:
            with self.core.transaction() as session:
                session.execute(insert(TranscriptEntry), lines)

    def _delivered(self, payload: dict[str, Any]) -> None:
        if payload.get("kind") == "agent_message":
            with self.core.transaction() as session:
                set_delivery(session, int(payload["message"]), "sent")
        log.debug("delivered job %s", payload.get("job"))
