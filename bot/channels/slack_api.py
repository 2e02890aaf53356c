"""Slack's Web API as the bot uses it, paced, with Slack's errors mapped to what the inbox does with them.

One post per conversation and second (chat.postMessage's pace; a call without a conversation, such as
views.publish, is paced per user). Slack's answers become RetryAfter (rate limited), SlackUnavailable (5xx
or a transient error, retried with backoff) or PermanentFailure (any other).
"""

import json
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.channels.slack_payloads import Destination
from bot.delivery.inbox import PermanentFailure, RetryAfter

log = logging.getLogger(__name__)

PACE = timedelta(seconds=1)  # chat.postMessage allows about one message per second in each conversation
API_TIMEOUT_SECONDS = 10
DEFAULT_RETRY_AFTER_SECONDS = 1.0  # a 429 without Retry-After (Slack always sends one)
RATE_LIMITED_ERRORS = frozenset({"ratelimited", "rate_limited"})
TRANSIENT_ERRORS = frozenset({"fatal_error", "internal_error", "service_unavailable", "request_timeout"})
REMEMBERED_CONVERSATIONS = 1024  # past this many, conversations not waiting for their second are forgotten


class SlackUnavailable(Exception):
    """Slack answered 5xx or a transient error: the inbox retries the call with backoff."""


def web_client(base_url: str, token: str | None = None) -> WebClient:
    """A Web API client that never retries or sleeps itself: retries belong to the inbox (stored, with backoff)."""
    return WebClient(token=token, base_url=base_url, timeout=API_TIMEOUT_SECONDS, retry_handlers=[])


class SlackWebApi:
    """The bot's Web API calls, paced per conversation, with Slack's errors classified for the inbox."""

    def __init__(self, client: WebClient, now: Callable[[], datetime]) -> None:
        self.client, self._now = client, now
        self._pace_lock = threading.Lock()
        self._last_post: dict[str, datetime] = {}
        self._hold_until: datetime | None = None

    def call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """One Web API call; the response data.

        Raises:
            RetryAfter: when the conversation had a post less than a second ago, or Slack answered 429.
            SlackUnavailable: for a 5xx or a transient Slack error (retried with backoff).
            PermanentFailure: for any other error Slack answers (a bad channel, a revoked token).
        """
        self._take_turn(pace_key(method, args))
        try:
            data = self.client.api_call(method, data=form_fields(args)).data
        except SlackApiError as error:
            raise self._classify(method, error) from error
        if not isinstance(data, dict):  # the Web API answers JSON; anything else is retried like a 5xx
            raise SlackUnavailable(f"{method}: the answer is not a JSON object")
        return dict(data)

    def _take_turn(self, channel: str) -> None:
        """Reserve this second of the conversation for one post, or say how long to wait for it."""
        with self._pace_lock:
            now = self._now()
            if self._hold_until is not None and now < self._hold_until:
                raise RetryAfter((self._hold_until - now).total_seconds())
            last = self._last_post.get(channel)
            if last is not None and now - last < PACE:
                raise RetryAfter((last + PACE - now).total_seconds())
            if len(self._last_post) > REMEMBERED_CONVERSATIONS:
                self._last_post = {key: at for key, at in self._last_post.items() if now - at < PACE}
            self._last_post[channel] = now

    def _classify(self, method: str, error: SlackApiError) -> Exception:
        status = error.response.status_code
        data = error.response.data
        code = data.get("error") if isinstance(data, dict) else None
        if status == 429 or code in RATE_LIMITED_ERRORS:
            seconds = _retry_after(error.response.headers)
            with self._pace_lock:  # the limit is the app's: hold every conversation, not only this one
                self._hold_until = self._now() + timedelta(seconds=seconds)
            log.warning("slack: %s rate limited; retrying after %g s", method, seconds)
            return RetryAfter(seconds)
        if status >= 500 or code in TRANSIENT_ERRORS:
            return SlackUnavailable(f"{method}: HTTP {status} {code or ''}".rstrip())
        return PermanentFailure(f"{method}: {code or f'HTTP {status}'}")


def pace_key(method: str, args: Mapping[str, Any]) -> str:
    """What a call is paced by: its conversation, or for a call without one (views.publish) its method and
    user, so that publishing one user's Home view never waits on another's."""
    channel = args.get("channel")
    return str(channel) if channel else f"{method}:{args.get('user_id')}"


def post_message_part(destination: Destination, message: dict[str, Any]) -> dict[str, Any]:
    """One stored chat.postMessage call (link previews off: answers carry their own link buttons)."""
    args: dict[str, Any] = {"channel": destination.channel, **message, "unfurl_links": False, "unfurl_media": False}
    if destination.thread_ts:
        args["thread_ts"] = destination.thread_ts
    return {"method": "chat.postMessage", "args": args}


def form_fields(args: Mapping[str, Any]) -> dict[str, str]:
    """Arguments as Slack's form fields: arrays and objects JSON-encoded, booleans as `true`/`false`."""
    fields = {}
    for name, value in args.items():
        if isinstance(value, bool):
            fields[name] = "true" if value else "false"
        elif isinstance(value, list | dict):
            fields[name] = json.dumps(value, ensure_ascii=False)
        else:
            fields[name] = str(value)
    return fields


def _retry_after(headers: Mapping[str, Any]) -> float:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                return max(float(value), DEFAULT_RETRY_AFTER_SECONDS)
            except ValueError:
                break
    return DEFAULT_RETRY_AFTER_SECONDS
