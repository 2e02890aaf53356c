"""The Rasa turn without the SDK: a tracker as madoguchi's incoming message, the pipeline's answer as dispatcher
messages, and the slot and loop changes that keep Rasa's tracker in step with madoguchi's own state."""

import json
import logging
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot.pipeline import Pipeline
from bot.rasa.domain import FORM_INTENTS, LANG_SLOT, PAYLOAD_ENTITY, REQUESTED_SLOT, RasaForms, loop_name
from core.conversations import ConversationState, load_state, restart_conversation
from core.enums import Language
from core.masking import PERSONAL_MASK, mask_text
from core.services import Core
from core.web_sessions import signed_in
from handlers.basic import main_menu
from handlers.mailing import ADDRESS_SLOTS
from handlers.messages import say
from handlers.payloads import (
    NAMESPACE_TOPICS,
    AskIntent,
    Namespace,
    StartForm,
    decode,
    encode,
    namespace_of,
    topic_of,
)
from handlers.replies import Card, Link, QuickReply, Reply, Text
from handlers.turn import Channel, IncomingMessage, TurnContext
from intents.controls import control_word
from intents.entities import EntityExtractor
from intents.language import detect_language
from intents.normalize import normalize_with_offsets
from intents.types import Intent, Understanding
from intents.understander import MAX_INPUT_CHARS, Understander

log = logging.getLogger(__name__)

CONVERSATION_PREFIX = "rasa:"  # madoguchi's conversation id of a Rasa sender: `rasa:<sender_id>`
# Rasa's input channels that are madoguchi channels with their own identity rules (a typed student number is
# refused where only a linked account identifies); any other (rest, socketio, cmdline) is a web-like chat.
_CHANNELS = {"slack": Channel.SLACK, "line": Channel.LINE}
SESSION_METADATA = "madoguchi_session"  # a signed-in browser's session token, passed by the site's Rasa front end
# A message whose text is a payload of these namespaces is that button's tap (one typed or sent by a front end).
_TAPPED_NAMESPACES = frozenset({Namespace.INTENT, Namespace.FORM, *NAMESPACE_TOPICS})
ACTION_LISTEN = "action_listen"
_FALLBACK_INTENTS = {"nlu_fallback": Intent.OUT_OF_SCOPE}  # Rasa's FallbackClassifier's intent

# The intent Rasa's NLU found for the turn being answered, read by RasaUnderstander inside Pipeline.handle.
_RASA_NLU: ContextVar["RasaTurn"] = ContextVar("rasa_nlu")


@dataclass(frozen=True, slots=True)
class RasaTurn:
    """What one action call tells about the turn: the sender, the latest message as Rasa understood it, and the
    tracker's slots and active loop."""

    sender_id: str
    text: str | None
    intent: Intent
    confidence: float = 1.0
    ranking: tuple[tuple[Intent, float], ...] = ()
    entities: tuple[Mapping[str, Any], ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    input_channel: str | None = None
    slots: Mapping[str, Any] = field(default_factory=dict)
    active_loop: str | None = None
    message_id: str | None = None
    answers_message: bool = True

    @classmethod
    def from_tracker(cls, state: Mapping[str, Any], intent: Intent | None = None) -> "RasaTurn":
        """The turn of a tracker in Rasa's JSON form (`Tracker.current_state()` or the request's `tracker`).

        Args:
            state: The tracker: sender_id, slots, latest_message, active_loop, latest_input_channel.
            intent: The intent to answer (an `action_<intent>` answers its own); default: the NLU's.
        """
        latest = state.get("latest_message") or {}
        nlu_intent = _intent((latest.get("intent") or {}).get("name"))
        ranking = tuple((found, float(item.get("confidence") or 0.0))
                        for item in latest.get("intent_ranking") or () if (found := _intent(item.get("name"))))
        return cls(
            sender_id=str(state.get("sender_id") or "default"),
            text=latest.get("text"),
            intent=intent or nlu_intent or Intent.OUT_OF_SCOPE,
            confidence=float((latest.get("intent") or {}).get("confidence") or 1.0),
            ranking=ranking,
            entities=tuple(latest.get("entities") or ()),
            metadata=latest.get("metadata") or {},
            input_channel=state.get("latest_input_channel"),
            slots=state.get("slots") or {},
            active_loop=(state.get("active_loop") or {}).get("name"),
            message_id=latest.get("message_id"),
            answers_message=_answers_message(state),
        )


def _answers_message(state: Mapping[str, Any]) -> bool:
    """True when the action runs right after the student's message, not later in the same turn.

    Rasa's form runs its validation on a copy of the tracker that ends with the form itself as an executed
    action (rasa/core/actions/forms.py, `_temporary_tracker`), so `latest_action_name` is the form, never
    `action_listen`: what tells a new message is that no other action ran since the student's `user` event
    (as Rasa decides, from the action before the form: `action_listen` means a message to validate).
    """
    events = state.get("events") or []
    if not events:  # a tracker without events (an old client): only its latest action can tell
        return state.get("latest_action_name") in (None, ACTION_LISTEN)
    loop = (state.get("active_loop") or {}).get("name")
    skipped_form_call = False
    for event in reversed(events):
        kind = event.get("event")
        if kind == "user":
            return True
        if kind != "action" or event.get("name") == ACTION_LISTEN:
            continue
        if event.get("name") == loop and not skipped_form_call:
            skipped_form_call = True  # the form's own call, which Rasa adds before asking for validation
            continue
        return False
    return True


def _intent(name: object) -> Intent | None:
    if not isinstance(name, str):
        return None
    if name in _FALLBACK_INTENTS:
        return _FALLBACK_INTENTS[name]
    return Intent(name) if name in set(Intent) else None


@dataclass(frozen=True, slots=True)
class RasaAnswer:
    """The answer to one action call: messages for the dispatcher, slots to set, and the loop to set
    (`loop_changed`) so that Rasa's active loop follows madoguchi's form."""

    messages: list[dict[str, Any]]
    slots: dict[str, Any]
    loop_changed: bool = False
    loop: str | None = None


class RasaUnderstander:
    """The understanding layer under Rasa: the intent is Rasa's; entities, language and steering words are
    madoguchi's own.

    Rasa gives one intent a message. Where madoguchi's own understander (if given) reads the message the same
    way (Rasa's intent is its answer or one of the message's questions), its reading is taken whole: every
    question of the message answered in order, the kind of an out-of-scope message, a button for an aside.
    Where the two differ, Rasa's intent stands.
    """

    def __init__(self, extractor: EntityExtractor, own: Understander | None = None) -> None:
        self._extractor, self._own = extractor, own

    def understand(self, text: str, now: datetime | None = None) -> Understanding:
        """The meaning of the message of the turn being answered."""
        turn = _RASA_NLU.get()
        # "Did you mean" offers Rasa's runners-up: its ranking is the deployment's reading of the message.
        candidates = tuple((intent, p) for intent, p in turn.ranking if intent is not Intent.OUT_OF_SCOPE)[:3]
        if self._own is not None:
            own = self._own.understand(text, now)
            if turn.intent is own.intent or turn.intent in {topic.intent for topic in own.topics}:
                return replace(own, candidates=candidates or own.candidates)
            # Rasa's intent stands; entities, language and steering word are the ones just read.
            return replace(own, intent=turn.intent, confidence=turn.confidence, candidates=candidates, topics=(),
                           out_of_scope_kind=None, asides=())
        head = text[:MAX_INPUT_CHARS]
        normalized = normalize_with_offsets(head)
        entities = self._extractor.extract_normalized(head, normalized, now)
        lang = detect_language(normalized.text, default=Language.JA)
        return Understanding(text, turn.intent, turn.confidence, candidates, entities, lang,
                             control=control_word(normalized.text))


class RasaBridge:
    """Answers Rasa's action calls through madoguchi's pipeline, on madoguchi's conversation state."""

    def __init__(self, pipeline: Pipeline, forms: RasaForms) -> None:
        """Wrap a pipeline built with a `RasaUnderstander` (see `build_bridge`)."""
        self.pipeline, self.forms, self.core = pipeline, forms, pipeline.core

    def answer(self, turn: RasaTurn, *, handle: bool = True) -> RasaAnswer:
        """Answer one turn as madoguchi would on its own channels, and say what Rasa's tracker should record.

        Args:
            turn: The turn from the action call.
            handle: False to only report the state (a form Rasa runs again after the action that started it:
                the student's message was answered already and must not be handled twice).
        """
        message = self.incoming(turn)
        replies: list[Reply] = []
        if handle:
            token = _RASA_NLU.set(turn)
            try:
                replies = self.pipeline.handle(message)
            finally:
                _RASA_NLU.reset(token)
        state = self._state(message)
        lang = state.lang or state.last_lang or Language.JA
        messages = [render(reply, self._payload_intent(state, turn)) for reply in replies]
        slots, loop_changed, loop = self._tracker_changes(turn, state, lang)
        return RasaAnswer(messages, slots, loop_changed, loop)

    def start_over(self, turn: RasaTurn) -> Language:
        """Rasa's `/restart` or a new Rasa session: madoguchi's state of the conversation starts over too (a form
        left in it would otherwise take the next message); the conversation's language."""
        conversation_id = f"{CONVERSATION_PREFIX}{turn.sender_id}"
        with self.pipeline.locks.hold(conversation_id), self.core.transaction() as session:
            return restart_conversation(session, conversation_id, self.core.now()) or Language.JA

    def restart(self, turn: RasaTurn) -> RasaAnswer:
        """A restart the student asked for: started over (`start_over`), and said so with the menu."""
        lang = self.start_over(turn)
        reply = Text(say("basic.restarted", lang), main_menu(lang))
        return RasaAnswer([render(reply, Intent.GREET)], {LANG_SLOT: lang.value})

    def incoming(self, turn: RasaTurn) -> IncomingMessage:
        """The turn as the message madoguchi's channels hand to the pipeline."""
        payload = self._payload(turn)
        hint = turn.metadata.get("lang")
        return IncomingMessage(
            signed_in_student=self._signed_in_student(turn),
            channel=_CHANNELS.get(turn.input_channel or "", Channel.WEB),
            user_id=turn.sender_id,
            conversation_id=f"{CONVERSATION_PREFIX}{turn.sender_id}",
            text=None if payload else (turn.text or ""),
            payload=payload,
            event_id=turn.message_id,
            lang_hint=Language(hint) if hint in set(Language) else None,
        )

    def _signed_in_student(self, turn: RasaTurn) -> int | None:
        """The student a madoguchi web session signs in, when the site's Rasa front end passes the browser's
        session token in the message's metadata (`madoguchi_session`); else None: a typed number identifies no
        one through Rasa either."""
        token = turn.metadata.get(SESSION_METADATA)
        if not isinstance(token, str):
            return None
        with self.core.transaction() as session:
            who = signed_in(session, token, self.core.now())
        return who.student_id if who else None

    @staticmethod
    def _payload(turn: RasaTurn) -> str | None:
        """A tapped button: the `payload` entity of `/intent{"payload": ...}`, a bare madoguchi payload sent as
        text, or Rasa's own `/intent` trigger (as madoguchi's `intent:` payload)."""
        for entity in turn.entities:
            if entity.get("entity") == PAYLOAD_ENTITY and isinstance(entity.get("value"), str):
                return entity["value"]
        text = (turn.text or "").strip()
        if namespace_of(text) in _TAPPED_NAMESPACES:
            return text
        if text.startswith("/") and text[1:].split("{", 1)[0].split("@", 1)[0] == turn.intent.value:
            return encode(AskIntent(turn.intent))
        return None

    def _state(self, message: IncomingMessage) -> ConversationState:
        with self.core.transaction() as session:
            return load_state(session, message.conversation_id, message.channel.value, message.user_id,
                              self.core.now())

    @staticmethod
    def _payload_intent(state: ConversationState, turn: RasaTurn) -> Intent:
        """The intent a form button is sent back with: the form's own, else the turn's."""
        return FORM_INTENTS.get(state.form or "", turn.intent)

    def _tracker_changes(self, turn: RasaTurn, state: ConversationState,
                         lang: Language) -> tuple[dict[str, Any], bool, str | None]:
        """The slots (mirroring madoguchi's form, masked) and loop Rasa's tracker should now hold."""
        pattern = self.core.profile.student_number_pattern
        # Always set: Rasa rejects a form validation that sets no slot, and the responses follow it.
        slots: dict[str, Any] = {LANG_SLOT: lang.value}
        for form_name, names in self.forms.slots.items():
            for name in names:
                value = state.slots.get(name) if state.form == form_name else None
                if isinstance(value, str) and name in ADDRESS_SLOTS:
                    value = PERSONAL_MASK  # an address: Rasa needs to know it is given, never what it is
                elif isinstance(value, str):
                    value = mask_text(value, pattern)  # a student number or email is not stored in clear
                if turn.slots.get(name) != value:
                    slots[name] = value
        loop = loop_name(state.form) if state.form in self.forms.slots else None
        if loop is not None or turn.active_loop is not None:
            slots[REQUESTED_SLOT] = self._requested(turn, state) if loop else None
        return slots, loop != turn.active_loop, loop

    def _requested(self, turn: RasaTurn, state: ConversationState) -> str | None:
        """The question madoguchi's form asks next: its first open slot that is needed."""
        form = self.forms.forms[state.form or ""]
        ctx = TurnContext(message=self.incoming(turn), understanding=Understanding("", turn.intent, 1.0, (), (),
                          state.lang or Language.JA), lang=state.lang or Language.JA, state=state,
                          core=self.core, now=self.core.now())
        return next((slot.name for slot in form.slots if slot.name not in state.slots and slot.needed(ctx)), None)


def rasa_payload(payload: str, intent: Intent) -> str:
    """A madoguchi button payload as Rasa's intent trigger: `/payment_methods` for an `intent:` button, else
    `/<intent>{"payload": "<madoguchi payload>"}` with the intent of its topic (or the form's)."""
    tapped = decode(payload)
    if isinstance(tapped, AskIntent):
        return f"/{tapped.intent.value}"
    topic = FORM_INTENTS.get(tapped.form) if isinstance(tapped, StartForm) else topic_of(payload)
    body = json.dumps({PAYLOAD_ENTITY: payload}, ensure_ascii=False)
    return f"/{topic or intent}{body}"


def _buttons(quick_replies: tuple[QuickReply, ...], intent: Intent) -> list[dict[str, str]]:
    return [{"title": button.label, "payload": rasa_payload(button.payload, intent)} for button in quick_replies]


def render(reply: Reply, intent: Intent) -> dict[str, Any]:
    """One neutral reply as the keyword arguments of `dispatcher.utter_message`.

    Text keeps its buttons; a link is text with its URL (every Rasa channel shows text); a card is its rows as
    text, for any channel, and as `custom` JSON for a channel that draws cards.
    """
    match reply:
        case Text(text=text, quick_replies=quick_replies):
            return {"text": text, "buttons": _buttons(quick_replies, intent)}
        case Link(label=label, url=url, text=text):
            return {"text": "\n".join(part for part in (text, f"{label}: {url}") if part)}
        case Card(title=title, fields=fields, footer=footer, quick_replies=quick_replies):
            lines = [title, *(f"{label}: {value}" for label, value in fields), footer]
            card = {"type": "card", "title": title, "fields": [list(row) for row in fields], "footer": footer}
            return {"text": "\n".join(line for line in lines if line), "buttons": _buttons(quick_replies, intent),
                    "json_message": card}
    raise TypeError(f"a reply Rasa cannot render: {reply!r}")


def build_bridge(core: Core, own: Understander | None = None) -> RasaBridge:
    """madoguchi's handlers and forms over `core`, answering with Rasa's intents.

    Args:
        core: The deployment's core.
        own: madoguchi's own understander, to read a message's several questions and out-of-scope kinds
            where it agrees with Rasa (`RasaUnderstander`); without it, Rasa's intent alone.

    Raises:
        ValueError: a registered form has no Rasa form (a wiring mistake found at start-up).
    """
    from bot.wiring import build_handlers

    registry, forms = build_handlers()
    rasa_forms = RasaForms.of(forms)
    extractor = EntityExtractor(student_number_pattern=core.profile.student_number_pattern)
    # madoguchi's own reading finds entities with this deployment's student-number pattern, as without it.
    own = Understander(own.model, extractor) if own is not None else None
    return RasaBridge(Pipeline(core, RasaUnderstander(extractor, own), registry, forms), rasa_forms)
