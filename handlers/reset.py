"""Forgotten second password: the service's own reset steps, and a form that mails the one-time reset URL.

The reply to a reset request is the same whether or not the student exists or has an address on record
(core.links.request_second_password_reset), so the chat never tells who is a student.
"""

from datetime import timedelta

from core.enums import LinkPurpose
from core.identifiers import normalize_student_number
from core.links import open_link, request_second_password_reset
from core.models import Student
from core.reminders import schedule_link_nudge
from handlers import basic
from handlers.forms import Form, FormEngine, Slot, cancel_button, start_payload
from handlers.identity import (
    current_student,
    identified_by_account_only,
    mentions_password,
    typed_student_number,
)
from handlers.messages import say
from handlers.registry import HandlerRegistry
from handlers.replies import QuickReply, Reply, Text
from handlers.turn import TurnContext
from intents.types import Intent

RESET = "reset"
STUDENT_NUMBER = "student_number"


def second_password_reset(ctx: TurnContext) -> list[Reply]:
    """The guide's steps for a forgotten second password, with a button to have the reset URL mailed now."""
    text = say("reset.steps", ctx.lang, minutes=ctx.core.profile.one_time_link_minutes)
    if mentions_password(ctx):
        text = say("reset.password_warning", ctx.lang) + "\n\n" + text
    buttons = (QuickReply(say("reset.send_button", ctx.lang), start_payload(RESET)),
               *basic.follow_ups(ctx.lang, Intent.SECOND_PASSWORD_RULES))
    return [Text(text, buttons)]


def _ask_number(ctx: TurnContext) -> list[Reply]:
    return [Text(say("reset.ask_number", ctx.lang), (cancel_button(ctx),))]


def _parse_number(ctx: TurnContext) -> str | None:
    return typed_student_number(ctx, "reset")


def _finish(ctx: TurnContext) -> list[Reply]:
    """Ask the core to mail the reset URL and pass on its answer, which is the same for everyone."""
    number = ctx.state.slots.get(STUDENT_NUMBER)
    if number is None:  # an identified student is not asked
        student = current_student(ctx)
        number = student.student_number if student is not None else ""
    ctx.state.end_form()
    outcome = request_second_password_reset(ctx.core, number, ctx.lang)
    _nudge_before_expiry(ctx, number)
    return [Text(outcome.text, basic.follow_ups(ctx.lang, Intent.SECOND_PASSWORD_RULES))]


def _nudge_before_expiry(ctx: TurnContext, number: str) -> None:
    """Schedule one reminder before the link expires, but only for a student known by their linked account
    asking for themselves: a nudge to anyone else would tell them the account exists."""
    if not identified_by_account_only(ctx) or ctx.state.student_id is None:
        return
    with ctx.core.transaction() as session:
        student = session.get(Student, ctx.state.student_id)
        if student is None or student.student_number != normalize_student_number(number):
            return
        link = open_link(session, student.id, LinkPurpose.SECOND_PASSWORD_RESET, ctx.now)
        if link is not None and ctx.now - link.created_at < timedelta(minutes=1):
            schedule_link_nudge(session, link, ctx.now, channel=ctx.message.channel.value,
                                recipient=ctx.message.user_id, conversation_id=ctx.state.conversation_id,
                                lang=ctx.lang.value)


def reset_form() -> Form:
    """The `reset` form: the student number (unless the student is identified), then the reset mail."""
    return Form(
        name=RESET,
        slots=(Slot(STUDENT_NUMBER, _ask_number, _parse_number, needed=lambda ctx: ctx.state.student_id is None),),
        finish=_finish,
    )


def register(registry: HandlerRegistry, forms: FormEngine) -> None:
    """Wire the reset form and the second_password_reset intent."""
    forms.register(reset_form())
    registry.register(Intent.SECOND_PASSWORD_RESET, second_password_reset)
