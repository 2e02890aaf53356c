"""Who the student is: a linked chat account (LINE, Slack) or a signed-in browser (the web chat); a typed student
number only asks for a sign-in link, mailed to the student's registered address."""

import re
from functools import partial
from typing import NoReturn

from core.identifiers import normalize_student_number
from core.links import request_web_sign_in, sign_in_reply
from core.masking import find_password_candidates
from core.models import Student
from handlers.forms import SlotRejected
from handlers.payloads import LinkAccount, SignedIn, encode
from handlers.turn import Channel, TurnContext
from intents.types import EntityType

# On these channels a student is known only through the linked chat account (LINE account linking, the
# Slack profile's email): a typed student number would let anyone act for anyone.
ACCOUNT_ONLY_CHANNELS = frozenset({Channel.LINE, Channel.SLACK})
LINK_ACCOUNT_PAYLOAD = encode(LinkAccount())  # the LINE channel answers it with the account-linking flow
SIGNED_IN_PAYLOAD = encode(SignedIn())  # the web page sends it when the browser comes back signed in
SIGN_IN_SENT = "sign_in_sent"  # the slot a form keeps once it has asked for a sign-in link

_NUMBER_LIKE = re.compile(r"(?=.*[0-9])[0-9A-Z]{4,12}")
# Two digits, a letter and a few more digits: a student number with a digit too many or too few.
_NEAR_NUMBER = re.compile(r"[0-9]{2}[A-Z][0-9]{1,7}")


def identified_by_account_only(ctx: TurnContext) -> bool:
    """True if this channel identifies students only through a linked account, never by a typed number."""
    return ctx.message.channel in ACCOUNT_ONLY_CHANNELS


def typed_student_number(ctx: TurnContext, area: str) -> str | None:
    """The student number this message gives (an entity or the bare text), normalized; None if it gives none.

    Args:
        ctx: the turn.
        area: the catalog area whose `no_passwords` and `student_number_format` texts explain a refusal.

    Raises:
        SlotRejected: `<area>.no_passwords` when the message holds something that looks like a password (it
            is neither used nor repeated), `<area>.student_number_format` for a number of the wrong shape.
    """
    text = ctx.message.text or ""
    profile = ctx.core.profile
    if _NEAR_NUMBER.fullmatch(normalize_student_number(text)) and not profile.student_number_regex.match(
            normalize_student_number(text)):
        raise SlotRejected(f"{area}.student_number_format")  # 「24M100」: a number mistyped, no password
    if find_password_candidates(text, profile.student_number_pattern):
        raise SlotRejected(f"{area}.no_passwords")
    entity = ctx.entity(EntityType.STUDENT_NUMBER)
    if entity is not None:
        return normalize_student_number(str(entity.value))
    number = normalize_student_number(text)
    if profile.student_number_regex.match(number):
        return number
    if _NUMBER_LIKE.fullmatch(number):
        raise SlotRejected(f"{area}.student_number_format")
    return None


def current_student(ctx: TurnContext) -> Student | None:
    """The student this conversation has identified, or None."""
    if ctx.state.student_id is None:
        return None
    with ctx.core.transaction() as session:
        return session.get(Student, ctx.state.student_id)


def mentions_password(ctx: TurnContext) -> bool:
    """True if the message holds something that looks like a pasted password."""
    return bool(find_password_candidates(ctx.message.text or "", ctx.core.profile.student_number_pattern))


def sign_in_link_sent(ctx: TurnContext) -> bool:
    """True once this form has asked for a sign-in link (its question then waits for the sign-in)."""
    return bool(ctx.state.slots.get(SIGN_IN_SENT))


def ask_for_sign_in_link(ctx: TurnContext, number: str, area: str) -> NoReturn:
    """A typed student number in a form that needs the student: mail a sign-in link for it after this answer
    (the answer is the same, and as quick, for any number) and say so.

    Raises:
        SlotRejected: always, `<area>.sign_in_sent` with the answer; the form's question stays open.
    """
    ctx.state.slots[SIGN_IN_SENT] = True
    # After the answer has gone out: what a registered number sets off (a lookup, a stored link, a mail) must
    # not make its answer slower than an unknown number's.
    ctx.core.later(partial(request_web_sign_in, ctx.core, number, ctx.lang))
    raise SlotRejected(f"{area}.sign_in_sent", text=sign_in_reply(ctx.core, ctx.lang))
