"""Webhook bodies as LINE sends them: events built to webhook.yml (each body validated against its
CallbackRequest schema) and signed with the channel secret as LINE signs them."""

import base64
import hashlib
import hmac
import json
import secrets
import string
from functools import cache
from typing import Any

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest

from core.clock import Clock
from tests.channels.line.fake_line_api import WEBHOOK_SPEC, load_openapi

SPEC_HOST = "https://webhook.invalid"
BOT_USER_ID = "U" + "b0" * 16
_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@cache
def webhook_openapi() -> OpenAPI:
    return load_openapi(WEBHOOK_SPEC, SPEC_HOST)


def validate_callback(body: bytes) -> None:
    """Fail unless `body` is a CallbackRequest by LINE's webhook spec."""
    request = MockRequest(SPEC_HOST, "post", "/callback", data=body, content_type="application/json")
    webhook_openapi().validate_request(request)


def sign(secret: str, body: bytes) -> str:
    """X-Line-Signature: Base64 of the HMAC-SHA256 of the raw body, keyed with the channel secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def user_id() -> str:
    """A LINE user id: U and 32 hex digits."""
    return "U" + secrets.token_hex(16)


def event_id() -> str:
    """A webhookEventId: a ULID (26 Crockford base32 characters)."""
    return "".join(secrets.choice(_ULID_ALPHABET) for _ in range(26))


def message_id() -> str:
    return "".join(secrets.choice(string.digits) for _ in range(18))


class Events:
    """Builds webhook events stamped with the test clock's time."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def body(self, *events: dict[str, Any]) -> bytes:
        """A CallbackRequest holding `events`, validated against the spec."""
        body = json.dumps({"destination": BOT_USER_ID, "events": list(events)}, ensure_ascii=False).encode()
        validate_callback(body)
        return body

    def base(self, kind: str, user: str, *, reply: bool = True, mode: str = "active", redelivery: bool = False,
             source: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        event = {
            "type": kind, "mode": mode, "timestamp": int(self.clock.now().timestamp() * 1000),
            "source": source or {"type": "user", "userId": user}, "webhookEventId": event_id(),
            "deliveryContext": {"isRedelivery": redelivery}, **fields,
        }
        if reply:
            event["replyToken"] = secrets.token_hex(16)
        return event

    def text(self, user: str, text: str, **options: Any) -> dict[str, Any]:
        return self.base("message", user, message={"id": message_id(), "type": "text", "text": text,
                                                   "quoteToken": secrets.token_urlsafe(12)}, **options)

    def sticker(self, user: str, **options: Any) -> dict[str, Any]:
        return self.base("message", user, message={
            "id": message_id(), "type": "sticker", "packageId": "446", "stickerId": "1988",
            "stickerResourceType": "STATIC", "keywords": ["Happy"], "quoteToken": secrets.token_urlsafe(12)},
            **options)

    def image(self, user: str, **options: Any) -> dict[str, Any]:
        return self.base("message", user, message={"id": message_id(), "type": "image",
                                                   "contentProvider": {"type": "line"},
                                                   "quoteToken": secrets.token_urlsafe(12)}, **options)

    def postback(self, user: str, data: str, **options: Any) -> dict[str, Any]:
        return self.base("postback", user, postback={"data": data}, **options)

    def follow(self, user: str, **options: Any) -> dict[str, Any]:
        return self.base("follow", user, follow={"isUnblocked": False}, **options)

    def unfollow(self, user: str, **options: Any) -> dict[str, Any]:
        return self.base("unfollow", user, reply=False, **options)

    def account_link(self, user: str, nonce: str, *, ok: bool = True, **options: Any) -> dict[str, Any]:
        # LINE includes no reply token when linking failed.
        return self.base("accountLink", user, reply=ok, link={"result": "ok" if ok else "failed", "nonce": nonce},
                         **options)

    def unsend(self, user: str, unsent_message_id: str, **options: Any) -> dict[str, Any]:
        return self.base("unsend", user, reply=False, unsend={"messageId": unsent_message_id}, **options)

    def beacon(self, user: str, **options: Any) -> dict[str, Any]:
        return self.base("beacon", user, beacon={"hwid": "d41d8cd98f", "type": "enter"}, **options)

    def video_play_complete(self, user: str, **options: Any) -> dict[str, Any]:
        return self.base("videoPlayComplete", user, videoPlayComplete={"trackingId": "track-1"}, **options)
