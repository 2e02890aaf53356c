"""Neutral replies: what a handler says, which every channel renders in its own format."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QuickReply:
    """A button the student can tap instead of typing; `payload` comes back as the next message."""

    label: str
    payload: str


@dataclass(frozen=True, slots=True)
class Text:
    """A text message, optionally followed by quick-reply buttons."""

    text: str
    quick_replies: tuple[QuickReply, ...] = ()


@dataclass(frozen=True, slots=True)
class Link:
    """A link the student opens (a payment page, the service's login page)."""

    label: str
    url: str
    text: str = ""


@dataclass(frozen=True, slots=True)
class Card:
    """A titled summary with label/value rows (an order summary, a pickup window)."""

    title: str
    fields: tuple[tuple[str, str], ...]
    footer: str = ""
    quick_replies: tuple[QuickReply, ...] = ()


Reply = Text | Link | Card

REPLY_KINDS: tuple[type, ...] = (Text, Link, Card)


def intent_payload(intent: str) -> str:
    """The payload of a button that asks about an intent, e.g. `intent:payment_methods`."""
    return f"intent:{intent}"
