"""Money: the guide's payment methods with each item's price, and refunds (none, for any reason)."""

from core.enums import Language, PaymentMethod, Service
from core.formatting import format_yen
from core.handoffs import Reason
from core.i18n import t
from handlers import basic
from handlers.handoff import person_button
from handlers.messages import say
from handlers.registry import HandlerRegistry
from handlers.replies import Card, Reply, Text
from handlers.turn import TurnContext
from intents.types import EntityType, Intent


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
    """Direct answers for the payment methods the message names: offered or not; cash only at the store."""
    asked = []
    for entity in ctx.entities:
        if entity.type is EntityType.PAYMENT_METHOD and PaymentMethod(str(entity.value)) not in asked:
            asked.append(PaymentMethod(str(entity.value)))
    profile = ctx.core.profile
    cash_only = [method for method in asked if (option := profile.payment_option(method)) and option.cash_only]
    if cash_only and len(asked) > len(cash_only):
        # 「コンビニでカード払いできますか」: the answer is that the store takes cash only.
        return [say("payment.store_cash_only", ctx.lang)]
    lines = []
    for method in asked:
        option = profile.payment_option(method)
        if option is None:
            lines.append(say("payment.not_offered", ctx.lang, method=method.value))
        else:
            lines.append(say("payment.offered", ctx.lang, method=option.name(ctx.lang)))
    if cash_only:
        lines.append(say("payment.store_cash_only", ctx.lang))
    return lines


def payment_methods(ctx: TurnContext) -> list[Reply]:
    """The guide's list of payment methods; convenience stores take cash only; no refunds; the prices.

    A payment method named in the message gets a direct answer first ("PayPay使える？").
    """
    direct = _asked_methods(ctx)
    text = "\n".join((
        *direct, *([""] if direct else []),
        say("payment.intro", ctx.lang), *_method_lines(ctx), "",
        say("payment.cash_only", ctx.lang), say("payment.no_refunds", ctx.lang),
    ))
    return [Text(text), price_card(ctx)]


def refund(ctx: TurnContext) -> list[Reply]:
    """No refunds once paid, in the guide's words; how to avoid a wrong application; whom to ask before."""
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
    """Wire payment_methods and refund."""
    registry.register(Intent.PAYMENT_METHODS, payment_methods)
    registry.register(Intent.REFUND, refund)
