"""GET /metrics: the Prometheus scrape, open unless METRICS_TOKEN asks for a bearer token."""

import hmac
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client.multiprocess import mark_process_dead
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.ops import metrics as bot_metrics


async def scrape(request: Request) -> Response:
    """Every madoguchi_ series in the exposition format the scraper accepts; 401 without the token if one is set.

    The token is `app.state.metrics_token` (METRICS_TOKEN, set by whoever builds the app for serving).
    """
    token: str | None = getattr(request.app.state, "metrics_token", None)
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return PlainTextResponse("metrics: a bearer token is needed\n", status_code=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    # The business totals are database reads: off the event loop, like the chat's turns.
    body, content_type = await run_in_threadpool(bot_metrics.exposition, request.app.state.core,
                                                 request.headers.get("accept"))
    return Response(body, media_type=None, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


def routes() -> list[BaseRoute]:
    """The scrape endpoint."""
    return [Route("/metrics", scrape, methods=["GET"])]


def forget_process_on_shutdown(app: Starlette) -> None:
    """In multi-process mode, tell prometheus_client when this worker ends (its live gauges must go); the
    counters' files stay, so totals never go back when a worker is replaced."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(started: Any) -> AsyncIterator[Any]:
        try:
            async with inner(started) as state:
                yield state
        finally:
            if bot_metrics.multiprocess():
                mark_process_dead(os.getpid())

    app.router.lifespan_context = lifespan
