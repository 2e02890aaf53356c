"""The JSON chat endpoint: POST /api/chat takes one message and answers with the bot's replies."""

import json
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from bot.channels import web
from bot.pipeline import Pipeline
from bot.web.bodies import read_bounded

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024


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


def routes() -> list[BaseRoute]:
    """The chat endpoint."""
    return [Route("/api/chat", chat, methods=["POST"])]
