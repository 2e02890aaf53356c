"""The JSON chat endpoint: POST /api/chat takes one message and answers with the bot's replies."""

import json
import logging

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from bot.channels import web
from bot.pipeline import Pipeline
from bot.web.bodies import read_bounded
from core.models import TranscriptEntry
from core.services import Core

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024
LATER_DIRECTIONS = ("agent", "note")  # transcript lines that reach the student outside a turn


async def chat(request: Request) -> JSONResponse:
    """Answer one chat message; 4xx with the bad field named for a bad body."""
    raw = await read_bounded(request, MAX_BODY_BYTES)
    if raw is None:
        return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
    try:
        message = web.to_message(json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JSONResponse({"error": "body is not valid JSON"}, status_code=400)
    except web.BadChatRequest as bad:
        return JSONResponse({"error": str(bad), "field": bad.field}, status_code=422)
    pipeline: Pipeline = request.app.state.pipeline
    replies = await run_in_threadpool(pipeline.handle, message)
    return JSONResponse({"replies": web.render(replies)})


async def updates(request: Request) -> JSONResponse:
    """Messages that reached the conversation outside a turn (an agent's reply, a notice) after `after`."""
    user, after = request.query_params.get("user", ""), request.query_params.get("after", "0")
    if not user.strip() or len(user) > web.MAX_USER_ID:
        return JSONResponse({"error": "user: must be a non-empty string", "field": "user"}, status_code=422)
    if not after.isdigit() or len(after) > 18:
        return JSONResponse({"error": "after: must be a message id", "field": "after"}, status_code=422)
    core: Core = request.app.state.core
    messages = await run_in_threadpool(later_messages, core, f"web:{user}", int(after))
    return JSONResponse({"messages": messages, "last": max([m["id"] for m in messages], default=int(after))},
                        headers={"Cache-Control": "no-store"})


def later_messages(core: Core, conversation_id: str, after: int) -> list[dict[str, object]]:
    """The agents' replies and notices of a conversation with an id above `after`, oldest first."""
    with core.transaction() as session:
        rows = session.scalars(select(TranscriptEntry).where(
            TranscriptEntry.conversation_id == conversation_id, TranscriptEntry.id > after,
            TranscriptEntry.direction.in_(LATER_DIRECTIONS)).order_by(TranscriptEntry.id).limit(100))
        return [{"id": row.id, "kind": row.direction, "text": row.text, "at": row.at.isoformat()} for row in rows]


def routes() -> list[BaseRoute]:
    """The chat endpoint and its later messages."""
    return [Route("/api/chat", chat, methods=["POST"]), Route("/api/chat/updates", updates, methods=["GET"])]
