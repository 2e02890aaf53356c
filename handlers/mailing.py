"""The order form's questions for a 郵送 order: the postal code (looked up offline, the student confirms the
prefecture, city and town), the rest of the address, the recipient and a phone number.

Answers are kept in the form's slots; a new postal code drops the street typed for the old one. A message that
is a question or names another of the order's answers is left to the order form (None), as for its other slots.
"""

import re
import unicodedata
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from core.addresses import AddressProblem, Locality, MailingAddress, look_up, phone, postal_code, recipient, street
from core.order_texts import address_lines
from handlers.forms import SlotRejected, change_payload, set_payload, tapped
from handlers.identity import current_student
from handlers.messages import say
from handlers.replies import QuickReply, Reply
from handlers.turn import TurnContext
from intents.normalize import normalize
from intents.speech_acts import is_question
from intents.types import EntityType

POSTAL, STREET, RECIPIENT, PHONE = "postal", "street", "recipient", "phone"
ADDRESS_SLOTS = (POSTAL, STREET, RECIPIENT, PHONE)
STREET_FOR = "street_for"  # the postal code the street was typed for
SELF = "self"  # the recipient button's value: the student's own name
# A postal code inside a longer message (「〒807-8555 福岡県…1-1」), half- or full-width after NFKC.
_POSTAL_IN_TEXT = re.compile(r"〒?\s*(\d{3})\s*[-‐‑‒–—―ー−]?\s*(\d{4})(?!\d)")
_QUESTION_MARK = re.compile(r"[?？]")
_ORDER_ENTITIES = frozenset({EntityType.ITEM, EntityType.DELIVERY_METHOD, EntityType.PAYMENT_METHOD})

Question = Callable[[TurnContext, str, tuple[QuickReply, ...]], list[Reply]]


def _plain(ctx: TurnContext) -> str:
    return unicodedata.normalize("NFKC", ctx.message.text or "").strip()


def _not_an_answer(ctx: TurnContext) -> bool:
    """A question, or a message naming another of the order's answers (「やっぱりコンビニで」): the order form's."""
    text = _plain(ctx)
    return bool(_QUESTION_MARK.search(text)) or is_question(normalize(text)) \
        or any(entity.type in _ORDER_ENTITIES for entity in ctx.entities)


def _rejected(problem: AddressProblem, ctx: TurnContext) -> SlotRejected:
    _personal(ctx)  # a wrong address is still someone's address
    return SlotRejected("order.address_problem", reason=problem.explain(ctx.lang))


def _personal(ctx: TurnContext) -> None:
    """The message is (part of) an address: masked wherever the transcript keeps it."""
    if ctx.message.text:
        ctx.personal.append(ctx.message.text)


def locality(ctx: TurnContext) -> Locality | None:
    """The locality of the postal code given, or None before it."""
    code = ctx.state.slots.get(POSTAL)
    if not code:
        return None
    try:
        return look_up(str(code))
    except AddressProblem:  # Japan Post's data changed since: asked again
        return None


def mailing_address(slots: dict[str, Any]) -> MailingAddress | None:
    """The address the slots hold, or None while a part is missing."""
    if not all(slots.get(name) for name in ADDRESS_SLOTS):
        return None
    try:
        place = look_up(str(slots[POSTAL]))
    except AddressProblem:
        return None
    return MailingAddress(place, str(slots[STREET]), str(slots[RECIPIENT]), str(slots[PHONE]))


def personal_parts(slots: dict[str, Any]) -> tuple[str, ...]:
    """The address parts the student typed, to be masked wherever a transcript repeats them."""
    return _parts(str(slots.get(POSTAL) or ""), *(str(slots.get(name) or "") for name in (STREET, RECIPIENT, PHONE)))


def address_parts(address: MailingAddress) -> tuple[str, ...]:
    """The parts of a stored address that a transcript must not keep (the locality alone is no one's)."""
    return _parts(address.locality.postal_code, address.street, address.recipient, address.phone)


def _parts(code: str, *typed: str) -> tuple[str, ...]:
    parts = [part for part in typed if part]
    if len(code) == 7:
        parts += [code, f"{code[:3]}-{code[3:]}"]
    return tuple(parts)


def refresh(ctx: TurnContext) -> None:
    """A street typed for another postal code is dropped: asked again for the new one."""
    slots = ctx.state.slots
    if STREET in slots and slots.get(STREET_FOR) != slots.get(POSTAL) and POSTAL in slots:
        slots.pop(STREET, None)


# --- the questions ------------------------------------------------------------------------------------------


def ask_postal(question: Question) -> Callable[[TurnContext], list[Reply]]:
    """The postal code question."""
    def ask(ctx: TurnContext) -> list[Reply]:
        return question(ctx, say("order.ask_postal", ctx.lang), ())
    return ask


def parse_postal(ctx: TurnContext) -> str | None:
    """Seven digits looked up in Japan Post's data; the rest of a whole address typed at once is the street."""
    text = _plain(ctx)
    found = _POSTAL_IN_TEXT.search(text)
    if found is None:
        if not text or _not_an_answer(ctx) or not re.search(r"\d|海外|abroad|overseas", text, re.IGNORECASE):
            return None
        try:
            postal_code(text)  # says why: abroad, or not a postal code
        except AddressProblem as problem:
            raise _rejected(problem, ctx) from None
        return None
    code = found.group(1) + found.group(2)
    try:
        place = look_up(code)
    except AddressProblem as problem:
        raise _rejected(problem, ctx) from None
    rest = text[found.end():].strip(" 、,")
    if rest:
        with suppress(AddressProblem):  # else only the postal code is taken; the street is asked
            ctx.state.slots[STREET], ctx.state.slots[STREET_FOR] = street(rest, place), code
    _personal(ctx)
    return code


def ask_street(question: Question) -> Callable[[TurnContext], list[Reply]]:
    """The rest of the address, after the locality the postal code gave."""
    def ask(ctx: TurnContext) -> list[Reply]:
        place = locality(ctx)
        text = say("order.ask_street", ctx.lang, locality=str(place) if place else "-")
        return question(ctx, text, (QuickReply(say("order.change_postal_button", ctx.lang), change_payload(POSTAL)),))
    return ask


def parse_street(ctx: TurnContext) -> str | None:
    """番地・建物名・部屋番号, checked."""
    place = locality(ctx)
    if place is None or not _plain(ctx) or _not_an_answer(ctx):
        return None
    try:
        value = street(_plain(ctx), place)
    except AddressProblem as problem:
        raise _rejected(problem, ctx) from None
    ctx.state.slots[STREET_FOR] = place.postal_code
    _personal(ctx)
    return value


def ask_recipient(question: Question) -> Callable[[TurnContext], list[Reply]]:
    """Who the envelope is addressed to; the student's own name as a button when the service knows it."""
    def ask(ctx: TurnContext) -> list[Reply]:
        student = current_student(ctx)
        buttons = (QuickReply(say("order.recipient_self_button", ctx.lang), set_payload(RECIPIENT, SELF)),) \
            if student is not None and student.name else ()
        return question(ctx, say("order.ask_recipient", ctx.lang), buttons)
    return ask


def parse_recipient(ctx: TurnContext) -> str | None:
    """The recipient's name, checked (the button: the student's own)."""
    if tapped(ctx, RECIPIENT) == SELF:
        student = current_student(ctx)
        return student.name if student is not None and student.name else None
    if not _plain(ctx) or _not_an_answer(ctx):
        return None
    try:
        name = recipient(_plain(ctx))
    except AddressProblem as problem:
        raise _rejected(problem, ctx) from None
    _personal(ctx)
    return name


def ask_phone(question: Question) -> Callable[[TurnContext], list[Reply]]:
    """A phone number for the delivery."""
    def ask(ctx: TurnContext) -> list[Reply]:
        return question(ctx, say("order.ask_phone", ctx.lang), ())
    return ask


def parse_phone(ctx: TurnContext) -> str | None:
    """A Japanese phone number; a message with few digits is not an attempt at one."""
    text = _plain(ctx)
    if len(re.findall(r"\d", text)) < 6 or _QUESTION_MARK.search(text):
        return None
    try:
        number = phone(text)
    except AddressProblem as problem:
        raise _rejected(problem, ctx) from None
    _personal(ctx)
    return number


def summary_fields(ctx: TurnContext) -> list[tuple[str, str]]:
    """The address as the summary card shows it: (label, value) pairs."""
    address = mailing_address(ctx.state.slots)
    if address is None:
        return []
    lines = address_lines(address, ctx.lang)
    return [(say("order.summary.mail_to", ctx.lang), "\n".join(lines))]

