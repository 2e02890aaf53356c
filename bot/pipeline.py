"""The conversation pipeline: normalized message → state → understanding → handler or form → replies,
with the state and a masked transcript saved after every turn."""

import logging
import re
import time
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from bot import logs, metrics
from bot.locks import ConversationLocks
from core.conversations import ConversationState, linked_student_id, load_state, record, save_state
from core.enums import Language, Service
from core.handoffs import Reason, TicketStatus, active_ticket, relay_from_student
from core.masking import find_password_candidates, mask_secrets
from core.models import HandoffTicket
from core.orders import normalize_order_number
from core.services import Core
from handlers import basic
from handlers.forms import FormEngine
from handlers.handoff import PREFIX as HANDOFF_PREFIX
from handlers.identity import ACCOUNT_ONLY_CHANNELS
from handlers.messages import say
from handlers.registry import HandlerRegistry
from handlers.reminders import answer_switch
from handlers.replies import Card, Link, QuickReply, Reply, Text, intent_payload
from handlers.status import order_number_in
from handlers.turn import IncomingMessage, TurnContext
from intents.types import Intent, Understanding

log = logging.getLogger(__name__)

PAYLOAD_INTENT_PREFIX = "intent:"
# Buttons of a topic's own guided steps carry `<prefix>:<choice>`; the prefix names the topic's intent.
PAYLOAD_TOPICS = {"login": Intent.LOGIN_HELP, "lang": Intent.LANGUAGE, "handoff": Intent.HUMAN_AGENT}
MAX_TEXT_CHARS = 2000  # a chat message longer than this is cut before understanding
MISSES_BEFORE_PERSON = 2
# "Did you mean" only when the best guess has some weight; a clearly unrelated question (the weather)
# gets the plain fallback instead of three irrelevant buttons.
DID_YOU_MEAN_MIN = 0.15
CANDIDATE_MIN = 0.05


class Understands(Protocol):
    """What the pipeline needs of the understanding layer (intents.Understander)."""

    def understand(self, text: str, now: datetime | None = None) -> Understanding:
        """The meaning of one message."""
        ...


class Pipeline:
    """Answers one message at a time per conversation, for any channel."""

    def __init__(self, core: Core, understander: Understands, registry: HandlerRegistry,
                 forms: FormEngine | None = None) -> None:
        self.core, self.understander, self.registry = core, understander, registry
        self.forms = forms or FormEngine()
        self.locks = ConversationLocks(core.engine)

    def handle(self, message: IncomingMessage) -> list[Reply]:
        """The replies to one message; never raises, so a channel always has something to send."""
        started = time.perf_counter()
        with logs.conversation(message.conversation_id), self.locks.hold(message.conversation_id):
            now = self.core.now()
            with self.core.transaction() as session:
                state = load_state(session, message.conversation_id, message.channel.value, message.user_id, now)
                # A linked account stays identified after the conversation's state has expired; on channels
                # that identify only by account, the link is the whole truth (an unlink takes effect at once).
                linked = linked_student_id(session, message.channel.value, message.user_id)
                account_only = message.channel in ACCOUNT_ONLY_CHANNELS
                state.student_id = linked if account_only else state.student_id or linked
                relay_to = self._relaying_ticket(session, message, now)
            misses = state.misses
            if relay_to is not None:
                self._relay_to_agent(message, state, relay_to, now)
                metrics.count_message(message.channel.value, metrics.RELAYED, state.lang or state.last_lang,
                                      fallback=False, seconds=time.perf_counter() - started)
                return []  # a person owns the conversation: the bot stays silent
            understanding = self._understand(message, now, state)
            if message.lang_hint:  # the student chose a language (the web page's switch)
                state.lang = message.lang_hint
            lang = state.lang or understanding.lang
            ctx = TurnContext(message=message, understanding=understanding, lang=lang, state=state,
                              core=self.core, now=now)
            replies = self._answer(ctx)
            self._save(ctx, replies)
            metrics.count_message(message.channel.value, ctx.understanding.intent.value, ctx.lang,
                                  fallback=ctx.state.misses > misses, seconds=time.perf_counter() - started)
            return replies

    def _relaying_ticket(self, session: Session, message: IncomingMessage, now: datetime) -> int | None:
        """The handoff ticket that takes this message instead of the bot, or None.

        A ticket relays while an agent has it, or while it waits in the call center's hours; off-hours the
        bot keeps answering (the ticket waits for the opening). A `handoff:` button is always the bot's.
        """
        if (message.payload or "").startswith(HANDOFF_PREFIX):
            return None
        ticket = active_ticket(session, message.conversation_id)
        if ticket is None:
            return None
        if ticket.status != TicketStatus.ASSIGNED and not self.core.calendar.is_open(Service.CALL_CENTER, now):
            return None
        return ticket.id

    def _relay_to_agent(self, message: IncomingMessage, state: ConversationState, ticket_id: int,
                        now: datetime) -> None:
        """Pass the student's message (passwords masked) to the ticket's thread and keep it in the transcript."""
        pattern = self.core.profile.student_number_pattern
        masked = self.said_as_stored(message)
        key = f"{message.conversation_id}:{message.event_id or uuid.uuid4().hex}"
        with self.core.transaction() as session:
            ticket = session.get(HandoffTicket, ticket_id)
            relay_from_student(session, ticket, masked, key, now, student_number_pattern=pattern)
            record(session, message.conversation_id, "in", masked, now, student_number_pattern=pattern,
                   message_ref=message.message_ref)
            save_state(session, state, now)  # the conversation stays alive while the person answers

    def _answer(self, ctx: TurnContext) -> list[Reply]:
        try:
            if not (ctx.message.text or "").strip() and not ctx.message.payload:
                return [Text(say("basic.empty", ctx.lang), basic.main_menu(ctx.lang))]
            switched = answer_switch(ctx)  # 「通知停止」 / "stop reminders", even in the middle of a form
            if switched is not None:
                return switched
            in_form = self.forms.handle(ctx, self._answer_intent)
            return in_form if in_form is not None else self._answer_intent(ctx)
        except Exception:
            log.exception("conversation %s: answering %s failed", ctx.message.conversation_id,
                          ctx.understanding.intent)
            return [Text(say("basic.error", ctx.lang) + "\n\n" + basic.contact_lines(ctx))]

    def _answer_intent(self, ctx: TurnContext) -> list[Reply]:
        intent = ctx.understanding.intent
        if intent is Intent.OUT_OF_SCOPE:
            return self._fallback(ctx)
        ctx.state.misses = 0
        handler = self.registry.get(intent)
        return handler(ctx) if handler else basic.fallback(ctx)

    def _fallback(self, ctx: TurnContext) -> list[Reply]:
        """Did-you-mean buttons for a near miss; after two misses in a row, offer a person."""
        ctx.state.misses += 1
        if ctx.state.misses >= MISSES_BEFORE_PERSON:
            buttons = (QuickReply(say("intents.human_agent", ctx.lang), f"{HANDOFF_PREFIX}{Reason.MISSES.value}"),
                       *basic.main_menu(ctx.lang)[:5])
            return [Text(say("fallback.offer_person", ctx.lang) + "\n\n" + basic.contact_lines(ctx), buttons)]
        candidates = [intent for intent, probability in ctx.understanding.candidates
                      if intent is not Intent.OUT_OF_SCOPE and probability >= CANDIDATE_MIN]
        if candidates and ctx.understanding.candidates[0][1] >= DID_YOU_MEAN_MIN:
            buttons = tuple(QuickReply(say(f"intents.{intent.value}", ctx.lang), intent_payload(intent))
                            for intent in candidates[:3])
            menu = QuickReply(say("fallback.menu", ctx.lang), intent_payload(Intent.GREET))
            return [Text(say("fallback.did_you_mean", ctx.lang), (*buttons, menu))]
        return basic.fallback(ctx)

    def _understand(self, message: IncomingMessage, now: datetime, state: ConversationState) -> Understanding:
        payload = message.payload or ""
        if payload:
            prefix = payload.split(":", 1)[0]
            intent: Intent | None = None
            if payload.startswith(PAYLOAD_INTENT_PREFIX) and payload[len(PAYLOAD_INTENT_PREFIX):] in set(Intent):
                intent = Intent(payload[len(PAYLOAD_INTENT_PREFIX):])
            elif prefix in PAYLOAD_TOPICS:
                intent = PAYLOAD_TOPICS[prefix]
            lang = message.lang_hint or state.lang or state.last_lang or Language.JA
            return Understanding(text="", intent=intent or Intent.OUT_OF_SCOPE, confidence=1.0, candidates=(),
                                 entities=(), lang=lang)
        text = (message.text or "")[:MAX_TEXT_CHARS]
        understanding = self.understander.understand(text, now=now)
        if understanding.intent is Intent.OUT_OF_SCOPE and order_number_in(text):
            # A bare order number is a status question; the classifier has no words to go on.
            understanding = replace(understanding, intent=Intent.ORDER_STATUS, confidence=1.0)
        if has_language_signal(text, understanding):
            state.last_lang = understanding.lang
        elif state.lang or state.last_lang:
            # "24M1001" or "2" says nothing about the language: keep the conversation's.
            understanding = replace(understanding, lang=state.lang or state.last_lang)
        return understanding

    def _said(self, message: IncomingMessage) -> tuple[str, tuple[str, ...]]:
        """What the student sent, as transcript text (a tap as `[payload]`), and its password-like parts."""
        said = message.text if message.text is not None else f"[{message.payload}]"
        return said, tuple(find_password_candidates(said, self.core.profile.student_number_pattern))

    def said_as_stored(self, message: IncomingMessage) -> str:
        """What the transcript keeps of the student's message: the words with any password (and card number
        or token) masked, as `record` stores them."""
        said, secrets = self._said(message)
        return mask_secrets(said, secrets, self.core.profile.student_number_pattern)

    def _save(self, ctx: TurnContext, replies: list[Reply]) -> None:
        """Persist the state and the transcript; the student's own words with any password masked."""
        state, message, now = ctx.state, ctx.message, ctx.now
        state.last_intent = ctx.understanding.intent.value
        pattern = self.core.profile.student_number_pattern
        said, secrets = self._said(message)
        try:
            with self.core.transaction() as session:
                understood = ctx.understanding  # not understood: its best candidate is kept for the dashboard
                record(session, message.conversation_id, "in", said, now, intent=understood.intent.value,
                       confidence=understood.confidence, extra_secrets=secrets, student_number_pattern=pattern,
                       message_ref=message.message_ref, guess=understood.candidates[0][0].value
                       if understood.intent is Intent.OUT_OF_SCOPE and understood.candidates else None)
                for reply in replies:
                    record(session, message.conversation_id, "out", reply_text(reply), now, extra_secrets=secrets,
                           student_number_pattern=pattern)
                save_state(session, state, now)
        except Exception:
            # The student still gets the answer; what could not be stored is logged, not lost silently.
            log.exception("conversation %s: saving the turn failed", message.conversation_id)


_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_ORDER_NUMBER_LIKE = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{4}[\s\-‐ー]?[0-9A-Za-z]{4}(?![0-9A-Za-z])")


def has_language_signal(text: str, understanding: Understanding) -> bool:
    """True if the message has Japanese script or English words outside its entities and order numbers."""
    residual = list(text)
    spans = [(entity.start, entity.end) for entity in understanding.entities]
    # An order number with a digit (so not an English word such as "payments") says nothing about language.
    spans += [match.span() for match in _ORDER_NUMBER_LIKE.finditer(text)
              if normalize_order_number(match.group()) and any(ch.isdigit() for ch in match.group())]
    for start, end in spans:
        residual[start:end] = [" "] * (end - start)
    rest = "".join(residual)
    return bool(_JAPANESE.search(rest) or _LATIN_WORD.search(rest))


def reply_text(reply: Reply) -> str:
    """A reply as one line of transcript text."""
    match reply:
        case Text(text=text):
            return text
        case Link(label=label, url=url, text=text):
            return f"{text} {label}: {url}".strip()
        case Card(title=title, fields=fields, footer=footer):
            return " / ".join([title, *(f"{k}: {v}" for k, v in fields), footer]).strip(" /")
    raise TypeError(f"unknown reply {reply!r}")
