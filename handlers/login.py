"""Login troubleshooting, guided by symptom: first login, where the ID is, rejected, second password, logged out."""

import re
import unicodedata
from enum import StrEnum

from core.enums import Service
from core.formatting import join_list
from core.handoffs import Reason
from core.i18n import t
from handlers import basic
from handlers.handoff import person_button
from handlers.messages import say
from handlers.registry import HandlerRegistry
from handlers.replies import QuickReply, Reply, Text
from handlers.rules import password_warning
from handlers.turn import TurnContext
from intents.types import Intent

# A tapped symptom button comes back as `login:<symptom>`; the pipeline routes it to login_help.
PAYLOAD_PREFIX = "login:"


class Symptom(StrEnum):
    """What goes wrong when logging in; each has its own answer."""

    FIRST = "first"  # logging in for the first time
    WHICH_ID = "which_id"  # which ID and password, and where to find them
    REJECTED = "rejected"  # the ID or password is not accepted
    SECOND_PASSWORD = "second_password"  # what the second password is, changing it, forgetting it
    LOGGED_OUT = "logged_out"  # logged out automatically, or how to log out


def symptom_payload(symptom: Symptom) -> str:
    """The payload of a symptom button, e.g. `login:first`."""
    return f"{PAYLOAD_PREFIX}{symptom.value}"


# Words that name a symptom in a typed message, checked in this order; the first match wins. They only
# pick which answer to show first (every answer offers the others), so a miss costs one tap.
_SYMPTOM_WORDS: tuple[tuple[Symptom, re.Pattern[str]], ...] = (
    (Symptom.LOGGED_OUT, re.compile(
        r"ログアウト|タイムアウト|戻され|"
        r"log ?out|logged (me )?out|kicked (me )?out|signed me out|timed? ?out|timing out")),
    (Symptom.FIRST, re.compile(
        r"初めて|はじめて|初回|新入生|入学式|ログイン方法|初回登録|アカウントを作|"
        r"first|freshman|new student|how (do i|to) log ?in|register first|create an account")),
    (Symptom.REJECTED, re.compile(
        r"違います|違うと|正しくありません|弾かれ|はじかれ|通らない|エラー|ロック|大文字|小文字|半角|ブラウザ|"
        r"safari|chrome|firefox|iphone|android|error|wrong|incorrect|reject|locked|upper|lower|browser")),
    (Symptom.SECOND_PASSWORD, re.compile(r"第[2２二]パスワード|second password|2nd password|second pw")),
    (Symptom.WHICH_ID, re.compile(
        r"(?<![a-z])id(?![a-z])|学籍番号|掲示板|e-?ラーニング|大学院|医学科|看護|産業衛生|忘れ|なくし|"
        r"user ?id|e-?learning|\bgrad|nursing|medic|forgot|lost")),
)


def _symptom_of(ctx: TurnContext) -> Symptom | None:
    """The symptom of a tapped button, or one named in the typed message, or None."""
    payload = ctx.message.payload or ""
    if payload.startswith(PAYLOAD_PREFIX):
        try:
            return Symptom(payload.removeprefix(PAYLOAD_PREFIX))
        except ValueError:
            return None
    text = unicodedata.normalize("NFKC", ctx.message.text or "").lower()
    return next((symptom for symptom, words in _SYMPTOM_WORDS if words.search(text)), None)


def _symptom_button(symptom: Symptom, ctx: TurnContext) -> QuickReply:
    return QuickReply(say(f"login.buttons.{symptom.value}", ctx.lang), symptom_payload(symptom))


def _new_students(ctx: TurnContext) -> str:
    return ctx.core.profile.new_students_from(ctx.lang)


def _first(ctx: TurnContext) -> list[Reply]:
    profile = ctx.core.profile
    text = "\n".join((
        say("login.first.answer", ctx.lang),
        say("login.first.steps", ctx.lang, minutes=profile.one_time_link_minutes),
        say("login.first.next_time", ctx.lang),
        say("login.note", ctx.lang, text=_new_students(ctx)),
    ))
    buttons = (_symptom_button(Symptom.WHICH_ID, ctx), basic.topic_button(Intent.EMAIL_REGISTRATION, ctx.lang),
               basic.topic_button(Intent.SECOND_PASSWORD_RULES, ctx.lang), basic.menu_button(ctx.lang))
    return [Text(text, buttons)]


def _which_id(ctx: TurnContext) -> list[Reply]:
    lines = [say("login.which_id.answer", ctx.lang)]
    lines += [say("login.which_id.department", ctx.lang, department=department.name(ctx.lang),
                  location=department.credentials_location(ctx.lang))
              for department in ctx.core.profile.departments]
    lines.append(say("login.note", ctx.lang, text=_new_students(ctx)))
    ask = say("login.which_id.ask", ctx.lang) + "\n" + basic.contact_entry(ctx, Service.STUDENT_SUPPORT)
    buttons = (_symptom_button(Symptom.FIRST, ctx), _symptom_button(Symptom.REJECTED, ctx),
               basic.menu_button(ctx.lang))
    return [Text("\n".join(lines)), Text(ask, buttons)]


def _rejected(ctx: TurnContext) -> list[Reply]:
    browsers = ctx.core.profile.browsers
    text = "\n".join((
        say("login.rejected.answer", ctx.lang),
        say("login.rejected.checks", ctx.lang),
        "",
        say("login.rejected.also", ctx.lang, new_students=_new_students(ctx)),
        say("login.rejected.browsers", ctx.lang, pc=join_list(browsers.pc, ctx.lang),
            smartphone=join_list(browsers.smartphone, ctx.lang)),
    ))
    call = say("login.rejected.call", ctx.lang) + "\n" + basic.contact_entry(ctx, Service.CALL_CENTER)
    # An account the reset flow cannot fix needs a person: offer one.
    buttons = (basic.topic_button(Intent.SECOND_PASSWORD_RESET, ctx.lang), _symptom_button(Symptom.WHICH_ID, ctx),
               person_button(ctx, Reason.ACCOUNT), basic.topic_button(Intent.CONTACT, ctx.lang),
               basic.menu_button(ctx.lang))
    return [Text(text), Text(call, buttons)]


def _second_password(ctx: TurnContext) -> list[Reply]:
    text = "\n".join((
        say("login.second_password.answer", ctx.lang),
        t("passwords.summary", ctx.lang),
        say("login.second_password.change", ctx.lang),
        say("login.second_password.forgot", ctx.lang, minutes=ctx.core.profile.one_time_link_minutes),
    ))
    buttons = (basic.topic_button(Intent.SECOND_PASSWORD_RESET, ctx.lang),
               basic.topic_button(Intent.SECOND_PASSWORD_RULES, ctx.lang), basic.menu_button(ctx.lang))
    return [Text(text, buttons)]


def _logged_out(ctx: TurnContext) -> list[Reply]:
    text = say("login.logged_out.answer", ctx.lang) + "\n" + say("login.logged_out.after_use", ctx.lang)
    buttons = (_symptom_button(Symptom.REJECTED, ctx), basic.menu_button(ctx.lang))
    return [Text(text, buttons)]


_ANSWERS = {
    Symptom.FIRST: _first, Symptom.WHICH_ID: _which_id, Symptom.REJECTED: _rejected,
    Symptom.SECOND_PASSWORD: _second_password, Symptom.LOGGED_OUT: _logged_out,
}


def login_help(ctx: TurnContext) -> list[Reply]:
    """Answer the symptom the student tapped or named; otherwise offer the symptoms as buttons.

    A password pasted into the message is never repeated; the student is asked not to share it.
    """
    warning = password_warning(ctx)
    replies: list[Reply] = [Text(warning)] if warning else []
    symptom = _symptom_of(ctx)
    if symptom is not None:
        return replies + _ANSWERS[symptom](ctx)
    buttons = (*(_symptom_button(symptom, ctx) for symptom in Symptom),
               basic.topic_button(Intent.SECOND_PASSWORD_RESET, ctx.lang), basic.menu_button(ctx.lang))
    return [*replies, Text(say("login.intro", ctx.lang), buttons)]


def register(registry: HandlerRegistry) -> None:
    """Wire login_help (the pipeline also routes `login:*` button payloads to it)."""
    registry.register(Intent.LOGIN_HELP, login_help)
