"""Neutral replies: what a handler says, which every channel renders in its own format."""

from dataclasses import dataclass

from handlers.payloads import AskIntent, encode
from intents.types import Intent


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


def intent_payload(intent: Intent) -> str:
    """The payload of a button that asks about an intent, e.g. `intent:payment_methods`."""
    return encode(AskIntent(intent))


def to_json(replies: list[Reply]) -> list[dict[str, object]]:
    """Replies as JSON-ready dicts, for a message that is stored now and sent later (a relay, a reminder)."""
    def buttons(items: tuple[QuickReply, ...]) -> list[list[str]]:
        return [[button.label, button.payload] for button in items]

    stored: list[dict[str, object]] = []
    for reply in replies:
        if isinstance(reply, Text):
            stored.append({"kind": "text", "text": reply.text, "buttons": buttons(reply.quick_replies)})
        elif isinstance(reply, Link):
            stored.append({"kind": "link", "label": reply.label, "url": reply.url, "text": reply.text})
        else:
            stored.append({"kind": "card", "title": reply.title, "fields": [list(row) for row in reply.fields],
                           "footer": reply.footer, "buttons": buttons(reply.quick_replies)})
    return stored


def from_json(stored: list[dict]) -> list[Reply]:
    """The replies `to_json` stored; a ValueError for anything else."""
    def buttons(items: list) -> tuple[QuickReply, ...]:
        return tuple(QuickReply(str(label), str(payload)) for label, payload in items)

    replies: list[Reply] = []
    for item in stored:
        kind = item.get("kind")
        if kind == "text":
            replies.append(Text(str(item["text"]), buttons(item.get("buttons") or [])))
        elif kind == "link":
            replies.append(Link(str(item["label"]), str(item["url"]), str(item.get("text") or "")))
        elif kind == "card":
            replies.append(Card(str(item["title"]), tuple((str(a), str(b)) for a, b in item["fields"]),
                                str(item.get("footer") or ""), buttons(item.get("buttons") or [])))
        else:
            raise ValueError(f"not a stored reply: {kind!r}")
    return replies
