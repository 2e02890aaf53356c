"""Money: the guide's payment methods with each item's price and the deadline, refunds (none, for any reason),
and cancelling an order that is not paid yet."""

import re
from dataclasses import dataclass
from datetime import datetime

from core.catalog import is_stated
from core.enums import Language, OrderStatus, PaymentMethod, PaymentStatus, Service
from core.errors import OrderNotFound, RefundNotPossible
from core.formatting import format_datetime, format_yen
from core.handoffs import Reason
from core.i18n import t
from core.order_texts import explain
from core.orders import cancel_order, find_order, payment_state, recent_orders
from handlers import basic
from handlers.handoff import person_button
from handlers.identity import current_student
from handlers.messages import say
from handlers.payloads import CancelUnpaid, decode, encode
from handlers.registry import HandlerRegistry
from handlers.replies import Card, QuickReply, Reply, Text
from handlers.turn import TurnContext
from intents.normalize import normalize
from intents.types import EntityType, Intent

_ASKS_DEADLINE = re.compile(
    r"いつまで|期限|締め?切|〆切|期日|deadline|due|by when|until when|how long (?:do|will) i have")
# A refund question about money already paid, as opposed to an order not paid yet.
_SAYS_PAID = re.compile(r"払った|払いました|払っ|支払い?済|支払い?後|払い込|振り?込んだ|二重|引き落と|"
                        r"\bpaid\b|charged|double|twice|after pay")


def _method_lines(ctx: TurnContext) -> list[str]:
    lines = []
    for option in ctx.core.profile.payment_methods:
        if option.brands is None:
            line = option.name(ctx.lang)
        elif ctx.lang is Language.JA:
            line = f"{option.name(ctx.lang)}（{option.brands(ctx.lang)}）"
        else:
            line = f"{option.name(ctx.lang)} ({option.brands(ctx.lang)})"
        lines.append(basic.bullet(line, ctx.lang))
    return lines


def price_card(ctx: TurnContext) -> Card:
    """Every catalog item with its price; example prices are marked as such."""
    items = ctx.core.profile.catalog.items
    fields = tuple(
        (item.name(ctx.lang),
         say("payment.example_price" if item.price_is_example else "payment.price", ctx.lang,
             price=format_yen(item.price_yen, ctx.lang)))
        for item in items
    )
    footer = say("payment.prices_are_examples", ctx.lang) if any(item.price_is_example for item in items) else ""
    buttons = basic.follow_ups(ctx.lang, Intent.REFUND, Intent.DELIVERY_OPTIONS, Intent.ORDER_CERTIFICATE)
    return Card(say("payment.prices_title", ctx.lang), fields, footer, buttons)


def _asked_methods(ctx: TurnContext) -> list[str]:
    """Direct answers for the payment methods the message names: offered or not. A question about paying at
    a convenience store is answered with "cash only" first, never a plain yes (「セブンでクレカ使える?」:
    the card is for the online payment page, not the store)."""
    asked = []
    for entity in ctx.entities:
        if entity.type is EntityType.PAYMENT_METHOD and PaymentMethod(str(entity.value)) not in asked:
            asked.append(PaymentMethod(str(entity.value)))
    profile = ctx.core.profile
    cash_only = [method for method in asked if (option := profile.payment_option(method)) and option.cash_only]
    lines = [say("payment.store_cash_only", ctx.lang)] if cash_only else []
    for method in asked:
        option = profile.payment_option(method)
        if option is None:
            lines.append(say("payment.not_offered", ctx.lang, method=method.value))
        elif option.cash_only:
            continue
        elif cash_only:
            lines.append(say("payment.online_not_store", ctx.lang, method=option.name(ctx.lang)))
        else:
            lines.append(say("payment.offered", ctx.lang, method=option.name(ctx.lang)))
    return lines


def _deadline(ctx: TurnContext) -> list[str]:
    """When to pay, if the message asks: the identified student's unpaid order's deadline, and the rule."""
    if not _ASKS_DEADLINE.search(normalize(ctx.message.text or "")):
        return []
    lines = []
    order = unpaid_order(ctx)
    if order is not None and order.deadline is not None:
        lines.append(say("payment.deadline_of_order", ctx.lang, number=order.number,
                         deadline=format_datetime(order.deadline, ctx.lang)))
    profile = ctx.core.profile
    # The guide gives no deadline: an assumed number of days is what this deployment uses, not a rule to state.
    key = "payment.deadline" if is_stated(profile.sources.get("konbini_payment_days")) else "payment.deadline_unstated"
    lines.append(say(key, ctx.lang, days=profile.konbini_payment_days))
    return lines


def payment_methods(ctx: TurnContext) -> list[Reply]:
    """The guide's list of payment methods; convenience stores take cash only; no refunds; the prices.

    A payment method named in the message gets a direct answer first ("PayPay使える？").
    """
    direct = _deadline(ctx) + _asked_methods(ctx)
    text = "\n".join((
        *direct, *([""] if direct else []),
        say("payment.intro", ctx.lang), *_method_lines(ctx), "",
        say("payment.cash_only", ctx.lang), say("payment.no_refunds", ctx.lang),
    ))
    return [Text(text), price_card(ctx)]


@dataclass(frozen=True, slots=True)
class UnpaidOrder:
    """An order that waits for a payment which can still be made."""

    number: str
    deadline: datetime | None


def unpaid_order(ctx: TurnContext) -> UnpaidOrder | None:
    """The identified student's newest order, if it still waits for a payment that can be made."""
    student = current_student(ctx)
    if student is None:
        return None
    with ctx.core.transaction() as session:
        orders = recent_orders(session, student, limit=1)
        order = orders[0] if orders else None
        if order is None or order.status is not OrderStatus.AWAITING_PAYMENT or not order.payments:
            return None
        payment = order.payments[-1]
        if payment_state(payment, ctx.now) is not PaymentStatus.PENDING:
            return None
        return UnpaidOrder(order.number, payment.deadline)


def cancel_unpaid(ctx: TurnContext) -> list[Reply] | None:
    """For a student whose newest order is not paid yet: nothing to refund, and a button to cancel it.

    Returns:
        The replies, or None when the student has no such order (or is not identified).
    """
    order = unpaid_order(ctx)
    if order is None:
        return None
    buttons = (QuickReply(say("refund.cancel_button", ctx.lang), cancel_payload(order.number)),
               basic.topic_button(Intent.ORDER_STATUS, ctx.lang), basic.menu_button(ctx.lang))
    return [Text(say("refund.unpaid", ctx.lang, number=order.number), buttons)]


def cancel_payload(number: str) -> str:
    """The payload of a 「この申請を取り消す」 button, e.g. `unpaid:cancel:K7PM-3QXA`, routed to the refund intent."""
    return encode(CancelUnpaid(number))


def _cancel(ctx: TurnContext, number: str) -> list[Reply]:
    """Cancel the student's unpaid order `number` (a tapped button), or say why it cannot be."""
    student = current_student(ctx)
    try:
        with ctx.core.transaction() as session:
            if student is None:
                raise OrderNotFound(number)
            cancel_order(session, find_order(session, number, student), ctx.now)
    except (OrderNotFound, RefundNotPossible) as refused:
        return [Text(explain(refused, ctx.lang, ctx.core.profile), basic.main_menu(ctx.lang))]
    return [Text(say("refund.cancelled", ctx.lang, number=number), basic.main_menu(ctx.lang))]


def refund(ctx: TurnContext) -> list[Reply]:
    """No refunds once paid, in the guide's words; how to avoid a wrong application; whom to ask before.

    An order that is not paid yet is not a refund: the student is offered to cancel it instead.
    """
    tapped = decode(ctx.message.payload or "")
    if isinstance(tapped, CancelUnpaid):
        return _cancel(ctx, tapped.number)
    if not _SAYS_PAID.search(normalize(ctx.message.text or "")):
        unpaid = cancel_unpaid(ctx)
        if unpaid is not None:
            return unpaid
    text = "\n".join((
        t("orders.errors.refund_not_possible", ctx.lang), "",
        say("refund.check", ctx.lang),
    ))
    ask = say("refund.ask_first", ctx.lang) + "\n" + basic.contact_entry(ctx, Service.STUDENT_SUPPORT)
    # A dispute is for a person to settle, not the bot: offer one.
    buttons = (*basic.follow_ups(ctx.lang, Intent.DELIVERY_OPTIONS, Intent.PAYMENT_METHODS, Intent.CONTACT),
               person_button(ctx, Reason.REFUND_DISPUTE))
    return [Text(text), Text(ask, buttons)]


def register(registry: HandlerRegistry) -> None:
    """Wire payment_methods and refund (the pipeline also routes `unpaid:cancel:` button payloads to refund)."""
    registry.register(Intent.PAYMENT_METHODS, payment_methods)
    registry.register(Intent.REFUND, refund)
