"""The Starlette application: routes from each page module, security headers and error pages."""

import html
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import anyio
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.delivery.inbox import ChannelProcessor, Inbox
from bot.delivery.notices import Delivery, StudentSender
from bot.handoff.agents import NoSlackDesk
from bot.pipeline import Pipeline
from bot.settings import ChannelSettings
from bot.web import admin, chat, desk_pages, links, metrics, oidc, page, payments
from bot.web.loop_turns import LoopTurns
from bot.wiring import job_processors
from core.enums import Language
from core.i18n import t
from core.services import Core

log = logging.getLogger(__name__)
WEB = Path(__file__).parent

# While the database is unreachable every route answers 503 and asks to be tried again after this long: a
# restart or a failover takes tens of seconds.
RETRY_AFTER_SECONDS = 30
# Paths read by programs (the chat page's script, the platforms' webhooks, probes): a 503 as JSON there, a page
# elsewhere. The Slack path is spelled out so that this module does not import the Slack SDK.
JSON_PATHS = ("/api/", "/healthz", "/metrics", "/line/webhook", "/slack/")

SECURITY_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"content-security-policy": b"default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                b"script-src 'self'; frame-ancestors 'none'; form-action 'self'",
}


class SecurityHeaders:
    """Adds the security headers to every response (pages carry one-time tokens in their URLs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (name, value) for name, value in SECURITY_HEADERS.items() if name not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def database_unreachable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached now (down, restarting, a dropped connection, no free
    connection in the pool) rather than a bug or bad data, which stay a 500."""
    if isinstance(error, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


class DatabaseDown:
    """Answers 503 with Retry-After when a request fails because the database is unreachable: JSON for programs
    (JSON_PATHS), a short page in both languages for people. A response already started cannot be changed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as error:
            if started or not database_unreachable(error):
                raise
            # The first path segment only: the rest may be a secret (a link's token, a payment's reference).
            log.error("database unreachable: %s /%s… answered 503 (%s)", scope["method"],
                      scope["path"].split("/")[1], type(getattr(error, "orig", None) or error).__name__)
            await unavailable(scope["path"])(scope, receive, send)


def unavailable(path: str) -> Response:
    """The 503 answer while the database is unreachable."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
    if path.startswith(JSON_PATHS):
        return JSONResponse({"error": "the database is unreachable; retry later"}, status_code=503, headers=headers)
    return HTMLResponse(_unavailable_page(), status_code=503, headers=headers)


def _unavailable_page() -> str:
    # Built without templates or the university's profile: neither may be what failed, and the page must show.
    sections = "".join(
        f'<section lang="{lang.value}"><h1>{html.escape(t("edges.database_down.title", lang))}</h1>'
        f'<p>{html.escape(t("edges.database_down.body", lang))}</p></section>' for lang in Language)
    title = html.escape(t("edges.database_down.title", Language.JA))
    return (f'<!doctype html><html lang="ja"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
            f'<link rel="stylesheet" href="/static/page.css"></head><body><main class="card">{sections}</main>'
            f'</body></html>')


async def healthz(request: Request) -> Response:
    """Liveness and database reachability, for load balancers and `madoguchi doctor`."""
    core: Core = request.app.state.core
    try:
        with core.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except Exception:
        log.exception("health check: database unreachable")
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return JSONResponse({"status": "ok", "database": "ok"})


def create_app(core: Core, pipeline: Pipeline | None = None, *, channel_settings: ChannelSettings | None = None,
               inbox: Inbox | None = None, run_worker: bool = False) -> Starlette:
    """The web app for one core and its conversation pipeline, with the LINE and Slack webhooks whose
    credentials are set; `run_worker` starts the inbox worker with the app (tests drain it themselves)."""
    channel_settings = channel_settings or ChannelSettings(_env_file=None)
    inbox = inbox or Inbox(core, lease=timedelta(seconds=channel_settings.inbox_lease_seconds))
    for processor in job_processors(core):  # the core's own jobs (link mails), whatever channels are connected
        inbox.register(processor)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *page.routes(),
        *chat.routes(),
        *admin.routes(),
        *desk_pages.routes(),
        *metrics.routes(),
        *links.routes(),
        *payments.routes(),
        *channel_routes(core, pipeline, channel_settings, inbox),
        *(oidc.routes() if channel_settings.oidc_enabled else []),
        Mount("/static", app=StaticFiles(directory=WEB / "static"), name="static"),
    ]

    # A test's stand-in pipeline may keep no turns of its own: its turns then run as on PostgreSQL.
    turns = getattr(pipeline, "turns", None)
    loop_turns = LoopTurns(turns) if turns is not None and core.engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if run_worker:
            inbox.start()
        try:
            yield
        finally:
            if loop_turns is not None:
                loop_turns.close()
            if run_worker:
                inbox.stop()

    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders), Middleware(DatabaseDown)],
                    lifespan=lifespan)
    app.state.core = core
    app.state.templates = Jinja2Templates(directory=WEB / "templates")
    # Every page says whose it is (the university and its service), in the page's language: a page that names
    # neither looks like phishing.
    app.state.templates.env.globals["brand"] = lambda lang: {"university": core.profile.name(lang),
                                                             "service": core.profile.service_name(lang)}
    app.state.pipeline = pipeline  # None only in page tests that never chat
    app.state.channel_settings = channel_settings
    app.state.inbox = inbox
    # How /api/chat runs its turns (see bot/web/chat.py): on SQLite on the event loop, their writes committed
    # together; on PostgreSQL in a few worker threads.
    app.state.loop_turns = loop_turns
    app.state.chat_turns = anyio.CapacityLimiter(chat.CHAT_THREADS)
    return app


def channel_routes(core: Core, pipeline: Pipeline | None, settings: ChannelSettings, inbox: Inbox) -> list[BaseRoute]:
    """The webhooks of the channels whose credentials are set, each registered with the inbox, and the
    delivery of messages to students (agents' replies, notices) through those channels."""
    routes: list[BaseRoute] = []
    if pipeline is None:
        return routes
    senders: dict[str, StudentSender] = {}
    desk: ChannelProcessor = NoSlackDesk()  # tickets wait in the web inbox, which reads them from the database
    if settings.line_enabled:
        from bot.channels.line import LineChannel  # the SDK is imported only when the channel is used

        line = LineChannel(core, pipeline, settings)
        inbox.register(line)
        routes += line.routes()
        senders[line.channel] = line
    if settings.slack_enabled:
        from bot.channels.slack import SlackChannel

        slack = SlackChannel(core, pipeline, settings)
        inbox.register(slack)
        routes += slack.routes()
        senders[slack.channel] = slack
        if slack.agents is not None:  # tickets are posted to Slack's agents' channel too
            desk = slack.agents
            core.agents_on_slack = True
    inbox.register(desk)
    inbox.register(Delivery(core, senders))
    return routes
