"""Small talk, the main menu, contacts, and the fallback for anything else."""

import re
import unicodedata

from core.enums import Language, Service
from core.formatting import format_short
from handlers.messages import say
from handlers.payloads import AskIntent, SwitchLanguage, decode, encode
from handlers.registry import HandlerRegistry
from handlers.replies import QuickReply, Reply, Text, intent_payload
from handlers.turn import TurnContext
from intents.types import Intent

# The main menu: topics a student who would rather tap than type can reach.
MENU_INTENTS = (
    Intent.LOGIN_HELP, Intent.SECOND_PASSWORD_RESET, Intent.EMAIL_REGISTRATION, Intent.PAYMENT_METHODS,
    Intent.PICKUP_TIMING, Intent.WINDOW_PICKUP_HOWTO, Intent.ORDER_CERTIFICATE, Intent.DELIVERY_OPTIONS,
    Intent.CONTACT,
)
# The offices a student can phone or mail, in the order the guide lists them.
OFFICES = (Service.STUDENT_SUPPORT, Service.CALL_CENTER)
# `state.expect` after the contacts: a short question about their email, phone or hours is about them.
CONTACT_MORE = "contact.more"
FOLLOW_UP_CHARS = 40
_CONTACT_DETAIL = re.compile(r"メール|メアド|アドレス|電話|番号|時間|何時|土日|土曜|日曜|祝日|休み|昼|開いて|あいて|"
                             r"e-?mail|mail|address|phone|number|call|hours|open|close|weekend|saturday|sunday|holiday")
# …unless it is about the student's own address in the service (registering or changing it).
_NOT_CONTACT = re.compile(r"登録|変更|変え|届|確認メール|register|change|update|confirm|verif|arriv")


def lang_payload(lang: Language) -> str:
    """The payload of a button that switches the conversation to `lang`, e.g. `lang:en` (handled by
    handlers.info.language)."""
    return encode(SwitchLanguage(lang))


def other_language(lang: Language) -> Language:
    """English for Japanese and Japanese for English."""
    return Language.EN if lang is Language.JA else Language.JA


def language_button(lang: Language) -> QuickReply:
    """A button, labelled in the other language, that switches the conversation to it."""
    return QuickReply(say("menu.switch_language", lang), lang_payload(other_language(lang)))


def main_menu(lang: Language) -> tuple[QuickReply, ...]:
    """The main-menu buttons in `lang`, ending with a button to switch to the other language."""
    topics = tuple(QuickReply(say(f"menu.{intent.value}", lang), intent_payload(intent)) for intent in MENU_INTENTS)
    return (*topics, language_button(lang))


def menu_button(lang: Language) -> QuickReply:
    """One button back to the main menu (it shows the welcome and the menu again)."""
    return QuickReply(say("menu.back", lang), intent_payload(Intent.GREET))


def topic_button(intent: Intent, lang: Language) -> QuickReply:
    """A follow-up button for a topic, labelled as in the main menu or the follow-up labels."""
    key = f"menu.{intent.value}" if intent in MENU_INTENTS else f"menu.more.{intent.value}"
    return QuickReply(say(key, lang), intent_payload(intent))


def follow_ups(lang: Language, *intents: Intent) -> tuple[QuickReply, ...]:
    """Buttons for a few related topics, then one back to the main menu."""
    return (*(topic_button(intent, lang) for intent in intents), menu_button(lang))


def bullet(text: str, lang: Language) -> str:
    """One line of a list: `・text` / `- text`."""
    return say("basic.bullet", lang) + text


def greet(ctx: TurnContext) -> list[Reply]:
    """Welcome and the main menu (without the welcome when the student tapped the menu button)."""
    if decode(ctx.message.payload or "") == AskIntent(Intent.GREET):
        return [Text(say("basic.menu", ctx.lang), main_menu(ctx.lang))]
    service = ctx.core.profile.service_name(ctx.lang)
    return [Text(say("basic.welcome", ctx.lang, service=service), main_menu(ctx.lang))]


def thanks(ctx: TurnContext) -> list[Reply]:
    """You're welcome, and the menu in case there is more."""
    return [Text(say("basic.thanks", ctx.lang), main_menu(ctx.lang))]


def goodbye(ctx: TurnContext) -> list[Reply]:
    """A polite goodbye."""
    return [Text(say("basic.goodbye", ctx.lang))]


def office_status(ctx: TurnContext, service: Service) -> str:
    """`open now`, or when the office next opens (its profile hours and the business calendar)."""
    calendar = ctx.core.calendar
    if calendar.is_open(service, ctx.now):
        return say("contact.open_now", ctx.lang)
    opening = calendar.next_opening(service, ctx.now)
    return say("contact.opens_at", ctx.lang, when=format_short(opening, ctx.lang))


def office_hours(ctx: TurnContext, service: Service) -> str:
    """An office's hours as `08:30–17:00`."""
    hours = ctx.core.profile.contact(service).hours
    return f"{hours.open:%H:%M}–{hours.close:%H:%M}"


def contact_entry(ctx: TurnContext, service: Service) -> str:
    """One office: what it handles, phone, hours, open now or next opening, and its email if any."""
    contact = ctx.core.profile.contact(service)
    lines = [say(
        "contact.entry", ctx.lang, name=contact.name(ctx.lang), handles=contact.handles(ctx.lang),
        phone=contact.phone or "-", hours=office_hours(ctx, service), status=office_status(ctx, service),
    )]
    if contact.email:
        lines.append(say("contact.email", ctx.lang, email=contact.email))
    return "\n".join(lines)


def contact_lines(ctx: TurnContext) -> str:
    """Each office with what it handles, its phone and email, hours, and whether it is open now."""
    return "\n".join(contact_entry(ctx, service) for service in OFFICES)


def chat_support_line(ctx: TurnContext) -> str:
    """The service's own chat support, with its hours from the profile (24 hours in the shipped one)."""
    contact = ctx.core.profile.contact(Service.CHAT_SUPPORT)
    if contact.hours.always:
        hours = say("contact.always", ctx.lang)
    else:
        hours = say("contact.hours", ctx.lang, hours=office_hours(ctx, Service.CHAT_SUPPORT),
                    status=office_status(ctx, Service.CHAT_SUPPORT))
    line = say("contact.chat", ctx.lang, name=contact.name(ctx.lang), handles=contact.handles(ctx.lang), hours=hours)
    return line + ("\n" + contact.url if contact.url else "")


def contact(ctx: TurnContext) -> list[Reply]:
    """The university's contacts, with open-now or the next opening, and the service's chat support."""
    text = say("contact.intro", ctx.lang) + "\n\n" + contact_lines(ctx) + "\n" + chat_support_line(ctx)
    ctx.state.expect = CONTACT_MORE
    return [Text(text, (topic_button(Intent.LOGIN_HELP, ctx.lang), menu_button(ctx.lang)))]


def _more_about_contacts(ctx: TurnContext) -> list[Reply] | None:
    """After the contacts: a short follow-up about them (「メールアドレスもありますか」, "and their email?",
    "open on Saturday?") is answered with the contacts again, not read as a new topic."""
    text = unicodedata.normalize("NFKC", ctx.message.text or "").lower()
    if len(text) > FOLLOW_UP_CHARS or not _CONTACT_DETAIL.search(text) or _NOT_CONTACT.search(text):
        return None
    if ctx.understanding.intent in (Intent.THANKS, Intent.GOODBYE):  # "ok, I'll call them. bye"
        return None
    return contact(ctx)


def fallback(ctx: TurnContext) -> list[Reply]:
    """When no handler answers: say so, offer the menu and the contacts."""
    return [Text(say("basic.fallback", ctx.lang) + "\n\n" + contact_lines(ctx), main_menu(ctx.lang))]


def register(registry: HandlerRegistry) -> None:
    """Wire this module's handlers: greet, thanks, goodbye and contact (and follow-ups about the contacts)."""
    registry.register(Intent.GREET, greet)
    registry.register(Intent.THANKS, thanks)
    registry.register(Intent.GOODBYE, goodbye)
    registry.register(Intent.CONTACT, contact)
    registry.expect(CONTACT_MORE, Intent.CONTACT, _more_about_contacts)
