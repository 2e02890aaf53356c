"""Registering and changing the email address: the guide's steps, the one-time URL, and when no mail arrives."""

import re
import unicodedata

from core.enums import Service
from handlers import basic
from handlers.messages import say
from handlers.registry import HandlerRegistry
from handlers.replies import QuickReply, Reply, Text
from handlers.turn import TurnContext
from intents.types import Intent

# A message about a mail that does not come gets the checklist first, then the steps.
_NOT_ARRIVED = re.compile(
    r"届かない|届いてない|届いていない|届きません|来ない|こない|来ません|受信できない|迷惑メール|"
    r"not arriv|n't arriv|n't get|not get|n't receiv|not receiv|haven't got|never came|"
    r"no (?:[a-z-]+ ){0,2}(?:e-?)?mail|spam"
)


def mentions_missing_mail(ctx: TurnContext) -> bool:
    """True if the message says that a mail did not arrive."""
    return bool(_NOT_ARRIVED.search(unicodedata.normalize("NFKC", ctx.message.text or "").lower()))


def not_arrived(ctx: TurnContext, buttons: tuple[QuickReply, ...] = ()) -> Text:
    """The guide's checklist when the confirmation mail does not arrive, then the call center."""
    minutes = ctx.core.profile.one_time_link_minutes
    text = "\n".join((
        say("email.not_arrived.title", ctx.lang),
        say("email.not_arrived.checks", ctx.lang),
        say("email.not_arrived.wait", ctx.lang, minutes=minutes),
        basic.contact_entry(ctx, Service.CALL_CENTER),
    ))
    return Text(text, buttons)


def _answer(ctx: TurnContext, topic: str, buttons: tuple[QuickReply, ...]) -> list[Reply]:
    minutes = ctx.core.profile.one_time_link_minutes
    steps = "\n".join((
        say(f"email.{topic}.answer", ctx.lang),
        say(f"email.{topic}.steps", ctx.lang, minutes=minutes),
        say("email.expiry", ctx.lang, minutes=minutes),
        say("email.before", ctx.lang),
    ))
    if mentions_missing_mail(ctx):
        return [not_arrived(ctx), Text(steps, buttons)]
    return [Text(steps), not_arrived(ctx, buttons)]


def email_registration(ctx: TurnContext) -> list[Reply]:
    """The guide's 2.1: registering the email at the first login, with the 30-minute one-time URL."""
    buttons = basic.follow_ups(ctx.lang, Intent.SECOND_PASSWORD_RULES, Intent.EMAIL_CHANGE, Intent.LOGIN_HELP)
    return _answer(ctx, "registration", buttons)


def email_change(ctx: TurnContext) -> list[Reply]:
    """The guide's 2.4(a): changing the email from the menu after logging in."""
    buttons = basic.follow_ups(ctx.lang, Intent.LOGIN_HELP, Intent.SECOND_PASSWORD_RESET)
    return _answer(ctx, "change", buttons)


def register(registry: HandlerRegistry) -> None:
    """Wire email_registration and email_change."""
    registry.register(Intent.EMAIL_REGISTRATION, email_registration)
    registry.register(Intent.EMAIL_CHANGE, email_change)
