"""Small talk, the main menu, contacts and payment methods, and the fallback for anything else."""

from core.enums import Language, Service
from core.formatting import format_short
from handlers.messages import say
from handlers.registry import HandlerRegistry
from handlers.replies import QuickReply, Reply, Text, intent_payload
from handlers.turn import TurnContext
from intents.types import Intent

# The main menu: topics a student who would rather tap than type can reach.
MENU_INTENTS = (
    Intent.LOGIN_HELP, Intent.SECOND_PASSWORD_RESET, Intent.EMAIL_REGISTRATION, Intent.PAYMENT_METHODS,
    Intent.PICKUP_TIMING, Intent.WINDOW_PICKUP_HOWTO, Intent.ORDER_CERTIFICATE, Intent.CONTACT,
)


def main_menu(lang: Language) -> tuple[QuickReply, ...]:
    """The main-menu buttons in `lang`."""
    return tuple(QuickReply(say(f"menu.{intent.value}", lang), intent_payload(intent)) for intent in MENU_INTENTS)


def greet(ctx: TurnContext) -> list[Reply]:
    """Welcome and the main menu."""
    service = ctx.core.profile.service_name(ctx.lang)
    return [Text(say("basic.welcome", ctx.lang, service=service), main_menu(ctx.lang))]


def thanks(ctx: TurnContext) -> list[Reply]:
    """You're welcome, and the menu in case there is more."""
    return [Text(say("basic.thanks", ctx.lang), main_menu(ctx.lang))]


def goodbye(ctx: TurnContext) -> list[Reply]:
    """A polite goodbye."""
    return [Text(say("basic.goodbye", ctx.lang))]


def contact_lines(ctx: TurnContext) -> str:
    """Each office with what it handles, its phone and email, hours, and whether it is open now."""
    lines = []
    calendar, profile = ctx.core.calendar, ctx.core.profile
    for service in (Service.STUDENT_SUPPORT, Service.CALL_CENTER):
        contact = profile.contact(service)
        hours = contact.hours
        if calendar.is_open(service, ctx.now):
            status = say("contact.open_now", ctx.lang)
        else:
            opening = calendar.next_opening(service, ctx.now)
            status = say("contact.opens_at", ctx.lang, when=format_short(opening, ctx.lang))
        lines.append(say(
            "contact.entry", ctx.lang, name=contact.name(ctx.lang), handles=contact.handles(ctx.lang),
            phone=contact.phone or "-", hours=f"{hours.open:%H:%M}–{hours.close:%H:%M}", status=status,
        ))
        if contact.email:
            lines.append(say("contact.email", ctx.lang, email=contact.email))
    return "\n".join(lines)


def contact(ctx: TurnContext) -> list[Reply]:
    """The university's contacts, with open-now or the next opening."""
    return [Text(say("contact.intro", ctx.lang) + "\n\n" + contact_lines(ctx))]


def payment_methods(ctx: TurnContext) -> list[Reply]:
    """The guide's list of payment methods; convenience stores take cash only; no refunds."""
    lines = []
    for option in ctx.core.profile.payment_methods:
        brands = f"（{option.brands(ctx.lang)}）" if option.brands and ctx.lang is Language.JA else (
            f" ({option.brands(ctx.lang)})" if option.brands else "")
        lines.append(f"・{option.name(ctx.lang)}{brands}")
    text = say("payment.intro", ctx.lang) + "\n" + "\n".join(lines) + "\n\n" + say("payment.cash_only", ctx.lang)
    return [Text(text + "\n" + say("payment.no_refunds", ctx.lang), main_menu(ctx.lang))]


def fallback(ctx: TurnContext) -> list[Reply]:
    """When no handler answers: say so, offer the menu and the contacts."""
    return [Text(say("basic.fallback", ctx.lang) + "\n\n" + contact_lines(ctx), main_menu(ctx.lang))]


def register(registry: HandlerRegistry) -> None:
    """Wire this module's handlers."""
    registry.register(Intent.GREET, greet)
    registry.register(Intent.THANKS, thanks)
    registry.register(Intent.GOODBYE, goodbye)
    registry.register(Intent.CONTACT, contact)
    registry.register(Intent.PAYMENT_METHODS, payment_methods)
