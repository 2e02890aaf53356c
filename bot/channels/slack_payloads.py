"""Slack payloads, normalized: which stored events, interactions and slash commands get an answer, the
message each becomes for the pipeline (or the Home view it asks for), where its answer goes, and the checks a
body passes before Bolt."""

import hashlib
import html
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl

from bot.untrusted import BadJson, load_json
from core.enums import Language
from handlers import basic
from handlers.replies import intent_payload
from handlers.turn import Channel, IncomingMessage
from intents.types import Intent

_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+(\|[^>]*)?>")

# `/madoguchi <word>`: words that tap a button instead of being understood as a question.
COMMAND_PAYLOADS = {
    "menu": intent_payload(Intent.GREET), "メニュー": intent_payload(Intent.GREET),
    "en": basic.lang_payload(Language.EN), "english": basic.lang_payload(Language.EN),
    "英語": basic.lang_payload(Language.EN),
    "ja": basic.lang_payload(Language.JA), "japanese": basic.lang_payload(Language.JA),
    "日本語": basic.lang_payload(Language.JA),
}
HELP_WORDS = frozenset({"", "help", "ヘルプ", "使い方"})
# Message subtypes still answered: a file shared with a question is answered for its words.
ANSWERED_SUBTYPES = frozenset({"file_share"})
# The Home tab's buttons (bot/channels/slack_home.py): a menu button carries a payload like a quick reply, and
# is answered in the user's direct messages with the app; the reminders switch carries the state it asks for.
HOME_MENU_ACTION_PREFIX = "madoguchi.home.menu."
HOME_REMINDERS_ACTION = "madoguchi.home.reminders"
_HOME_MENU = rf"{re.escape(HOME_MENU_ACTION_PREFIX)}\d+"  # a menu button's action id: the prefix and its place
HOME_MENU_ACTION = re.compile(rf"^{_HOME_MENU}$")
HOME_ACTIONS = re.compile(rf"^(?:{_HOME_MENU}|{re.escape(HOME_REMINDERS_ACTION)})$")
REMINDERS_ON, REMINDERS_OFF = "on", "off"  # the switch's values: the state the tap asks for


class PayloadKind(StrEnum):
    """The stored Slack payloads the worker answers."""

    MESSAGE = "message"
    APP_MENTION = "app_mention"
    BUTTON = "block_actions"
    COMMAND = "slash_command"
    HOME_OPENED = "app_home_opened"  # the user opened the app's Home tab: its view is published
    HOME_BUTTON = "home_button"  # a menu button of the Home tab: a turn answered in the direct messages
    HOME_SWITCH = "home_reminders"  # the Home tab's reminders switch: set, then the view published again


@dataclass(frozen=True, slots=True)
class Destination:
    """Where an answer is posted: a conversation and, inside a thread, the thread's parent message."""

    channel: str
    thread_ts: str | None = None


@dataclass(frozen=True, slots=True)
class SlackTurn:
    """One stored Slack payload, normalized: the message for the pipeline and where the answer goes."""

    message: IncomingMessage
    destination: Destination
    wants_help: bool = False
    from_home: bool = False  # tapped on the Home tab, whose view is published again after the answer


@dataclass(frozen=True, slots=True)
class HomeRequest:
    """A stored payload that asks for the user's Home view: the tab opened, or its reminders switch tapped."""

    team_id: str
    user_id: str
    reminders: bool | None = None  # the state the switch asks for; None when the tab was only opened


def conversation_id(team: str, user: str, channel: str | None = None) -> str:
    """`slack:{team}:{user}` for the direct-message conversation (slash commands are answered there too);
    a channel thread is a conversation of its own, `slack:{team}:{channel}:{user}`."""
    if channel is None or channel.startswith("D"):
        return f"slack:{team}:{user}"
    return f"slack:{team}:{channel}:{user}"


_EVENT_KINDS = frozenset({PayloadKind.MESSAGE, PayloadKind.APP_MENTION, PayloadKind.HOME_OPENED})


def payload_kind(payload: Mapping[str, Any]) -> PayloadKind | None:
    """Which kind of Slack payload this is, or None for one the worker does not answer."""
    if payload.get("type") == "event_callback":
        kind = (payload.get("event") or {}).get("type")
        return PayloadKind(kind) if kind in _EVENT_KINDS else None
    if payload.get("type") == PayloadKind.BUTTON:
        action_id = str(((payload.get("actions") or [{}])[0]).get("action_id") or "")
        if action_id == HOME_REMINDERS_ACTION:
            return PayloadKind.HOME_SWITCH
        return PayloadKind.HOME_BUTTON if HOME_MENU_ACTION.match(action_id) else PayloadKind.BUTTON
    if "command" in payload:
        return PayloadKind.COMMAND
    return None


def normalize(payload: Mapping[str, Any]) -> SlackTurn | HomeRequest:
    """A stored payload as the turn it asks for, or the Home view it asks for.

    Raises:
        ValueError: if it is not a payload the worker answers.
        KeyError: if a field Slack always sends is missing.
        TypeError: if such a field is not a non-empty string.
    """
    kind = payload_kind(payload)
    if kind is None:
        raise ValueError(f"not an answerable Slack payload (type {payload.get('type')!r})")
    if kind in HOME_BUILDERS:
        return HOME_BUILDERS[kind](payload)
    return TURN_BUILDERS[kind](payload)


def _str(container: Mapping[str, Any], key: str) -> str:
    """A field Slack always sends as a non-empty string.

    Raises:
        KeyError: if it is missing.
        TypeError: if it is not a non-empty string.
    """
    value = container[key]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{key} is not a non-empty string")
    return value


def plain_text(markup: str, *, drop_mention_of: str | None = None) -> str:
    """A message's text as the student typed it: Slack's `<…>` markup resolved and `&amp;` etc. unescaped.

    Args:
        markup: The `text` of a Slack message event.
        drop_mention_of: A user id whose `<@id>` mentions are removed (the bot's own, in an app_mention).

    Returns:
        The text with links as their label or address (`mailto:` dropped), channels as `#name`, other
        mentions as `@id`, and surrounding whitespace stripped.
    """
    def resolve(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith("@"):
            return "" if target[1:] == drop_mention_of else f"@{label or target[1:]}"
        if target.startswith("#"):
            return f"#{label or target[1:]}"
        if target.startswith("!"):
            return f"@{label or target[1:].split('^')[0]}"  # <!here>, <!subteam^S1|team>
        return label or target.removeprefix("mailto:")

    return html.unescape(re.sub(r"<([^<>]*)>", resolve, markup)).strip()


def _from_message(payload: Mapping[str, Any]) -> SlackTurn:
    event = payload["event"]
    team, user, channel = _str(payload, "team_id"), _str(event, "user"), _str(event, "channel")
    text = plain_text(event.get("text") or "", drop_mention_of=_bot_user_id(payload))
    message = IncomingMessage(channel=Channel.SLACK, user_id=user, conversation_id=conversation_id(team, user, channel),
                              text=text, event_id=payload.get("event_id"), raw=payload)
    return SlackTurn(message, Destination(channel, event.get("thread_ts")))


def _from_mention(payload: Mapping[str, Any]) -> SlackTurn:
    event = payload["event"]
    team, user, channel = _str(payload, "team_id"), _str(event, "user"), _str(event, "channel")
    bot = _bot_user_id(payload)
    text = event.get("text") or ""
    if bot is None:  # without `authorizations`, the mention that triggered the event is the leading one
        text = _LEADING_MENTION.sub("", text, count=1)
    message = IncomingMessage(channel=Channel.SLACK, user_id=user, conversation_id=conversation_id(team, user, channel),
                              text=plain_text(text, drop_mention_of=bot),
                              event_id=payload.get("event_id"), raw=payload)
    # Answer in the mention's thread, so a channel is not filled with the conversation.
    return SlackTurn(message, Destination(channel, event.get("thread_ts") or _str(event, "ts")))


def _tapped(payload: Mapping[str, Any]) -> tuple[str, str, str]:
    """The team, the user and the value of the button a `block_actions` payload reports."""
    user = _str(payload["user"], "id")
    team = (payload.get("team") or {}).get("id") or _str(payload["user"], "team_id")
    return team, user, _str(payload["actions"][0], "value")


def _from_button(payload: Mapping[str, Any]) -> SlackTurn:
    team, user, value = _tapped(payload)
    channel = _str(payload["channel"], "id")
    message = IncomingMessage(channel=Channel.SLACK, user_id=user, conversation_id=conversation_id(team, user, channel),
                              payload=value, event_id=stable_id("action", payload), raw=payload)
    return SlackTurn(message, Destination(channel, (payload.get("message") or {}).get("thread_ts")))


def _from_home_button(payload: Mapping[str, Any]) -> SlackTurn:
    """A Home tab menu button: no channel (its container is the view), so it is answered in the user's direct
    messages with the app, the conversation a DM to the bot is, in the language the view was shown in."""
    team, user, value = _tapped(payload)
    message = IncomingMessage(channel=Channel.SLACK, user_id=user, conversation_id=conversation_id(team, user),
                              payload=value, event_id=stable_id("action", payload),
                              lang_hint=view_language(payload.get("view")), raw=payload)
    return SlackTurn(message, Destination(user), from_home=True)


def view_language(view: Mapping[str, Any] | None) -> Language | None:
    """The language a Home view was published in (its `private_metadata`, see `home_metadata`), or None."""
    try:
        lang = json.loads((view or {}).get("private_metadata") or "{}").get("lang")
    except (ValueError, TypeError, AttributeError):  # not our metadata: no language is read from it
        return None
    return Language(lang) if isinstance(lang, str) and lang in set(Language) else None


def home_metadata(lang: Language) -> str:
    """The `private_metadata` of a published Home view: the language its buttons are labelled in, so that a
    tap is answered in the language the student read (as the web page's language switch is)."""
    return json.dumps({"lang": lang.value})


def _home_opened(payload: Mapping[str, Any]) -> HomeRequest:
    return HomeRequest(_str(payload, "team_id"), _str(payload["event"], "user"))


def _home_switch(payload: Mapping[str, Any]) -> HomeRequest:
    team, user, value = _tapped(payload)
    if value not in (REMINDERS_ON, REMINDERS_OFF):
        raise ValueError("the reminders switch carries neither on nor off")
    return HomeRequest(team, user, reminders=value == REMINDERS_ON)


def _from_command(payload: Mapping[str, Any]) -> SlackTurn:
    team, user = _str(payload, "team_id"), _str(payload, "user_id")
    text = str(payload.get("text") or "").strip()
    word = unicodedata.normalize("NFKC", text).lower()  # ｍｅｎｕ typed with a Japanese input method
    message = IncomingMessage(channel=Channel.SLACK, user_id=user, conversation_id=conversation_id(team, user),
                              text=None if word in COMMAND_PAYLOADS else text,
                              payload=COMMAND_PAYLOADS.get(word), event_id=stable_id("command", payload), raw=payload)
    # Posting to a user id posts to the app's direct messages with that user, wherever the command was typed.
    return SlackTurn(message, Destination(user), wants_help=word in HELP_WORDS)


TURN_BUILDERS: dict[PayloadKind, Callable[[Mapping[str, Any]], SlackTurn]] = {
    PayloadKind.MESSAGE: _from_message,
    PayloadKind.APP_MENTION: _from_mention,
    PayloadKind.BUTTON: _from_button,
    PayloadKind.COMMAND: _from_command,
    PayloadKind.HOME_BUTTON: _from_home_button,
}
HOME_BUILDERS: dict[PayloadKind, Callable[[Mapping[str, Any]], HomeRequest]] = {
    PayloadKind.HOME_OPENED: _home_opened,
    PayloadKind.HOME_SWITCH: _home_switch,
}


def _bot_user_id(payload: Mapping[str, Any]) -> str | None:
    for authorization in payload.get("authorizations") or ():
        if authorization.get("is_bot"):
            return authorization.get("user_id")
    return None


def stable_id(prefix: str, body: Mapping[str, Any]) -> str:
    """The inbox id of an interaction or a slash command (they have no event_id): `prefix:trigger_id`."""
    trigger = body.get("trigger_id")
    if not trigger:  # Slack always sends one; a digest still keeps a replayed body from being answered twice
        trigger = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:40]
    return f"{prefix}:{trigger}"


def _ignore_message(event: Mapping[str, Any]) -> str | None:
    """Why a `message` event gets no answer, or None: only a person's own words in a direct message do."""
    if event.get("channel_type") != "im":
        return f"a message in a {event.get('channel_type')} conversation"
    if event.get("subtype") and event["subtype"] not in ANSWERED_SUBTYPES:
        return f"a {event['subtype']} message"
    if event.get("bot_id") or not event.get("user"):
        return "a bot's message"
    return None


def _ignore_mention(event: Mapping[str, Any]) -> str | None:
    """Why an `app_mention` gets no answer, or None."""
    if event.get("bot_id") or not event.get("user"):
        return "a bot's mention"
    if str(event.get("channel", "")).startswith("D"):
        return "a mention in a direct message (answered as its message.im event)"
    return None


def _ignore_home(event: Mapping[str, Any]) -> str | None:
    """Why an `app_home_opened` publishes no view, or None: only the Home tab, opened by a person, does."""
    if event.get("tab") != "home":
        return f"the {event.get('tab')} tab opened"  # the Messages tab: its messages are answered as they come
    if not event.get("user"):
        return "no user opened it"
    return None


# The event types madoguchi answers, each with its check; any other type is acknowledged and logged.
EVENT_FILTERS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    PayloadKind.MESSAGE: _ignore_message,
    PayloadKind.APP_MENTION: _ignore_mention,
    PayloadKind.HOME_OPENED: _ignore_home,
}


class BadBody(ValueError):
    """A signed Slack request body that cannot be read: not UTF-8, not JSON where JSON is due, too deep."""


def parse_body(raw: bytes, content_type: str | None) -> Any:
    """The body as Bolt reads it (JSON, or a form whose `payload` field is JSON), parsed with bounded depth.

    Unlike Bolt, a form is taken as a `payload` only when it has that field, not whenever the text holds
    the word (a slash command's text may).

    Raises:
        BadBody: not UTF-8, not JSON, or nested deeper than bot.untrusted allows.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("body is not UTF-8") from None
    if not text:
        return {}
    try:
        if (content_type or "").split(";")[0].strip().lower() == "application/json" or text.startswith("{"):
            return load_json(text)
        form = dict(parse_qsl(text, keep_blank_values=True))
        return load_json(form["payload"]) if "payload" in form else form
    except BadJson as error:
        raise BadBody(str(error)) from None


# Parts of a Slack body that Bolt's middleware reads as objects (or lists of objects) before any listener runs.
_OBJECT_FIELDS = ("event", "user", "team", "channel", "enterprise", "container", "message", "view", "function")
_LIST_OF_OBJECTS_FIELDS = ("authorizations", "actions")
_ACTION_TYPES = frozenset({"block_actions", "interactive_message"})
_NEVER_NULL = frozenset({"event", "view", "function"})
_EVENT_OBJECTS = ("function", "tokens")  # read by Bolt with `.get(name, {})` in any event that has them
# Fields this module, the agents' desk or Bolt read as strings, where present (absent or null is handled):
# plain text, ids, and message timestamps.
_STRING_FIELDS: dict[str | None, tuple[str, ...]] = {
    None: ("type", "event_id", "api_app_id", "trigger_id", "command", "text", "response_url", "enterprise_id"),
    "user": ("username", "name"),
    "view": ("private_metadata",),  # a Home tab button's view: the language it was published in
}
# Ids become conversation and account keys (the database holds 200 and 128 characters) and the channels
# answers are posted to: Slack's are a capital letter and 8 to 10 more capitals or digits, so a signed body
# with another one is not Slack's. An empty one is treated as missing.
MAX_ID_CHARS = 64
_SLACK_ID = re.compile(rf"(?:[A-Z][A-Z0-9]{{8,{MAX_ID_CHARS - 1}}})?")
_ID_FIELDS: dict[str | None, tuple[str, ...]] = {
    None: ("team_id", "user_id", "channel_id"), "user": ("id", "team_id"), "team": ("id",), "channel": ("id",),
    "container": ("channel_id",),
}
# A message's ts names it (answers are posted into its thread): seconds, a dot, six digits.
_SLACK_TS = re.compile(r"[0-9]{9,12}\.[0-9]{6}")
_TS_FIELDS: dict[str | None, tuple[str, ...]] = {"container": ("message_ts",), "message": ("thread_ts", "ts")}
# The events whose fields are read (the others are acknowledged by type alone): their text, ids and ts.
_READ_EVENTS = frozenset({PayloadKind.MESSAGE, PayloadKind.APP_MENTION, PayloadKind.HOME_OPENED})
_EVENT_FIELDS: dict[str, re.Pattern[str] | None] = {
    "text": None, "channel_type": None, "subtype": None, "bot_id": None, "team": None, "event_ts": None, "tab": None,
    "user": _SLACK_ID, "channel": _SLACK_ID, "ts": _SLACK_TS, "thread_ts": _SLACK_TS,
}


def shape_problem(body: Any) -> str | None:
    """What makes a parsed body unreadable for Bolt or for the worker (which would fail with a 500, or
    store what can never be answered): the field and what is wrong with it; None for a readable body."""
    if not isinstance(body, dict):
        return f"a JSON {type(body).__name__}, not an object"
    for name in _OBJECT_FIELDS:
        # Bolt reads some with `.get(name, {})`, which a present null defeats; Slack never sends them null.
        if (body.get(name) is not None or (name in body and name in _NEVER_NULL)) and not isinstance(body[name], dict):
            return f"{name} is not an object"
    for name in _LIST_OF_OBJECTS_FIELDS:
        value = body.get(name)
        if value is not None and not (isinstance(value, list) and all(isinstance(item, dict) for item in value)):
            return f"{name} is not a list of objects"
    return _strings_problem(body) or _event_problem(body.get("event")) or _lists_problem(body)


def _strings_problem(body: dict[str, Any]) -> str | None:
    for fields, shape in ((_STRING_FIELDS, None), (_ID_FIELDS, _SLACK_ID), (_TS_FIELDS, _SLACK_TS)):
        for parent, names in fields.items():
            container = body if parent is None else body.get(parent) or {}
            for name in names:
                where = name if parent is None else f"{parent}.{name}"
                if (problem := _text_problem(container.get(name), shape)) is not None:
                    return f"{where} {problem}"
    return None


def _event_problem(event: dict[str, Any] | None) -> str | None:
    if event is None:
        return None
    if "type" in event and not isinstance(event["type"], str):  # Bolt's listener matchers compare it
        return "event.type is not a string"
    for name in _EVENT_OBJECTS:
        if name in event and not isinstance(event[name], dict):
            return f"event.{name} is not an object"
    if event.get("type") not in _READ_EVENTS:
        return None
    for name, shape in _EVENT_FIELDS.items():
        if (problem := _text_problem(event.get(name), shape)) is not None:
            return f"event.{name} {problem}"
    return None


def _lists_problem(body: dict[str, Any]) -> str | None:
    if body.get("type") in _ACTION_TYPES and ("actions" in body or "callback_id" in body) \
            and not body.get("actions"):  # Bolt reads `actions[0]` of these
        return "actions is not a non-empty list of objects"
    for index, authorization in enumerate(body.get("authorizations") or ()):
        if not isinstance(authorization.get("is_bot", False), bool):
            return f"authorizations[{index}].is_bot is not a boolean"
        if (problem := _text_problem(authorization.get("user_id"), _SLACK_ID)) is not None:
            return f"authorizations[{index}].user_id {problem}"
    for index, action in enumerate(body.get("actions") or ()):
        if not isinstance(action.get("action_id"), str):  # Bolt's action matchers compare it
            return f"actions[{index}].action_id is not a string"
        if (problem := _text_problem(action.get("value"), None)) is not None:
            return f"actions[{index}].value {problem}"
    return None


def _text_problem(value: Any, shape: re.Pattern[str] | None) -> str | None:
    """Why a field read as text (of `shape`, if given) is not one (None and absent are fine), or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        return "is not a string"
    if shape is _SLACK_ID and not shape.fullmatch(value):
        return f"is not a Slack id (9 to {MAX_ID_CHARS} capital letters and digits)"
    if shape is _SLACK_TS and not shape.fullmatch(value):
        return "is not a Slack message ts (seconds.microseconds)"
    return None
