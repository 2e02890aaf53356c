"""Benchmark: a burst of signed LINE webhooks against `madoguchi serve`, answered through the fake LINE API.

Usage: .venv/bin/python benchmarks/bench_line_burst.py [--events 3000] [--users 600] [--per-body 5]
       [--posters 4] [--latency MS] [--validate-every K] [--cap 120] [--root DIR]

The fake LINE platform (tests/channels/line/fake_line_api.py, which validates every call against the Messaging
API spec) runs in a process of its own, each call delayed by --latency ms if given (the real network); then
`madoguchi serve` (SQLite in a fresh temporary folder, LINE pointed at the fake, no scheduler) starts from
--root (default: this checkout; another tree measures other code with the same load). N message and postback
events from U users, with realistic ja/en turns (benchmarks/bench_chat.py), are posted in webhook bodies of K
events, spec-valid and signed, by P posters as fast as the webhook acknowledges them, each stamped when sent.

Measured: the burst's length, the seconds from its end until every event is handled and answered, the share
answered by reply (a reply token is good for about a minute; past it the bot pushes, which LINE counts), and
that no event is answered twice or not at all (the fake's reply and push calls, matched to events by reply
token and retry key). Bounded: loopback only, N at most 10,000, answering at most --cap seconds. Exits 1 on a
lost or doubled answer, a failed event, a spec violation or the cap. Target (issue 19): every event answered
within 30 s after the burst, at least 95 % by reply.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import queue
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from sqlalchemy import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_chat import MESSAGES  # noqa: E402
from benchmarks.load.serving import wait_up  # noqa: E402
from bot.channels.line import retry_key  # noqa: E402
from core.clock import SystemClock  # noqa: E402
from core.settings import Settings  # noqa: E402
from tests.channels.line.fake_line_api import PUSH, REPLY, FakeLineApi  # noqa: E402
from tests.channels.line.webhooks import Events, sign, user_id  # noqa: E402
from tests.conftest import MODEL_CACHE, free_port, stop_process  # noqa: E402

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "bench-channel-access-token"
MAX_EVENTS = 10_000
STATS = "/bench/stats"
TARGET_SECONDS, TARGET_REPLY_SHARE = 30.0, 0.95


# --- the fake LINE platform, in its own process ------------------------------------------------------------------

class SampledFake(FakeLineApi):
    """The fake, checking one call in `every` against the spec: its validation (several ms a call) shares this
    machine's CPUs with the bot, and would otherwise be what is measured. The bot renders every answer with the
    same code, and the tests validate every call."""

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every, self.seen = every, 0

    def _validate(self, request: Any, raw: bytes, body: Any) -> None:
        self.seen += 1
        if self.seen % self.every == 0:
            super()._validate(request, raw, body)


def run_fake(latency_ms: float, port: int, validate_every: int = 1) -> None:
    """Serve the fake LINE API on `port`, each call `latency_ms` late, with what it delivered at STATS."""
    fake = SampledFake(validate_every) if validate_every > 1 else FakeLineApi()
    fake.bind(f"http://127.0.0.1:{port}")
    answered_at: list[float] = []  # when each delivered reply or push was answered

    async def delayed(scope: Any, receive: Any, send: Any) -> None:
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        await fake.app(scope, receive, send)
        if scope.get("path") in (REPLY, PUSH):
            answered_at.append(time.time())

    async def stats(request: Request) -> JSONResponse:
        delivered = [call for call in fake.calls if call.delivered and call.path in (REPLY, PUSH)]
        figures: dict[str, Any] = {"delivered": len(delivered), "last_answer_at": max(answered_at, default=0.0),
                                   "calls": dict(Counter(f"{call.path} {call.status}" for call in fake.calls)),
                                   "violations": fake.violations[:5], "violation_count": len(fake.violations)}
        if request.query_params.get("detail"):
            figures["replies"] = [call.body["replyToken"] for call in delivered if call.path == REPLY]
            figures["pushes"] = [call.headers.get("x-line-retry-key") for call in delivered if call.path == PUSH]
        return JSONResponse(figures)

    app = Starlette(routes=[Route(STATS, stats), Mount("/", app=delayed)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False)


def fake_stats(url: str, detail: bool = False) -> dict[str, Any]:
    return httpx.get(url + STATS, params={"detail": "1"} if detail else {}, timeout=60).json()


# --- madoguchi serve ---------------------------------------------------------------------------------------------

def start_serve(root: Path, folder: Path, fake_url: str, port: int, log_file: Any,
                database_url: str | None = None) -> subprocess.Popen:
    """`madoguchi serve` from `root`'s code on a fresh SQLite database in `folder` (or on `database_url`), LINE
    at the fake."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "SLACK_", "LINE_"))}
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(DATA_DIR=str(folder), LOG_LEVEL="WARNING", SCHEDULER="off", BASE_URL=f"http://127.0.0.1:{port}",
               LINE_CHANNEL_SECRET=SECRET, LINE_CHANNEL_ACCESS_TOKEN=TOKEN, LINE_API_BASE_URL=fake_url,
               LINE_ACCESS_BASE_URL=fake_url, PYTHONPATH=str(root))
    command = [sys.executable, "-c", "from bot.cli.commands import main; main()", "serve", "--host", "127.0.0.1",
               "--port", str(port)]
    return subprocess.Popen(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT)


# --- the burst -----------------------------------------------------------------------------------------------------

def build_events(count: int, users: int) -> list[dict[str, Any]]:
    """`count` spec-valid message and postback events from `users` users, in a shuffled order of arrival."""
    events = Events(SystemClock())
    people = [user_id() for _ in range(users)]
    built = []
    for number in range(count):
        message, user = MESSAGES[number % len(MESSAGES)], people[random.randrange(users)]
        built.append(events.text(user, message["text"]) if "text" in message
                     else events.postback(user, message["payload"]))
    for first in range(0, count, 50):  # each body as LINE would send it, checked against webhook.yml once
        events.body(*built[first:first + 50])
    return built


def post_burst(urls: list[str], events: list[dict[str, Any]], per_body: int,
               posters: int) -> tuple[float, float, int]:
    """Post the events, `per_body` to a signed body, from `posters` threads (spread over the servers at `urls`,
    as a load balancer would); start, end, non-200 answers."""
    bodies: queue.Queue[list[dict[str, Any]]] = queue.Queue()
    for first in range(0, len(events), per_body):
        bodies.put(events[first:first + per_body])
    refused = Counter[int]()

    def poster(url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while True:
                try:
                    batch = bodies.get_nowait()
                except queue.Empty:
                    return
                stamp = int(time.time() * 1000)  # sent now: the reply token's minute starts here
                for event in batch:
                    event["timestamp"] = stamp
                raw = json.dumps({"destination": "U" + "b0" * 16, "events": batch}, ensure_ascii=False).encode()
                response = client.post("/line/webhook", content=raw, headers={
                    "content-type": "application/json", "x-line-signature": sign(SECRET, raw)})
                if response.status_code != 200:
                    refused[response.status_code] += 1

    threads = [threading.Thread(target=poster, args=(urls[number % len(urls)],)) for number in range(posters)]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return started, time.time(), sum(refused.values())


def statuses(database: Path | str) -> Counter[str]:
    """The stored events by status, read without taking SQLite's write lock (or from PostgreSQL's URL)."""
    query = "SELECT status, count(*) FROM inbound_events GROUP BY status"
    if isinstance(database, str):
        with psycopg.connect(database) as connection:
            return Counter(dict(connection.execute(query).fetchall()))
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        return Counter(dict(connection.execute(query)))


def fresh_postgres(url: str) -> str:
    """An emptied database `madoguchi_burst` on the PostgreSQL server of `url`, migrated; its SQLAlchemy URL."""
    server = make_url(url)
    with psycopg.connect(server.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS madoguchi_burst WITH (FORCE)")
        connection.execute("CREATE DATABASE madoguchi_burst")
    fresh = server.set(database="madoguchi_burst").render_as_string(hide_password=False)
    subprocess.run([sys.executable, "-c", "from bot.cli.commands import main; main()", "db", "upgrade"], check=True,
                   capture_output=True, env={**os.environ, "DATABASE_URL": fresh})
    return fresh


def answers(events: list[dict[str, Any]], detail: dict[str, Any]) -> tuple[int, int, int]:
    """Of `events`: those answered by reply, answered more than once, not answered (first part by reply or push).
    Answers to other events (stored by a server that died before acknowledging them) are not counted here."""
    by_token = {event["replyToken"]: event["webhookEventId"] for event in events}
    by_key = {retry_key(event["webhookEventId"], 0): event["webhookEventId"] for event in events}
    first: Counter[str] = Counter()
    for token in detail["replies"]:
        if token in by_token:  # not one bucket for the others: two different events are not one answered twice
            first[by_token[token]] += 1
    replied = len(first)
    for key in detail["pushes"]:
        if key in by_key:
            first[by_key[key]] += 1
    doubled = sum(1 for count in first.values() if count > 1) + sum(
        count - 1 for count in Counter(detail["pushes"]).values() if count > 1)
    lost = sum(1 for event in events if event["webhookEventId"] not in first)
    return replied, doubled, lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--per-body", type=int, default=5, help="events in one webhook body")
    parser.add_argument("--posters", type=int, default=4, help="concurrent webhook posters")
    parser.add_argument("--latency", type=float, default=0.0, help="ms the fake LINE API takes per call")
    parser.add_argument("--validate-every", type=int, default=1,
                        help="the fake checks one call in this many against the spec (default: every call)")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds answering may take after the burst")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose `madoguchi serve` runs")
    parser.add_argument("--postgres", help="a PostgreSQL URL; its server gets a fresh database for the run")
    parser.add_argument("--servers", type=int, default=1,
                        help="`madoguchi serve` processes sharing the database (PostgreSQL), posted to in turn")
    args = parser.parse_args()
    if args.servers > 1 and not args.postgres:
        raise SystemExit("--servers above 1 needs --postgres: SQLite runs one process")
    database_url = fresh_postgres(args.postgres) if args.postgres else None
    count = max(1, min(args.events, MAX_EVENTS))
    events = build_events(count, max(1, args.users))

    fake_port, ports = free_port(), [free_port() for _ in range(max(1, args.servers))]
    fake_url, urls = f"http://127.0.0.1:{fake_port}", [f"http://127.0.0.1:{port}" for port in ports]
    fake = multiprocessing.get_context("spawn").Process(
        target=run_fake, args=(args.latency, fake_port, max(1, args.validate_every)), daemon=True)
    fake.start()
    with tempfile.TemporaryDirectory(prefix="madoguchi-burst-") as folder, \
            open(Path(folder) / "serve.log", "w+") as log_file:
        for number in range(len(ports)):
            if MODEL_CACHE.exists():  # the tests' model of the shipped data: serve retrains it only if stale
                model = Settings(data_dir=Path(folder) / f"serve{number}", _env_file=None).nlu_model_path  # type: ignore[call-arg]
                model.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(MODEL_CACHE, model)
        serves = [start_serve(args.root.resolve(), Path(folder) / f"serve{number}", fake_url, port, log_file,
                              database_url) for number, port in enumerate(ports)]
        try:
            log_file.flush()
            for serve, url in zip(serves, urls, strict=True):
                try:
                    wait_up(fake_url + STATS, serve)
                    wait_up(url + "/healthz", serve)
                except SystemExit:
                    log_file.seek(0)
                    print(log_file.read()[-3000:])
                    raise
            began, ended, refused = post_burst(urls, events, max(1, args.per_body), max(1, args.posters))
            database: Path | str = database_url.replace("+psycopg", "") if database_url \
                else Path(folder) / "serve0" / "madoguchi.sqlite3"
            while time.time() - ended < args.cap:
                counts = statuses(database)
                if not counts["pending"] and not counts["processing"]:
                    break
                time.sleep(0.2)
            settled = time.time()
            figures = fake_stats(fake_url, detail=True)
        finally:
            for serve in serves:
                stop_process(serve)
            fake.terminate()
        if refused or counts["failed"] or counts["pending"] or counts["processing"]:
            log_file.seek(0)
            print(log_file.read()[-3000:])

    replied, doubled, lost = answers(events, figures)
    answered = count - lost
    tail = max(figures["last_answer_at"], 0.0) - ended if figures["delivered"] else float("nan")
    share = replied / answered if answered else 0.0
    code = "this checkout" if args.root.resolve() == ROOT else str(args.root)
    print(f"LINE burst: {count} events from {args.users} users, {args.per_body} per body, {args.posters} posters; "
          f"{args.servers} `madoguchi serve` ({code}), {'PostgreSQL' if database_url else 'SQLite'}; "
          f"fake LINE API latency {args.latency:g} ms, checking "
          f"{'every call' if args.validate_every <= 1 else f'1 call in {args.validate_every}'} against the spec")
    print(f"burst: {ended - began:.2f} s ({count / (ended - began):.0f} events/s acknowledged), "
          f"{refused} refused")
    print(f"answered: {answered}/{count}, the last {tail:.2f} s after the burst (settled {settled - ended:.2f} s "
          f"after); {count / (settled - began):.0f} events/s overall")
    print(f"by reply: {replied} ({share:.1%}); by push: {answered - replied}; doubled: {doubled}; lost: {lost}; "
          f"events {dict(counts)}")
    print(f"calls to the fake: {figures['calls']}; spec violations: {figures['violation_count']} "
          f"{figures['violations']}")
    met = tail <= TARGET_SECONDS and share >= TARGET_REPLY_SHARE
    print(f"target (answered within {TARGET_SECONDS:.0f} s, >= {TARGET_REPLY_SHARE:.0%} by reply): "
          f"{'met' if met else 'NOT met'}")
    if lost or doubled or counts["failed"] or counts["pending"] or counts["processing"] or \
            figures["violation_count"] or refused:
        sys.exit(1)


if __name__ == "__main__":
    main()
