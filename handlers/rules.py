"""The second password's rules, and a check of a password pasted into the chat that never repeats it."""

import re
import unicodedata

from core.i18n import t
from core.masking import find_password_candidates
from core.passwords import check_second_password
from handlers import basic
from handlers.messages import say
from handlers.registry import HandlerRegistry
from handlers.replies import Reply, Text
from handlers.turn import TurnContext
from intents.types import Intent

# Changing the second password while logged in (the guide's 2.4 (b)), as opposed to its rules alone.
_CHANGE = re.compile(r"(?:パスワード|パス|ぱすわーど|pw|password).{0,8}(?:変更|変え|かえ|へんこう)|"
                     r"(?:change|update|reset to a new).{0,24}(?:password|pw)|(?:password|pw).{0,12}change")
# "How do I change it?" asked about the second password (the intent says what "it" is), unless the message
# names another thing to change (「メアドの変更は？」 beside a question about the rules).
_CHANGE_IT = re.compile(r"変更|変え|かえ|へんこう|change|update")
_SOMETHING_ELSE = re.compile(r"メール|メアド|アドレス|mail|address")
# The guide's five rules, in the guide's order, as rule codes of core.passwords.
GUIDE_RULES = ("too_short", "no_upper", "no_lower", "no_digit", "invalid_char")


def pasted_passwords(ctx: TurnContext) -> list[str]:
    """What in the message looks like a password someone pasted (never to be repeated in a reply)."""
    return find_password_candidates(ctx.message.text or "", ctx.core.profile.student_number_pattern)


def password_warning(ctx: TurnContext) -> str | None:
    """A request not to share passwords in the chat when the message seems to hold one, else None."""
    return say("rules.never_share", ctx.lang) if pasted_passwords(ctx) else None


def _rules_text(ctx: TurnContext) -> str:
    rules = "\n".join(basic.bullet(t(f"passwords.rules.{code}", ctx.lang), ctx.lang) for code in GUIDE_RULES)
    return "\n".join((say("rules.intro", ctx.lang), rules, say("rules.fields", ctx.lang)))


def _check_text(ctx: TurnContext, candidates: list[str]) -> str:
    """Which rules each candidate breaks, naming candidates by position only."""
    lines = [say("rules.checked", ctx.lang)]
    for position, candidate in enumerate(candidates, start=1):
        label = say("rules.candidate", ctx.lang, n=position) if len(candidates) > 1 else ""
        broken = check_second_password(candidate)
        if broken:
            lines.append(label + say("rules.breaks", ctx.lang))
            lines += [basic.bullet(t(f"passwords.rules.{code}", ctx.lang), ctx.lang) for code in broken]
        else:
            lines.append(label + say("rules.meets", ctx.lang))
    return "\n".join(lines)


def second_password_rules(ctx: TurnContext) -> list[Reply]:
    """The guide's rules; a pasted password is checked against them but never shown, and the student is
    told not to share passwords in the chat (the pipeline masks it in the stored transcript). A student who
    wants to change the second password gets the guide's steps for that (2.4 (b)) first."""
    buttons = basic.follow_ups(ctx.lang, Intent.SECOND_PASSWORD_RESET, Intent.LOGIN_HELP)
    candidates = pasted_passwords(ctx)
    text = unicodedata.normalize("NFKC", ctx.message.text or "").lower()
    if not candidates and (_CHANGE.search(text) or (_CHANGE_IT.search(text) and not _SOMETHING_ELSE.search(text))):
        return [Text(say("rules.change_steps", ctx.lang)), Text(_rules_text(ctx), buttons)]
    if not candidates:
        return [Text(_rules_text(ctx) + "\n" + say("rules.change", ctx.lang), buttons)]
    return [
        Text(_check_text(ctx, candidates) + "\n\n" + say("rules.never_share", ctx.lang)),
        Text(_rules_text(ctx), buttons),
    ]


def register(registry: HandlerRegistry) -> None:
    """Wire second_password_rules."""
    registry.register(Intent.SECOND_PASSWORD_RULES, second_password_rules)
