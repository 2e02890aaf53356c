"""kill -9 in the middle of a LINE burst, then a restart: every acknowledged event is answered exactly once.

A real `madoguchi serve` (SQLite, or PostgreSQL when the suite runs on it) answers signed webhooks through the
spec-validating fake LINE API, which takes 30 ms a call so that answers are in flight; the server is killed
with SIGKILL while the burst goes on, started again on the same database, and the rest of the burst is sent.
The fake's calls are counted per event: its reply token, or its push retry key. The lease is 3 s here
(INBOX_LEASE_SECONDS) so that the restarted server takes up the dead one's events while their reply tokens
are young; a deployment's default is two minutes.
"""

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import make_url

from benchmarks.bench_line_burst import (
    SECRET,
    answers,
    build_events,
    fake_stats,
    run_fake,
    start_serve,
    statuses,
)
from benchmarks.load.serving import wait_up
from bot.channels.line import retry_key
from core.settings import Settings
from tests.channels.line.webhooks import sign
from tests.conftest import MODEL_CACHE, free_port, stop_process

EVENTS, USERS, PER_BODY = 160, 40, 4
KILL_AFTER = 60  # acknowledged events
LEASE_SECONDS = "3"


@pytest.fixture
def fake_line():
    port = free_port()
    process = multiprocessing.get_context("spawn").Process(target=run_fake, args=(30.0, port, 1), daemon=True)
    process.start()
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.join(10)


@pytest.fixture
def database(tmp_path):
    """SQLite in the test's folder, or a fresh PostgreSQL database when the suite runs on PostgreSQL."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        yield None, tmp_path / "serve" / "madoguchi.sqlite3"
        return
    server = make_url(url).set(drivername="postgresql")
    admin = server.render_as_string(hide_password=False)
    name = f"madoguchi_fault_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    fresh = make_url(url).set(database=name).render_as_string(hide_password=False)
    subprocess.run([sys.executable, "-c", "from bot.cli.commands import main; main()", "db", "upgrade"], check=True,
                   capture_output=True, env={**os.environ, "DATABASE_URL": fresh})
    yield fresh, server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def post(url: str, batch: list[dict]) -> bool:
    """One signed webhook body; True when the server acknowledged it (200)."""
    raw = json.dumps({"destination": "U" + "b0" * 16, "events": batch}, ensure_ascii=False).encode()
    try:
        response = httpx.post(url + "/line/webhook", content=raw, timeout=10, headers={
            "content-type": "application/json", "x-line-signature": sign(SECRET, raw)})
    except httpx.HTTPError:
        return False
    return response.status_code == 200


class Burst:
    """The burst's bodies, posted by two threads until the server is killed, then the rest one by one: the
    events acknowledged (answered 200) and the bodies tried."""

    def __init__(self, url: str, bodies: list[list[dict]]) -> None:
        self.url, self.bodies = url, bodies
        self.acknowledged: list[dict] = []
        self.tried: set[int] = set()
        self._lock, self._killed = threading.Lock(), threading.Event()
        self._next_body = iter(range(len(bodies)))

    def _post_until_killed(self) -> None:
        while not self._killed.is_set():
            with self._lock:
                index = next(self._next_body, None)
                if index is None:
                    return
                self.tried.add(index)
            if post(self.url, self.bodies[index]):
                with self._lock:
                    self.acknowledged.extend(self.bodies[index])

    def kill_midway(self, server: subprocess.Popen) -> None:
        """Post from two threads and kill -9 the server once KILL_AFTER events are acknowledged, with answers in
        flight; return when the posters have stopped and the server has ended."""
        posters = [threading.Thread(target=self._post_until_killed) for _ in range(2)]
        for thread in posters:
            thread.start()
        while True:
            with self._lock:
                if len(self.acknowledged) >= KILL_AFTER:
                    break
            threading.Event().wait(0.01)
        server.send_signal(signal.SIGKILL)
        self._killed.set()
        for thread in posters:
            thread.join()
        server.wait(10)

    def post_the_rest(self) -> None:
        """The bodies never tried, one by one (to the restarted server)."""
        for index in range(len(self.bodies)):
            if index not in self.tried and post(self.url, self.bodies[index]):
                self.acknowledged.extend(self.bodies[index])


def handled(readable: Path | str) -> Counter[str]:
    """The stored events by status once none is pending or processing, or after 60 s."""
    deadline = threading.Event()
    for _ in range(600):
        counts = statuses(readable)
        if not counts["pending"] and not counts["processing"]:
            break
        deadline.wait(0.1)
    return counts


def give_the_tests_model(folder: Path) -> None:
    """The tests' model of the shipped data, where serve looks for it: serve retrains it only if stale."""
    if MODEL_CACHE.exists():
        model = Settings(data_dir=folder, _env_file=None).nlu_model_path
        model.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(MODEL_CACHE, model)


def test_every_acknowledged_event_is_answered_once_across_a_kill_and_a_restart(tmp_path, fake_line, database,
                                                                              monkeypatch):
    database_url, readable = database
    folder = tmp_path / "serve"
    give_the_tests_model(folder)
    monkeypatch.setenv("INBOX_LEASE_SECONDS", LEASE_SECONDS)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    root = Path(__file__).resolve().parents[2]
    with open(tmp_path / "serve.log", "w+") as log_file:
        server = start_serve(root, folder, fake_line, port, log_file, database_url)
        try:
            wait_up(fake_line + "/bench/stats", server)
            wait_up(url + "/healthz", server)
            # Stamped now, as LINE stamps an event when it sends it: the server's start-up (seconds on a loaded
            # machine) must not age the reply tokens before the burst even begins.
            events = build_events(EVENTS, USERS)
            burst = Burst(url, [events[first:first + PER_BODY] for first in range(0, EVENTS, PER_BODY)])
            burst.kill_midway(server)
            before_restart = len(burst.acknowledged)

            server = start_serve(root, folder, fake_line, port, log_file, database_url)
            wait_up(url + "/healthz", server)
            burst.post_the_rest()
            counts = handled(readable)
            figures = fake_stats(fake_line, detail=True)
        finally:
            stop_process(server)
            log_file.seek(0)
            log = log_file.read()

    acknowledged = burst.acknowledged
    assert KILL_AFTER <= before_restart < EVENTS and len(acknowledged) > before_restart, "the kill came mid-burst"
    assert not counts["pending"] and not counts["processing"] and not counts["failed"], (counts, log[-3000:])
    replied, doubled, lost = answers(acknowledged, figures)
    assert lost == 0, f"{lost} acknowledged events never answered"
    pushed = {retry_key(event["webhookEventId"], 0) for event in acknowledged} & set(figures["pushes"])
    token_lines = [line for line in log.splitlines() if "reply token" in line]  # why a reply became a push
    assert doubled == 0, (f"{doubled} events answered twice ({len(pushed)} pushed)", token_lines[-20:])
    assert answers(events, figures)[1] == 0  # nor any event stored but not acknowledged
    assert figures["violation_count"] == 0, figures["violations"]
    assert replied >= len(acknowledged) and not pushed, "every answer went out by reply while its token was young"
