"""Messages outside the desk's topics, each with its own answer: other university matters, small talk, abuse.

"Did you mean…" is for messages the bot could not read; a question it recognises as not its own gets told
where to go instead.
"""

from core.enums import Service
from core.handoffs import Reason
from handlers import basic
from handlers.handoff import person_button
from handlers.messages import say
from handlers.ordering import not_in_catalog
from handlers.replies import Reply, Text
from handlers.turn import TurnContext


def campus(ctx: TurnContext) -> list[Reply]:
    """A university matter this desk does not handle: say so, and name the 学生支援課 with its contacts (for a
    certificate the service does not issue, the guide's answer: the faculty office)."""
    other_certificate = not_in_catalog(ctx)
    if other_certificate is not None:
        return other_certificate
    service = ctx.core.profile.service_name(ctx.lang)
    text = "\n".join((
        say("scope.campus", ctx.lang, service=service), "",
        basic.contact_entry(ctx, Service.STUDENT_SUPPORT), "",
        say("scope.campus_more", ctx.lang, service=service),
    ))
    return [Text(text, basic.main_menu(ctx.lang))]


def unrelated(ctx: TurnContext) -> list[Reply]:
    """Small talk or a question about anything else: this desk is about the service only (a certificate the
    service does not issue gets the guide's answer)."""
    other_certificate = not_in_catalog(ctx)
    if other_certificate is not None:
        return other_certificate
    service = ctx.core.profile.service_name(ctx.lang)
    return [Text(say("scope.unrelated", ctx.lang, service=service), basic.main_menu(ctx.lang))]


def abuse(ctx: TurnContext) -> list[Reply]:
    """Insults: a calm, neutral answer that offers a person and the menu (never thanks or a goodbye)."""
    service = ctx.core.profile.service_name(ctx.lang)
    buttons = (person_button(ctx, Reason.COMPLAINT), *basic.main_menu(ctx.lang)[:11])
    return [Text(say("scope.abuse", ctx.lang, service=service), buttons)]
