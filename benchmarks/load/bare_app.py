"""The bare baseline of the throughput benchmark: Starlette under uvicorn answering a JSON POST, nothing else."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def chat(request: Request) -> JSONResponse:
    """Parse the body and answer with one reply, as /api/chat's shape."""
    body = await request.json()
    return JSONResponse({"replies": [{"text": str(body.get("text") or body.get("payload")), "quick_replies": []}]})


app = Starlette(routes=[Route("/api/chat", chat, methods=["POST"])])
