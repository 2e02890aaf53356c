"""Neutral replies rendered as LINE Messaging API message objects, batched into API calls of at most five.

The output is the API's own JSON (camelCase), so it can be stored with the event and sent later unchanged.
Limits are LINE's, counted as LINE counts them (UTF-16 code units):
https://developers.line.biz/en/reference/messaging-api/#message-objects
"""

import json
import logging
from collections.abc import Sequence
from typing import Any

from handlers.replies import Card, Link, QuickReply, Reply, Text

log = logging.getLogger(__name__)

MAX_MESSAGES_PER_CALL = 5
MAX_TEXT_UNITS = 5000
MAX_QUICK_REPLIES = 13
MAX_LABEL_UNITS = 20  # quick-reply and button labels
MAX_DISPLAY_TEXT_UNITS = 300
MAX_POSTBACK_DATA = 300
MAX_ALT_TEXT_UNITS = 400  # the API takes 1,500; notifications show far less
MAX_FLEX_BYTES = 30_000  # "30 KB" of JSON per Flex container
MAX_URI = 1000
ELLIPSIS = "…"
MUTED = "#777777"

Message = dict[str, Any]


def utf16_units(text: str) -> int:
    """The length LINE counts: UTF-16 code units (an emoji outside the BMP counts two)."""
    return len(text.encode("utf-16-le")) // 2


def clip(text: str, units: int) -> str:
    """`text` cut to at most `units` UTF-16 code units, ending in an ellipsis when it was cut."""
    if utf16_units(text) <= units:
        return text
    return _take(text, units - 1)[0].rstrip() + ELLIPSIS


def split_text(text: str, limit: int = MAX_TEXT_UNITS) -> list[str]:
    """`text` in chunks of at most `limit` UTF-16 units, cut between lines where possible.

    A single line longer than the limit is cut inside the line, never inside a surrogate pair. Chunks of
    only whitespace are dropped (LINE refuses an empty text).
    """
    chunks: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        if utf16_units(current + line) <= limit:
            current += line
            continue
        if current:
            chunks.append(current)
            current = ""
        while utf16_units(line) > limit:
            head, line = _take(line, limit)
            chunks.append(head)
        current = line
    if current:
        chunks.append(current)
    return [chunk.rstrip("\n") for chunk in chunks if chunk.strip()]


def _take(text: str, units: int) -> tuple[str, str]:
    """The longest head of `text` within `units` UTF-16 units, and the rest."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            return text[:index], text[index:]
    return text, ""


def render(replies: Sequence[Reply]) -> list[Message]:
    """The LINE messages for `replies`, in order; the last buttons offered become the quick replies of the
    last message (LINE shows only the last message's quick replies).

    Raises:
        TypeError: for a reply kind LINE cannot render.
    """
    messages: list[Message] = []
    buttons: tuple[QuickReply, ...] = ()
    for reply in replies:
        match reply:
            case Text(text=text, quick_replies=offered):
                messages.extend({"type": "text", "text": chunk} for chunk in split_text(text))
            case Link():
                messages.append(link_message(reply))
                offered = ()
            case Card(quick_replies=offered):
                messages.append(card_message(reply))
            case _:
                raise TypeError(f"LINE cannot render {type(reply).__name__}")
        buttons = offered or buttons
    items = quick_reply_items(buttons)
    if messages and items:
        messages[-1]["quickReply"] = {"items": items}
    return messages


def to_parts(replies: Sequence[Reply]) -> list[dict[str, Any]]:
    """The API calls for `replies`: `{"messages": [...]}` with at most five messages each ([] for none)."""
    messages = render(replies)
    return [{"messages": messages[start:start + MAX_MESSAGES_PER_CALL]}
            for start in range(0, len(messages), MAX_MESSAGES_PER_CALL)]


def quick_reply_items(buttons: Sequence[QuickReply]) -> list[dict[str, Any]]:
    """Postback quick-reply items (the chat shows the tapped label); at most 13, the rest dropped."""
    items = []
    for button in buttons:
        if not button.label.strip() or len(button.payload) > MAX_POSTBACK_DATA:
            log.warning("LINE quick reply %r dropped: empty label or payload over %d characters",
                        button.payload[:40], MAX_POSTBACK_DATA)
            continue
        items.append({"type": "action", "action": {
            "type": "postback", "label": clip(button.label, MAX_LABEL_UNITS), "data": button.payload,
            "displayText": clip(button.label, MAX_DISPLAY_TEXT_UNITS),
        }})
    if len(items) > MAX_QUICK_REPLIES:
        log.warning("LINE shows at most %d quick replies: %d dropped", MAX_QUICK_REPLIES,
                    len(items) - MAX_QUICK_REPLIES)
    return items[:MAX_QUICK_REPLIES]


def link_message(link: Link) -> Message:
    """A Flex bubble with the text and one button that opens the URL; plain text when LINE cannot open it."""
    text = link.text or link.label
    if not link.url.startswith(("https://", "http://")) or len(link.url) > MAX_URI:
        return {"type": "text", "text": clip(f"{text}\n{link.label}: {link.url}", MAX_TEXT_UNITS)}
    bubble = {
        "type": "bubble",
        "body": {"type": "box", "layout": "vertical", "contents": [_flex_text(text)]},
        "footer": {"type": "box", "layout": "vertical", "contents": [{
            "type": "button", "style": "primary", "height": "sm",
            "action": {"type": "uri", "label": clip(link.label, MAX_LABEL_UNITS), "uri": link.url},
        }]},
    }
    return {"type": "flex", "altText": clip(f"{text}\n{link.url}", MAX_ALT_TEXT_UNITS), "contents": bubble}


def card_message(card: Card) -> Message:
    """A Flex bubble: the title, one row per field, the footer; plain text if the bubble would be too big."""
    rows = [{
        "type": "box", "layout": "baseline", "spacing": "sm", "contents": [
            _flex_text(label, flex=2, size="sm", color=MUTED),
            _flex_text(value, flex=3, size="sm"),
        ],
    } for label, value in card.fields]
    bubble: dict[str, Any] = {
        "type": "bubble",
        "header": {"type": "box", "layout": "vertical", "contents": [_flex_text(card.title, weight="bold")]},
        "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": rows or [_flex_text("-")]},
    }
    if card.footer:
        bubble["footer"] = {"type": "box", "layout": "vertical",
                            "contents": [_flex_text(card.footer, size="xs", color=MUTED)]}
    text = "\n".join([card.title, *(f"{label}: {value}" for label, value in card.fields)]
                     + ([card.footer] if card.footer else []))
    if len(json.dumps(bubble, ensure_ascii=False).encode("utf-8")) > MAX_FLEX_BYTES:
        log.warning("card %r too big for a Flex bubble: sent as text", card.title[:40])
        return {"type": "text", "text": clip(text, MAX_TEXT_UNITS)}
    return {"type": "flex", "altText": clip(text, MAX_ALT_TEXT_UNITS), "contents": bubble}


def _flex_text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "text", "text": text or "-", "wrap": True, **style}
