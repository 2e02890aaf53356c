"""Turning reminders off (「通知停止」, "stop reminders") and back on, for the identified student."""

import re
import unicodedata

from core.reminders import set_reminders
from handlers import basic
from handlers.identity import identified_by_account_only
from handlers.messages import say
from handlers.replies import Reply, Text
from handlers.turn import TurnContext

# Matched on the NFKC-normalized, lower-cased text without spaces or end punctuation.
_OFF = re.compile(r"(通知|お知らせ|リマインド|リマインダー)(を)?(停止|止めて|とめて|オフ|不要)(して(ください)?)?|"
                  r"(stop|turnoff|disable|mute)(the|my|all)?(reminders?|notifications?)(please)?")
_ON = re.compile(r"(通知|お知らせ|リマインド|リマインダー)(を)?(再開|オン|受け取る|うけとる)(して(ください)?)?|"
                 r"(start|turnon|enable|resume)(the|my)?(reminders?|notifications?)(please)?")
_NOISE = re.compile(r"[\s。.,、!！?？]+")


def typed_switch(text: str | None) -> bool | None:
    """False for a request to stop reminders, True to turn them back on, None for anything else."""
    folded = _NOISE.sub("", unicodedata.normalize("NFKC", text or "").lower())
    if _OFF.fullmatch(folded):
        return False
    if _ON.fullmatch(folded):
        return True
    return None


def answer_switch(ctx: TurnContext) -> list[Reply] | None:
    """The answer to 「通知停止」 or 「通知再開」, or None when the message is neither."""
    wanted = typed_switch(ctx.message.text)
    if wanted is None:
        return None
    # Only a student known by a linked account gets reminders; a typed student number must not switch
    # someone else's reminders off.
    if ctx.state.student_id is None or not identified_by_account_only(ctx):
        return [Text(say("reminders.need_identity", ctx.lang), basic.main_menu(ctx.lang))]
    with ctx.core.transaction() as session:
        set_reminders(session, ctx.state.student_id, wanted)
    return [Text(say("reminders.started" if wanted else "reminders.stopped", ctx.lang), basic.main_menu(ctx.lang))]
