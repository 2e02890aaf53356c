"""The LINE channel: the signed webhook, each stored event turned into one turn, the answer sent by the
Messaging API (reply token while fresh, else push with a retry key).

The webhook only verifies, stores and acknowledges; the inbox worker calls `prepare` (the turn, rendered
into API calls that are stored) and then `send` for each call. See bot/inbox.py.
"""

import json
import logging
import queue
import select
import socket
import ssl
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.client import HTTPConnection, HTTPSConnection
from typing import Any
from urllib.parse import urlencode, urlsplit

from linebot.v3 import SignatureValidator
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    MessagingApi,
)
from linebot.v3.webhooks import (
    AccountLinkEvent,
    Event,
    EventMode,
    FollowEvent,
    MessageEvent,
    PostbackEvent,
    TextMessageContent,
    UnfollowEvent,
    UnsendEvent,
    UserSource,
)
from pydantic.v1 import ValidationError as PydanticValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.channels import line_linking as linking
from bot.channels import line_render
from bot.inbox import RESUMED, Inbox, PermanentFailure, RetryAfter, rewrite_payloads
from bot.pipeline import Pipeline
from bot.settings import ChannelSettings
from bot.untrusted import BadJson, load_json, storable_json
from bot.web.bodies import read_bounded
from core.conversations import hide_message, load_state
from core.enums import Language
from core.handoffs import active_ticket
from core.masking import mask_token
from core.services import Core
from core.settings import secret_value
from handlers import basic
from handlers.forms import resume_offer
from handlers.messages import say
from handlers.replies import Link, QuickReply, Reply, Text
from handlers.turn import Channel, IncomingMessage
from intents.types import Intent

log = logging.getLogger(__name__)

# Event types that are stored and answered (or recorded); any other type is logged and acknowledged.
HANDLED_EVENTS = frozenset({"message", "postback", "follow", "unfollow", "accountLink", "unsend"})
# The objects each handled event type must carry, with their string fields the worker reads.
HANDLED_DETAILS: dict[str, dict[str, tuple[str, ...]]] = {
    "message": {"message": ("id", "type")}, "postback": {"postback": ("data",)},
    "accountLink": {"link": ("result",)}, "unsend": {"unsend": ("messageId",)},
}
# LINE's message ids (18 digits or so), bounded like the source ids.
MESSAGE_IDS: dict[str, tuple[tuple[str, str], ...]] = {"message": (("message", "id"),),
                                                       "unsend": (("unsend", "messageId"),)}
MAX_BODY_BYTES = 1_000_000
# LINE documents no maximum and sends a few at a time; a signed body with more is not LINE's.
MAX_EVENTS = 100
MAX_ID_CHARS = 128  # the inbox keeps event ids of up to 128 characters; LINE's are 26 (a ULID)
MAX_SOURCE_ID_CHARS = 64  # LINE's user, group and room ids are 33, message ids ~18; conversation keys hold 200
EARLIEST_MS, LATEST_MS = 946_684_800_000, 4_102_444_800_000  # 2000-01-01 and 2100-01-01, UTC
LOGGED_CHARS = 40  # of a type or id the sender chose, in a log line
# LINE accepts a reply token for about a minute after the event; past this we push instead.
REPLY_TOKEN_TTL = timedelta(seconds=50)
LOADING_SECONDS = 20  # 5 to 60, a multiple of 5; the animation ends when our answer arrives
DEFAULT_RETRY_AFTER = 30.0  # seconds, when a 429 names no Retry-After
REQUEST_TIMEOUT = 10.0  # seconds per Messaging API call; a timeout is retried by the inbox
PUSH_PATH, MULTICAST_PATH = "/v2/bot/message/push", "/v2/bot/message/multicast"
REPLY_PATH, LOADING_PATH = "/v2/bot/message/reply", "/v2/bot/chat/loading/start"
# Kept-alive connections for the Messaging API calls: at least one per thread of the inbox, or a connection is
# opened and closed for each call beyond them.
CONNECTIONS = 32
# Fixed, so that a retry after a crash derives the same X-Line-Retry-Key for the same event and part.
RETRY_KEY_NAMESPACE = uuid.UUID("6f1b7c2e-3a5d-4e8f-9b0a-1c2d3e4f5a6b")
GREET_PAYLOAD = f"intent:{Intent.GREET.value}"


class LineApiError(Exception):
    """A Messaging API call failed in a way worth retrying (5xx, or an answer we could not read)."""


class _ReplyTokenRefused(Exception):
    """The reply token was used up or had expired: the same messages go by push instead."""


def retry_key(webhook_event_id: str, index: int) -> str:
    """The X-Line-Retry-Key of one part of an event's answer: the same on every attempt, in any process."""
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, f"{webhook_event_id}:{index}"))


def event_time(payload: dict[str, Any]) -> datetime:
    """When LINE says the event happened (its `timestamp`, milliseconds since the epoch)."""
    return datetime.fromtimestamp(int(payload["timestamp"]) / 1000, tz=UTC)


class MalformedBody(ValueError):
    """A signed webhook body with a field missing, of the wrong type or out of range (`field` says where)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem


def read_events(data: Any) -> list[dict[str, Any]]:
    """The events of a parsed webhook body, each checked for what this module and LINE's SDK read of it.

    Raises:
        MalformedBody: naming the first field that is missing, of the wrong type or out of range.
    """
    _need(isinstance(data, dict), "body", "is not an object")
    _need(isinstance(data.get("destination"), str), "destination", "is not a string")
    events = data.get("events")
    _need(isinstance(events, list), "events", "is not a list")
    _need(len(events) <= MAX_EVENTS, "events", f"holds more than {MAX_EVENTS} events")
    for index, event in enumerate(events):
        _check_event(event, f"events[{index}]")
    return events


def _check_event(event: Any, where: str) -> None:
    """The fields every event has (LINE's `Event`), then those of the types we handle."""
    _need(isinstance(event, dict), where, "is not an object")
    _need(isinstance(event.get("type"), str), f"{where}.type", "is not a string")
    _need(_short_text(event.get("webhookEventId"), MAX_ID_CHARS), f"{where}.webhookEventId",
          f"is not a string of 1 to {MAX_ID_CHARS} characters")
    timestamp = event.get("timestamp")
    # An integer LINE could have sent: a bool is an int to Python, and far-off times do not fit a datetime.
    _need(type(timestamp) is int and EARLIEST_MS <= timestamp <= LATEST_MS, f"{where}.timestamp",
          "is not milliseconds between 2000 and 2100")
    _need(isinstance(event.get("mode"), str), f"{where}.mode", "is not a string")
    context = event.get("deliveryContext")
    _need(isinstance(context, dict) and isinstance(context.get("isRedelivery"), bool),
          f"{where}.deliveryContext", "is not an object with a boolean isRedelivery")
    _need(isinstance(event.get("replyToken", ""), str), f"{where}.replyToken", "is not a string")
    if "source" in event:
        _check_source(event["source"], f"{where}.source")
    if event["type"] in HANDLED_EVENTS:
        for field, names in HANDLED_DETAILS.get(event["type"], {}).items():
            _need(isinstance(event.get(field), dict), f"{where}.{field}", "is not an object")
            for name in names:
                _need(isinstance(event[field].get(name), str), f"{where}.{field}.{name}", "is not a string")
        for field, name in MESSAGE_IDS.get(event["type"], ()):
            # Searched for among the stored events when the student unsends a message (bot.inbox).
            _need(_short_text(event[field][name], MAX_SOURCE_ID_CHARS), f"{where}.{field}.{name}",
                  f"is not a string of 1 to {MAX_SOURCE_ID_CHARS} characters")
        if event["type"] == "message" and event["message"]["type"] == "text":
            _need(isinstance(event["message"].get("text"), str), f"{where}.message.text", "is not a string")
        _check_with_sdk(event, where)


def _check_source(source: Any, where: str) -> None:
    # The ids become conversation and account keys, which the database holds up to 128 characters.
    _need(isinstance(source, dict) and isinstance(source.get("type"), str), where, "is not an object with a type")
    for name in ("userId", "groupId", "roomId"):
        if name in source:
            _need(_short_text(source[name], MAX_SOURCE_ID_CHARS), f"{where}.{name}",
                  f"is not a string of 1 to {MAX_SOURCE_ID_CHARS} characters")


def _check_with_sdk(event: dict[str, Any], where: str) -> None:
    """Whatever else the worker's `Event.from_dict` would refuse, refused now rather than stored.

    A message or source of a type the SDK does not know yet is not malformed: it is stored, and the worker
    logs it and sends nothing, as for any event it cannot read.
    """
    try:
        Event.from_dict(event)
    except PydanticValidationError as error:
        # The SDK reads nested objects one model at a time, so its path starts at the model it was reading.
        first = error.errors()[0]
        field = ".".join([error.model.__name__, *(str(part) for part in first["loc"] if part != "__root__")])
        raise MalformedBody(f"{where} ({field})", first["msg"]) from None
    except ValueError:  # an unknown discriminator value (a new message or source type)
        return
    except (TypeError, KeyError, AttributeError) as error:  # a list or string where the SDK indexes an object
        raise MalformedBody(where, f"cannot be read by LINE's SDK ({type(error).__name__})") from None


def _short_text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def _need(condition: bool, field: str, problem: str) -> None:
    if not condition:
        raise MalformedBody(field, problem)


def loggable(text: str) -> str:
    """Text from a webhook as one short log field: cut to LOGGED_CHARS, and quoted if it holds line breaks or
    other control characters (which could forge a log line)."""
    short = text[:LOGGED_CHARS]
    return short if short.isprintable() else repr(short)


def _refused(problem: str) -> Response:
    # The problem names a field, never its value: nothing the student wrote reaches the log.
    log.warning("LINE webhook: signed but malformed body refused: %s", problem)
    return PlainTextResponse(f"malformed body: {problem}", status_code=400)


class LineChannel:
    """LINE's webhook, its processor for the inbox, and the account-link page."""

    channel = Channel.LINE.value

    def __init__(self, core: Core, pipeline: Pipeline, settings: ChannelSettings) -> None:
        """Build the channel; no call is made to LINE until an event needs one.

        Raises:
            ValueError: if the LINE credentials are not set.
        """
        if not (settings.line_channel_secret and settings.line_channel_access_token):
            raise ValueError("LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN must both be set")
        self.core, self.pipeline, self.settings = core, pipeline, settings
        self._validator = SignatureValidator(secret_value(settings.line_channel_secret))
        configuration = Configuration(host=settings.line_api_base_url.rstrip("/"),
                                      access_token=secret_value(settings.line_channel_access_token))
        configuration.retries = 0  # the inbox retries, with backoff and a retry key; urllib3 must not
        self.api = MessagingApi(ApiClient(configuration))
        self._sends = _Sends(configuration.host, self.api.api_client.default_headers)
        self.link_page = linking.LinkPage(core, settings)
        self._handlers: dict[type, Callable[[Any, dict[str, Any], bool], list[Reply]]] = {
            MessageEvent: self._on_message,
            PostbackEvent: self._on_postback,
            FollowEvent: self._on_follow,
            UnfollowEvent: self._on_unfollow,
            AccountLinkEvent: self._on_account_link,
            UnsendEvent: self._on_unsend,
        }

    def routes(self) -> list[BaseRoute]:
        """The webhook and the account-link page."""
        return [Route("/line/webhook", self.webhook, methods=["POST"], name="line_webhook"),
                Route("/line/link", self.link_page.endpoint, methods=["GET", "POST"], name="line_link")]

    # --- the webhook --------------------------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        """Verify the signature, then read and check the body, store each event we handle, answer 200; the
        inbox worker does the rest.

        A body that is signed but malformed (not JSON, too deep, a field of the wrong type or out of range)
        is answered 400 naming the field, and nothing of it is stored: LINE's redelivery would send the same
        bytes again, and storing it would only make an event that fails at every attempt. An event of a
        type we do not handle, but otherwise well formed, is acknowledged and ignored (LINE adds types).
        """
        body = await read_bounded(request, MAX_BODY_BYTES)
        if body is None:
            return PlainTextResponse("body too large", status_code=413)
        signature = request.headers.get("x-line-signature", "")
        try:
            text = body.decode("utf-8")  # LINE signs and sends UTF-8; the SDK's validator takes text
        except UnicodeDecodeError:
            return PlainTextResponse("body is not UTF-8", status_code=400)
        if not signature or not self._validator.validate(text, signature):
            log.warning("LINE webhook: %s signature, request refused", "wrong" if signature else "missing")
            return PlainTextResponse("invalid signature", status_code=400)
        try:
            events = read_events(load_json(text))
        except BadJson as error:
            return _refused(str(error))
        except MalformedBody as error:
            return _refused(f"{error.field} {error.problem}")
        inbox = request.app.state.inbox
        try:
            for event in events:
                await self._store(inbox, event)
        except SQLAlchemyError:
            # Not the sender's fault and nothing stored: LINE redelivers after a non-2xx answer.
            log.exception("LINE webhook: could not store the events")
            return PlainTextResponse("try again later", status_code=503)
        return PlainTextResponse("OK")

    async def _store(self, inbox: Inbox, event: dict[str, Any]) -> None:
        """Store a checked event of a type we handle; log and drop any other."""
        kind, event_id = event["type"], event["webhookEventId"]
        if kind not in HANDLED_EVENTS:
            log.info("LINE webhook: %s event %s acknowledged, not handled", loggable(kind), loggable(event_id))
            return
        # Lone surrogates and NUL are valid JSON escapes but no database stores them: replaced before storing,
        # so the event can be written again when it is finished.
        stored = storable_json(event)
        if not await run_in_threadpool(inbox.accept, self.channel, stored["webhookEventId"], stored):
            log.info("LINE webhook: event %s seen before (redelivery: %s)", loggable(event_id),
                     event["deliveryContext"]["isRedelivery"])

    # --- prepare: one stored event → the API calls of its answer -----------------------------------------

    def prepare(self, payload: dict[str, Any], received_at: datetime) -> list[dict[str, Any]]:
        """Run the event's turn and render the answer as API calls ([] when nothing is to be sent)."""
        try:
            event = Event.from_dict(payload)
        except ValueError:
            log.exception("LINE event %s could not be read; nothing sent", payload.get("webhookEventId"))
            return []
        handler = self._handlers.get(type(event))
        if handler is None:
            log.info("LINE %s event %s not handled", payload.get("type"), payload.get("webhookEventId"))
            return []
        active = event.mode != EventMode.STANDBY
        replies = handler(event, payload, active)
        if not active:
            log.info("LINE %s event %s in standby mode: nothing sent", payload.get("type"),
                     payload.get("webhookEventId"))
            return []
        return line_render.to_parts(replies)

    def _on_message(self, event: MessageEvent, payload: dict[str, Any], active: bool) -> list[Reply]:
        user_id = _user_of(event)
        if not active:
            return []
        if user_id is None:
            return [_one_to_one_only()]
        if not isinstance(event.message, TextMessageContent):
            lang = self._lang(user_id)
            return [Text(say("line.text_only", lang), basic.main_menu(lang))]
        typed = linking.typed_action(event.message.text)
        if typed is not None:
            return self._linking(typed[0], user_id, typed[1])
        if not self._with_a_person(user_id):  # a person answers in their own time: no bot "typing"
            self._show_loading(user_id, payload)
        return self._turn(user_id, payload, text=event.message.text)

    def _on_postback(self, event: PostbackEvent, payload: dict[str, Any], active: bool) -> list[Reply]:
        user_id = _user_of(event)
        if not active:
            return []
        if user_id is None:
            return [_one_to_one_only()]
        data = event.postback.data
        if data.startswith(linking.LINK_PAYLOAD_PREFIX):
            action = linking.payload_action(data)
            if action is not None:
                return self._linking(action, user_id, self._lang(user_id))
            log.warning("LINE postback with unknown linking payload %r: answered by the pipeline", data[:40])
        self._show_loading(user_id, payload)
        return self._turn(user_id, payload, payload_text=data)

    def _on_follow(self, event: FollowEvent, payload: dict[str, Any], active: bool) -> list[Reply]:
        user_id = _user_of(event)
        if user_id is None:
            return []
        with self.core.transaction() as session:
            linking.set_following(session, user_id, True, self.core.now())
            linked = linking.linked_student_id(session, user_id) is not None
        if not active:
            return []
        lang = self._lang(user_id)
        welcome = Text(say("line.welcome", lang, service=self.core.profile.service_name(lang)))
        menu = self._turn(user_id, payload, payload_text=GREET_PAYLOAD)
        if not linked and menu and isinstance(menu[-1], Text):
            menu[-1] = replace(menu[-1], quick_replies=(*menu[-1].quick_replies, self._link_button(lang)))
        return [welcome, *menu]

    def _on_unfollow(self, event: UnfollowEvent, payload: dict[str, Any], active: bool) -> list[Reply]:
        user_id = _user_of(event)
        if user_id is not None:
            with self.core.transaction() as session:
                linking.set_following(session, user_id, False, self.core.now())
        return []  # a blocked account cannot be answered

    def _on_account_link(self, event: AccountLinkEvent, payload: dict[str, Any], active: bool) -> list[Reply]:
        user_id = _user_of(event)
        if user_id is None:
            return []
        student_id = None
        if event.link.result == "ok" and event.link.nonce:
            with self.pipeline.locks.hold(linking.conversation_id(user_id)), self.core.transaction() as session:
                student_id = linking.redeem_nonce(session, event.link.nonce, user_id, self.core.now())
        lang = self._lang(user_id)
        if student_id is None:
            log.info("LINE account link for %s failed (result %s)", mask_token(user_id), event.link.result)
            return [Text(say("line.link.failed", lang), (self._link_button(lang), basic.menu_button(lang)))]
        log.info("LINE account %s linked", mask_token(user_id))
        with self.core.transaction() as session:
            form = load_state(session, linking.conversation_id(user_id), linking.CHANNEL, user_id,
                              self.core.now()).form
        if form is not None:  # linking interrupted a form (the order form asks for it): offer to go on
            return [Text(say("line.link.done", lang)), resume_offer(lang)]
        return [Text(say("line.link.done", lang), basic.main_menu(lang))]

    def _on_unsend(self, event: UnsendEvent, payload: dict[str, Any], active: bool) -> list[Reply]:
        # The student took a message back: hide it in the transcript and in the stored webhook event, even in
        # standby (another bot answering changes nothing about what we keep). Nothing is sent.
        user_id, message_id = _user_of(event), event.unsend.message_id
        if user_id is None:
            return []

        def hide(stored: dict[str, Any]) -> bool:
            message = stored.get("message")
            if not isinstance(message, dict) or message.get("id") != message_id:
                return False  # LINE message ids are unique; the stored user id is masked, so it cannot be compared
            for key in ("text", "emojis", "mention", "quotedMessageId"):
                message.pop(key, None)
            message["unsent"] = True
            return True

        with self.core.transaction() as session:
            lines = hide_message(session, linking.conversation_id(user_id), message_id)
            events = rewrite_payloads(session, linking.CHANNEL, message_id, hide)
        log.info("LINE user %s unsent a message: %d transcript line(s) and %d stored event(s) hidden",
                 mask_token(user_id), lines, events)
        return []

    def _turn(self, user_id: str, payload: dict[str, Any], *, text: str | None = None,
              payload_text: str | None = None) -> list[Reply]:
        """One pipeline turn for the LINE user (the pipeline itself looks up a linked student)."""
        message = IncomingMessage(channel=Channel.LINE, user_id=user_id,
                                  conversation_id=linking.conversation_id(user_id), text=text, payload=payload_text,
                                  event_id=payload.get("webhookEventId"), message_ref=_message_id(payload),
                                  raw=payload)
        return self.pipeline.handle(message)

    # --- account linking in the chat ----------------------------------------------------------------------

    def _linking(self, action: linking.LinkAction, user_id: str, lang: Language) -> list[Reply]:
        now = self.core.now()
        if action is linking.LinkAction.UNLINK:
            with self.pipeline.locks.hold(linking.conversation_id(user_id)), self.core.transaction() as session:
                was_linked = linking.unlink(session, user_id, now)
            key = "line.link.unlinked" if was_linked else "line.link.not_linked"
            log.info("LINE account %s: unlink asked (%s)", mask_token(user_id), "done" if was_linked else "not linked")
            return [Text(say(key, lang), (self._link_button(lang), basic.menu_button(lang)))]
        with self.core.transaction() as session:
            linked = linking.linked_student_id(session, user_id) is not None
        if linked:
            unlink_button = QuickReply(say("line.link.unlink_button", lang), linking.LinkAction.UNLINK.value)
            return [Text(say("line.link.already", lang), (unlink_button, basic.menu_button(lang)))]
        try:
            token = self.api.issue_link_token(user_id, _request_timeout=REQUEST_TIMEOUT).link_token
        except ApiException as error:
            if error.status is not None and 400 <= error.status < 500 and error.status != 429:
                log.error("LINE link token refused for %s: %s", mask_token(user_id), _error_message(error))
                return [Text(say("line.link.unavailable", lang), (basic.menu_button(lang),))]
            raise LineApiError(f"issuing a link token: HTTP {error.status}") from None
        url = self.core.url("/line/link?" + urlencode({"linkToken": token, "lang": lang.value}))
        return [Link(label=say("line.link.open", lang), url=url, text=say("line.link.start", lang))]

    def _link_button(self, lang: Language) -> QuickReply:
        return QuickReply(say("line.link.button", lang), linking.LinkAction.START.value)

    def _lang(self, user_id: str) -> Language:
        """The conversation's language for texts said outside the pipeline; Japanese by default."""
        with self.core.reading() as session:
            state = load_state(session, linking.conversation_id(user_id), self.channel, user_id, self.core.now())
        return state.lang or state.last_lang or Language.JA

    def _with_a_person(self, user_id: str) -> bool:
        with self.core.reading() as session:
            return active_ticket(session, linking.conversation_id(user_id)) is not None

    def _show_loading(self, user_id: str, payload: dict[str, Any]) -> None:
        """The typing animation while the turn runs; only while the student is likely still watching."""
        if not self._reply_token_fresh(payload):
            return
        try:
            self._sends.post(LOADING_PATH, {"chatId": user_id, "loadingSeconds": LOADING_SECONDS})
        except Exception as error:  # a nicety: never worth failing or delaying the answer for
            log.info("LINE loading animation not shown: %s", type(error).__name__)

    # --- send: one API call ----------------------------------------------------------------------------------

    def send(self, payload: dict[str, Any], part: dict[str, Any], index: int, received_at: datetime) -> None:
        """Send one part: by the reply token if it is the first and the token is fresh, else by push.

        Raises:
            RetryAfter: LINE answered 429 (too many requests).
            PermanentFailure: a 4xx that will not succeed on retry (including the monthly message limit).
            LineApiError: a 5xx; the inbox retries with backoff (and the same retry key).
        """
        messages = part["messages"]
        token = payload.get("replyToken")
        if index == 0 and token and self._reply_token_fresh(payload):
            body = {"replyToken": token, "messages": messages}
            try:
                self._call(lambda: self._sends.post(REPLY_PATH, body), reply=True)
                return
            except _ReplyTokenRefused:
                if part.get(RESUMED):
                    # An earlier attempt may have sent this reply before it died: a token this young that LINE
                    # refuses was used, so the answer went out; a push would answer twice.
                    log.info("LINE reply token of event %s refused on a resumed attempt: it was used",
                             payload.get("webhookEventId"))
                    return
                log.info("LINE reply token of event %s refused: pushing instead", payload.get("webhookEventId"))
        target = _push_target(payload)
        if target is None:
            raise PermanentFailure("no user, group or room to push to")
        self.push(target, messages, retry_key(payload["webhookEventId"], index))

    def push(self, to: str, messages: list[dict[str, Any]], key: str) -> None:
        """Push messages to a user with a retry key fixed by the caller, so a retry is never delivered twice.

        Raises:
            RetryAfter, PermanentFailure, LineApiError: as `send`.
        """
        self._call(lambda: self._sends.post(PUSH_PATH, {"to": to, "messages": messages}, key))

    # --- reaching a student outside a turn (bot/delivery.py) -----------------------------------------------

    def render_push(self, user_id: str | list[str], replies: list[Reply]) -> list[dict[str, Any]]:
        """The calls that deliver `replies` to a LINE user (push) or to up to 500 users (multicast)."""
        return [{"to": user_id, **part} for part in line_render.to_parts(replies)]

    def send_push(self, part: dict[str, Any], key: str) -> None:
        """Make one of them; the retry key derives from `key`, so every attempt carries the same one."""
        if isinstance(part["to"], list):
            body = {"to": part["to"], "messages": part["messages"]}
            self._call(lambda: self._sends.post(MULTICAST_PATH, body, retry_key(key, 0)))
            return
        self.push(part["to"], part["messages"], retry_key(key, 0))

    def _reply_token_fresh(self, payload: dict[str, Any]) -> bool:
        return self.core.now() - event_time(payload) < REPLY_TOKEN_TTL

    def _call(self, call: Callable[[], Any], *, reply: bool = False) -> None:
        try:
            call()
        except ApiException as error:
            status, message = error.status or 0, _error_message(error)
            if status == 409 and not reply:
                # The retry key was accepted before: this part was delivered on an earlier attempt.
                log.info("LINE push already accepted (409): counted as sent")
                return
            if status == 429:
                if "monthly limit" in message.lower():
                    raise PermanentFailure(f"LINE monthly message limit reached: {message}") from None
                raise RetryAfter(_retry_after(error, self.core.now())) from None
            if reply and status == 400 and "reply token" in message.lower():
                raise _ReplyTokenRefused() from None
            if 400 <= status < 500:
                raise PermanentFailure(f"LINE API {status}: {message}") from None
            raise LineApiError(f"LINE API {status}: {message}") from None


class _Sends:
    """Reply, push, multicast and loading-animation calls: the JSON our renderer made, posted over kept-alive
    connections that the inbox's threads share (each connection used by one thread at a time), with the SDK
    client's Authorization and User-Agent headers.

    Neither the SDK's per-call argument models (`PushMessageRequest.from_dict` and back, which only rebuild
    that JSON: about a fifth of a push) nor urllib3's pool (twice http.client's time per call, and headers and
    body in two packets): at thousands of pushes a second, this is most of the bot's work. What the renderer
    makes is checked against the Messaging API spec by the tests' fake LINE platform. Answers other than 2xx
    raise the SDK's ApiException, as its own calls do; no answer (a timeout, a refused or dropped connection)
    raises OSError or http.client.HTTPException, which the inbox retries with backoff and the same retry key.
    """

    def __init__(self, base_url: str, headers: dict[str, str], connections: int = CONNECTIONS) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"LINE API base URL {base_url!r} is not an http(s) URL")
        self.host, self.port, self.path = url.hostname, url.port, url.path.rstrip("/")
        self.tls = ssl.create_default_context() if url.scheme == "https" else None
        self.headers = {**headers, "Content-Type": "application/json"}
        self.idle: queue.LifoQueue[HTTPConnection] = queue.LifoQueue(maxsize=connections)

    def post(self, path: str, body: dict[str, Any], key: str | None = None) -> None:
        """POST `body` with the X-Line-Retry-Key `key`.

        Raises:
            ApiException: LINE answered other than 2xx (its status, headers and body).
            OSError, http.client.HTTPException: no answer, or one that could not be read.
        """
        data = json.dumps(body, ensure_ascii=False).encode()
        connection = self._connection()
        try:
            headers = {**self.headers, "X-Line-Retry-Key": key} if key else self.headers
            connection.request("POST", self.path + path, body=data, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except BaseException:
            connection.close()  # in an unknown state: never reused
            raise
        if response.will_close:
            connection.close()
        else:
            self._give_back(connection)
        if not 200 <= response.status <= 299:
            error = ApiException(status=response.status, reason=response.reason)
            error.body, error.headers = answer, response.headers
            raise error

    def _connection(self) -> HTTPConnection:
        """An idle connection the server has not closed meanwhile, else a new one."""
        while True:
            try:
                connection = self.idle.get_nowait()
            except queue.Empty:
                break
            if connection.sock is not None and not _readable(connection.sock):
                return connection
            connection.close()
        if self.tls is not None:
            return HTTPSConnection(self.host, self.port, timeout=REQUEST_TIMEOUT, context=self.tls)
        return HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)

    def _give_back(self, connection: HTTPConnection) -> None:
        try:
            self.idle.put_nowait(connection)
        except queue.Full:  # more sender threads than kept connections: this one is not kept
            connection.close()


def _readable(sock: socket.socket) -> bool:
    """Whether an idle connection's socket has something to read: the server closed it (or sent what we never
    asked for), so it must not be reused. poll, not select: a busy process may have descriptors over 1024."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _one_to_one_only() -> Text:
    # A group has no conversation language of its own: both languages, Japanese first.
    return Text("\n\n".join(say("line.one_to_one_only", lang) for lang in (Language.JA, Language.EN)))


def _message_id(payload: dict[str, Any]) -> str | None:
    """The LINE message id of a message event's payload (kept with the transcript line, for unsend)."""
    message = payload.get("message")
    return str(message["id"]) if isinstance(message, dict) and message.get("id") else None


def _user_of(event: Any) -> str | None:
    source = event.source
    return source.user_id if isinstance(source, UserSource) and source.user_id else None


def _push_target(payload: dict[str, Any]) -> str | None:
    source = payload.get("source") or {}
    return source.get("userId") if source.get("type") == "user" else source.get("groupId") or source.get("roomId")


def _error_message(error: ApiException) -> str:
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        return str(error.reason or "")
    return str(body.get("message", "")) if isinstance(body, dict) else ""


def _retry_after(error: ApiException, now: datetime) -> float:
    value = error.headers.get("Retry-After") if error.headers is not None else None
    if not value:
        return DEFAULT_RETRY_AFTER
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER

