"""Benchmark: 10,000 reminders due at the same moment, swept by the scheduler and delivered by the inbox to the
fake LINE API on loopback, without a rate limit and with LINE's (2,000 pushes a second).

Usage: .venv/bin/python benchmarks/bench_reminders.py [--reminders N] [--workers W] [--deadline S]
       [--limits none,2000]

Each run (one per limit: `none` takes every push; a number answers 429 with `Retry-After: 1` beyond that many
pushes a second, as LINE does) gets a fresh SQLite database (in a temporary folder) with N students, each with
a linked, following LINE account, a READY window-pickup order and a `ready_now` reminder due now, all inserted
in bulk. Then, timed one after the other:

- claiming: the scheduler's sweep (`Scheduler.tick`) sends every due reminder: batches of 500, each checked,
  claimed and queued in one transaction (`bot.delivery.reminders.send_due`);
- delivering: W inbox worker processes (as `madoguchi serve --workers W` runs them, each pacing its pushes to
  its share of the pace kept under LINE's limit, 1,900 / W a second) drain the `deliver` jobs (`Inbox.drain`)
  to the fake LINE API, in a process of its own as the real platform is. A refused push waits (by its job's
  next_attempt_at, in real time) and is sent again with the same X-Line-Retry-Key. The workers are running
  (their imports done) before the reminders come due, as a deployment's are.

Each limit is run twice (--modes): `apart`, claiming and then delivering, each timed on its own; `together`,
the workers delivering while the sweep claims, as a deployment runs them: from the sweep's start until the last
push is the issue's "due -> all delivered" figure (target: 10 s without a limit; with LINE's, the limit's time).

The fake answers as the tests' fake does (retry keys: 409 for one accepted before; the rate limit) and checks
every call against the Messaging API spec and LINE's documented limits, but after delivering ended: the spec
check (openapi-core) takes about 3.4 ms a call, so one core can check about 300 calls a second, and checking
while they arrive would time the checker, not the bot. Each request is recorded as it arrives and checked
after the run, in two processes.

Real time passes, counted from a Tuesday 10:00 in Tokyo, so the quiet hours never hold the pushes back
whenever this runs. Bounded: N at most 20,000, delivering at most S seconds (default 120); loopback only.
Exits 1 if anything is left undelivered, sent twice or off-spec.
"""

import argparse
import multiprocessing
import socket
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, insert, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.channels.line import LineChannel
from bot.delivery.inbox import Inbox
from bot.delivery.notices import Delivery
from bot.delivery.scheduler import Scheduler
from bot.runtime import prepare
from bot.settings import LINE_PUSH_LIMIT, LINE_PUSH_PACE, ChannelSettings
from core.clock import TOKYO
from core.enums import DeliveryMethod, Language, OrderStatus, PaymentMethod
from core.i18n import core_messages
from core.jobs import DELIVER
from core.models import ChannelAccount, InboundEvent, Order, OrderItem, Reminder, Student
from core.reminders import GRACE, Kind, Status
from core.services import Core, build_core
from core.settings import Settings
from handlers.messages import handler_messages
from tests.channels.line.fake_line_api import PUSH, FakeLineApi

START = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)  # a Tuesday morning, outside the quiet hours
MAX_REMINDERS = 20_000
BATCH = 2_000  # rows per bulk insert
STATS = "/bench/stats"  # the fake's figures, served next to it
CHECKERS = 2  # processes checking the recorded calls against the spec after a run
# 10,000 reminders at commit 4f65a7f (a transaction and an SDK call per reminder, one event at a time) on this
# 2-core machine: `.venv/bin/python benchmarks/bench_reminders.py --rate-limit 1000000 --deadline 400` (that
# version's fake limit; the machine otherwise idle) and `--rate-limit 2000 --deadline 400` (while other test runs
# kept the machine busy, load about 6), 2 worker processes as here. Its fake checked each call on arrival.
BEFORE_COUNT = 10_000
BEFORE = {"none": (54.32, 190.74), "2000": (232.31, 400.12)}  # limit: (claiming s, delivering s)


class RunningClock:
    """Real time passing from START since `anchor` (wall-clock seconds, the same in every process)."""

    def __init__(self, anchor: float) -> None:
        self.anchor = anchor

    def now(self) -> datetime:
        return START + timedelta(seconds=time.time() - self.anchor)


def settings_for(folder: str) -> Settings:
    return Settings(data_dir=Path(folder), demo_data=False, _env_file=None)  # type: ignore[call-arg]


# --- the fake LINE platform, in its own process ------------------------------------------------------------------

SCOPE_KEYS = ("type", "http_version", "method", "scheme", "path", "raw_path", "root_path", "query_string", "headers",
              "server", "client")


class RecordingFake(FakeLineApi):
    """The tests' fake LINE API, recording each call to check it against the spec after the run."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded: list[tuple[dict[str, Any], bytes, Any]] = []

    def _validate(self, request: Request, raw: bytes, body: Any) -> None:
        self.recorded.append(({key: request.scope[key] for key in SCOPE_KEYS if key in request.scope}, raw, body))


def check_calls(url: str, calls: list[tuple[dict[str, Any], bytes, Any]]) -> list[str]:
    """The spec violations among recorded calls, found as the tests' fake finds them."""
    fake = FakeLineApi()
    fake.bind(url)
    for scope, raw, body in calls:
        fake._validate(Request(scope), raw, body)
    return fake.violations


def run_fake(rate_limit: int | None, urls: Any) -> None:
    """Serve the fake LINE API with its rate limit, and its figures at STATS; put its URL on `urls`."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by accepted connections: without it each answer waits ~40 ms for a delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    fake = RecordingFake()
    fake.bind(f"http://127.0.0.1:{sock.getsockname()[1]}")
    if rate_limit is not None:
        fake.limit_rate(rate_limit)

    async def stats(request: Request) -> JSONResponse:
        attempts = fake.calls_to(PUSH)
        pushes = [call for call in attempts if call.delivered]
        calls, fake.recorded = fake.recorded, []
        share = -(-len(calls) // CHECKERS)
        with ProcessPoolExecutor(CHECKERS, mp_context=multiprocessing.get_context("spawn")) as pool:
            found = pool.map(check_calls, [fake.url] * CHECKERS,
                             [calls[start:start + share] for start in range(0, len(calls), share)] or [[]])
            violations = [text for part in found for text in part]
        return JSONResponse({
            "pushes": len(pushes), "retry_keys": len({call.headers.get("x-line-retry-key") for call in pushes}),
            "users": len({call.body["to"] for call in pushes}), "throttled": fake.throttled,
            "answers": dict(Counter(str(call.status) for call in attempts)), "checked": len(calls),
            "violations": violations[:5], "violation_count": len(violations)})

    app = Starlette(routes=[Route(STATS, stats), Mount("/", app=fake.app)])
    urls.put(fake.url)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)).run(sockets=[sock])


def fake_stats(url: str) -> dict[str, Any]:
    return httpx.get(url + STATS, timeout=600).json()


# --- the inbox workers, each a process ----------------------------------------------------------------------------

def run_worker(folder: str, anchor: float, fake_url: str, ready: Any, go: Any, done: Any, deadline: float,
               workers: int) -> None:
    """One inbox worker: started (its imports done, which take seconds of CPU), say so on `ready`; after `go`,
    drain the deliver jobs until `done` or the deadline."""
    core = build_core(settings_for(folder), clock=RunningClock(anchor))
    channel = ChannelSettings(  # type: ignore[call-arg]
        _env_file=None, line_channel_secret="0" * 32, line_channel_access_token="bench-token",
        line_api_base_url=fake_url, line_access_base_url=fake_url,
        line_pushes_per_second=LINE_PUSH_PACE // workers)  # its share, as `serve --workers W` gives each worker
    line = LineChannel(core, None, channel)  # type: ignore[arg-type]  # it only sends here: no turns
    inbox = Inbox(core, {DELIVER: Delivery(core, {"line": line})})
    ready.put(True)
    go.wait()
    stop_at = time.monotonic() + deadline
    while not done.is_set() and time.monotonic() < stop_at:
        if inbox.drain() == 0:
            time.sleep(0.02)  # nothing due: a 429's Retry-After has to pass in real time
    core.engine.dispose()


# --- the data, the scheduler's part, and the count --------------------------------------------------------------

def seed(core: Core, count: int) -> None:
    """`count` LINE-linked students, each with a READY order and a `ready_now` reminder due now, in bulk."""
    now = core.now()
    for first in range(0, count, BATCH):
        indexes = range(first, min(first + BATCH, count))
        numbers = {index: f"{10 + index // 10000}R{index % 10000:04d}" for index in indexes}
        orders = {index: f"BR{index // 10000:02d}-{index % 10000:04d}" for index in indexes}
        with core.transaction() as session:
            session.execute(insert(Student), [
                {"student_number": numbers[index], "department": "medicine", "year": 2,
                 "preferred_language": Language.EN if index % 5 == 0 else Language.JA, "reminders_enabled": True,
                 "created_at": now, "updated_at": now} for index in indexes])
            students = {number: student_id for number, student_id in session.execute(
                select(Student.student_number, Student.id).where(Student.student_number.in_(numbers.values())))}
            session.execute(insert(ChannelAccount), [
                {"channel": "line", "external_id": f"U{index:032x}", "student_id": students[numbers[index]],
                 "following": True, "linked_at": now, "created_at": now, "updated_at": now} for index in indexes])
            session.execute(insert(Order), [
                {"number": orders[index], "student_id": students[numbers[index]],
                 "delivery_method": DeliveryMethod.WINDOW_PICKUP, "payment_method": PaymentMethod.CREDIT_CARD,
                 "status": OrderStatus.READY, "total_yen": 2000, "created_at": now, "updated_at": now,
                 "paid_at": now - timedelta(minutes=index)} for index in indexes])  # each its own pickup time
            order_ids = {number: order_id for number, order_id in session.execute(
                select(Order.number, Order.id).where(Order.number.in_(orders.values())))}
            session.execute(insert(OrderItem), [
                {"order_id": order_ids[orders[index]], "item_code": "student_id_reissue", "copies": 1,
                 "unit_price_yen": 2000} for index in indexes])
            session.execute(insert(Reminder), [
                {"kind": Kind.READY_NOW.value, "key": f"{Kind.READY_NOW.value}:{orders[index]}",
                 "student_id": students[numbers[index]], "subject": orders[index], "due_at": now,
                 "grace": int(GRACE[Kind.READY_NOW].total_seconds()), "deferred": False,
                 "status": Status.SCHEDULED.value, "created_at": now} for index in indexes])


def deliver_jobs(core: Core) -> Counter[str]:
    """The deliver jobs by status."""
    with core.transaction() as session:
        return Counter({status: count for status, count in session.execute(
            select(InboundEvent.status, func.count()).where(InboundEvent.channel == DELIVER)
            .group_by(InboundEvent.status))})


def open_jobs(core: Core) -> int:
    jobs = deliver_jobs(core)
    return jobs["pending"] + jobs["processing"]


@dataclass
class Run:
    """One run's figures."""

    limit: str
    together: bool  # the workers delivered while the sweep claimed, as in production
    outcomes: dict[str, int]
    claimed_in: float
    delivered_in: float  # after claiming ended; when together, all of it counts from when claiming began
    jobs: dict[str, int]
    fake: dict[str, Any]

    @property
    def settled(self) -> bool:
        return not (self.jobs.get("pending") or self.jobs.get("processing"))

    @property
    def duplicates(self) -> int:
        return self.fake["pushes"] - self.fake["retry_keys"]


def run(count: int, limit: int | None, workers: int, deadline: float, together: bool) -> Run:
    """Seed, claim and deliver `count` reminders against a fake taking `limit` pushes a second (None: all);
    `together`: the workers start delivering when the sweep starts claiming, else after it ended."""
    anchor = time.time()
    spawn = multiprocessing.get_context("spawn")
    urls = spawn.Queue()
    # Not a daemon: it starts the processes that check the calls. Ended in `finally` instead.
    fake = spawn.Process(target=run_fake, args=(limit, urls))
    fake.start()
    try:
        return _run(count, limit, workers, deadline, together, anchor, urls.get(timeout=60))
    finally:
        fake.terminate()


def _run(count: int, limit: int | None, workers: int, deadline: float, together: bool, anchor: float,
         fake_url: str) -> Run:
    spawn = multiprocessing.get_context("spawn")
    ready, go, done = spawn.Queue(), spawn.Event(), spawn.Event()
    with tempfile.TemporaryDirectory() as folder:
        prepare(settings_for(folder)).engine.dispose()  # creates and migrates the database
        core = build_core(settings_for(folder), clock=RunningClock(anchor))
        seed(core, count)
        processes = [spawn.Process(target=run_worker, args=(folder, anchor, fake_url, ready, go, done, deadline,
                                                                 workers))
                     for _ in range(workers)]
        for process in processes:
            process.start()
        for _ in processes:  # running before the reminders come due, as a deployment's are
            ready.get(timeout=120)
        # And a running scheduler has composed messages before: its catalogs are loaded (0.4 s of YAML).
        handler_messages(), core_messages()

        if together:
            go.set()
        began = time.perf_counter()
        outcomes = Scheduler(core).tick().outcomes
        claimed_in = time.perf_counter() - began

        started = began if together else time.perf_counter()
        go.set()
        while open_jobs(core) and time.perf_counter() - started < deadline:
            time.sleep(0.05)
        delivered_in = time.perf_counter() - started
        done.set()
        for process in processes:
            process.join(timeout=60)
        jobs = deliver_jobs(core)
        core.engine.dispose()
    figures = fake_stats(fake_url)
    return Run("none" if limit is None else str(limit), together,
               {str(key): value for key, value in outcomes.items()}, claimed_in, delivered_in, dict(jobs), figures)


def report(count: int, workers: int, result: Run) -> bool:
    """Print one run beside the figures before; True when it passed its checks."""
    figures = result.fake
    limit = "no rate limit" if result.limit == "none" else f"LINE's limit ({result.limit} pushes/s)"
    total = result.delivered_in if result.together else result.claimed_in + result.delivered_in
    how = "delivering while claiming" if result.together else "claiming, then delivering"
    print(f"\n{count} ready_now reminders due at once; SQLite; fake LINE API with {limit}; "
          f"{workers} inbox worker process(es); {how}")
    print(f"  claim:   {result.outcomes} in {result.claimed_in:.2f} s ({count / result.claimed_in:.0f} reminders/s)")
    if not result.together:
        print(f"  deliver: {figures['pushes']} pushes to {figures['users']} users in {result.delivered_in:.2f} s "
              f"({figures['pushes'] / result.delivered_in:.0f} sends/s){'' if result.settled else '  [DEADLINE]'}")
    print(f"  due -> all delivered: {total:.2f} s ({how}; target 10 s){'' if result.settled else '  [DEADLINE]'}")
    if result.limit != "none":
        floor = count / int(result.limit)
        print(f"  the limit alone lets {count} pushes through in {floor:.1f} s at best; all delivered in "
              f"{total / floor:.2f} times that")
    before = BEFORE.get(result.limit)
    if before and count == BEFORE_COUNT:
        claimed, delivered = before
        print(f"  before (4f65a7f): claim {claimed:.1f} s ({count / claimed:.0f}/s), deliver {delivered:.1f} s "
              f"({count / delivered:.0f}/s), {claimed + delivered:.1f} s in all; now {total:.1f} s, "
              f"{(claimed + delivered) / total:.0f} times as fast")
    print(f"  429s seen: {figures['throttled']} (push answers {figures['answers']}); deliver jobs {result.jobs}")
    print(f"  duplicates: {result.duplicates} ({figures['pushes']} pushes, {figures['retry_keys']} distinct retry "
          f"keys); spec violations: {figures['violation_count']} in {figures['checked']} calls "
          f"{figures['violations']}")
    return (result.settled and not result.duplicates and figures["users"] == count
            and not figures["violation_count"] and result.outcomes == {Status.SENT.value: count})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="inbox worker processes")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds delivering may take at most")
    parser.add_argument("--limits", default=f"none,{LINE_PUSH_LIMIT}",
                        help="the fake's push limits a second, one run each ('none': no limit)")
    parser.add_argument("--modes", default="apart,together",
                        help="apart: claim, then deliver (each timed); together: deliver while claiming")
    args = parser.parse_args()
    count = max(1, min(args.reminders, MAX_REMINDERS))
    passed = True
    for limit in args.limits.split(","):
        for mode in args.modes.split(","):
            result = run(count, None if limit == "none" else int(limit), args.workers, args.deadline,
                         together=mode == "together")
            passed = report(count, args.workers, result) and passed
    if not passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
