"""Forgotten second password: the service's own reset steps, and a form that mails the one-time reset URL.

The reply to a reset request is the same whether or not the student exists or has an address on record
(core.links.request_second_password_reset), so the chat never tells who is a student.
"""

import re

from core.enums import Service
from core.identifiers import normalize_student_number
from core.links import LinkNudge, request_second_password_reset
from handlers import basic, email
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
from intents.controls import Control
from intents.normalize import normalize
from intents.types import EntityType, Intent

RESET = "reset"
STUDENT_NUMBER = "student_number"
# `state.expect` after the steps: the bot offered to mail the reset link, so "yes, send it" starts the form.
OFFER = "reset.offer"
# After the offer, a message that asks for the link (「再設定リンクを送ってください」, "send me the reset link").
_ASKS_FOR_LINK = re.compile(r"送っ|送信|送ら|ください|ほしい|欲しい|お願い|\bsend|\bmail me|\bemail me|\bplease")
# Without the offer, only an explicit "send the link" starts the form (「再設定の方法を教えてください」 gets the steps).
_SEND_THE_LINK = re.compile(r"(?:リンク|url|メール|link|mail|rinku|meeru|meru).{0,12}(?:送っ|送信|送ら|send|okut)|"
                            r"(?:送っ|送信|send|mail me|email me).{0,20}(?:リンク|url|メール|link|mail)")


def second_password_reset(ctx: TurnContext, forms: FormEngine | None = None) -> list[Reply]:
    """The guide's steps for a forgotten second password, with a button to have the reset URL mailed now (with
    the form engine, a student who asks for the link to be sent gets the form at once)."""
    if forms is not None and ctx.state.form is None and _SEND_THE_LINK.search(normalize(ctx.message.text or "")):
        return forms.start(RESET, ctx)
    text = say("reset.steps", ctx.lang, minutes=ctx.core.profile.one_time_link_minutes)
    if mentions_password(ctx):
        text = say("reset.password_warning", ctx.lang) + "\n\n" + text
    buttons = (QuickReply(say("reset.send_button", ctx.lang), start_payload(RESET)),
               *basic.follow_ups(ctx.lang, Intent.SECOND_PASSWORD_RULES))
    ctx.state.expect = OFFER
    if email.mentions_missing_mail(ctx):  # the reset mail did not come: what to check and whom to call first
        note = say("reset.not_arrived", ctx.lang) + "\n" + basic.contact_entry(ctx, Service.CALL_CENTER)
        return [Text(note), Text(text, buttons)]
    return [Text(text, buttons)]


def _answer_to_offer(forms: FormEngine, ctx: TurnContext) -> list[Reply] | None:
    """After the offer to mail the link: a yes (typed, or the request for the link itself) starts the form; a
    no is noted; anything else is a new question."""
    control, understanding = ctx.understanding.control, ctx.understanding
    text = normalize(ctx.message.text or "")
    asks_for_link = bool(_SEND_THE_LINK.search(text)) or (
        understanding.intent is Intent.SECOND_PASSWORD_RESET and bool(_ASKS_FOR_LINK.search(text)))
    if ctx.entity(EntityType.STUDENT_NUMBER) is not None:  # the number itself: the link is asked for
        forms.start(RESET, ctx)
        return forms.handle(ctx, lambda _: [])
    if control is Control.YES or asks_for_link:
        return forms.start(RESET, ctx)
    if control is Control.NO:
        ctx.state.expect = OFFER  # the offer stands: 「やっぱり送ってください」 next still takes it
        return [Text(say("steering.noted", ctx.lang), basic.main_menu(ctx.lang))]
    return None


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
    outcome = request_second_password_reset(ctx.core, number, ctx.lang, nudge=_nudge(ctx, number))
    return [Text(outcome.text, basic.follow_ups(ctx.lang, Intent.SECOND_PASSWORD_RULES))]


def _nudge(ctx: TurnContext, number: str) -> LinkNudge | None:
    """Where to remind the student once before the link expires, but only for a student known by their linked
    account asking for themselves: a nudge to anyone else would tell them the account exists. The worker
    schedules it with the link it issues (none when a rate limit stops the link)."""
    if not identified_by_account_only(ctx) or ctx.state.student_id is None:
        return None
    student = current_student(ctx)
    if student is None or student.student_number != normalize_student_number(number):
        return None
    return LinkNudge(channel=ctx.message.channel.value, recipient=ctx.message.user_id,
                     conversation_id=ctx.state.conversation_id, lang=ctx.lang.value)


def reset_form() -> Form:
    """The `reset` form: the student number (unless the student is identified), then the reset mail."""
    return Form(
        name=RESET,
        slots=(Slot(STUDENT_NUMBER, _ask_number, _parse_number, needed=lambda ctx: ctx.state.student_id is None),),
        finish=_finish,
        topic=lambda ctx: Intent.SECOND_PASSWORD_RESET,
    )


def register(registry: HandlerRegistry, forms: FormEngine) -> None:
    """Wire the reset form, the second_password_reset intent and the answer to the offer to send the link."""
    forms.register(reset_form())
    registry.register(Intent.SECOND_PASSWORD_RESET, lambda ctx: second_password_reset(ctx, forms))
    registry.expect(OFFER, Intent.SECOND_PASSWORD_RESET, lambda ctx: _answer_to_offer(forms, ctx))
