"""Shared fixtures: a migrated database (SQLite, or PostgreSQL with TEST_DATABASE_URL), a real SMTP
server on loopback, a settable clock, the core, and a live app served by uvicorn on loopback."""

import fcntl
import os
import secrets
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import cache
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
from core.profile import UniversityProfile, load_profile
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


# --- the order of the files for two workers --------------------------------------------------------------------
# `make test` hands whole files to the xdist workers in collection order (--dist loadfile --no-loadscope-reorder).
# The longest go first, so that no worker starts a long file while the other is nearly done: a file's estimate is
# its number of tests times SECONDS_PER_TEST, or, for the files far from that, its seconds in `make test` below.
SECONDS_PER_TEST = 0.1
SLOW_FILES = {
    "tests/fuzz/test_slack_fuzz.py": 55,
    "tests/rasa/test_real_rasa.py": 31,
    "tests/bot/test_cli.py": 27,
    "tests/browser/test_chat_page_browser.py": 22,
    "tests/browser/test_desk_browser.py": 20,
    "tests/browser/test_accessibility.py": 19,
    "tests/channels/line/test_linking.py": 18,
    "tests/web/test_desk.py": 17,
    "tests/fault/test_kill_restart.py": 15,
    "tests/fuzz/test_chat_fuzz.py": 14,
    "tests/bot/test_fresh_handoff.py": 13,
    "tests/browser/test_sign_on_browser.py": 13,
    "tests/browser/test_sign_in_browser.py": 11,
    "tests/bot/test_doctor.py": 10,
    "tests/intents/test_cli.py": 10,
    "tests/core/test_staff.py": 10,
    "tests/test_stories.py": 9,
    "tests/web/test_admin.py": 9,
    "tests/fuzz/test_line_webhook_fuzz.py": 8,
    "tests/bot/test_metrics.py": 8,
    "tests/web/test_oidc.py": 6,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker, order the files longest first (each file's tests keep their order)."""
    if not hasattr(config, "workerinput"):
        return
    counts: dict[str, int] = {}
    for item in items:
        counts[item.nodeid.split("::")[0]] = counts.get(item.nodeid.split("::")[0], 0) + 1

    def seconds(item: pytest.Item) -> float:
        name = item.nodeid.split("::")[0]
        return SLOW_FILES.get(name, counts[name] * SECONDS_PER_TEST)

    items.sort(key=seconds, reverse=True)  # a stable sort: a file's tests stay in their order


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
    with postgres_schema(url, "test") as engine:
        migrate.upgrade(engine)
        yield engine


@contextmanager
def postgres_schema(url: str, prefix: str) -> Iterator[Engine]:
    """An engine on a new, empty PostgreSQL schema of its own (named `<prefix>_<pid>_<random>`), dropped after."""
    schema = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # In the URL rather than connect_args, so subprocesses given engine.url use the same schema.
    engine = make_engine(make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
                         .render_as_string(hide_password=False))
    try:
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
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
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


@cache
def tls_context() -> ssl.SSLContext:
    """One default TLS context for the session's clients and mailers: making one reads the system's CA
    certificates (about 15 ms), which every core and every HTTP client would otherwise pay again."""
    return ssl.create_default_context()


@cache
def _profile_file(path: Path | None, modified_ns: int) -> UniversityProfile:
    return load_profile(path)


def university_profile(settings: Settings) -> UniversityProfile:
    """The settings' university profile, read once per file and version (reading one takes about 7 ms); the
    profile is frozen, so the cores of a session can share it."""
    path = settings.university_profile
    try:
        version = Path(path).stat().st_mtime_ns if path else 0
    except OSError:
        return load_profile(path)  # its error names the file
    return _profile_file(path, version)


def loopback_client(url: str, **options: Any) -> httpx.Client:
    """An HTTP client for a server on loopback, sharing the session's TLS context."""
    return httpx.Client(base_url=url, verify=tls_context(), **{"timeout": 10, **options})


@pytest.fixture(scope="session")
def smtp_mailer(smtp_server: tuple[Controller, Inbox]) -> SmtpMailer:
    """A mailer to the test SMTP server, shared by the session's cores (it keeps no state between mails)."""
    controller, _ = smtp_server
    return SmtpMailer(controller.hostname, controller.port, tls_context=tls_context())


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
def make_core(engine: Engine, smtp_mailer: SmtpMailer, clock: FixedClock,
              tmp_path: Path) -> Iterator[Callable[..., Core]]:
    """Build a core on the test database, mailing through the test SMTP server; tables emptied after."""
    built: list[Core] = []

    def build(base_url: str = "https://madoguchi.example.ac.jp", **overrides: object) -> Core:
        settings = Settings(data_dir=tmp_path, base_url=base_url, _env_file=None)
        parts: dict[str, Any] = {"mailer": smtp_mailer, "profile": university_profile(settings), **overrides}
        core = build_core(settings, clock=clock, engine=engine, **parts)
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
          **channel_settings: Any) -> Iterator[LiveServer]:
    """Serve the real app on loopback; `channel_settings` are ChannelSettings fields (the single sign-on's, say).
    The core is built for the server's URL, known before the server starts."""
    from bot.settings import ChannelSettings
    from bot.web.app import create_app

    app_holder: dict[str, object] = {}

    async def app(scope, receive, send) -> None:  # the real app, built once its URL is known
        await app_holder["app"](scope, receive, send)  # type: ignore[operator]

    with on_loopback(app) as url:
        core = make_core(base_url=url)
        settings = ChannelSettings(_env_file=None, **channel_settings)
        served = create_app(core, with_pipeline(core) if with_pipeline else None,  # type: ignore[arg-type]
                            channel_settings=settings)
        app_holder["app"] = served
        with loopback_client(url, follow_redirects=False) as client:
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
    MODEL_CACHE.parent.mkdir(parents=True, exist_ok=True)
    with open(MODEL_CACHE.with_suffix(".lock"), "w") as lock:
        # Each xdist worker asks for the model: the first trains a stale one and saves it, the others wait here
        # and then load it, instead of training it again at the same time and writing the same file.
        fcntl.flock(lock, fcntl.LOCK_EX)
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
