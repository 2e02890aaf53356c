"""Fixtures for the Slack channel: a fake Slack Web API on loopback, the whole web app (create_app, with
the Slack credentials set) served by uvicorn on loopback, and helpers that post requests signed as Slack
signs them and run the inbox worker synchronously (no sleeps: the test clock is moved instead)."""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from starlette.applications import Starlette

from bot.delivery.inbox import Inbox
from bot.settings import ChannelSettings
from bot.web.app import create_app
from core.clock import FixedClock
from core.models import InboundEvent
from core.services import Core
from tests.channels.conftest import served
from tests.channels.slack.fake_slack_api import FORM, Call, FakeSlackApi, running
from tests.channels.slack.payloads import BOT_TOKEN, SIGNING_SECRET, signed_headers
from tests.conftest import loopback_client

MAX_ROUNDS = 30  # deliver(): worker rounds before giving up on events that never become sendable


@pytest.fixture
def fake_slack() -> Iterator[FakeSlackApi]:
    """The fake Web API; any call that breaks the spec fails the test when it ends."""
    with running(BOT_TOKEN) as fake:
        yield fake
    assert not fake.violations, "calls that break the Slack Web API spec:\n" + "\n".join(fake.violations)


@pytest.fixture
def slack_settings(fake_slack: FakeSlackApi) -> ChannelSettings:
    """Slack credentials for the tests, with the Web API pointed at the fake."""
    return ChannelSettings(_env_file=None, slack_bot_token=SecretStr(BOT_TOKEN),
                           slack_signing_secret=SecretStr(SIGNING_SECRET), slack_api_base_url=fake_slack.base_url,
                           slack_app_token=None)


@dataclass
class SlackServer:
    """The app served on loopback, the inbox worker that answers, and the fake Slack it answers through."""

    http: httpx.Client
    core: Core
    clock: FixedClock
    inbox: Inbox
    fake: FakeSlackApi

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST raw bytes to /slack/events with the given headers."""
        return self.http.post("/slack/events", content=body, headers=headers)

    def send_event(self, payload: dict, *, retry_num: int | None = None) -> httpx.Response:
        """Post an Events API body, signed now; `retry_num` marks it as Slack's retry."""
        raw = json.dumps(payload, ensure_ascii=False).encode()
        headers = signed_headers(raw)
        if retry_num is not None:
            headers |= {"x-slack-retry-num": str(retry_num), "x-slack-retry-reason": "http_timeout"}
        return self.post(raw, headers)

    def send_form(self, form: str) -> httpx.Response:
        """Post a slash command or an interaction (form-encoded), signed now."""
        raw = form.encode()
        return self.post(raw, signed_headers(raw, content_type=FORM))

    def deliver(self) -> list[Call]:
        """Run the worker until nothing is pending, moving the clock a second on between rounds (the
        pacing); the messages Slack accepted meanwhile."""
        before = len(self.fake.posts())
        for _ in range(MAX_ROUNDS):
            self.inbox.drain()
            if not self.events("pending", "processing"):
                break
            self.clock.advance(seconds=1)
        return self.fake.posts()[before:]

    def events(self, *statuses: str) -> list[InboundEvent]:
        """The stored events, optionally only those with one of `statuses`."""
        with self.core.transaction() as session:
            query = select(InboundEvent).order_by(InboundEvent.id)
            if statuses:
                query = query.where(InboundEvent.status.in_(statuses))
            rows = session.scalars(query).all()
            session.expunge_all()
            return list(rows)


@contextmanager
def serve(app: Starlette) -> Iterator[httpx.Client]:
    """Serve an app on a loopback socket bound before uvicorn starts, so no waiting is needed."""
    with served(app) as url, loopback_client(url) as client:
        yield client


@pytest.fixture
def slack_server(core: Core, clock: FixedClock, pipeline_for: Callable[[Core], object], fake_slack: FakeSlackApi,
                 slack_settings: ChannelSettings) -> Iterator[SlackServer]:
    """The app with Slack enabled, served on loopback with a real pipeline and inbox (its worker is not
    started: tests drain it), answering through the fake."""
    inbox = Inbox(core)
    app = create_app(core, pipeline_for(core), channel_settings=slack_settings, inbox=inbox)  # type: ignore[arg-type]
    with serve(app) as http:
        yield SlackServer(http=http, core=core, clock=clock, inbox=inbox, fake=fake_slack)
