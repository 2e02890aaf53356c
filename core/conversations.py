"""Conversation state and transcripts in the database: one row per conversation, expiring after silence."""

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.enums import Language
from core.masking import mask_secrets
from core.models import ChannelAccount, Conversation, TranscriptEntry

log = logging.getLogger(__name__)

UNSENT = "[unsent]"  # what an unsent message's transcript line says instead of its text, for agents
EXPIRY = timedelta(minutes=30)  # the rule: state is forgotten after 30 minutes of silence


@dataclass
class ConversationState:
    """What the bot remembers between two messages of one conversation.

    `form` names the guided form in progress and `slots` holds its answers so far (JSON-serializable
    values only); `misses` counts consecutive messages the bot did not understand; `expect` names the
    question the bot's last answer asked outside a form (a department, a date, "shall I send the link?"),
    so that the next message is read first as its answer; `offered` the labels and payloads of the buttons
    the bot's last answer offered (a label typed instead of tapped is the tap); `context` the entities of
    the student's last message, as `[type, value]` pairs, which a follow-up ("and for the transcript?")
    builds on.
    """

    conversation_id: str
    channel: str
    user_id: str
    lang: Language | None = None
    form: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    misses: int = 0
    student_id: int | None = None
    last_intent: str | None = None
    last_lang: Language | None = None  # the language of the last typed message, for replies to taps
    expect: str | None = None
    offered: dict[str, str] = field(default_factory=dict)
    context: list[list[Any]] = field(default_factory=list)

    def start_form(self, name: str, slots: dict[str, Any] | None = None) -> None:
        """Begin a guided form, dropping any other form in progress."""
        self.form, self.slots = name, dict(slots or {})

    def end_form(self) -> None:
        """Leave the form and forget its answers."""
        self.form, self.slots = None, {}


def load_state(session: Session, conversation_id: str, channel: str, user_id: str, now: datetime) -> ConversationState:
    """The conversation's state; a new one if it never existed or was silent longer than EXPIRY."""
    row = session.get(Conversation, conversation_id)
    if row is None or now - row.updated_at >= EXPIRY:
        return ConversationState(conversation_id=conversation_id, channel=channel, user_id=user_id)
    return state_from_row(conversation_id, row.channel, row.user_id, row.lang, row.student_id, row.state_json)


def state_from_row(conversation_id: str, channel: str, user_id: str, lang: str | None, student_id: int | None,
                   stored: str | None) -> ConversationState:
    """The state kept in a conversation row's columns and its JSON (parts missing or malformed are left empty)."""
    data = orjson.loads(stored or "{}")  # orjson: every turn reads and writes this, at a fifth of json's cost
    return ConversationState(
        conversation_id=conversation_id, channel=channel, user_id=user_id,
        lang=Language(lang) if lang else None, form=data.get("form"), slots=data.get("slots") or {},
        misses=int(data.get("misses", 0)), student_id=student_id, last_intent=data.get("last_intent"),
        last_lang=Language(data["last_lang"]) if data.get("last_lang") else None,
        expect=data.get("expect") if isinstance(data.get("expect"), str) else None,
        offered=data.get("offered") if isinstance(data.get("offered"), dict) else {},
        context=data.get("context") if isinstance(data.get("context"), list) else [],
    )


def state_json(state: ConversationState) -> str:
    """The parts of the state that live in the conversation row's JSON column."""
    return orjson.dumps({"form": state.form, "slots": state.slots, "misses": state.misses,
                         "last_intent": state.last_intent,
                         "last_lang": state.last_lang.value if state.last_lang else None,
                         "expect": state.expect, "offered": state.offered, "context": state.context}).decode()


def linked_student_id(session: Session, channel: str, external_id: str) -> int | None:
    """The student linked to a chat account (LINE account linking), or None."""
    return session.scalars(select(ChannelAccount.student_id).where(
        ChannelAccount.channel == channel, ChannelAccount.external_id == external_id)).first()


def chat_account(session: Session, channel: str, external_id: str, now: datetime) -> ChannelAccount:
    """The chat account row of a LINE or Slack user, created (following, unlinked) if missing."""
    row = session.scalars(select(ChannelAccount).where(ChannelAccount.channel == channel,
                                                       ChannelAccount.external_id == external_id)).one_or_none()
    if row is None:
        row = ChannelAccount(channel=channel, external_id=external_id, following=True, created_at=now,
                             updated_at=now)
        session.add(row)
        session.flush()
    return row


def save_state(session: Session, state: ConversationState, now: datetime) -> None:
    """Write the state back; the conversation's silence timer restarts from `now`."""
    row = session.get(Conversation, state.conversation_id)
    if row is None:
        row = Conversation(id=state.conversation_id, channel=state.channel, user_id=state.user_id, created_at=now)
        session.add(row)
    row.lang = state.lang.value if state.lang else None
    row.student_id = state.student_id
    row.state_json = state_json(state)
    row.updated_at = now


def record(session: Session, conversation_id: str, direction: str, text: str, now: datetime,
           **details: Any) -> None:
    """Append one line to the transcript, masked as `transcript_row` says."""
    session.add(TranscriptEntry(**transcript_row(conversation_id, direction, text, now, **details)))


def transcript_row(conversation_id: str, direction: str, text: str, now: datetime, *,
                   intent: str | None = None, confidence: float | None = None, extra_secrets: tuple[str, ...] = (),
                   student_number_pattern: str | None = None, message_ref: str | None = None,
                   guess: str | None = None, author: str | None = None,
                   buttons: list[tuple[str, str]] | None = None, bots_own: bool = False) -> dict[str, Any]:
    """One transcript line's columns, with passwords, card numbers, tokens and `extra_secrets` masked.

    Student numbers (given the profile's pattern) are kept: the agents who take over need them.
    `message_ref` is the channel's id of the message, kept so that the student can take it back.
    `guess` is, for a message the bot did not understand, the intent it thought likeliest (for the dashboard).
    `author` names the person behind an "agent" line (a staff display name or `slack:<user ID>`, never an
    email); `buttons` are a later notice's (label, payload) pairs, which the web chat shows under it.
    `bots_own` marks the bot's own answer, which holds a password only where it repeats `extra_secrets`.
    """
    return {"conversation_id": conversation_id, "direction": direction,
            "text": mask_secrets(text, extra_secrets, student_number_pattern, look_for_passwords=not bots_own),
            "intent": intent,
            "confidence": confidence, "at": now, "message_ref": message_ref, "guess": guess,
            "author": author[:64] if author else None,
            "buttons": json.dumps([list(pair) for pair in buttons], ensure_ascii=False) if buttons else None}


def hide_message(session: Session, conversation_id: str, message_ref: str) -> int:
    """Replace the text of a message the student took back (LINE's unsend) with UNSENT; the number of lines."""
    rows = session.scalars(select(TranscriptEntry).where(TranscriptEntry.conversation_id == conversation_id,
                                                         TranscriptEntry.message_ref == message_ref)).all()
    for row in rows:
        row.text = UNSENT
    return len(rows)


def last_said(session: Session, conversation_id: str) -> str | None:
    """The bot's latest answer in a conversation, or None."""
    return session.scalar(select(TranscriptEntry.text).where(
        TranscriptEntry.conversation_id == conversation_id, TranscriptEntry.direction == "out")
        .order_by(TranscriptEntry.id.desc()).limit(1))


def transcript(session: Session, conversation_id: str) -> list[TranscriptEntry]:
    """Every stored line of a conversation, oldest first."""
    return list(session.scalars(select(TranscriptEntry).where(TranscriptEntry.conversation_id == conversation_id)
                                .order_by(TranscriptEntry.id)))


def restart_conversation(session: Session, conversation_id: str, now: datetime) -> Language | None:
    """Start a conversation over (a chat platform's restart): its form, answers, expectations and typed
    identity are forgotten, its transcript and language kept; the language, or None if it never existed."""
    row = session.get(Conversation, conversation_id)
    if row is None:
        return None
    data = json.loads(row.state_json or "{}")
    last_lang = data.get("last_lang") if data.get("last_lang") in set(Language) else None
    row.student_id = None
    row.state_json = json.dumps({"last_lang": last_lang})
    row.updated_at = now
    return Language(row.lang) if row.lang else Language(last_lang) if last_lang else None


def forget_conversation(session: Session, conversation_id: str) -> None:
    """Delete a conversation's state and transcript."""
    session.execute(delete(TranscriptEntry).where(TranscriptEntry.conversation_id == conversation_id))
    session.execute(delete(Conversation).where(Conversation.id == conversation_id))
