"""The LINE push path (`LineChannel.send_push`, `push`): the rendered messages posted over shared kept-alive
connections to the fake LINE API, which validates every call against the Messaging API spec, and LINE's answers
mapped as the inbox expects them: 409 already accepted, 429 Retry-After (or the monthly limit, permanent), any
other 4xx permanent, 5xx and no answer at all retried."""

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from bot.channels.line import DEFAULT_RETRY_AFTER, LineApiError, LineChannel, retry_key
from bot.delivery.inbox import PermanentFailure, RetryAfter
from bot.settings import ChannelSettings
from handlers.replies import QuickReply, Text
from tests.channels.conftest import LINE_SECRET, LINE_TOKEN
from tests.channels.line.fake_line_api import MULTICAST, PUSH, FakeLineApi

USER = "U" + "4" * 32


def channel_at(core, url: str) -> LineChannel:
    settings = ChannelSettings(  # type: ignore[call-arg]
        _env_file=None, line_channel_secret=LINE_SECRET, line_channel_access_token=LINE_TOKEN,
        line_api_base_url=url, line_access_base_url=url)
    return LineChannel(core, None, settings)  # type: ignore[arg-type]  # pushes only: no turns


@pytest.fixture
def fake(handoff_line_server: FakeLineApi) -> Iterator[FakeLineApi]:
    handoff_line_server.reset()
    yield handoff_line_server
    assert not handoff_line_server.violations, "\n".join(handoff_line_server.violations)


@pytest.fixture
def line(core, fake) -> LineChannel:
    return channel_at(core, fake.url)


def notice(line: LineChannel, to: str | list[str] = USER) -> dict:
    """One rendered call, as a `deliver` job stores it."""
    [part] = line.render_push(to, [Text("受取可能です。", (QuickReply("受け取り方", "intent:window_pickup_howto"),))])
    return part


def test_a_push_posts_the_rendered_messages_with_the_token_and_a_retry_key(line, fake):
    part = notice(line)
    line.send_push(part, "ready_now:BR00-0001:line:U4:0")
    [call] = fake.calls_to(PUSH)
    assert call.delivered and call.status == 200
    assert call.body == {"to": USER, "messages": part["messages"]}
    assert call.headers["authorization"] == f"Bearer {LINE_TOKEN}"
    assert call.headers["content-type"] == "application/json"
    assert call.headers["x-line-retry-key"] == retry_key("ready_now:BR00-0001:line:U4:0", 0)
    assert call.headers["user-agent"].startswith("line-bot-sdk-python/")


def test_a_multicast_goes_to_every_user_in_one_call(line, fake):
    users = [f"U{index:032x}" for index in range(3)]
    line.send_push(notice(line, users), "parking_period:2027:line:ja:0")
    [call] = fake.calls_to(MULTICAST)
    assert call.delivered and call.body["to"] == users
    assert call.headers["x-line-retry-key"] == retry_key("parking_period:2027:line:ja:0", 0)


def test_a_push_whose_answer_was_lost_meets_its_retry_key_again_409_counts_as_sent(line, fake):
    fake.fail_next(PUSH, 500, deliver=True)
    with pytest.raises(LineApiError, match="500"):
        line.send_push(notice(line), "job:1")
    line.send_push(notice(line), "job:1")  # the inbox's retry: no error
    assert [call.status for call in fake.calls_to(PUSH)] == [500, 409]
    assert len(fake.deliveries()) == 1


@pytest.mark.parametrize("path", [PUSH, MULTICAST])
def test_a_429_asks_the_inbox_to_wait_as_long_as_retry_after_says(line, fake, path):
    fake.fail_next(path, 429, headers={"Retry-After": "7"}, message="Too many requests")
    with pytest.raises(RetryAfter) as waited:
        line.send_push(notice(line, USER if path == PUSH else [USER]), "job:2")
    assert waited.value.seconds == 7
    assert fake.deliveries() == []


def test_a_retry_after_date_counts_from_the_clock_and_a_missing_one_waits_the_default(core, line, fake, clock):
    fake.fail_next(PUSH, 429, headers={"Retry-After": format_datetime(
        (clock.now() + timedelta(seconds=90)).astimezone(UTC), usegmt=True)})
    fake.fail_next(PUSH, 429)
    with pytest.raises(RetryAfter) as dated:
        line.send_push(notice(line), "job:3")
    with pytest.raises(RetryAfter) as unsaid:  # another process's channel: this one holds its pushes back
        channel_at(core, fake.url).send_push(notice(line), "job:3")
    assert (dated.value.seconds, unsaid.value.seconds) == (90, DEFAULT_RETRY_AFTER)


def test_after_a_429_the_process_holds_its_pushes_until_retry_after(line, fake):
    fake.fail_next(PUSH, 429, headers={"Retry-After": "30"}, message="Too many requests")
    with pytest.raises(RetryAfter):
        line.send_push(notice(line), "job:6")
    # Another student's push in the same process is not sent into the limit: it waits as long.
    with pytest.raises(RetryAfter) as held:
        line.send_push(notice(line, "U" + "5" * 32), "job:7")
    assert 29 < held.value.seconds <= 30
    assert [call.status for call in fake.calls_to(PUSH)] == [429]


def test_the_monthly_message_limit_is_permanent_not_a_wait(line, fake):
    fake.fail_next(PUSH, 429, message="You have reached your monthly limit.")
    with pytest.raises(PermanentFailure, match="monthly message limit"):
        line.send_push(notice(line), "job:4")


def test_a_400_is_permanent_with_lines_message(line, fake):
    fake.fail_next(PUSH, 400, message="The request body has 1 error(s)")
    with pytest.raises(PermanentFailure, match="LINE API 400: The request body has 1 error"):
        line.send_push(notice(line), "job:5")


def test_a_revoked_token_is_permanent(line, fake):
    fake.access_token = "another-token"  # LINE answers 401 to any other
    with pytest.raises(PermanentFailure, match="LINE API 401: Authentication failed"):
        line.send_push(notice(line), "job:6")


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_is_retried(line, fake, status):
    fake.fail_next(PUSH, status, message="Internal server error")
    with pytest.raises(LineApiError, match=f"LINE API {status}"):
        line.send_push(notice(line), "job:7")
    line.send_push(notice(line), "job:7")
    assert [call.status for call in fake.calls_to(PUSH)] == [status, 200]


def test_no_answer_at_all_is_neither_a_wait_nor_permanent(core):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    line = channel_at(core, url)
    with pytest.raises(OSError) as refused:
        line.send_push(notice(line), "job:8")
    assert not isinstance(refused.value, RetryAfter | PermanentFailure)  # the inbox retries it with backoff


def test_sender_threads_share_the_connections_and_each_push_goes_once(line, fake):
    users = [f"U{index:032x}" for index in range(64)]
    with ThreadPoolExecutor(8) as pool:
        # Each user's push twice at once, as two attempts of one job: the second meets its retry key (409).
        list(pool.map(lambda user: line.send_push(notice(line, user), f"job:{user}"), users + users))
    calls = fake.calls_to(PUSH)
    assert sorted(call.body["to"] for call in calls if call.delivered) == sorted(users)
    assert sorted(call.status for call in calls) == [200] * 64 + [409] * 64


def test_pushes_one_after_another_go_over_one_kept_connection(line, fake, monkeypatch):
    opened = []
    connect = socket.create_connection
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: opened.append(args) or connect(
        *args, **kwargs))
    for index in range(5):
        line.send_push(notice(line, f"U{index:032x}"), f"job:kept:{index}")
    assert len(opened) <= 1  # none when a connection was kept from an earlier test's pushes
    assert [call.status for call in fake.calls_to(PUSH)] == [200] * 5


class _ClosingAfterEachAnswer(BaseHTTPRequestHandler):
    """Answers 200 to a push, then closes the connection without saying so (as a server whose keep-alive
    timed out does between two calls)."""

    protocol_version = "HTTP/1.1"
    ports: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.ports.append(self.client_address[1])
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ClosingAfterEachAnswer)
        self.closed = threading.Semaphore(0)

    def shutdown_request(self, request: socket.socket) -> None:
        super().shutdown_request(request)
        self.closed.release()


def test_a_kept_connection_the_server_closed_is_not_reused(core):
    server = _Server()
    _ClosingAfterEachAnswer.ports = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        line = channel_at(core, f"http://127.0.0.1:{server.server_address[1]}")
        for attempt in range(3):
            line.send_push(notice(line), f"job:closing:{attempt}")  # no error: a fresh connection each time
            assert server.closed.acquire(timeout=10)
        assert len(set(_ClosingAfterEachAnswer.ports)) == 3
    finally:
        server.shutdown()
        server.server_close()
