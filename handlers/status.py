"""Order status: by the order number in the message, the identified student's recent orders, or a small form.

An order number is the key to its order (it is random and told only to whoever placed it). A student number
is not: the recent orders of a student number are shown only to the conversation that student is identified
in, and any other student number gets the same request for an order number, revealing nothing.
"""

import re
import unicodedata

from core.enums import PRINT_DELIVERIES, DeliveryMethod, OrderStatus, PaymentStatus, Service
from core.errors import OrderNotFound
from core.formatting import format_short, join_list
from core.i18n import t
from core.models import Order, Student
from core.order_texts import delivery_label, describe, explain, item_name, status_label, summarize
from core.orders import find_order, normalize_order_number, payment_state, recent_orders
from handlers import basic
from handlers.forms import Form, FormEngine, Slot, SlotRejected, cancel_button, set_payload, start_payload, tapped
from handlers.identity import (
    ask_for_sign_in_link,
    current_student,
    identified_by_account_only,
    mentions_password,
    sign_in_link_sent,
    typed_student_number,
)
from handlers.mailing import address_parts
from handlers.messages import say
from handlers.ordering import ORDER
from handlers.registry import HandlerRegistry
from handlers.replies import Link, QuickReply, Reply, Text
from handlers.turn import TurnContext
from intents.types import EntityType, Intent

LOOKUP = "order_lookup"
LOOKUP_SLOT = "lookup"
MINE = "mine"  # the slot's value when the identified student gave their own student number
PENDING_NUMBER = "pending_number"  # an order number given before the sign-in
RECENT_LIMIT = 5

# Four and four letters or digits, as order numbers are shown (K7PM-3QXA) or typed (k7pm 3qxa, K7PM3QXA).
_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])([0-9A-Za-z]{4})([\s\-‐‑‒–—―−ー_.]?)([0-9A-Za-z]{4})(?![0-9A-Za-z])")
# The service's fixed-wording mail that means "ready to collect" (the guide: read it as 「受取り可能」).
_DONE_MAIL = re.compile(r"郵送対応完了|郵送対応|mailing\s+complete|mail(?:ed)?\s+complete|shipping\s+complete",
                        re.IGNORECASE)


def order_number_in(text: str) -> str | None:
    """The first order number in a message, normalized (`K7PM-3QXA`), or None.

    A run of eight letters without a digit or a hyphen counts only as the whole message, so that words such as
    "payments" or "have them" are not read as order numbers; a run of mixed upper and lower case is more
    likely a password than an order number, and is skipped.
    """
    plain = unicodedata.normalize("NFKC", text)
    whole = plain.strip()
    for match in _CANDIDATE.finditer(plain):
        token, separator = match.group(0), match.group(2)
        letters = [ch for ch in token if ch.isalpha()]
        if any(ch.islower() for ch in letters) and any(ch.isupper() for ch in letters):
            continue
        number = normalize_order_number(token)
        if number is None:
            continue
        if (separator and not separator.isspace()) or any(ch.isdigit() for ch in token) or token == whole:
            return number
    return None


# A mailed certificate that has not come: a question about the order, whatever mail came before.
_NOT_ARRIVED = re.compile(r"届(?:か|いて|きません|いていない)|来(?:ない|ません|てない)|こない|arriv|never came|"
                          r"hasn'?t come|not received|haven'?t received|still nothing", re.IGNORECASE)


def asks_about_done_mail(text: str) -> bool:
    """True if the message is about the 「郵送対応完了」 mail."""
    return bool(_DONE_MAIL.search(unicodedata.normalize("NFKC", text)))


def _window_hours(ctx: TurnContext) -> str:
    return say("status.window_hours", ctx.lang, hours=basic.office_hours(ctx, Service.STUDENT_SUPPORT))


def _meaning(ctx: TurnContext, order: Order) -> str:
    """What the order's status means for the student, in the guide's words where it has them."""
    lang, profile = ctx.lang, ctx.core.profile
    payment = order.payments[-1] if order.payments else None
    if order.status is OrderStatus.AWAITING_PAYMENT:
        if payment is not None and payment_state(payment, ctx.now) is PaymentStatus.EXPIRED:
            return say("status.meaning.expired", lang)
        option = profile.payment_option(order.payment_method)
        if payment is not None and payment.konbini_number:
            brands = option.brands(lang) if option is not None and option.brands is not None else ""
            return say("status.meaning.awaiting_payment_konbini", lang, brands=brands)
        return say("status.meaning.awaiting_payment", lang)
    if order.status is OrderStatus.READY:
        return "\n".join([say("status.meaning.ready", lang), t("orders.window_pickup.done_mail", lang),
                          t("orders.window_pickup.bring_id", lang), _window_hours(ctx)])
    if order.status is OrderStatus.PRINTED:
        return say("status.meaning.printed", lang, delivery=delivery_label(order.delivery_method, lang))
    if order.status is OrderStatus.PAID and order.delivery_method in PRINT_DELIVERIES:
        return say("status.meaning.paid_print", lang)
    meaning = say(f"status.meaning.{order.status.value}", lang)
    if order.status in (OrderStatus.PAID, OrderStatus.PROCESSING) \
            and order.delivery_method is DeliveryMethod.WINDOW_PICKUP:
        meaning += "\n" + t("orders.window_pickup.done_mail", lang)
    return meaning


def _order_replies(ctx: TurnContext, order: Order, buttons: tuple[QuickReply, ...], more: str = "") -> list[Reply]:
    """The order's summary and what its status means, with the payment link while it can still be paid;
    `more` (the student's other orders) ends the summary's text."""
    profile, lang = ctx.core.profile, ctx.lang
    owner = ctx.state.student_id is not None and order.student_id == ctx.state.student_id
    summarized = summarize(order, profile, ctx.core.calendar)
    summary = describe(summarized, lang, profile, owner=owner)
    if owner:  # shown to the student, never kept in the transcript: the address and what prints the certificate
        ctx.personal.extend(address_parts(summarized.mailing_address) if summarized.mailing_address else ())
        ctx.personal.extend([summarized.print_number] if summarized.print_number else [])
    text = "\n\n".join([say("status.heading", lang), summary, _meaning(ctx, order), *([more] if more else [])])
    replies: list[Reply] = [Text(text, buttons)]
    payment = order.payments[-1] if order.payments else None
    if order.status is OrderStatus.AWAITING_PAYMENT and payment is not None \
            and payment_state(payment, ctx.now) is PaymentStatus.PENDING:
        url = ctx.core.payments.payment_url(payment)
        if url:
            key = "order.konbini_link" if payment.konbini_number else "status.pay_link"
            replies.append(Link(say(key, lang), url))
    return replies


def _follow_ups(ctx: TurnContext) -> tuple[QuickReply, ...]:
    return basic.follow_ups(ctx.lang, Intent.CONTACT)


def show_order(ctx: TurnContext, number: str) -> list[Reply]:
    """The status of the identified student's order with this number.

    Raises:
        OrderNotFound: if the student has no such order: another's order is no order at all, and so is any
            order while no student is identified (the same answer whether it exists or not).
    """
    student = current_student(ctx)
    with ctx.core.transaction() as session:
        if student is None:
            raise OrderNotFound(number.strip())
        order = find_order(session, number, student=student)
        return _order_replies(ctx, order, _follow_ups(ctx))


def _recent_line(ctx: TurnContext, order: Order) -> str:
    lang = ctx.lang
    items = join_list([say("status.item_copies", lang, item=item_name(item.item_code, ctx.core.profile)(lang),
                           copies=item.copies) for item in order.items], lang)
    return say("status.recent_line", lang, number=order.number, date=format_short(order.created_at, lang),
               items=items, status=status_label(order.status, lang))


def recent(ctx: TurnContext, student: Student) -> list[Reply]:
    """The student's newest order in full, and their other recent orders in one line each."""
    with ctx.core.transaction() as session:
        orders = recent_orders(session, student, limit=RECENT_LIMIT)
        if not orders:
            start = QuickReply(say("status.order_button", ctx.lang), start_payload(ORDER))
            return [Text(say("status.recent_none", ctx.lang), (start, basic.menu_button(ctx.lang)))]
        buttons = _follow_ups(ctx)
        if len(orders) > 1:
            buttons = (QuickReply(say("status.details_button", ctx.lang), start_payload(LOOKUP)), *buttons)
        others = "\n".join([say("status.recent_more", ctx.lang), *(_recent_line(ctx, order) for order in orders[1:])])
        return _order_replies(ctx, orders[0], buttons, others if len(orders) > 1 else "")


def _done_mail(ctx: TurnContext) -> str:
    """What the 「郵送対応完了」 mail means: ready to collect at the 学生支援課 window, with the student ID."""
    lang, profile = ctx.lang, ctx.core.profile
    ready = t("orders.window_pickup.ready", lang, ready_at=f"{profile.pickup.ready_at:%H:%M}",
              cutoff=f"{profile.pickup.cutoff:%H:%M}")
    return "\n".join([say("status.done_mail_heading", lang), t("orders.window_pickup.done_mail", lang),
                      t("orders.window_pickup.bring_id", lang), _window_hours(ctx), ready])


def _misspelt_order_number(ctx: TurnContext) -> str | None:
    """A word shaped like an order number but with a letter no order number has (0, O, 1, I, L), upper-cased:
    it is no order, and the student is told so rather than asked for a number again. Never a password."""
    if ctx.entity(EntityType.STUDENT_NUMBER) is not None or mentions_password(ctx):
        return None
    for match in _CANDIDATE.finditer(unicodedata.normalize("NFKC", ctx.message.text or "")):
        token, separator = match.group(0), match.group(2)
        # As in order_number_in: eight letters without a digit or a hyphen are a word ("payments").
        if (separator and not separator.isspace()) or any(char.isdigit() for char in token):
            return token.upper()
    return None


def order_status(forms: FormEngine, ctx: TurnContext) -> list[Reply]:
    """Answer a status question: by order number, the identified student's orders, or ask for the number."""
    text = ctx.message.text or ""
    number = order_number_in(text) or _misspelt_order_number(ctx)
    if number is not None and current_student(ctx) is None and not identified_by_account_only(ctx):
        # Nothing of an order is shown before the student is known, whether it exists or not: sign in first.
        if ctx.state.form is not None:
            return [Text(say("status.start_after", ctx.lang), (_check_button(ctx),))]
        asked = forms.start(LOOKUP, ctx)
        ctx.state.slots[PENDING_NUMBER] = number  # shown once the student has signed in, if it is theirs
        return asked
    if number is not None:
        try:
            return show_order(ctx, number)
        except OrderNotFound as missing:
            reply = Text(say("status.not_found", ctx.lang, reason=explain(missing, ctx.lang, ctx.core.profile)))
            return [reply, *forms.start(LOOKUP, ctx)] if ctx.state.form is None else [reply]
    if asks_about_done_mail(text) and not _NOT_ARRIVED.search(unicodedata.normalize("NFKC", text)):
        return done_mail_answer(ctx)
    student = current_student(ctx)
    if student is not None:
        return recent(ctx, student)
    if ctx.state.form is not None:  # a detour from another form: offer the lookup instead of taking over
        return [Text(say("status.start_after", ctx.lang), (_check_button(ctx),))]
    return forms.start(LOOKUP, ctx)


def done_mail_answer(ctx: TurnContext) -> list[Reply]:
    """What the 「郵送対応完了」 mail means, with the identified student's orders or a button to look one up."""
    done_mail = _done_mail(ctx)
    student = current_student(ctx)
    if student is not None:
        return [Text(done_mail), *recent(ctx, student)]
    return [Text(done_mail + "\n\n" + say("status.done_mail_check", ctx.lang), (_check_button(ctx), *_follow_ups(ctx)))]


def _check_button(ctx: TurnContext) -> QuickReply:
    return QuickReply(say("status.check_button", ctx.lang), start_payload(LOOKUP))


# --- the lookup form ------------------------------------------------------------------------------------------


def _ask_lookup(ctx: TurnContext) -> list[Reply]:
    buttons: list[QuickReply] = []
    student = current_student(ctx)
    if student is None and not identified_by_account_only(ctx):
        key = "status.sign_in_waiting" if sign_in_link_sent(ctx) else "status.ask_sign_in"
        return [Text(say(key, ctx.lang), (cancel_button(ctx),))]
    if student is not None:
        with ctx.core.transaction() as session:
            buttons = [QuickReply(order.number, set_payload(LOOKUP_SLOT, order.number))
                       for order in recent_orders(session, student, limit=RECENT_LIMIT)]
    return [Text(say("status.ask_number", ctx.lang), (*buttons, cancel_button(ctx)))]


def _parse_lookup(ctx: TurnContext) -> str | None:
    text = ctx.message.text or ""
    number = tapped(ctx, LOOKUP_SLOT) or order_number_in(text)
    if number is not None and current_student(ctx) is None:
        ctx.state.slots[PENDING_NUMBER] = number  # shown once the student has signed in, if it is theirs
        raise SlotRejected("status.sign_in_first")
    if number is not None:
        with ctx.core.transaction() as session:
            try:
                return find_order(session, number, student=current_student(ctx)).number
            except OrderNotFound as missing:
                raise SlotRejected("status.not_found",
                                   reason=explain(missing, ctx.lang, ctx.core.profile)) from None
    misspelt = _misspelt_order_number(ctx)
    if misspelt is not None:
        raise SlotRejected("status.not_found", reason=explain(OrderNotFound(misspelt), ctx.lang, ctx.core.profile))
    student_number = typed_student_number(ctx, "status")
    if student_number is None:
        return None
    student = current_student(ctx)
    if student is not None and student.student_number == student_number:
        return MINE
    if student is None and not identified_by_account_only(ctx):  # a sign-in link, for any number the same answer
        ask_for_sign_in_link(ctx, student_number, "status")
    raise SlotRejected("status.need_order_number")


def _finish_lookup(ctx: TurnContext) -> list[Reply]:
    value = ctx.state.slots.get(LOOKUP_SLOT)
    ctx.state.end_form()
    student = current_student(ctx)
    if value == MINE and student is not None:
        return recent(ctx, student)
    try:
        return show_order(ctx, str(value))
    except OrderNotFound as missing:
        return [Text(say("status.not_found", ctx.lang, reason=explain(missing, ctx.lang, ctx.core.profile)))]


def _after_sign_in(ctx: TurnContext) -> None:
    """Once the student is known, the lookup ends: the order number given before the sign-in, or their orders."""
    slots = ctx.state.slots
    if sign_in_link_sent(ctx) and LOOKUP_SLOT not in slots and current_student(ctx) is not None:
        slots[LOOKUP_SLOT] = slots.pop(PENDING_NUMBER, None) or MINE


def lookup_form() -> Form:
    """The `order_lookup` form: one question, an order number (or the identified student's own number); on the
    web, a student who is not signed in is asked for their student number, for a sign-in link, first."""
    return Form(name=LOOKUP, slots=(Slot(LOOKUP_SLOT, _ask_lookup, _parse_lookup),), finish=_finish_lookup,
                refresh=_after_sign_in, topic=lambda ctx: Intent.ORDER_STATUS)


def register(registry: HandlerRegistry, forms: FormEngine) -> None:
    """Wire the lookup form and the order_status intent."""
    forms.register(lookup_form())

    def order_status_handler(ctx: TurnContext) -> list[Reply]:
        """The status of an order (see `order_status`)."""
        return order_status(forms, ctx)

    registry.register(Intent.ORDER_STATUS, order_status_handler)
