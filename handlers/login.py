"""Login troubleshooting, guided by symptom: first login, where the ID is, rejected, second password, logged out."""

import re
import unicodedata
from datetime import date, timedelta

from core.enums import Service
from core.formatting import join_list
from core.handoffs import Reason
from core.i18n import t
from core.profile import Department
from handlers import basic
from handlers.handoff import person_button
from handlers.messages import say
from handlers.payloads import Namespace, ShowSymptom, Symptom, decode, encode, namespace_of
from handlers.pickup import format_day
from handlers.registry import HandlerRegistry
from handlers.replies import QuickReply, Reply, Text
from handlers.rules import password_warning
from handlers.turn import TurnContext
from intents.types import EntityType, Intent


def symptom_payload(symptom: Symptom) -> str:
    """The payload of a symptom button, e.g. `login:first`; the pipeline routes it to login_help."""
    return encode(ShowSymptom(symptom))


# Words that name a symptom in a typed message, checked in this order; the first match wins. They only
# pick which answer to show first (every answer offers the others), so a miss costs one tap.
_SYMPTOM_WORDS: tuple[tuple[Symptom, re.Pattern[str]], ...] = (
    (Symptom.LOGGED_OUT, re.compile(
        r"ログアウト|タイムアウト|戻され|"
        r"log ?out|logs? me out|logged (me )?out|kicked (me )?out|signs? me out|signed me out|timed? ?out|"
        r"timing out|by itself|automatically")),
    (Symptom.FIRST, re.compile(
        r"初めて|はじめて|初回|新入生|入学式|入学した|ログイン方法|初回登録|アカウントを作|"
        r"(?:一|1|いっ)(?:回|度)もログイン|ログインしたことが?(?:ない|ありません)|"
        r"first|freshman|new student|entrance ceremony|matriculation|just enrolled|how (do i|to) log ?in|"
        r"register first|create an account|never (?:logged|signed) in|not logged in (?:yet|before)")),
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
    if namespace_of(payload) is Namespace.LOGIN:  # a symptom button: a stale one names no symptom, whatever the text
        tapped = decode(payload)
        return tapped.symptom if isinstance(tapped, ShowSymptom) else None
    text = unicodedata.normalize("NFKC", ctx.message.text or "").lower()
    return next((symptom for symptom, words in _SYMPTOM_WORDS if words.search(text)), None)


# A department named in a message (「看護学科です」, "I'm in nursing"), by the profile's department code.
_DEPARTMENT_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("graduate", re.compile(
        r"大学院|院生|修士|博士|研究科|grad(?:uate)? (?:school|student)|\bgrad\b|master|ph\.?d|doctoral")),
    ("nursing", re.compile(r"看護|かんご|nursing|nurse")),
    ("occupational_health", re.compile(r"産業衛生|さんぎょうえいせい|産衛|occupational")),
    ("medicine", re.compile(r"医学科|医学部|いがく|医科|\bmed(?:ical|icine)?\b|\bmd\b")),
)
# A new question asked after the login menu is taken as one when the classifier is this sure of it.
NEW_QUESTION = 0.6
# `state.expect` after a login answer (the menu of symptoms, or one symptom's answer): a department or a
# symptom typed next is read as the answer to it.
MENU = "login.menu"


def _department_of(ctx: TurnContext) -> Department | None:
    """The profile's department the message names, or None."""
    text = unicodedata.normalize("NFKC", ctx.message.text or "").lower()
    code = next((code for code, words in _DEPARTMENT_WORDS if words.search(text)), None)
    return next((department for department in ctx.core.profile.departments if department.code == code), None)


def _symptom_button(symptom: Symptom, ctx: TurnContext) -> QuickReply:
    return QuickReply(say(f"login.buttons.{symptom.value}", ctx.lang), symptom_payload(symptom))


def _new_students(ctx: TurnContext) -> str:
    return ctx.core.profile.new_students_from(ctx.lang)


def _ceremony_day(ctx: TurnContext) -> str | None:
    """「入学式は4月5日でした」: the day the service opens to the student (the day after, from the afternoon)."""
    entity = ctx.entity(EntityType.DATETIME)
    text = unicodedata.normalize("NFKC", ctx.message.text or "").lower()
    if entity is None or not re.search(r"入学式|入学|entrance|ceremony|enrol", text):
        return None
    try:
        day = date.fromisoformat(str(entity.value)[:10])
    except ValueError:
        return None
    return say("login.first.from_ceremony", ctx.lang, ceremony=format_day(day, ctx.lang),
               day=format_day(day + timedelta(days=1), ctx.lang))


def _first(ctx: TurnContext) -> list[Reply]:
    profile = ctx.core.profile
    ceremony = _ceremony_day(ctx)
    yours = _department_of(ctx)  # 「看護学科1年です。初めてログインします」: where that department's ID is posted
    board = [say("login.which_id.yours", ctx.lang, department=yours.name(ctx.lang),
                 location=yours.credentials_location(ctx.lang))] if yours is not None else []
    text = "\n".join((
        *([ceremony] if ceremony else []),
        say("login.first.answer", ctx.lang),
        *board,
        say("login.first.steps", ctx.lang, minutes=profile.one_time_link_minutes),
        say("login.first.next_time", ctx.lang),
        say("login.note", ctx.lang, text=_new_students(ctx)),
    ))
    buttons = (_symptom_button(Symptom.WHICH_ID, ctx), basic.topic_button(Intent.EMAIL_REGISTRATION, ctx.lang),
               basic.topic_button(Intent.SECOND_PASSWORD_RULES, ctx.lang), basic.menu_button(ctx.lang))
    return [Text(text, buttons)]


def _which_id(ctx: TurnContext) -> list[Reply]:
    yours = _department_of(ctx)
    if yours is not None:  # the student said which department: that board only
        lines = [say("login.which_id.yours", ctx.lang, department=yours.name(ctx.lang),
                     location=yours.credentials_location(ctx.lang)), say("login.which_id.user_id", ctx.lang)]
    else:
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
    ctx.state.expect = MENU  # 「大学院生です」 or "I'm in nursing" next is read as the answer to this
    symptom = _symptom_of(ctx)
    if symptom is not None:
        return replies + _ANSWERS[symptom](ctx)
    buttons = (*(_symptom_button(symptom, ctx) for symptom in Symptom),
               basic.topic_button(Intent.SECOND_PASSWORD_RESET, ctx.lang), basic.menu_button(ctx.lang))
    return [*replies, Text(say("login.intro", ctx.lang), buttons)]


def _answer_to_menu(ctx: TurnContext) -> list[Reply] | None:
    """After the menu of symptoms: a typed department (「看護学科です」, "I'm in nursing, 2nd year") or a symptom
    answers it; a clear new question does not."""
    understanding = ctx.understanding
    if understanding.intent not in (Intent.LOGIN_HELP, Intent.OUT_OF_SCOPE, Intent.GREET) \
            and understanding.confidence >= NEW_QUESTION:
        return None
    symptom = _symptom_of(ctx)
    if symptom is None and _department_of(ctx) is None:
        return None
    return _ANSWERS[symptom or Symptom.WHICH_ID](ctx)


def register(registry: HandlerRegistry) -> None:
    """Wire login_help (the pipeline also routes `login:*` button payloads to it) and the answer to its menu."""
    registry.register(Intent.LOGIN_HELP, login_help)
    registry.expect(MENU, Intent.LOGIN_HELP, _answer_to_menu)
