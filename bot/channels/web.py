"""The web chat channel: the JSON of POST /api/chat in, and neutral replies out as JSON."""

from dataclasses import dataclass
from typing import Any

from core.enums import Language
from handlers.replies import Card, Link, Reply, Text
from handlers.turn import Channel, IncomingMessage

MAX_USER_ID = 128
MAX_TEXT = 2000
MAX_PAYLOAD = 200


@dataclass(frozen=True)
class BadChatRequest(Exception):
    """The request body is not a chat message; `field` names what is wrong."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


def to_message(body: Any) -> IncomingMessage:
    """Validate the JSON body `{"user", "text" | "payload", "lang"?}` and normalize it.

    Raises:
        BadChatRequest: naming the bad field.
    """
    if not isinstance(body, dict):
        raise BadChatRequest("body", "must be a JSON object")
    user = body.get("user")
    if not isinstance(user, str) or not user.strip() or len(user) > MAX_USER_ID:
        raise BadChatRequest("user", f"must be a non-empty string of at most {MAX_USER_ID} characters")
    text, payload, lang = body.get("text"), body.get("payload"), body.get("lang")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
        raise BadChatRequest("text", f"must be a string of at most {MAX_TEXT} characters")
    if payload is not None and (not isinstance(payload, str) or len(payload) > MAX_PAYLOAD):
        raise BadChatRequest("payload", f"must be a string of at most {MAX_PAYLOAD} characters")
    if text is None and payload is None:
        raise BadChatRequest("text", "give either text or payload")
    if lang is not None and lang not in {language.value for language in Language}:
        raise BadChatRequest("lang", "must be ja or en")
    return IncomingMessage(
        channel=Channel.WEB, user_id=user, conversation_id=f"web:{user}", text=text, payload=payload,
        lang_hint=Language(lang) if lang else None, raw=body,
    )


def render(replies: list[Reply]) -> list[dict[str, Any]]:
    """Neutral replies as the chat API's JSON; each has at least `text` and `quick_replies`."""
    rendered = []
    for reply in replies:
        match reply:
            case Text(text=text, quick_replies=buttons):
                rendered.append({"text": text, "quick_replies": _buttons(buttons)})
            case Link(label=label, url=url, text=text):
                rendered.append({"text": text or label, "quick_replies": [], "link": {"label": label, "url": url}})
            case Card(title=title, fields=fields, footer=footer, quick_replies=buttons):
                lines = [title, *(f"{label}: {value}" for label, value in fields)] + ([footer] if footer else [])
                rendered.append({
                    "text": "\n".join(lines), "quick_replies": _buttons(buttons),
                    "card": {"title": title, "fields": [{"label": k, "value": v} for k, v in fields],
                             "footer": footer},
                })
            case _:
                raise TypeError(f"the web channel cannot render {type(reply).__name__}")
    return rendered


def _buttons(buttons: tuple) -> list[dict[str, str]]:
    return [{"label": button.label, "payload": button.payload} for button in buttons]
