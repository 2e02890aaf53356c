"""LINE's Messaging API as the bot uses it, with LINE's errors mapped to what the inbox does with them.

An answer goes by reply token while fresh, else by push with a retry key; pushes and multicasts reach students
outside a turn; the loading animation and link tokens are asked for in a turn, and a student who switches language
gets that language's rich menu. LINE's answers become RetryAfter (429), PermanentFailure (any other 4xx) or
LineApiError (5xx, retried with backoff).
"""

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

from linebot.v3.messaging import ApiClient, ApiException, Configuration, MessagingApi

from bot.channels.line import richmenu
from bot.channels.line.later import LaterCalls
from bot.channels.line.pacing import Pacer
from bot.channels.line.richmenu import MenuSwitch
from bot.channels.line.transport import REQUEST_TIMEOUT, Poster
from bot.delivery.inbox import Call, PermanentFailure, RetryAfter
from bot.settings import ChannelSettings
from core.enums import Language
from core.masking import mask_token
from core.settings import secret_value

log = logging.getLogger(__name__)

# LINE accepts a reply token for about a minute after the event; past this we push instead.
REPLY_TOKEN_TTL = timedelta(seconds=50)
LOADING_SECONDS = 20  # 5 to 60, a multiple of 5; the animation ends when our answer arrives
DEFAULT_RETRY_AFTER = 30.0  # seconds, when a 429 names no Retry-After
PUSH_PATH, MULTICAST_PATH = "/v2/bot/message/push", "/v2/bot/message/multicast"
REPLY_PATH, LOADING_PATH = "/v2/bot/message/reply", "/v2/bot/chat/loading/start"
LOADING_AFTER_SECONDS = 1.0  # a turn slower than this shows the typing animation
ALIAS_TTL = timedelta(minutes=5)  # how long the menu an alias names is trusted (a deploy may point it elsewhere)
# Fixed, so that a retry after a crash derives the same X-Line-Retry-Key for the same event and part.
RETRY_KEY_NAMESPACE = uuid.UUID("6f1b7c2e-3a5d-4e8f-9b0a-1c2d3e4f5a6b")


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


class LineApi:
    """The Messaging API client of one LINE channel; no call is made until one is asked for."""

    def __init__(self, settings: ChannelSettings, now: Callable[[], datetime]) -> None:
        configuration = Configuration(host=settings.line_api_base_url.rstrip("/"),
                                      access_token=secret_value(settings.line_channel_access_token))
        configuration.retries = 0  # the inbox retries, with backoff and a retry key; urllib3 must not
        self.sdk = MessagingApi(ApiClient(configuration))
        self._pushes = Pacer(settings.line_pushes_per_second or None)
        self._poster = Poster(configuration.host, self.sdk.api_client.default_headers)
        self._now = now
        self.loading_after_seconds = LOADING_AFTER_SECONDS
        self._later = LaterCalls()
        self._menus: dict[Language, tuple[str, datetime]] = {}  # alias lookups: language → (menu id, when)
        self._menus_lock = threading.Lock()

    def reply_token_fresh(self, payload: dict[str, Any]) -> bool:
        """Whether the event's reply token is young enough to use (and the student likely still watching)."""
        return self._now() - event_time(payload) < REPLY_TOKEN_TTL

    def answer(self, call: Call) -> None:
        """Send one part of an event's answer: by the reply token if it is the first and the token is fresh,
        else by push.

        Raises:
            RetryAfter: LINE answered 429 (too many requests).
            PermanentFailure: a 4xx that will not succeed on retry (including the monthly message limit).
            LineApiError: a 5xx; the inbox retries with backoff (and the same retry key).
        """
        payload, messages = call.payload, call.part["messages"]
        token = payload.get("replyToken")
        if call.index == 0 and token and self.reply_token_fresh(payload):
            body = {"replyToken": token, "messages": messages}
            try:
                self._call(lambda: self._poster.post(REPLY_PATH, body), reply=True)
                return
            except _ReplyTokenRefused:
                if call.resumed:
                    # An earlier attempt may have sent this reply before it died: a token this young that LINE
                    # refuses was used, so the answer went out; a push would answer twice.
                    log.info("LINE reply token of event %s refused on a resumed attempt: it was used",
                             payload.get("webhookEventId"))
                    return
                log.info("LINE reply token of event %s refused: pushing instead", payload.get("webhookEventId"))
        target = _push_target(payload)
        if target is None:
            raise PermanentFailure("no user, group or room to push to")
        self.push(target, messages, retry_key(payload["webhookEventId"], call.index))

    def push(self, to: str, messages: list[dict[str, Any]], key: str) -> None:
        """Push messages to a user with a retry key fixed by the caller, so a retry is never delivered twice.

        Paced to this process's share of LINE's limit (bot.channels.line.pacing).

        Raises:
            RetryAfter, PermanentFailure, LineApiError: as `answer`.
        """
        self._pushes.wait()
        try:
            self._call(lambda: self._poster.post(PUSH_PATH, {"to": to, "messages": messages}, key))
        except RetryAfter as wait:
            self._pushes.hold(wait.seconds)
            raise

    def deliver(self, part: dict[str, Any], key: str) -> None:
        """Push a rendered part to its user, or multicast it to its list of users; the retry key derives from
        `key`, so every attempt carries the same one.

        Raises:
            RetryAfter, PermanentFailure, LineApiError: as `answer`.
        """
        if isinstance(part["to"], list):
            body = {"to": part["to"], "messages": part["messages"]}
            self._call(lambda: self._poster.post(MULTICAST_PATH, body, retry_key(key, 0)))
            return
        self.push(part["to"], part["messages"], retry_key(key, 0))

    @contextmanager
    def loading_while_slow(self, user_id: str, payload: dict[str, Any],
                           unless: Callable[[], bool] | None = None) -> Iterator[None]:
        """The typing animation for a turn that has not answered within LOADING_AFTER_SECONDS (it waits for the
        conversation's previous message, or for the database): a turn answered at once needs none, and asking
        LINE for it first would only put a round trip before the answer. Only while the student is likely still
        watching, and not if `unless()` says so when the time comes (asked then, so a fast turn never asks)."""
        if not self.reply_token_fresh(payload):
            yield
            return
        pending = self._later.after(self.loading_after_seconds, partial(self._typing, user_id, unless))
        try:
            yield
        finally:
            pending.cancel()

    def _typing(self, user_id: str, unless: Callable[[], bool] | None) -> None:
        if unless is None or not unless():
            self.show_loading(user_id)

    def show_loading(self, user_id: str) -> None:
        """The typing animation (it ends when the answer arrives, or after LOADING_SECONDS)."""
        try:
            self._poster.post(LOADING_PATH, {"chatId": user_id, "loadingSeconds": LOADING_SECONDS})
        except Exception as error:  # a nicety: never worth failing or delaying the answer for
            log.info("LINE loading animation not shown: %s", type(error).__name__)

    def issue_link_token(self, user_id: str) -> str | None:
        """A link token for the user's account-link page; None when LINE refuses one for good (a 4xx).

        Raises:
            LineApiError: LINE answered 429 or 5xx; the inbox retries.
        """
        try:
            return self.sdk.issue_link_token(user_id, _request_timeout=REQUEST_TIMEOUT).link_token
        except ApiException as error:
            if error.status is not None and 400 <= error.status < 500 and error.status != 429:
                log.error("LINE link token refused for %s: %s", mask_token(user_id), _error_message(error))
                return None
            raise LineApiError(f"issuing a link token: HTTP {error.status}") from None

    def switch_menu(self, switch: MenuSwitch) -> None:
        """Show the user the rich menu of `switch.lang`: the default language's by unlinking theirs, another's by
        linking it (found by its alias, `madoguchi-en`). A menu LINE will not link (none deployed, the user
        blocked the account) is logged and skipped: the answer itself went out already.

        Raises:
            RetryAfter: LINE answered 429.
            LineApiError: a 5xx; the inbox retries with backoff (linking twice is harmless).
        """
        try:
            if switch.lang is richmenu.DEFAULT_LANGUAGE:
                self.sdk.unlink_rich_menu_id_from_user(switch.user_id, _request_timeout=REQUEST_TIMEOUT)
            else:
                self._link_menu(switch.user_id, switch.lang)
        except ApiException as error:
            status = error.status or 0
            if status == 429:
                raise RetryAfter(_retry_after(error, self._now())) from None
            if not 400 <= status < 500:
                raise LineApiError(f"switching a rich menu: HTTP {status}") from None
            log.info("LINE rich menu (%s) not shown to %s: HTTP %d %s", switch.lang.value, mask_token(switch.user_id),
                     status, _error_message(error))

    def _link_menu(self, user_id: str, lang: Language) -> None:
        menu_id, cached = self._menu_of(lang)
        try:
            self.sdk.link_rich_menu_id_to_user(user_id, menu_id, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as error:
            if not cached or error.status not in (400, 404):
                raise
            # A deploy since the lookup may have replaced that menu: once more with what the alias names now.
            with self._menus_lock:
                self._menus.pop(lang, None)
            self.sdk.link_rich_menu_id_to_user(user_id, self._menu_of(lang)[0], _request_timeout=REQUEST_TIMEOUT)

    def _menu_of(self, lang: Language) -> tuple[str, bool]:
        """The id of the live menu of `lang` (by its alias, looked up at most every ALIAS_TTL), and whether it
        came from the cache."""
        with self._menus_lock:
            known = self._menus.get(lang)
        if known is not None and self._now() - known[1] < ALIAS_TTL:
            return known[0], True
        menu_id = self.sdk.get_rich_menu_alias(richmenu.alias(lang), _request_timeout=REQUEST_TIMEOUT).rich_menu_id
        with self._menus_lock:
            self._menus[lang] = (menu_id, self._now())
        return menu_id, False

    def _call(self, call: Callable[[], Any], *, reply: bool = False) -> None:
        try:
            call()
        except ApiException as error:
            mapped = self._mapped(error, reply=reply)
            if mapped is not None:
                raise mapped from None

    def _mapped(self, error: ApiException, *, reply: bool) -> Exception | None:
        """What LINE's answer means to the inbox; None for a push LINE accepted before."""
        status, message = error.status or 0, _error_message(error)
        if status == 409 and not reply:
            # The retry key was accepted before: this part was delivered on an earlier attempt.
            log.info("LINE push already accepted (409): counted as sent")
            return None
        if status == 429:
            if "monthly limit" in message.lower():
                return PermanentFailure(f"LINE monthly message limit reached: {message}")
            return RetryAfter(_retry_after(error, self._now()))
        if reply and status == 400 and "reply token" in message.lower():
            return _ReplyTokenRefused()
        if 400 <= status < 500:
            return PermanentFailure(f"LINE API {status}: {message}")
        return LineApiError(f"LINE API {status}: {message}")


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
