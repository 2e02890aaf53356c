"""Fixtures across channels: one app serving LINE and Slack with the agents' Slack channel set, both fake
platforms on loopback, and one inbox that the test drains itself (no worker thread, no sleeps: the test
clock is moved instead)."""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.delivery.inbox import Inbox
from bot.settings import ChannelSettings
from bot.web.app import create_app
from core.clock import FixedClock
from core.models import InboundEvent
from core.services import Core
from tests.channels.line.fake_line_api import PUSH, REPLY, FakeLineApi
from tests.channels.line.webhooks import Events, sign
from tests.channels.slack.fake_slack_api import FORM, FakeSlackApi, running
from tests.channels.slack.payloads import BOT_TOKEN, SIGNING_SECRET, signed_headers
from tests.conftest import loopback_client, on_loopback

AGENT_CHANNEL = "C0AGENTS01"
LINE_SECRET = "fedcba9876543210fedcba9876543210"
LINE_TOKEN = "fake-channel-access-token-handoff"
PACING_SECONDS = 1  # Slack's pacing asks for at most this much patience; backoff after a failure is longer
MAX_ROUNDS = 30


class PollingInbox(Inbox):
    """The inbox with the worker's poll tasks kept, so a test runs one round of the worker (the tasks, then
    a drain) without its thread."""

    def __init__(self, core: Core) -> None:
        super().__init__(core)
        self.poll_tasks: list[Callable[[], None]] = []

    def every_poll(self, task: Callable[[], None]) -> None:
        super().every_poll(task)
        self.poll_tasks.append(task)

    def poll(self) -> int:
        """One round of the running worker: every poll task (the digest check), then a drain."""
        for task in self.poll_tasks:
            task()
        return self.drain()


served = on_loopback  # an app served on loopback, its URL


@pytest.fixture(scope="session")
def handoff_line_server() -> Iterator[FakeLineApi]:
    """A fake LINE platform for the cross-channel tests, served once per session."""
    fake = FakeLineApi()
    with on_loopback(fake.app) as url:
        fake.bind(url)
        yield fake


@dataclass
class Desk:
    """The app with LINE, Slack and the agents' channel; the fakes it talks to; the inbox and the clock."""

    http: httpx.Client
    core: Core
    clock: FixedClock
    inbox: PollingInbox
    line: FakeLineApi
    slack: FakeSlackApi
    events: Events

    # --- what students and agents send -----------------------------------------------------------------------

    def line_post(self, *events: dict[str, Any]) -> None:
        """POST LINE webhook events (spec-valid, signed); the webhook must answer 200."""
        body = self.events.body(*events)
        response = self.http.post("/line/webhook", content=body,
                                  headers={"content-type": "application/json",
                                           "x-line-signature": sign(LINE_SECRET, body)})
        assert response.status_code == 200, response.text

    def slack_event(self, payload: dict[str, Any], *, retry_num: int | None = None) -> httpx.Response:
        """POST an Events API body signed as Slack signs it; `retry_num` marks it as Slack's retry."""
        raw = json.dumps(payload, ensure_ascii=False).encode()
        headers = signed_headers(raw)
        if retry_num is not None:
            headers |= {"x-slack-retry-num": str(retry_num), "x-slack-retry-reason": "http_timeout"}
        return self.http.post("/slack/events", content=raw, headers=headers)

    def slack_form(self, form: str) -> httpx.Response:
        """POST a slash command or a block_actions form, signed."""
        raw = form.encode()
        return self.http.post("/slack/events", content=raw, headers=signed_headers(raw, content_type=FORM))

    def web_chat(self, user: str, text: str) -> list[dict[str, Any]]:
        """A message in the web chat; the bot's replies."""
        response = self.http.post("/api/chat", json={"user": user, "text": text})
        assert response.status_code == 200, response.text
        return response.json()["replies"]

    # --- the worker ---------------------------------------------------------------------------------------------

    def work(self) -> None:
        """Drain the inbox, moving the clock a second on while something waits only for Slack's pacing
        (one post per second per conversation). Retries after a failure (2 s and more) stay pending."""
        for _ in range(MAX_ROUNDS):
            self.inbox.drain()
            soon = self.clock.now().timestamp() + PACING_SECONDS
            if not [event for event in self.stored("pending") if event.next_attempt_at.timestamp() <= soon]:
                return
            self.clock.advance(seconds=PACING_SECONDS)
        raise AssertionError("the inbox never settled")

    def stored(self, *statuses: str, processor: str | None = None) -> list[InboundEvent]:
        """The stored events and jobs, optionally only those with one of `statuses` or of one processor."""
        with self.core.transaction() as session:
            query = select(InboundEvent).order_by(InboundEvent.id)
            if statuses:
                query = query.where(InboundEvent.status.in_(statuses))
            if processor:
                query = query.where(InboundEvent.channel == processor)
            rows = list(session.scalars(query))
            session.expunge_all()
            return rows


@pytest.fixture
def desk(core: Core, clock: FixedClock, pipeline_for: Callable[[Core], object],
         handoff_line_server: FakeLineApi) -> Iterator[Desk]:
    """The app with LINE and Slack enabled and SLACK_AGENT_CHANNEL set, served on loopback; any call that
    breaks either platform's spec fails the test when it ends."""
    handoff_line_server.reset()
    with running(BOT_TOKEN) as fake_slack:
        settings = ChannelSettings(
            _env_file=None, line_channel_secret=SecretStr(LINE_SECRET), line_channel_access_token=SecretStr(LINE_TOKEN),
            line_api_base_url=handoff_line_server.url, line_access_base_url=handoff_line_server.url,
            slack_bot_token=SecretStr(BOT_TOKEN), slack_signing_secret=SecretStr(SIGNING_SECRET),
            slack_api_base_url=fake_slack.base_url,
            slack_app_token=None, slack_agent_channel=AGENT_CHANNEL, agent_lang="ja")
        inbox = PollingInbox(core)
        app = create_app(core, pipeline_for(core), channel_settings=settings, inbox=inbox)  # type: ignore[arg-type]
        with served(app) as url, loopback_client(url) as http:
            yield Desk(http=http, core=core, clock=clock, inbox=inbox, line=handoff_line_server, slack=fake_slack,
                       events=Events(clock))
    assert not fake_slack.violations, "calls that break the Slack Web API spec:\n" + "\n".join(fake_slack.violations)
    assert not handoff_line_server.violations, "\n".join(handoff_line_server.violations)


def pushes(desk: Desk) -> list[Any]:
    """LINE pushes that reached the student."""
    return [call for call in desk.line.calls_to(PUSH) if call.delivered]


def replies(desk: Desk) -> list[Any]:
    return [call for call in desk.line.calls_to(REPLY) if call.delivered]


def texts(calls: list[Any]) -> list[str]:
    return [message.get("text", "") for call in calls for message in call.messages]


def quick_replies(call: Any) -> list[str]:
    """The postback data of the quick-reply buttons of a LINE call's last message."""
    items = call.messages[-1].get("quickReply", {}).get("items", [])
    return [item["action"].get("data") or item["action"].get("text") for item in items]
