"""A database that goes away while the app runs: every route answers 503 with Retry-After (JSON for programs, a
short page in both languages for people), never a 500; on SQLite (its folder removed) and on PostgreSQL (its
database dropped, its connections terminated)."""

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.web.app import RETRY_AFTER_SECONDS, create_app, database_unreachable
from core import migrate
from core.db import make_engine
from core.mail import SmtpMailer
from core.services import build_core
from core.settings import Settings
from tests.conftest import on_loopback

TEST_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not TEST_URL.startswith("postgresql"), reason="TEST_DATABASE_URL names no PostgreSQL server"))]
A_LINK_TOKEN = "A" * 43  # shaped like a mailed link's token, so the page has to look it up


@dataclass
class Served:
    """The app on a database of its own, and how to take that database away."""

    client: httpx.Client
    take_down: Callable[[], None]


@contextmanager
def sqlite_database(folder: Path) -> Iterator[tuple[Engine, Callable[[], None]]]:
    folder.mkdir()
    engine = make_engine(f"sqlite:///{folder / 'app.sqlite3'}")

    def take_down() -> None:
        shutil.rmtree(folder)  # the file goes; the pool's open connections would still read the unlinked one
        engine.dispose()

    yield engine, take_down
    engine.dispose()


@contextmanager
def postgresql_database() -> Iterator[tuple[Engine, Callable[[], None]]]:
    name = f"madoguchi_down_{secrets.token_hex(4)}"
    admin = make_engine(TEST_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(TEST_URL).set(database=name).render_as_string(hide_password=False))

    def take_down() -> None:
        with admin.connect() as connection:  # the app's pooled connections are terminated, then the database goes
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                               {"name": name})
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    try:
        yield engine, take_down
    finally:
        engine.dispose()
        take_down()
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def served(request, tmp_path, clock, smtp_server, pipeline_for) -> Iterator[Served]:
    """The whole app, chat included, on loopback over a database that `take_down` removes."""
    database = sqlite_database(tmp_path / "db") if request.param == "sqlite" else postgresql_database()
    with database as (engine, take_down):
        migrate.upgrade(engine)
        controller = smtp_server[0]
        core = build_core(Settings(data_dir=tmp_path, _env_file=None), clock=clock, engine=engine,  # type: ignore[call-arg]
                          mailer=SmtpMailer(controller.hostname, controller.port))
        with on_loopback(create_app(core, pipeline_for(core))) as url, \
                httpx.Client(base_url=url, timeout=30) as client:
            yield Served(client, take_down)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert response.headers["x-content-type-options"] == "nosniff"  # the security headers too


def test_every_route_answers_503_with_retry_after_while_the_database_is_gone(served):
    client = served.client
    said = client.post("/api/chat", json={"user": "down", "text": "こんにちは"})
    assert said.status_code == 200 and said.json()["replies"]  # up: answered
    assert client.get("/healthz").status_code == 200
    served.take_down()

    for attempt in range(2):  # a dropped pooled connection first, then a connection that cannot be made
        chatted = client.post("/api/chat", json={"user": "down", "text": "こんにちは"})
        assert_unavailable(chatted)
        assert chatted.json() == {"error": "the database is unreachable; retry later"}, attempt
    for path in ("/api/chat/updates?user=down&after=0", "/api/chat/events?user=down&after=0", "/healthz"):
        answer = client.get(path)
        assert_unavailable(answer)
        assert answer.headers["content-type"].startswith("application/json") and answer.json()
    client.cookies.set("madoguchi_staff", "a-staff-session")  # /admin looks the staff session up
    for path in ("/sandbox/pay/some-reference", f"/links/{A_LINK_TOKEN}", "/admin"):
        page = client.get(path)
        assert_unavailable(page)
        assert page.headers["content-type"].startswith("text/html")
        assert '<html lang="ja">' in page.text and '<section lang="en">' in page.text
        assert "ただいまご利用いただけません" in page.text and "Temporarily unavailable" in page.text
        assert "しばらくしてから、もう一度お試しください。" in page.text and "try again in a few minutes" in page.text
    client.cookies.set("madoguchi_session", "a-chat-session")  # the chat page looks the browser's session up
    assert_unavailable(client.get("/"))


def test_only_an_unreachable_database_is_a_503():
    """A constraint violated or a bad value is a bug of ours or of the data: it stays a 500, logged."""
    def wrapped(error_class: type[DBAPIError], invalidated: bool = False) -> DBAPIError:
        return error_class("SELECT 1", {}, Exception("from the driver"), connection_invalidated=invalidated)

    assert database_unreachable(wrapped(OperationalError))
    assert database_unreachable(PoolTimeout("QueuePool limit of size 10 overflow 20 reached"))
    assert database_unreachable(wrapped(DBAPIError, invalidated=True))  # a connection the server dropped
    assert not database_unreachable(wrapped(IntegrityError))
    assert not database_unreachable(wrapped(DBAPIError))
    assert not database_unreachable(ValueError("not the database"))
