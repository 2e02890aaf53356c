"""The JSON chat endpoint: POST /api/chat takes one message and answers with the bot's replies; later messages
(an agent's reply, a notice) come from GET /api/chat/updates or live from GET /api/chat/events."""

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any, TypedDict

import anyio.to_thread
import orjson
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from bot.bodies import read_bounded
from bot.channels import web
from bot.pipeline import Pipeline
from bot.untrusted import BadJson, load_json
from bot.web import signin
from bot.web.loop_turns import LoopTurns
from core.models import TranscriptEntry
from core.services import Core
from handlers.replies import Reply

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024
LATER_DIRECTIONS = ("agent", "note")  # transcript lines that reach the student outside a turn
# The live stream looks for later messages this often, and ends after STREAM_POLLS looks (about 5 minutes);
# the browser's EventSource then reconnects by itself, naming the last message it got (Last-Event-ID).
POLL_SECONDS = 1.0
STREAM_POLLS = 300
RETRY_MILLISECONDS = 2000
KEEPALIVE_POLLS = 15  # a comment line now and then, so proxies do not close a quiet stream
# Chat turns running at once in worker threads on PostgreSQL (bot/locks.py lets four of them work at a time);
# the rest wait in this queue, which holds no thread.
CHAT_THREADS = 4
MESSAGE_ID = re.compile(r"[0-9]{1,10}")  # a transcript id, in ASCII digits
MAX_MESSAGE_ID = 2**31 - 1  # the id column is an INTEGER: PostgreSQL refuses to compare it with more


class QuickReply(TypedDict):
    """A button under a later message: what it says and the payload it sends back."""

    label: str
    payload: str


class LaterMessage(TypedDict):
    """A message that reached the conversation outside a turn, as /api/chat/updates and /events send it."""

    id: int
    kind: str  # the transcript direction: "agent" or "note"
    text: str
    at: str  # ISO 8601, UTC
    author: str | None  # a web inbox agent's display name, else None
    quick_replies: list[QuickReply]


async def chat(request: Request) -> JSONResponse:
    """Answer one chat message; 4xx with the bad field named for a bad body."""
    raw = await read_bounded(request, MAX_BODY_BYTES)
    if raw is None:
        return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
    try:
        message = web.to_message(load_json(raw))
    except BadJson as bad:  # not UTF-8, not JSON, or nested deeper than any chat message
        return JSONResponse({"error": str(bad)}, status_code=400)
    except web.BadChatRequest as bad:
        return JSONResponse({"error": str(bad), "field": bad.field}, status_code=422)
    pipeline: Pipeline = request.app.state.pipeline
    core: Core = request.app.state.core
    def answer() -> list[Reply]:
        # Who the student is: the browser's signed-in session, never a number typed in the chat.
        return pipeline.handle(signin.with_student(core, request, message))

    loop_turns: LoopTurns | None = request.app.state.loop_turns
    if loop_turns is not None:
        # SQLite: a turn waits for no network, and its one write only for this process's other writers (short
        # transactions; see core.db). Run on the event loop's own thread it costs a third less than handed to a
        # worker thread that then fights the loop for the interpreter (measured: 460 → 740 answers a second).
        # Its write is committed with those of the other turns the loop had ready, before the answer goes out.
        replies = loop_turns.answer(answer)
        await loop_turns.written()
    else:
        # PostgreSQL: the turn waits for the server's answers, which other requests use. One trip to a worker
        # thread, queued first come, first served behind the app's few chat threads: dozens of threads taking
        # turns on one interpreter answer more slowly, and in a random order.
        replies = await anyio.to_thread.run_sync(answer, limiter=request.app.state.chat_turns)
    body: dict[str, object] = {"replies": web.render(replies)}
    if message.text is not None:
        # What the transcript keeps of the student's words (a pasted password masked): the page stores this,
        # not what was typed, so a password never stays in the browser's storage either.
        body["said"] = pipeline.said_as_stored(message)
    return ChatAnswer(body)


class ChatAnswer(JSONResponse):
    """An answer of /api/chat, rendered by orjson: the standard json module took a twentieth of a message's time.
    The same JSON (UTF-8, characters unescaped, no spaces) as Starlette's own."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def updates(request: Request) -> JSONResponse:
    """Messages that reached the conversation outside a turn (an agent's reply, a notice) after `after`."""
    asked = _later_query(request, request.query_params.get("after", "0"))
    if isinstance(asked, JSONResponse):
        return asked
    conversation_id, after = asked
    core: Core = request.app.state.core
    messages = await run_in_threadpool(later_messages, core, conversation_id, after)
    return JSONResponse({"messages": messages, "last": max([m["id"] for m in messages], default=after)},
                        headers={"Cache-Control": "no-store"})


async def events(request: Request) -> Response:
    """The later messages of a conversation as server-sent events, from after `Last-Event-ID` (or `after`)."""
    # A reconnecting EventSource names the last event it got; that wins over the `after` of its URL.
    asked = _later_query(request, request.headers.get("last-event-id") or request.query_params.get("after", "0"))
    if isinstance(asked, JSONResponse):
        return asked
    conversation_id, after = asked
    core: Core = request.app.state.core
    # The first look is made before the stream starts, so a database that is down is a 503 (bot/web/app.py)
    # rather than a stream that breaks after its 200.
    first = await run_in_threadpool(later_messages, core, conversation_id, after)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}  # nginx would otherwise hold the events
    return StreamingResponse(_event_stream(core, conversation_id, after, first), media_type="text/event-stream",
                             headers=headers)


def _later_query(request: Request, after: str) -> tuple[str, int] | JSONResponse:
    """The conversation and message id asked for, or a 422 naming the bad parameter."""
    user = web.valid_user(request.query_params.get("user", ""))  # as /api/chat stored it
    if user is None:
        return JSONResponse({"error": "user: must be a chat's user id", "field": "user"}, status_code=422)
    # ASCII digits only: str.isdigit() also takes "²" or "٣", which int() refuses.
    if not MESSAGE_ID.fullmatch(after) or int(after) > MAX_MESSAGE_ID:
        return JSONResponse({"error": "after: must be a message id", "field": "after"}, status_code=422)
    return f"web:{user}", int(after)


async def _event_stream(core: Core, conversation_id: str, after: int,
                        first: list[LaterMessage]) -> AsyncIterator[str]:
    """Poll the transcript and send each new later message once, starting with `first` (the messages of the
    first look); a database connection is held only while one poll reads (later_messages opens and closes its
    own transaction)."""
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    for poll in range(STREAM_POLLS):
        messages = first if poll == 0 else await run_in_threadpool(later_messages, core, conversation_id, after)
        for message in messages:
            after = message["id"]
            yield f"id: {after}\nevent: message\ndata: {json.dumps(message, ensure_ascii=False)}\n\n"
        if not messages and poll % KEEPALIVE_POLLS == KEEPALIVE_POLLS - 1:
            yield ": keep-alive\n\n"
        await asyncio.sleep(POLL_SECONDS)


def later_messages(core: Core, conversation_id: str, after: int) -> list[LaterMessage]:
    """The agents' replies and notices of a conversation with an id above `after`, oldest first."""
    with core.transaction() as session:
        rows = session.scalars(select(TranscriptEntry).where(
            TranscriptEntry.conversation_id == conversation_id, TranscriptEntry.id > after,
            TranscriptEntry.direction.in_(LATER_DIRECTIONS)).order_by(TranscriptEntry.id).limit(100))
        return [{"id": row.id, "kind": row.direction, "text": row.text, "at": row.at.isoformat(),
                 # a web inbox agent's display name; a Slack user ID (slack:U…) means nothing to a student
                 "author": row.author if row.author and not row.author.startswith("slack:") else None,
                 "quick_replies": [{"label": label, "payload": payload}
                                   for label, payload in json.loads(row.buttons or "[]")]} for row in rows]


def routes() -> list[BaseRoute]:
    """The chat endpoint and its later messages, polled or streamed."""
    return [Route("/api/chat", chat, methods=["POST"]), Route("/api/chat/updates", updates, methods=["GET"]),
            Route("/api/chat/events", events, methods=["GET"]), Route("/signout", signin.sign_out, methods=["POST"])]
