"""The web chat channel: the JSON of POST /api/chat in, and neutral replies out as JSON."""

import re
from dataclasses import dataclass
from typing import Any

from bot.untrusted import storable, storable_json
from core.enums import Language
from handlers.replies import Card, Link, Reply, Text
from handlers.turn import Channel, IncomingMessage

MAX_USER_ID = 128
MAX_TEXT = 2000
MAX_PAYLOAD = 200
LANGUAGES = frozenset(language.value for language in Language)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 and C1 controls: no browser's id has them


@dataclass(frozen=True)
class BadChatRequest(Exception):
    """The request body is not a chat message; `field` names what is wrong."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


def to_message(body: Any) -> IncomingMessage:
    """Validate the JSON body `{"user", "text" | "payload", "lang"?}` and normalize it: `user`, `text` and
    `payload` are made storable (a lone surrogate replaced, NUL dropped) before anything stores them; other
    fields are ignored.

    Raises:
        BadChatRequest: naming the bad field.
    """
    if not isinstance(body, dict):
        raise BadChatRequest("body", "must be a JSON object")
    user = _user(body.get("user"))
    text = _string(body, "text", MAX_TEXT)
    payload = _string(body, "payload", MAX_PAYLOAD)
    if text is None and payload is None:
        raise BadChatRequest("text", "give either text or payload")
    lang = body.get("lang")
    # isinstance first: a list or an object is unhashable and cannot be looked up in a set.
    if lang is not None and (not isinstance(lang, str) or lang not in LANGUAGES):
        raise BadChatRequest("lang", "must be ja or en")
    return IncomingMessage(
        channel=Channel.WEB, user_id=user, conversation_id=f"web:{user}", text=text, payload=payload,
        lang_hint=Language(lang) if lang else None, raw=storable_json(body),
    )


def valid_user(user: object) -> str | None:
    """A browser's chat id as stored (see `storable`), or None when it is no usable id: not a string, empty or
    blank once stored, too long, or holding control characters (it is written to logs and the database)."""
    if not isinstance(user, str) or len(user) > MAX_USER_ID:
        return None
    user = storable(user)
    if not user.strip() or _CONTROL.search(user):
        return None
    return user


def _user(user: object) -> str:
    stored = valid_user(user)
    if stored is None:
        raise BadChatRequest("user", f"must be a non-empty string of at most {MAX_USER_ID} characters, "
                                     "without control characters")
    return stored


def _string(body: dict[str, Any], field: str, limit: int) -> str | None:
    """An optional string field as stored, or BadChatRequest naming it."""
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BadChatRequest(field, f"must be a string of at most {limit} characters")
    return storable(value)


def render(replies: list[Reply]) -> list[dict[str, Any]]:
    """Neutral replies as the chat API's JSON; each has at least `text` and `quick_replies`."""
    rendered: list[dict[str, Any]] = []
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
