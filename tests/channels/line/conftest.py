"""LINE fixtures: the fake LINE platform on loopback, and the app with the LINE channel and the inbox,
served by uvicorn on loopback, with helpers to post signed webhooks and drain the inbox."""

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.delivery.inbox import Inbox
from bot.settings import ChannelSettings
from core.clock import FixedClock
from core.models import InboundEvent
from core.services import Core
from tests.channels.line.fake_line_api import FakeLineApi
from tests.channels.line.webhooks import Events, sign
from tests.conftest import on_loopback, serve

CHANNEL_SECRET = "0123456789abcdef0123456789abcdef"
ACCESS_TOKEN = "fake-channel-access-token"


@pytest.fixture(scope="session")
def fake_line_server() -> Iterator[FakeLineApi]:
    """The fake LINE platform, served once per session."""
    fake = FakeLineApi()
    with on_loopback(fake.app) as url:
        fake.bind(url)
        yield fake


@pytest.fixture
def fake_line(fake_line_server: FakeLineApi) -> Iterator[FakeLineApi]:
    """The fake platform, emptied for this test; any spec violation fails the test at teardown."""
    fake_line_server.reset()
    yield fake_line_server
    assert fake_line_server.violations == [], "\n".join(fake_line_server.violations)


def line_fields(fake: FakeLineApi) -> dict[str, Any]:
    """The LINE channel settings that point at the fake platform."""
    return {"line_channel_secret": CHANNEL_SECRET, "line_channel_access_token": ACCESS_TOKEN,
            "line_api_base_url": fake.url, "line_access_base_url": fake.url, "line_data_api_base_url": fake.data_url}


def line_settings(fake: FakeLineApi) -> ChannelSettings:
    return ChannelSettings(**line_fields(fake), _env_file=None)


@dataclass
class LineHarness:
    """The served app with its LINE channel and inbox, the fake platform, and the test clock."""

    url: str
    core: Core
    client: httpx.Client
    inbox: Inbox
    pipeline: Any
    fake: FakeLineApi
    clock: FixedClock
    events: Events

    def post_body(self, body: bytes, signature: str | None = "sign") -> httpx.Response:
        """POST a raw body to the webhook; signed correctly unless `signature` is given (None: no header)."""
        headers = {"content-type": "application/json"}
        if signature == "sign":
            headers["x-line-signature"] = sign(CHANNEL_SECRET, body)
        elif signature is not None:
            headers["x-line-signature"] = signature
        return self.client.post("/line/webhook", content=body, headers=headers)

    def post(self, *events: dict[str, Any]) -> httpx.Response:
        """POST spec-valid, correctly signed events; the webhook must answer 200."""
        response = self.post_body(self.events.body(*events))
        assert response.status_code == 200, response.text
        return response

    def deliver(self, *events: dict[str, Any]) -> int:
        """POST the events and let the worker handle everything due; the number handled."""
        self.post(*events)
        return self.inbox.drain()

    def stored(self) -> int:
        with self.core.transaction() as session:
            return session.scalar(select(func.count()).select_from(InboundEvent)) or 0

    def statuses(self) -> list[str]:
        with self.core.transaction() as session:
            return list(session.scalars(select(InboundEvent.status).order_by(InboundEvent.id)))


@pytest.fixture
def make_line(make_core: Callable[..., Core], inbox, pipeline_for, fake_line: FakeLineApi,
              clock: FixedClock) -> Iterator[Callable[..., LineHarness]]:
    """Start the LINE app; `pipeline` builds a stand-in pipeline from the core (default: the real one)."""
    with ExitStack() as stack:

        def start(pipeline: Callable[[Core], Any] | None = None) -> LineHarness:
            server = stack.enter_context(serve(make_core, pipeline or pipeline_for, **line_fields(fake_line)))
            inbox = server.app.state.inbox
            return LineHarness(url=server.url, core=server.core, client=server.client, inbox=inbox,
                               pipeline=server.app.state.pipeline, fake=fake_line, clock=clock, events=Events(clock))

        yield start


@pytest.fixture
def line(make_line: Callable[..., LineHarness]) -> LineHarness:
    """The LINE app with the real conversation pipeline."""
    return make_line()
