"""Button payloads: what a tapped button means, as typed values, and the one place their text is written and read.

A payload travels as text (LINE postback data, Slack action values, the web chat's `payload`) and is stored and
replayed (offered buttons, transcripts, inbox events), so its spelling never changes: `<namespace>:<rest>`, e.g.
`intent:payment_methods`, `form:set:copies:2`, `handoff:feedback:good`.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from core.enums import Language
from core.handoffs import Reason
from intents.types import Intent


class Namespace(StrEnum):
    """The part of a payload before its first colon: which kind of button sent it."""

    INTENT = "intent"  # a topic button: asks about an intent
    FORM = "form"  # a guided form's buttons: start, answer, change, cancel, resume
    LOGIN = "login"  # a symptom of the login-help menu
    LANG = "lang"  # switches the conversation's language
    HANDOFF = "handoff"  # a person: ask for one, stop waiting, rate the help
    UNPAID = "unpaid"  # cancels an order that is not paid yet
    LINK = "link"  # LINE account linking (the LINE channel answers these itself)
    SIGNIN = "signin"  # sent by the web page when the browser comes back signed in


class Symptom(StrEnum):
    """What goes wrong when logging in; each has its own answer (handlers.login) and its own button."""

    FIRST = "first"  # logging in for the first time
    WHICH_ID = "which_id"  # which ID and password, and where to find them
    REJECTED = "rejected"  # the ID or password is not accepted
    SECOND_PASSWORD = "second_password"  # what the second password is, changing it, forgetting it
    LOGGED_OUT = "logged_out"  # logged out automatically, or how to log out


class Rating(StrEnum):
    """The student's one-tap answer to "did the person help?" after an agent closes a ticket."""

    GOOD = "good"
    BAD = "bad"


@dataclass(frozen=True, slots=True)
class AskIntent:
    """`intent:<intent>`: a topic button, answered as if the question had been typed."""

    intent: Intent


@dataclass(frozen=True, slots=True)
class StartForm:
    """`form:start:<form>`: starts a guided form."""

    form: str


@dataclass(frozen=True, slots=True)
class SetSlot:
    """`form:set:<slot>:<value>`: answers a form's question; the slot's name holds no colon, the value may."""

    slot: str
    value: str


@dataclass(frozen=True, slots=True)
class ChangeSlot:
    """`form:change:<slot>`: asks a form's question again."""

    slot: str


@dataclass(frozen=True, slots=True)
class CancelForm:
    """`form:cancel`: leaves the form."""


@dataclass(frozen=True, slots=True)
class ResumeForm:
    """`form:resume`: goes on with the form after a detour."""


@dataclass(frozen=True, slots=True)
class ShowSymptom:
    """`login:<symptom>`: the answer to one login problem."""

    symptom: Symptom


@dataclass(frozen=True, slots=True)
class SwitchLanguage:
    """`lang:<code>`: the conversation goes on in this language."""

    lang: Language


@dataclass(frozen=True, slots=True)
class AskPerson:
    """`handoff:<reason>`: hands the conversation to a person."""

    reason: Reason


@dataclass(frozen=True, slots=True)
class StopWaiting:
    """`handoff:cancel`: leaves the queue for a person and returns to the bot."""


@dataclass(frozen=True, slots=True)
class RateHandoff:
    """`handoff:feedback:<good|bad>`: the satisfaction answer after an agent closed the ticket."""

    rating: Rating


@dataclass(frozen=True, slots=True)
class CancelUnpaid:
    """`unpaid:cancel:<order number>`: cancels the student's order that is not paid yet."""

    number: str


@dataclass(frozen=True, slots=True)
class LinkAccount:
    """`link:start`: starts LINE account linking."""


@dataclass(frozen=True, slots=True)
class UnlinkAccount:
    """`link:unlink`: unlinks the LINE account."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """`signin:done`: the web page's browser came back from the mailed sign-in link."""


Payload = (AskIntent | StartForm | SetSlot | ChangeSlot | CancelForm | ResumeForm | ShowSymptom | SwitchLanguage
           | AskPerson | StopWaiting | RateHandoff | CancelUnpaid | LinkAccount | UnlinkAccount | SignedIn)

# Buttons of a topic's own guided steps: the namespace names the intent that answers them.
NAMESPACE_TOPICS: dict[Namespace, Intent] = {
    Namespace.LOGIN: Intent.LOGIN_HELP, Namespace.LANG: Intent.LANGUAGE, Namespace.HANDOFF: Intent.HUMAN_AGENT,
    Namespace.UNPAID: Intent.REFUND,
}


def encode(payload: Payload) -> str:
    """The text a button carries for `payload`.

    Raises:
        ValueError: a SetSlot whose slot name holds a colon (it could not be read back).
    """
    match payload:
        case AskIntent(intent):
            return f"{Namespace.INTENT}:{intent.value}"
        case StartForm(form):
            return f"{Namespace.FORM}:start:{form}"
        case SetSlot(slot, value):
            if ":" in slot:
                raise ValueError(f"a slot name with a colon cannot be a payload: {slot!r}")
            return f"{Namespace.FORM}:set:{slot}:{value}"
        case ChangeSlot(slot):
            return f"{Namespace.FORM}:change:{slot}"
        case CancelForm():
            return f"{Namespace.FORM}:cancel"
        case ResumeForm():
            return f"{Namespace.FORM}:resume"
        case ShowSymptom(symptom):
            return f"{Namespace.LOGIN}:{symptom.value}"
        case SwitchLanguage(lang):
            return f"{Namespace.LANG}:{lang.value}"
        case AskPerson(reason):
            return f"{Namespace.HANDOFF}:{reason.value}"
        case StopWaiting():
            return f"{Namespace.HANDOFF}:cancel"
        case RateHandoff(rating):
            return f"{Namespace.HANDOFF}:feedback:{rating.value}"
        case CancelUnpaid(number):
            return f"{Namespace.UNPAID}:cancel:{number}"
        case LinkAccount():
            return f"{Namespace.LINK}:start"
        case UnlinkAccount():
            return f"{Namespace.LINK}:unlink"
        case SignedIn():
            return f"{Namespace.SIGNIN}:done"
    raise TypeError(f"not a payload: {payload!r}")


def namespace_of(text: str) -> Namespace | None:
    """The namespace `text` is written in (`form` for `form:bogus` too), or None when it names none of ours."""
    head, colon, _ = text.partition(":")
    return Namespace(head) if colon and head in set(Namespace) else None


def decode(text: str) -> Payload | None:
    """The payload `text` stands for; None for anything else (typed text, a stale or malformed payload, an
    unknown intent or reason). `decode(encode(p)) == p` for every payload `p`."""
    namespace = namespace_of(text)
    if namespace is None:
        return None
    return _READERS[namespace](text.partition(":")[2])


def topic_of(text: str) -> Intent | None:
    """The intent that answers a tapped payload: an `intent:` button's own, or its namespace's (`login:…` is
    login help, also for a symptom since removed); None for other payloads and for text."""
    payload = decode(text)
    if isinstance(payload, AskIntent):
        return payload.intent
    namespace = namespace_of(text)
    return NAMESPACE_TOPICS.get(namespace) if namespace is not None else None


_Member = TypeVar("_Member", bound=StrEnum)


def _member(kind: type[_Member], value: str) -> _Member | None:
    try:
        return kind(value)
    except ValueError:
        return None


def _intent(rest: str) -> Payload | None:
    intent = _member(Intent, rest)
    return AskIntent(intent) if intent is not None else None


def _form(rest: str) -> Payload | None:
    if rest == "cancel":
        return CancelForm()
    if rest == "resume":
        return ResumeForm()
    step, colon, argument = rest.partition(":")
    if not colon:
        return None
    if step == "start":
        return StartForm(argument)
    if step == "change":
        return ChangeSlot(argument)
    slot, colon, value = argument.partition(":")
    return SetSlot(slot, value) if step == "set" and colon else None


def _login(rest: str) -> Payload | None:
    symptom = _member(Symptom, rest)
    return ShowSymptom(symptom) if symptom is not None else None


def _lang(rest: str) -> Payload | None:
    lang = _member(Language, rest)
    return SwitchLanguage(lang) if lang is not None else None


def _handoff(rest: str) -> Payload | None:
    if rest == "cancel":
        return StopWaiting()
    step, colon, answer = rest.partition(":")
    if step == "feedback" and colon:
        rating = _member(Rating, answer)
        return RateHandoff(rating) if rating is not None else None
    reason = _member(Reason, rest)
    return AskPerson(reason) if reason is not None else None


def _unpaid(rest: str) -> Payload | None:
    step, colon, number = rest.partition(":")
    return CancelUnpaid(number) if step == "cancel" and colon else None


def _link(rest: str) -> Payload | None:
    if rest == "start":
        return LinkAccount()
    return UnlinkAccount() if rest == "unlink" else None


def _signin(rest: str) -> Payload | None:
    return SignedIn() if rest == "done" else None


_READERS = {
    Namespace.INTENT: _intent, Namespace.FORM: _form, Namespace.LOGIN: _login, Namespace.LANG: _lang,
    Namespace.HANDOFF: _handoff, Namespace.UNPAID: _unpaid, Namespace.LINK: _link, Namespace.SIGNIN: _signin,
}
