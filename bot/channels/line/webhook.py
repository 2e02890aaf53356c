"""LINE's webhook edge: verify the signature, check and store each event we handle, answer 200.

The inbox worker does the rest (bot/channels/line/channel.py).
"""

import logging
from typing import Any

from linebot.v3 import SignatureValidator
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bot.bodies import read_bounded
from bot.channels.line.body import HANDLED_EVENTS, MalformedBody, read_events
from bot.delivery.inbox import Inbox
from bot.untrusted import BadJson, load_json, storable_json
from handlers.turn import Channel

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
LOGGED_CHARS = 40  # of a type or id the sender chose, in a log line


class LineWebhook:
    """POST /line/webhook: signed by LINE with the channel secret, or refused."""

    channel = Channel.LINE.value

    def __init__(self, channel_secret: str) -> None:
        self._validator = SignatureValidator(channel_secret)

    async def endpoint(self, request: Request) -> Response:
        """Verify the signature, then read and check the body, store each event we handle, answer 200.

        A body that is signed but malformed (not JSON, too deep, a field of the wrong type or out of range)
        is answered 400 naming the field, and nothing of it is stored: LINE's redelivery would send the same
        bytes again, and storing it would only make an event that fails at every attempt. An event of a
        type we do not handle, but otherwise well formed, is acknowledged and ignored (LINE adds types).
        """
        body = await read_bounded(request, MAX_BODY_BYTES)
        if body is None:
            return PlainTextResponse("body too large", status_code=413)
        try:
            text = body.decode("utf-8")  # LINE signs and sends UTF-8; the SDK's validator takes text
        except UnicodeDecodeError:
            return PlainTextResponse("body is not UTF-8", status_code=400)
        signature = request.headers.get("x-line-signature", "")
        if not signature or not self._validator.validate(text, signature):
            log.warning("LINE webhook: %s signature, request refused", "wrong" if signature else "missing")
            return PlainTextResponse("invalid signature", status_code=400)
        try:
            events = read_events(load_json(text))
        except BadJson as error:
            return _refused(str(error))
        except MalformedBody as error:
            return _refused(f"{error.field} {error.problem}")
        return await self._store_all(request.app.state.inbox, events)

    async def _store_all(self, inbox: Inbox, events: list[dict[str, Any]]) -> Response:
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


def loggable(text: str) -> str:
    """Text from a webhook as one short log field: cut to LOGGED_CHARS, and quoted if it holds line breaks or
    other control characters (which could forge a log line)."""
    short = text[:LOGGED_CHARS]
    return short if short.isprintable() else repr(short)


def _refused(problem: str) -> Response:
    # The problem names a field, never its value: nothing the student wrote reaches the log.
    log.warning("LINE webhook: signed but malformed body refused: %s", problem)
    return PlainTextResponse(f"malformed body: {problem}", status_code=400)
