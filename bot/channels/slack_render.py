"""Slack rendering: neutral replies as Block Kit messages, with a plain fallback text for notifications."""

import re
from typing import Any

from bot.pipeline import reply_text
from handlers.replies import Card, Link, QuickReply, Reply, Text

# A tapped quick reply comes back as a block_actions payload carrying one of these action ids.
REPLY_ACTION_PREFIX = "madoguchi.reply."
REPLY_ACTION = re.compile(r"^madoguchi\.reply\.\d+$")
# A link button opens its URL in the browser; Slack still reports the click, which is acknowledged only.
LINK_ACTION = "madoguchi.link"

# Block Kit's limits (Slack's reference for each block and element); longer content is split or shortened.
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_CONTEXT_TEXT = 3000
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_BUTTON_URL = 3000
MAX_BUTTONS = 25
MAX_BLOCKS = 50
MAX_FALLBACK_TEXT = 3000  # the notification text; Slack truncates messages much longer than this


def render(replies: list[Reply]) -> list[dict[str, Any]]:
    """Each reply as one Slack message: `{"text": fallback for notifications, "blocks": [...]}`.

    Raises:
        TypeError: for a reply kind Slack cannot render (an error in tests, never a silent drop).
        ValueError: for a button payload longer than Slack carries back.
    """
    messages = []
    for reply in replies:
        match reply:
            case Text(text=text, quick_replies=buttons):
                blocks = [*_sections(text), *_actions(buttons)]
            case Link(label=label, url=url, text=text):
                blocks = [_link_section(text or label, label, url)]
            case Card(title=title, fields=fields, footer=footer, quick_replies=buttons):
                blocks = [header(title), *_field_sections(fields), *_context(footer), *_actions(buttons)]
            case _:
                raise TypeError(f"the Slack channel cannot render {type(reply).__name__}")
        if len(blocks) > MAX_BLOCKS:
            raise ValueError(f"a Slack message holds at most {MAX_BLOCKS} blocks, this reply needs {len(blocks)}")
        messages.append({"text": shorten(escape(_fallback(reply)), MAX_FALLBACK_TEXT), "blocks": blocks})
    return messages


def _fallback(reply: Reply) -> str:
    """The notification text: the reply as transcript text, or its button labels when it has no text."""
    return reply_text(reply) or " / ".join(button.label for button in getattr(reply, "quick_replies", ()))


def escape(text: str) -> str:
    """Text safe inside Slack mrkdwn: the three characters Slack reserves for its markup are escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _sections(text: str) -> list[dict[str, Any]]:
    if not text.strip():
        return []  # a section's text may not be empty; the buttons alone are still sent
    return [{"type": "section", "text": {"type": "mrkdwn", "text": chunk}}
            for chunk in _chunks(escape(text), MAX_SECTION_TEXT)]


def _chunks(text: str, limit: int) -> list[str]:
    """Split at paragraph breaks, then line breaks, so that no piece exceeds `limit` characters."""
    if len(text) <= limit:
        return [text]
    for separator in ("\n\n", "\n"):
        cut = text.rfind(separator, 0, limit)
        if cut > 0:
            return [text[:cut], *_chunks(text[cut + len(separator):], limit)]
    return [text[:limit], *_chunks(text[limit:], limit)]


def _actions(buttons: tuple[QuickReply, ...]) -> list[dict[str, Any]]:
    return actions(buttons, REPLY_ACTION_PREFIX)


def actions(buttons: tuple[QuickReply, ...], action_prefix: str) -> list[dict[str, Any]]:
    """Buttons as `actions` blocks of at most MAX_BUTTONS each; a button's action id is the prefix and its
    place (`madoguchi.reply.3`), its value the payload a click brings back.

    Raises:
        ValueError: for a button payload longer than Slack carries back.
    """
    elements = [button_element(f"{action_prefix}{index}", button.label, button.payload)
                for index, button in enumerate(buttons)]
    return [{"type": "actions", "elements": elements[start:start + MAX_BUTTONS]}
            for start in range(0, len(elements), MAX_BUTTONS)]


def button_element(action_id: str, label: str, value: str) -> dict[str, Any]:
    """One Block Kit button whose click comes back as a block_actions payload carrying `value`.

    Raises:
        ValueError: for a value longer than Slack carries back.
    """
    if len(value) > MAX_BUTTON_VALUE:
        raise ValueError(f"a button payload is at most {MAX_BUTTON_VALUE} characters: {value[:40]}…")
    return {"type": "button", "action_id": action_id, "value": value,
            "text": {"type": "plain_text", "text": shorten(label, MAX_BUTTON_TEXT), "emoji": True}}


def _link_section(text: str, label: str, url: str) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": shorten(escape(text), MAX_SECTION_TEXT)},
        "accessory": {"type": "button", "action_id": LINK_ACTION, "url": url[:MAX_BUTTON_URL],
                      "text": {"type": "plain_text", "text": shorten(label, MAX_BUTTON_TEXT), "emoji": True}},
    }


def header(title: str) -> dict[str, Any]:
    """A header block (plain text, shortened to Block Kit's limit)."""
    return {"type": "header", "text": {"type": "plain_text", "text": shorten(title, MAX_HEADER_TEXT), "emoji": True}}


def _field_sections(fields: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    texts = [{"type": "mrkdwn", "text": shorten(f"*{escape(label)}*\n{escape(value)}", MAX_FIELD_TEXT)}
             for label, value in fields]
    return [{"type": "section", "fields": texts[start:start + MAX_FIELDS]}
            for start in range(0, len(texts), MAX_FIELDS)]


def _context(footer: str) -> list[dict[str, Any]]:
    if not footer:
        return []
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": shorten(escape(footer), MAX_CONTEXT_TEXT)}]}]


def shorten(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with an ellipsis when it is longer."""
    return text if len(text) <= limit else text[:limit - 1] + "…"
