"""The conversation pipeline: normalized message → state → understanding → handler or form → replies,
with the state and a masked transcript saved after every turn."""

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from bot.locks import ConversationLocks
from bot.ops import logs, metrics
from core.conversations import ConversationState, last_said, record, save_state, transcript_row
from core.enums import Language, PaymentMethod
from core.handoffs import DeskState, Reason, TicketStatus, desk_state, relay_from_student
from core.masking import find_password_candidates, mask_personal, mask_secrets, mask_student_number
from core.models import HandoffTicket
from core.orders import normalize_order_number
from core.services import Core
from core.turns import LockedTurn, TurnStart, TurnStore
from handlers import basic, info, mailing, money, scope
from handlers.forms import RESUME, RESUME_QUESTION, FormEngine
from handlers.handoff import CANCEL_WAIT, queue_line
from handlers.identity import ACCOUNT_ONLY_CHANNELS, SIGNED_IN_PAYLOAD, current_student
from handlers.messages import say
from handlers.payloads import AskPerson, Namespace, encode, namespace_of, topic_of
from handlers.registry import HandlerRegistry
from handlers.reminders import answer_switch
from handlers.replies import Card, Link, QuickReply, Reply, Text, intent_payload
from handlers.status import order_number_in
from handlers.turn import IncomingMessage, TurnContext
from intents.controls import Control, back_to_the_bot
from intents.language import written_language
from intents.normalize import normalize
from intents.speech_acts import is_question
from intents.types import Entity, EntityType, Intent, OutOfScopeKind, Topic, Understanding

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 2000  # a chat message longer than this is cut before understanding
MISSES_BEFORE_PERSON = 2
# "Did you mean" only when the best guess has some weight; a clearly unrelated question (the weather)
# gets the plain fallback instead of three irrelevant buttons.
DID_YOU_MEAN_MIN = 0.15
CANDIDATE_MIN = 0.05
# One turn answers several questions with at most this many messages (LINE's one reply call) and one card.
MAX_TURN_MESSAGES = 5
MAX_BUTTONS = 13  # quick replies LINE shows under one message
# Questions that may be answered by starting a guided step (or a person): only one of them is answered in a
# turn, the others are offered as buttons; the one that does start a step is answered last, since the
# student's next message answers that step.
STEP_INTENTS = (Intent.ORDER_CERTIFICATE, Intent.FEE_ITEMS, Intent.ORDER_STATUS, Intent.HUMAN_AGENT)
# A typed "ok" or 「了解」 that the classifier reads as thanks or a goodbye this surely is one.
SIGN_OFF_OVER = 0.5
SIGN_OFFS = (Intent.THANKS, Intent.GOODBYE)


@dataclass(frozen=True, slots=True)
class Turn:
    """What the bot did with one message: its replies and the intents they answered, in order (empty for
    a tap that asks nothing, `out_of_scope` alone for a message it could not place)."""

    replies: list[Reply]
    intents: tuple[Intent, ...]
    # The language the student chose in this turn (a `lang:` tap, "English please"), None when it stayed the
    # same: a channel with per-language menus (LINE's rich menu) switches the student's menu with it.
    switched_language: Language | None = None


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
        self.locks = ConversationLocks(core)
        self.turns = TurnStore(core.engine)

    def handle(self, message: IncomingMessage) -> list[Reply]:
        """The replies to one message; never raises, so a channel always has something to send."""
        return self.answer(message).replies

    def answer(self, message: IncomingMessage) -> Turn:
        """The replies to one message and the intents they answered; never raises."""
        started = time.perf_counter()
        with logs.conversation(message.conversation_id), \
                self.locks.hold_turn(message.conversation_id, self.turns) as held:
            now = self.core.now()
            # On PostgreSQL the turn reads and writes in the transaction that holds its lock; on SQLite it reads
            # without the write lock, and its one write comes at its end (_save).
            start = self.turns.load(held, message.conversation_id, message.channel.value, message.user_id, now)
            state = start.state
            chosen = state.lang
            # Who the student is comes from the channel, never from what was typed: on LINE and Slack the linked
            # account (an unlink takes effect at once), on the web the signed-in browser (signing out or the
            # session's end takes effect at once too).
            state.student_id = start.linked_student_id if message.channel in ACCOUNT_ONLY_CHANNELS \
                else message.signed_in_student
            relay_to, waiting = self._relaying_ticket(message, start, now)
            misses = state.misses
            if waiting and back_to_the_bot(normalize(message.text or "")):
                # 「ボットに戻る」 typed while a ticket is open leaves the queue, as its button does.
                message, relay_to = replace(message, payload=CANCEL_WAIT), None
            if relay_to is not None:
                replies = self._relay_to_agent(message, state, relay_to, now)
                metrics.count_message(message.channel.value, metrics.RELAYED, state.lang or state.last_lang,
                                      fallback=False, seconds=time.perf_counter() - started)
                return Turn(replies, ())  # a person owns the conversation: the bot says no more than the queue
            message = _tapped_by_label(message, state)
            understanding = self._understand(message, now, state)
            lang = state.lang or understanding.lang
            if message.lang_hint:  # the student chose a language (the web page's switch)
                state.lang = message.lang_hint
                # A sentence typed in the other language is answered in it: the page's language is the
                # screen's, what the student writes in is what they read best.
                lang = written_language(message.text or "") or message.lang_hint
            expecting, state.expect = state.expect, None  # a question is answered (or passed over) once
            ctx = TurnContext(message=message, understanding=understanding, lang=lang, state=state,
                              core=self.core, now=now, expecting=expecting)
            replies, intents = self._answer(ctx)
            missed = ctx.state.misses > misses
            if missed:  # a tap the bot could not place is no question it failed to read
                intents = (Intent.OUT_OF_SCOPE,) if message.text is not None else ()
            label = turn_label(intents, understanding, missed and message.text is not None)
            self._save(ctx, replies, label, held)
            metrics.count_message(message.channel.value, label, ctx.lang,
                                  fallback=missed, seconds=time.perf_counter() - started)
            return Turn(replies, intents, state.lang if state.lang != chosen else None)

    def _relaying_ticket(self, message: IncomingMessage, start: TurnStart, now: datetime) -> tuple[int | None, bool]:
        """The handoff ticket that takes this message instead of the bot (or None), and whether the conversation
        has an open ticket at all.

        A ticket relays while an agent has it, or while it waits and a desk can answer now (in the call center's
        hours, Slack's agents' channel or an agent at the web inbox); otherwise the bot keeps answering while
        the ticket waits. A `handoff:` button is always the bot's.
        """
        if namespace_of(message.payload or "") is Namespace.HANDOFF or start.ticket_id is None:
            return None, False
        if start.ticket_status != TicketStatus.ASSIGNED:
            with self.core.reading() as session:
                if desk_state(session, self.core.calendar, now, slack=self.core.agents_on_slack) is not DeskState.OPEN:
                    return None, True
        return start.ticket_id, True

    def _relay_to_agent(self, message: IncomingMessage, state: ConversationState, ticket_id: int,
                        now: datetime) -> list[Reply]:
        """Pass the student's message (passwords masked) to the agents and keep it in the transcript; while
        nobody has taken the ticket yet, tell the student their place in the queue when it has changed."""
        pattern = self.core.profile.student_number_pattern
        masked = self.said_as_stored(message)
        key = f"{message.conversation_id}:{message.event_id or uuid.uuid4().hex}"
        with self.core.transaction() as session:
            ticket = session.get_one(HandoffTicket, ticket_id)
            relay_from_student(session, ticket, masked, key, now, student_number_pattern=pattern)
            record(session, message.conversation_id, "in", masked, now, student_number_pattern=pattern,
                   message_ref=message.message_ref)
            lang = Language(ticket.lang)
            queue = queue_line(session, ticket, lang, now, self.core.calendar)
            told = bool(queue) and queue in (last_said(session, message.conversation_id) or "")
            if queue and not told:
                record(session, message.conversation_id, "out", queue, now)
            save_state(session, state, now)  # the conversation stays alive while the person answers
        if not queue or told:
            return []
        return [Text(queue, (QuickReply(say("handoff.cancel_button", lang), CANCEL_WAIT),))]

    def _answer(self, ctx: TurnContext) -> tuple[list[Reply], tuple[Intent, ...]]:
        """The replies to a turn and the intents they answered: a form step, the answer to the bot's own
        question, or each question the message asks."""
        answered: list[Intent] = []

        def detour(inner: TurnContext) -> list[Reply]:
            return self._answer_topics(inner, answered)

        try:
            if not (ctx.message.text or "").strip() and not ctx.message.payload:
                return [Text(say("basic.empty", ctx.lang), basic.main_menu(ctx.lang))], ()
            if ctx.message.payload == SIGNED_IN_PAYLOAD:  # the browser came back from the mailed sign-in link
                topic = self.forms.topic(ctx)  # a form going on answers its own topic, as any step of it does
                replies = self._signed_in(ctx, detour)
                return replies, ((self.forms.topic(ctx) or topic),) if topic else ()
            switched = answer_switch(ctx)  # 「通知停止」 / "stop reminders", even in the middle of a form
            if switched is not None:
                return switched, ()
            form_topic = self.forms.topic(ctx)
            misses = ctx.state.misses
            in_form = self.forms.handle(ctx, detour)
            if in_form is not None:
                if not answered and ctx.state.misses == misses:
                    ctx.state.misses = 0  # an answer the form took, or a step steered
                if not answered and ctx.state.expect == RESUME_QUESTION:
                    answered.append(ctx.understanding.intent)  # a question the form answered itself
                topic = self.forms.topic(ctx) or form_topic  # the form's topic now (the item may have changed)
                return in_form, tuple(answered) or ((topic,) if topic else ())
            expected = self._expected(ctx)
            if expected is not None:
                return expected
            return self._answer_topics(ctx, answered), tuple(answered)
        except Exception:
            log.exception("conversation %s: answering %s failed", ctx.message.conversation_id,
                          ctx.understanding.intent)
            return [Text(say("basic.error", ctx.lang) + "\n\n" + basic.contact_lines(ctx))], tuple(answered)

    def _signed_in(self, ctx: TurnContext, detour: Callable[[TurnContext], list[Reply]]) -> list[Reply]:
        """Say who the browser is signed in as and go on with the form in progress (or offer the menu)."""
        student = current_student(ctx)
        if student is None:
            return [Text(say("signin.not_signed_in", ctx.lang), basic.main_menu(ctx.lang))]
        said = say("signin.signed_in", ctx.lang, number=mask_student_number(student.student_number))
        if ctx.state.form is None:
            return [Text(said, basic.main_menu(ctx.lang))]
        resumed = self.forms.handle(replace(ctx, message=replace(ctx.message, payload=RESUME)), detour) or []
        return [Text(said), *resumed]

    def _expected(self, ctx: TurnContext) -> tuple[list[Reply], tuple[Intent, ...]] | None:
        """The answer when the message answers the question the bot asked last (a department after the login
        menu, a date after "when did you apply?", yes to "shall I send the link?"), else None."""
        if ctx.message.payload or not ctx.expecting:
            return None
        found = self.registry.expectation(ctx.expecting)
        if found is None:
            return None
        intent, read = found
        ctx.state.misses = 0
        replies = read(ctx)
        return (replies, (intent,)) if replies is not None else None

    def _answer_topics(self, ctx: TurnContext, answered: list[Intent]) -> list[Reply]:
        """Answer each question of the message in the order asked, within one turn's limits."""
        understanding = ctx.understanding
        steered = self._steering(ctx)
        if steered is not None:
            answered.append(understanding.intent)
            return steered
        topics = understanding.topics
        if len(topics) > 1 and any(topic.intent is Intent.LANGUAGE for topic in topics):
            ctx, topics = _in_the_language_asked(ctx, topics)
            if len(topics) == 1:
                ctx = _one_question(ctx, topics[0])
        asides = tuple(_ask_button(intent, ctx.lang) for intent in understanding.asides)
        if len(topics) < 2:
            answered.append(ctx.understanding.intent)
            replies = self._answer_intent(ctx)
            return compose([replies], asides) if asides and replies else replies
        return self._answer_each(ctx, topics, answered, asides)

    def _answer_each(self, ctx: TurnContext, topics: tuple[Topic, ...], answered: list[Intent],
                     asides: tuple[QuickReply, ...]) -> list[Reply]:
        """Answer several questions in one turn, in the order asked; only the first that may start a guided
        step is answered (last, since the next message answers it), the others are offered as buttons."""
        steps = [topic for topic in topics if topic.intent in STEP_INTENTS]
        parts: list[tuple[Topic, list[Reply]]] = []
        last: tuple[Topic, list[Reply]] | None = None
        for topic in topics:
            if topic in steps[1:]:
                continue  # one guided step a turn: the others are offered as buttons
            form_before = ctx.state.form
            replies = self._answer_intent(_one_question(ctx, topic))
            started = ctx.state.form is not None and ctx.state.form != form_before
            if started or topic.intent is Intent.HUMAN_AGENT:
                last = (topic, replies)  # its question must be the turn's last: the next message answers it
            else:
                parts.append((topic, replies))
        parts += [last] if last else []
        answered.extend(topic.intent for topic, _ in parts)
        extra = tuple(_ask_button(topic.intent, ctx.lang) for topic in steps[1:])
        return compose([replies for _, replies in parts], extra + asides)

    def _steering(self, ctx: TurnContext) -> list[Reply] | None:
        """A typed steering word with no form in progress and no question open: a cancel offers to cancel an
        unpaid order (or says nothing is in progress), a yes or no is noted, continue and back show the menu.
        "Change" is left to the classifier (change what: the email, the second password?)."""
        control = ctx.understanding.control
        if control is None or control is Control.CHANGE or ctx.message.payload:
            return None
        menu = basic.main_menu(ctx.lang)
        if control is Control.CANCEL:
            # Never the refund rules for a bare cancel: an unpaid order can be cancelled, and with nothing
            # in progress the refund topic is one button away for a student who meant a paid order.
            refunds = basic.topic_button(Intent.REFUND, ctx.lang)
            return money.cancel_unpaid(ctx) or [Text(say("steering.nothing_to_cancel", ctx.lang),
                                                     (refunds, *menu[:12]))]
        understanding = ctx.understanding
        if understanding.intent in (Intent.GOODBYE, Intent.THANKS) and understanding.confidence >= SIGN_OFF_OVER:
            return None  # 「了解、じゃあね」: a goodbye, answered as one
        key = "steering.noted" if control in (Control.YES, Control.NO) else "steering.nothing_in_progress"
        return [Text(say(key, ctx.lang), menu)]

    def _answer_intent(self, ctx: TurnContext) -> list[Reply]:
        understanding = ctx.understanding
        if understanding.intent is Intent.OUT_OF_SCOPE:
            kind = understanding.out_of_scope_kind
            if kind is OutOfScopeKind.CAMPUS:
                return scope.campus(ctx)
            if kind is OutOfScopeKind.ABUSE:
                return scope.abuse(ctx)
            if kind is OutOfScopeKind.OTHER:
                return scope.unrelated(ctx)
            return self._fallback(ctx)
        ctx.state.misses = 0
        handler = self.registry.get(understanding.intent)
        return handler(ctx) if handler else basic.fallback(ctx)

    def _fallback(self, ctx: TurnContext) -> list[Reply]:
        """Did-you-mean buttons for a near miss; after two misses in a row, offer a person."""
        ctx.state.misses += 1
        if ctx.state.misses >= MISSES_BEFORE_PERSON:
            buttons = (QuickReply(say("intents.human_agent", ctx.lang), encode(AskPerson(Reason.MISSES))),
                       *basic.main_menu(ctx.lang)[:5])
            return [Text(say("fallback.offer_person", ctx.lang) + "\n\n" + basic.contact_lines(ctx), buttons)]
        candidates = [intent for intent, probability in ctx.understanding.candidates
                      if intent is not Intent.OUT_OF_SCOPE and probability >= CANDIDATE_MIN]
        if candidates and ctx.understanding.candidates[0][1] >= DID_YOU_MEAN_MIN:
            buttons = tuple(_ask_button(intent, ctx.lang) for intent in candidates[:3])
            menu = QuickReply(say("fallback.menu", ctx.lang), intent_payload(Intent.GREET))
            return [Text(say("fallback.did_you_mean", ctx.lang), (*buttons, menu))]
        return basic.fallback(ctx)

    def _understand(self, message: IncomingMessage, now: datetime, state: ConversationState) -> Understanding:
        """What the message means: a tapped button's topic, or the typed text read in the light of the
        conversation so far (a follow-up, a carried-over topic) and in the language it is written in."""
        if message.payload:
            return _tapped_meaning(message.payload, message.lang_hint or state.lang or state.last_lang)
        text = (message.text or "")[:MAX_TEXT_CHARS]
        understanding = self.understander.understand(text, now=now)
        if understanding.intent is Intent.OUT_OF_SCOPE and order_number_in(text):
            # A bare order number is a status question; the classifier has no words to go on.
            understanding = replace(understanding, intent=Intent.ORDER_STATUS, confidence=1.0)
        understanding = _followed_up(_carried_over(understanding, state, text), state, text)
        return _in_its_language(understanding, state, text)

    def _said(self, message: IncomingMessage) -> tuple[str, tuple[str, ...]]:
        """What the student sent, as transcript text (a tap as `[payload]`), and its password-like parts."""
        said = message.text if message.text is not None else f"[{message.payload}]"
        return said, tuple(find_password_candidates(said, self.core.profile.student_number_pattern))

    def said_as_stored(self, message: IncomingMessage) -> str:
        """What the transcript keeps of the student's message: the words with any password (and card number
        or token) masked, as `record` stores them."""
        said, secrets = self._said(message)
        return mask_secrets(said, secrets, self.core.profile.student_number_pattern)

    def _save(self, ctx: TurnContext, replies: list[Reply], label: str, held: LockedTurn | None) -> None:
        """Persist the state and the transcript; the student's own words with any password masked.

        Args:
            ctx: The turn.
            replies: What the bot answered.
            label: What the student's line is kept as (see `turn_label`).
            held: The turn's connection holding the conversation's lock (PostgreSQL), which it writes in, or None.
        """
        state, message, now = ctx.state, ctx.message, ctx.now
        if label != metrics.OTHER:
            state.last_intent = label.partition("/")[0]
        state.offered = {button.label: button.payload for reply in replies
                         for button in getattr(reply, "quick_replies", ())}
        if message.payload is None:  # what a follow-up ("and for the transcript?") builds on
            state.context = [[entity.type.value, entity.value] for entity in ctx.understanding.entities
                             if entity.type in CONTEXT_TYPES]
        pattern = self.core.profile.student_number_pattern
        said, secrets = self._said(message)
        # A mailing address is personal data: what was typed at its questions and the parts the summary repeats.
        personal = (*ctx.personal, *mailing.personal_parts(state.slots))
        understood = ctx.understanding
        # Not understood: the best candidate is kept for the dashboard, which lists these lines for staff.
        guess = understood.candidates[0][0].value if label == Intent.OUT_OF_SCOPE.value and understood.candidates \
            else None
        lines = [transcript_row(message.conversation_id, "in", mask_personal(said, personal), now, intent=label,
                                confidence=understood.confidence if message.text is not None else None,
                                extra_secrets=secrets, student_number_pattern=pattern,
                                message_ref=message.message_ref, guess=guess)]
        lines += [transcript_row(message.conversation_id, "out", mask_personal(reply_text(reply), personal), now,
                                 extra_secrets=secrets, student_number_pattern=pattern, bots_own=True)
                  for reply in replies]
        try:
            self.turns.save(held, state, lines, now)
        except Exception:
            # The student still gets the answer; what could not be stored is logged, not lost silently.
            log.exception("conversation %s: saving the turn failed", message.conversation_id)


# "How do I change it after I log in?" right after the second password's rules or reset: "it" is the second
# password, not the login or the email.
_CHANGE_IT = re.compile(r"変え|変更|かえ|change|update")
_OTHER_THING = re.compile(r"メール|アドレス|メアド|mail|address|住所|名前|name")
_SECOND_PASSWORD_TOPICS = (Intent.SECOND_PASSWORD_RULES.value, Intent.SECOND_PASSWORD_RESET.value)
_NOT_THE_SECOND_PASSWORD = (Intent.LOGIN_HELP, Intent.EMAIL_CHANGE, Intent.OUT_OF_SCOPE)
_NO_MAIL = re.compile(r"(?:メール|mail).{0,12}(?:来ない|こない|届かない|届いてない|来てない|来ません|届きません)|"
                      r"(?:no|not|n't).{0,20}(?:mail|email)|(?:mail|email).{0,20}(?:not|n't|never)")
_SWITCH = re.compile(r"切り替|切替|変え|変更|switch|change")
# "But it hasn't been issued yet" after "no refunds": still the refund (not a status question).
_NOT_YET = re.compile(r"(?:まだ|未).{0,10}(?:発行|印刷|届|受け?取|郵送|送)|"
                      r"(?:発行|印刷|届|受け?取)(?:され)?て(?:い)?ない|"
                      r"(?:hasn'?t|haven'?t|has not|have not|not yet|wasn'?t|isn'?t).{0,25}"
                      r"(?:printed|issued|sent|mailed|arrived|received|collected|picked)")
# The link just mailed ("how long is the link valid?", 「そのリンクって何分有効？」).
_THE_LINK = re.compile(r"リンク|url|link|有効|期限|valid|expire")


def _carried_over(understanding: Understanding, state: ConversationState, text: str) -> Understanding:
    """The understanding, with what the message means right after the previous topic: a change asked about
    after the second password's topics is changing the second password (the classifier reads 「ログイン中に
    変えるには？」 alone as a login question), a mail that does not come (or the link) after the reset is the
    reset's, "but it hasn't been issued yet" after the refund answer is the refund's, a switch asked about
    after the language answer is the language's."""
    if understanding.topics:
        return understanding
    folded = normalize(text)
    carried = None
    if state.last_intent in _SECOND_PASSWORD_TOPICS and understanding.intent in _NOT_THE_SECOND_PASSWORD \
            and _CHANGE_IT.search(folded) and not _OTHER_THING.search(folded):
        carried = Intent.SECOND_PASSWORD_RULES
    elif state.last_intent == Intent.SECOND_PASSWORD_RESET.value \
            and (_NO_MAIL.search(folded) or _THE_LINK.search(folded)) \
            and (understanding.intent in (Intent.EMAIL_REGISTRATION, Intent.OUT_OF_SCOPE)
                 or understanding.confidence < FOLLOW_UP_OVER):
        carried = Intent.SECOND_PASSWORD_RESET
    elif state.last_intent == Intent.REFUND.value and _NOT_YET.search(folded) and not order_number_in(text) \
            and understanding.intent in (Intent.ORDER_STATUS, Intent.OUT_OF_SCOPE, Intent.DELIVERY_OPTIONS):
        carried = Intent.REFUND
    elif state.last_intent == Intent.LANGUAGE.value and _SWITCH.search(folded) \
            and understanding.confidence < FOLLOW_UP_OVER:
        carried = Intent.LANGUAGE
    return replace(understanding, intent=carried, out_of_scope_kind=None) if carried else understanding


def _tapped_meaning(payload: str, lang: Language | None) -> Understanding:
    """A tapped button's meaning: the intent its payload names (out of scope for one the bot cannot place), in
    the conversation's language."""
    return Understanding(text="", intent=topic_of(payload) or Intent.OUT_OF_SCOPE, confidence=1.0, candidates=(),
                         entities=(), lang=lang or Language.JA)


def _in_its_language(understanding: Understanding, state: ConversationState, text: str) -> Understanding:
    """The understanding in the language the message is written in (which the conversation then keeps), or in
    the conversation's language for a message that shows none."""
    signal = has_language_signal(text, understanding)
    written = written_language(text)
    # Out of a form a short message with words ("thank you!") is in its own language too.
    if written is not None or (signal and (state.last_lang is None or state.form is None)):
        state.last_lang = written or understanding.lang
        understanding = replace(understanding, lang=state.last_lang)
    else:
        # A short answer inside a form (「郵送で」 in an English conversation), or one with no words at all
        # ("24M1001", "2"), keeps the conversation's language; one with no words is not outside the desk's
        # topics either: out of a form it is a message the bot cannot place.
        understanding = replace(understanding, lang=state.lang or state.last_lang or understanding.lang,
                                out_of_scope_kind=understanding.out_of_scope_kind if signal else None)
    return understanding


def _tapped_by_label(message: IncomingMessage, state: ConversationState) -> IncomingMessage:
    """A message that is exactly the label of a button the bot just offered (「再設定メールを送る」 typed
    instead of tapped) is that button's tap; the typed words stay the message's text."""
    if message.payload or not message.text or not state.offered:
        return message
    typed = _label_key(message.text)
    payload = next((payload for label, payload in state.offered.items() if _label_key(label) == typed), None)
    return replace(message, payload=payload) if payload else message


def _label_key(text: str) -> str:
    return re.sub(r"[\s。、.,!！?？「」\"']", "", normalize(text))


# A follow-up that names only what changes ("and for the transcript?", 「成績証明書も？」, 「それって土曜も？」;
# not 「…かも」 "maybe", 「…ても」 "even if").
# A short price question builds on what was just named (「いくらですか」 after the insurance renewal).
_FOLLOW_UP = re.compile(r"^(?:and|also|what about|how about|and what about|same for|and for)\b|"
                        r"(?:(?<![かでて])も|って|は)[?？]*$|"
                        r"^(?:で、?|それって?|それは)?(?:いくら|おいくら)|^(?:so )?how much\b")
FOLLOW_UP_CHARS = 30
# A follow-up is the previous question again unless the classifier is this sure of another (or of a step).
FOLLOW_UP_OVER = 0.85
# The entities a follow-up may build on (never a student number or an email).
CONTEXT_TYPES = frozenset({EntityType.ITEM, EntityType.PAYMENT_METHOD, EntityType.DELIVERY_METHOD,
                           EntityType.COPIES, EntityType.DATETIME})


def _followed_up(understanding: Understanding, state: ConversationState, text: str) -> Understanding:
    """A short follow-up asks the previous question again about what it names, with what the previous
    message named ("and PayPay?" after a question about paying at a store: still at the store); so does a
    short question the classifier cannot place that may be about the previous topic."""
    folded = normalize(text)
    previous = _built_on(state)
    if previous is None or understanding.topics or len(folded) > FOLLOW_UP_CHARS \
            or not _reads_as_follow_up(understanding, previous, folded):
        return understanding
    return replace(understanding, intent=previous, out_of_scope_kind=None,
                   entities=understanding.entities + _carried_context(understanding, state))


def _built_on(state: ConversationState) -> Intent | None:
    """The previous question, which a follow-up asks again; None after small talk, a miss or a person."""
    previous = Intent(state.last_intent) if state.last_intent in {intent.value for intent in Intent} else None
    return None if previous in (*SIGN_OFFS, Intent.GREET, Intent.OUT_OF_SCOPE, Intent.HUMAN_AGENT) else previous


def _reads_as_follow_up(understanding: Understanding, previous: Intent, folded: str) -> bool:
    """True when a short message is a follow-up to `previous`: it reads as one, or it is a question the
    classifier cannot place that may be about it; never when the classifier is sure of another question."""
    # A short question the classifier cannot place, which may be about the previous topic (among its
    # candidates): 「コンビニ選んだらだめなの？」 right after the window pickup's answer.
    unsure = understanding.intent is Intent.OUT_OF_SCOPE and understanding.out_of_scope_kind is None \
        and is_question(folded) and previous in [intent for intent, _ in understanding.candidates]
    if not (unsure or _FOLLOW_UP.search(folded)):
        return False
    clearly_another = understanding.intent is not previous and understanding.confidence >= FOLLOW_UP_OVER \
        and understanding.intent not in (*STEP_INTENTS, *SIGN_OFFS)
    return not clearly_another


def _carried_context(understanding: Understanding, state: ConversationState) -> tuple[Entity, ...]:
    """The previous message's entities a follow-up keeps: those of a kind it does not name itself (a payment
    method named again replaces the previous one, except beside the convenience store, which stays)."""
    named = {(entity.type, entity.value) for entity in understanding.entities}
    kinds = {entity.type for entity in understanding.entities}
    return tuple(Entity(EntityType(kind), value, 0, 0, "") for kind, value in state.context
                 if kind in {member.value for member in CONTEXT_TYPES} and (EntityType(kind), value) not in named
                 and (EntityType(kind) not in kinds or value == PaymentMethod.CONVENIENCE_STORE.value))


def _one_question(ctx: TurnContext, topic: Topic) -> TurnContext:
    """The turn as if the student had asked only `topic`: its part of the message and the entities in it."""
    text = (ctx.message.text or "")[topic.start:topic.end]
    entities = tuple(replace(entity, start=entity.start - topic.start, end=entity.end - topic.start)
                     for entity in ctx.understanding.entities
                     if topic.start <= entity.start and entity.end <= topic.end)
    understanding = replace(ctx.understanding, text=text, intent=topic.intent, confidence=topic.confidence,
                            topics=(), entities=entities, out_of_scope_kind=topic.out_of_scope_kind)
    return replace(ctx, message=replace(ctx.message, text=text), understanding=understanding)


def _in_the_language_asked(ctx: TurnContext, topics: tuple[Topic, ...]) -> tuple[TurnContext, tuple[Topic, ...]]:
    """A remark about language beside a question ("Sorry, my Japanese is not good. I forgot my password"):
    switch to the language it asks for and answer the other questions in it, without a reply of its own. An
    explicit request (「日本語で大丈夫です」) stays a question of its own, answered first, in that language."""
    remark = next(topic for topic in topics if topic.intent is Intent.LANGUAGE)
    one = _one_question(ctx, remark)
    target = info.requested_language(one)
    if target is None:
        return ctx, tuple(topic for topic in topics if topic is not remark)
    ctx.state.lang = target
    rest = topics if info.asks_for_language(one) else tuple(topic for topic in topics if topic is not remark)
    return replace(ctx, lang=target), rest


def turn_label(intents: tuple[Intent, ...], understanding: Understanding, missed: bool) -> str:
    """What a student's message is kept as in the transcript and counted as in the metrics.

    `out_of_scope` alone only for free text the bot could not place (the dashboard's "not understood" list);
    a message it placed outside its scope is `out_of_scope/<kind>` (campus, abuse, other); a message that
    answered no question (an empty one, a stale button, 「通知停止」) is `other`.
    """
    if missed:
        return Intent.OUT_OF_SCOPE.value
    if not intents:
        return metrics.OTHER
    if intents[0] is Intent.OUT_OF_SCOPE:
        return f"{Intent.OUT_OF_SCOPE.value}/{(understanding.out_of_scope_kind or OutOfScopeKind.OTHER).value}"
    return intents[0].value


def compose(parts: list[list[Reply]], extra: tuple[QuickReply, ...] = ()) -> list[Reply]:
    """The answers to several questions as one turn: at most MAX_TURN_MESSAGES messages and one card (later
    cards become text), and one set of buttons on the last message (see `_turn_buttons`).

    Args:
        parts: Each question's replies, in the order they are to be shown.
        extra: Buttons to add at the end (questions not answered in this turn).

    Returns:
        The replies of the turn.
    """
    buttons = _turn_buttons(parts, extra)
    shown: list[list[Reply]] = []
    has_card = False
    for part in parts:
        plain: list[Reply] = []
        for reply in part:
            if isinstance(reply, Card) and has_card:
                reply = Text(reply_text(reply).replace(" / ", "\n"))
            has_card = has_card or isinstance(reply, Card)
            plain.append(reply if isinstance(reply, Link) else replace(reply, quick_replies=()))
        shown.append(plain)
    for squeeze in (_joined_runs, _joined_texts):
        if sum(len(part) for part in shown) > MAX_TURN_MESSAGES:
            shown = [squeeze(part) for part in shown]
    replies = [reply for part in shown for reply in part][:MAX_TURN_MESSAGES]
    last = max((index for index, reply in enumerate(replies) if not isinstance(reply, Link)), default=None)
    if last is not None and isinstance(closing := replies[last], Text | Card):
        replies[last] = replace(closing, quick_replies=buttons)
    return replies


def _ask_button(intent: Intent, lang: Language) -> QuickReply:
    """A button that asks about `intent`, labelled with the intent's name (a question the turn did not answer,
    a "did you mean")."""
    return QuickReply(say(f"intents.{intent.value}", lang), intent_payload(intent))


def _turn_buttons(parts: list[list[Reply]], extra: tuple[QuickReply, ...]) -> tuple[QuickReply, ...]:
    """Each answer's buttons, the last answer's first, once each, then `extra`, the menu button last."""
    offered = [next((reply.quick_replies for reply in reversed(part)
                     if not isinstance(reply, Link) and reply.quick_replies), ()) for part in parts]
    buttons: dict[str, QuickReply] = {}
    for button in (*offered[-1], *(button for earlier in offered[:-1] for button in earlier), *extra):
        buttons.setdefault(button.payload, button)
    menu = buttons.pop(intent_payload(Intent.GREET), None)
    return (*list(buttons.values())[:MAX_BUTTONS - (menu is not None)], *((menu,) if menu else ()))


def _joined_runs(part: list[Reply]) -> list[Reply]:
    """A question's replies with each run of text messages joined into one."""
    joined: list[Reply] = []
    for reply in part:
        previous = joined[-1] if joined else None
        if isinstance(reply, Text) and isinstance(previous, Text):
            joined[-1] = Text(previous.text + "\n\n" + reply.text)
        else:
            joined.append(reply)
    return joined


def _joined_texts(part: list[Reply]) -> list[Reply]:
    """A question's replies with all its text in one message, first, then its card and links."""
    texts = [reply.text for reply in part if isinstance(reply, Text)]
    return [*([Text("\n\n".join(texts))] if texts else []), *(reply for reply in part if not isinstance(reply, Text))]


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
