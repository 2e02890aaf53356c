"""Slack requests as Slack sends them: Events API bodies built to the events spec (and validated against it),
slash-command forms and block_actions payloads (under a message, or on the Home tab's published view) as
Slack's reference documents them, signed like Slack."""

import hashlib
import hmac
import json
import time
from functools import cache
from itertools import count
from typing import Any
from urllib.parse import urlencode

import jsonschema

from tests.channels.slack.fake_slack_api import SPECS

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
TEAM = "T0MADOGUCHI"
APP = "A0MADOGUCHI"
BOT_USER = "U0MADOBOT01"
STUDENT = "U0STUDENT01"
OTHER_STUDENT = "U0STUDENT02"
DM = "D0STUDENT01"
OTHER_DM = "D0STUDENT02"
PUBLIC = "C0HELPDESK1"

_ids = count(1)


@cache
def _wrapper_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((SPECS / "slack_common_event_wrapper_schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


@cache
def _topic_validator(topic: str) -> jsonschema.Draft7Validator:
    spec = json.loads((SPECS / "slack_events_api_async_v1.json").read_text(encoding="utf-8"))
    payload = spec["topics"][topic]["subscribe"]["payload"]
    if "$ref" in payload:  # topics that only reference the generic wrapper
        payload = spec["components"]["schemas"][payload["$ref"].rsplit("/", 1)[-1]]
    return jsonschema.Draft7Validator(payload)


def event_callback(event: dict[str, Any], *, topics: tuple[str, ...], event_id: str | None = None,
                   team: str = TEAM) -> dict[str, Any]:
    """An Events API body wrapping `event`, validated against the common wrapper and the events' topics."""
    body = {
        "token": "verification-token-not-used", "team_id": team, "api_app_id": APP, "event": event,
        "type": "event_callback", "event_id": event_id or f"Ev0{next(_ids):08d}", "event_time": int(time.time()),
        "authed_users": [BOT_USER],
        "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": BOT_USER, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False, "event_context": f"4-eyJldCI6Im1lc3NhZ2UifQ{next(_ids)}",
    }
    _wrapper_validator().validate(body)
    for topic in topics:
        _topic_validator(topic).validate(body)
    return body


def _ts() -> str:
    return f"{int(time.time())}.{next(_ids):06d}"


def im_message(text: str, *, user: str = STUDENT, channel: str = DM, event_id: str | None = None,
               **extra: Any) -> dict[str, Any]:
    """A person's message in their direct messages with the app (message.im)."""
    ts = _ts()
    event = {"type": "message", "user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts,
             "channel_type": "im", "team": TEAM, "client_msg_id": f"c0ffee00-0000-4000-8000-{next(_ids):012d}",
             **extra}
    # The spec's `message` topic was generated from a message_deleted example (it requires deleted_ts and
    # previous_message), so a plain message is checked against `message.im`, which is the common wrapper.
    return event_callback(event, topics=("message.im",), event_id=event_id)


def app_mention(text: str, *, user: str = STUDENT, channel: str = PUBLIC, thread_ts: str | None = None,
                with_authorizations: bool = True) -> dict[str, Any]:
    """A message in a channel that mentions the app (app_mention)."""
    ts = _ts()
    event = {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts,
             "team": TEAM}
    if thread_ts:
        event["thread_ts"] = thread_ts
    body = event_callback(event, topics=("app.mention",))
    if not with_authorizations:
        del body["authorizations"]
    return body


def other_event(event_type: str, **fields: Any) -> dict[str, Any]:
    """An event madoguchi does not answer (reaction_added, pin_added …), checked against its own topic."""
    ts = _ts()
    return event_callback({"type": event_type, "event_ts": ts, **fields}, topics=(event_type.replace("_", "."),))


def app_home_opened(*, user: str = STUDENT, channel: str = DM, tab: str = "home",
                    view: dict[str, Any] | None = None) -> dict[str, Any]:
    """The user opened the app's Home (or Messages) tab. The events spec lists no topic for app_home_opened, so
    the body is checked against the common event wrapper only; the fields are those of Slack's reference
    (docs.slack.dev/reference/events/app_home_opened): `view` is the Home view published before, if any."""
    event = {"type": "app_home_opened", "user": user, "channel": channel, "tab": tab, "event_ts": _ts()}
    if view is not None:
        event["view"] = view
    return event_callback(event, topics=())


def home_click(view: dict[str, Any], label: str, *, user: str = STUDENT) -> str:
    """The form Slack posts when the button labelled `label` of a published Home view is clicked: a
    block_actions payload whose container is the view (no channel, no message, no response_url)."""
    [(block, button)] = [(block, element) for block in view["blocks"] for element in _buttons(block)
                         if element["text"]["text"] == label]
    payload = {
        "type": "block_actions", "user": {"id": user, "username": "student", "name": "student", "team_id": TEAM},
        "api_app_id": APP, "token": "verification-token-not-used",
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": f"13345224609.738474920.{next(_ids):032x}", "team": {"id": TEAM, "domain": "uoeh-students"},
        "enterprise": None, "is_enterprise_install": False, "view": view,
        "actions": [{"action_id": button["action_id"], "block_id": block.get("block_id", "b1"),
                     "text": button["text"], "value": button["value"], "type": "button", "action_ts": _ts()}],
    }
    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)})


def _buttons(block: dict[str, Any]) -> list[dict[str, Any]]:
    if block["type"] == "actions":
        return [element for element in block["elements"] if element["type"] == "button"]
    accessory = block.get("accessory")
    return [accessory] if accessory and accessory["type"] == "button" else []


def url_verification(challenge: str) -> dict[str, Any]:
    """The Events API's request URL check (not wrapped: Slack sends these three keys)."""
    return {"token": "verification-token-not-used", "challenge": challenge, "type": "url_verification"}


def slash_command(text: str, *, user: str = STUDENT, channel: str = DM, command: str = "/madoguchi") -> str:
    """The form Slack posts for a slash command."""
    return urlencode({
        "token": "verification-token-not-used", "team_id": TEAM, "team_domain": "uoeh-students",
        "channel_id": channel, "channel_name": "directmessage" if channel.startswith("D") else "helpdesk",
        "user_id": user, "user_name": "student", "command": command, "text": text, "api_app_id": APP,
        "is_enterprise_install": "false", "response_url": f"https://hooks.slack.com/commands/{TEAM}/1/x",
        "trigger_id": f"13345224609.738474920.{next(_ids):032x}",
    })


def button_click(value: str, *, action_id: str = "madoguchi.reply.0", user: str = STUDENT, channel: str = DM,
                 thread_ts: str | None = None) -> str:
    """The form Slack posts when a Block Kit button is clicked (a block_actions payload)."""
    message_ts = _ts()
    message = {"type": "message", "user": BOT_USER, "ts": message_ts, "bot_id": "B0MADOBOT01", "text": "…",
               "team": TEAM, "blocks": []}
    if thread_ts:
        message["thread_ts"] = thread_ts
    payload = {
        "type": "block_actions", "user": {"id": user, "username": "student", "name": "student", "team_id": TEAM},
        "api_app_id": APP, "token": "verification-token-not-used",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"13345224609.738474920.{next(_ids):032x}", "team": {"id": TEAM, "domain": "uoeh-students"},
        "enterprise": None, "is_enterprise_install": False,
        "channel": {"id": channel, "name": "directmessage" if channel.startswith("D") else "helpdesk"},
        "message": message, "state": {"values": {}},
        "response_url": f"https://hooks.slack.com/actions/{TEAM}/1/x",
        "actions": [{"action_id": action_id, "block_id": "b1", "text": {"type": "plain_text", "text": "…"},
                     "value": value, "type": "button", "action_ts": _ts()}],
    }
    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)})


def signed_headers(body: bytes, *, timestamp: int | None = None, secret: str = SIGNING_SECRET,
                   content_type: str = "application/json") -> dict[str, str]:
    """The headers Slack adds: `v0=` HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)  # Bolt checks against the real time
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"content-type": content_type, "x-slack-request-timestamp": stamp, "x-slack-signature": f"v0={digest}"}
