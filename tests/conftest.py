"""Shared fixtures: a migrated database (SQLite, or PostgreSQL with TEST_DATABASE_URL), a real SMTP
server on loopback, a settable clock, the core, and a live app served by uvicorn on loopback."""

import os
import secrets
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, make_url, text

from core import migrate
from core.clock import TOKYO, FixedClock
from core.db import Base, make_engine
from core.mail import SmtpMailer
from core.services import Core, build_core
from core.settings import Settings
from intents import IntentModel, Understander, load_understander

# A Tuesday, a business day, within every office's hours.
DEFAULT_NOW = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {_database_url_label()}"


def _database_url_label() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    return url.split("@")[-1] if url else "sqlite (temporary file)"


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A database migrated to head once per test session."""
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    if not url.startswith("postgresql"):
        engine = make_engine(url)
        migrate.upgrade(engine)
        yield engine
        engine.dispose()
        return
    # On PostgreSQL each session gets a schema of its own, so runs on one server never see each other.
    schema = f"test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # In the URL rather than connect_args, so subprocesses given engine.url use the same schema.
    engine = make_engine(make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
                         .render_as_string(hide_password=False))
    try:
        migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _empty_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@dataclass
class Inbox:
    """Mail received by the test SMTP server."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def only(self) -> EmailMessage:
        """The one message received; fails if there are none or several."""
        assert len(self.messages) == 1, f"expected one mail, got {len(self.messages)}"
        return self.messages[0]

    @staticmethod
    def body(message: EmailMessage) -> str:
        """The plain-text body of a received message."""
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        return part.get_content()


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    """Stop a server the test started: SIGTERM, and SIGKILL if it has not ended after `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Controller, Inbox]]:
    """A real SMTP server (aiosmtpd) on loopback for the whole session."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def inbox(smtp_server: tuple[Controller, Inbox]) -> Inbox:
    """The mail received during this test."""
    smtp_server[1].messages.clear()
    return smtp_server[1]


@pytest.fixture
def clock() -> FixedClock:
    """A clock standing at DEFAULT_NOW until the test moves it."""
    return FixedClock(DEFAULT_NOW)


@pytest.fixture
def make_core(engine: Engine, smtp_server: tuple[Controller, Inbox], clock: FixedClock,
              tmp_path: Path) -> Iterator[Callable[..., Core]]:
    """Build a core on the test database, mailing through the test SMTP server; tables emptied after."""
    controller, _ = smtp_server

    built: list[Core] = []

    def build(base_url: str = "https://madoguchi.example.ac.jp", **overrides: object) -> Core:
        settings = Settings(data_dir=tmp_path, base_url=base_url, _env_file=None)  # type: ignore[call-arg]
        mailer = SmtpMailer(controller.hostname, controller.port)
        core = build_core(settings, clock=clock, mailer=mailer, engine=engine, **overrides)  # type: ignore[arg-type]
        core.answer_first_seconds = 0  # no pause before background work: tests wait for it (settle) anyway
        built.append(core)
        return core

    yield build
    for core in built:  # a mail the test set off after an answer lands in this test, never in the next one's inbox
        core.settle()
    _empty_tables(engine)


@pytest.fixture
def core(make_core: Callable[..., Core], inbox: Inbox) -> Core:
    """The core most tests use."""
    return make_core()


@dataclass
class LiveServer:
    """The app served by uvicorn on loopback, with an HTTP client pointed at it."""

    url: str
    core: Core
    client: httpx.Client
    app: Any = None  # the Starlette app (its state holds the inbox and the pipeline)


# Servers told to stop, still finishing: uvicorn notices `should_exit` on its next tick (0.1 s) and then shuts
# down, so a test does not wait for that; the next servers' start and the session's end join them.
_STOPPING: list[tuple[threading.Thread, socket.socket]] = []


def _join_stopped_servers(keep: int = 0) -> None:
    """Wait for stopped servers to finish, all but the `keep` most recent (those are still finishing)."""
    while len(_STOPPING) > keep:
        thread, sock = _STOPPING.pop(0)
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="session", autouse=True)
def _stopped_servers_finish() -> Iterator[None]:
    """Every server a test started has ended before the session does."""
    yield
    _join_stopped_servers()


@contextmanager
def on_loopback(app: object) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a loopback socket bound before the server starts (nothing waits for it
    to come up); its URL. At the end the server is told to stop and finishes while the next test runs."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue in the backlog until uvicorn accepts them
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        _STOPPING.append((thread, sock))
        _join_stopped_servers(keep=4)


@contextmanager
def serve(make_core: Callable[..., Core], with_pipeline: Callable[[Core], object] | None,
          **channel_settings: object) -> Iterator[LiveServer]:
    """Serve the real app on loopback; `channel_settings` are ChannelSettings fields (the single sign-on's, say).
    The core is built for the server's URL, known before the server starts."""
    from bot.settings import ChannelSettings
    from bot.web.app import create_app

    app_holder: dict[str, object] = {}

    async def app(scope, receive, send) -> None:  # the real app, built once its URL is known
        await app_holder["app"](scope, receive, send)  # type: ignore[operator]

    with on_loopback(app) as url:
        core = make_core(base_url=url)
        settings = ChannelSettings(_env_file=None, **channel_settings)  # type: ignore[call-arg, arg-type]
        served = create_app(core, with_pipeline(core) if with_pipeline else None,  # type: ignore[arg-type]
                            channel_settings=settings)
        app_holder["app"] = served
        with httpx.Client(base_url=url, timeout=10, follow_redirects=False) as client:
            yield LiveServer(url=url, core=core, client=client, app=served)


@pytest.fixture
def live_server(make_core: Callable[..., Core], inbox: Inbox) -> Iterator[LiveServer]:
    """The app's pages served on loopback (no chat pipeline: page tests need no intent model)."""
    with serve(make_core, None) as server:
        yield server


# The intent model of the shipped training data, kept between runs: retrained whenever the data, the model's
# format or scikit-learn change (intents.load_understander checks), so each test worker only loads it.
MODEL_CACHE = Path.home() / ".cache" / "madoguchi" / "test-nlu-model.joblib"


@pytest.fixture(scope="session")
def nlu_model() -> IntentModel:
    """The intent model of the shipped training data (trained when the cached one is missing or stale)."""
    return load_understander(MODEL_CACHE).model


@pytest.fixture(scope="session")
def nlu_model_path(nlu_model: IntentModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's model saved to a joblib file."""
    path = tmp_path_factory.mktemp("nlu") / "model.joblib"
    nlu_model.save(path)
    return path


@pytest.fixture(scope="session")
def understander(nlu_model: IntentModel) -> Understander:
    """An understander over the session's model."""
    return Understander(nlu_model)


@pytest.fixture
def pipeline_for(understander) -> Callable[[Core], object]:
    """Builds the full conversation pipeline for a core."""
    from bot.pipeline import Pipeline
    from bot.wiring import build_handlers

    return lambda core: Pipeline(core, understander, *build_handlers())


@pytest.fixture
def chat_server(make_core: Callable[..., Core], inbox: Inbox, pipeline_for) -> Iterator[LiveServer]:
    """The whole app, chat included, served on loopback."""
    with serve(make_core, pipeline_for) as server:
        yield server


def at_once(*calls: Any) -> list[Any]:
    """Run the calls in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Any) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for item in threads:
        item.start()
    for item in threads:
        item.join(timeout=30)
    assert not errors, errors
    return results
