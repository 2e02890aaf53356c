"""Benchmark: 10,000 reminders due at the same moment, sent to the fake LINE API on loopback with a rate limit.

Usage: .venv/bin/python benchmarks/bench_reminders.py [--reminders N] [--rate-limit R] [--workers W] [--deadline S]

A fresh SQLite database (in a temporary folder) gets N students with linked, following LINE accounts and a
READY window-pickup order each, and N `ready_now` reminders due now, all inserted in bulk. Then, timed:

- claiming: every due reminder is sent by id with `send_reminder`, one after the other, as the one active
  scheduler does (its check, claim and queued `deliver` job commit together);
- delivering: W inbox worker processes (as W `madoguchi serve` processes would run them) drain the `deliver`
  jobs to the fake LINE API, in a process of its own as the real platform is, which validates every call
  against the Messaging API spec and answers 429 with `Retry-After: 1` beyond R requests a second. LINE
  allows 2,000 push requests a second; R defaults to 80, just under what two workers send on a 2-CPU machine
  (about 90 a second unthrottled), so that the limit is reached; a refused push waits (by its job's
  next_attempt_at, in real time) and is sent again with the same X-Line-Retry-Key.

Real time passes, counted from a Tuesday 10:00 in Tokyo, so the quiet hours never hold the pushes back
whenever this runs. Bounded: N at most 20,000, delivering at most S seconds (default 300; about 140 s are
needed at the defaults); loopback only. Exits 1 if anything is left undelivered, sent twice or off-spec.
"""

import argparse
import multiprocessing
import socket
import sys
import tempfile
import time
from collections import Counter
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
from bot.delivery import Delivery
from bot.inbox import Inbox
from bot.reminders import send_reminder
from bot.runtime import prepare
from bot.settings import ChannelSettings
from core.clock import TOKYO
from core.enums import DeliveryMethod, Language, OrderStatus, PaymentMethod
from core.jobs import DELIVER
from core.models import ChannelAccount, InboundEvent, Order, OrderItem, Reminder, Student
from core.reminders import GRACE, Kind, Status, due_reminders
from core.services import Core, build_core
from core.settings import Settings
from tests.channels.line.fake_line_api import PUSH, FakeLineApi

START = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)  # a Tuesday morning, outside the quiet hours
MAX_REMINDERS = 20_000
BATCH = 2_000  # rows per bulk insert
STATS = "/bench/stats"  # the fake's figures, served next to it


class RunningClock:
    """Real time passing from START since `anchor` (wall-clock seconds, the same in every process)."""

    def __init__(self, anchor: float) -> None:
        self.anchor = anchor

    def now(self) -> datetime:
        return START + timedelta(seconds=time.time() - self.anchor)


def settings_for(folder: str) -> Settings:
    return Settings(data_dir=Path(folder), demo_data=False, _env_file=None)  # type: ignore[call-arg]


# --- the fake LINE platform, in its own process ------------------------------------------------------------------

def run_fake(rate_limit: int, urls: Any) -> None:
    """Serve the fake LINE API with its rate limit, and its figures at STATS; put its URL on `urls`."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by accepted connections: without it each answer waits ~40 ms for a delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    fake = FakeLineApi()
    fake.bind(f"http://127.0.0.1:{sock.getsockname()[1]}")
    fake.limit_rate(rate_limit)

    async def stats(request: Request) -> JSONResponse:
        attempts = fake.calls_to(PUSH)
        pushes = [call for call in attempts if call.delivered]
        return JSONResponse({
            "pushes": len(pushes), "retry_keys": len({call.headers.get("x-line-retry-key") for call in pushes}),
            "users": len({call.body["to"] for call in pushes}), "throttled": fake.throttled,
            "answers": dict(Counter(str(call.status) for call in attempts)), "violations": fake.violations[:5],
            "violation_count": len(fake.violations)})

    app = Starlette(routes=[Route(STATS, stats), Mount("/", app=fake.app)])
    urls.put(fake.url)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)).run(sockets=[sock])


def fake_stats(url: str) -> dict[str, Any]:
    return httpx.get(url + STATS, timeout=30).json()


# --- the inbox workers, each a process ----------------------------------------------------------------------------

def run_worker(folder: str, anchor: float, fake_url: str, go: Any, done: Any, deadline: float) -> None:
    """One inbox worker: after `go`, drain the deliver jobs until `done` or the deadline."""
    core = build_core(settings_for(folder), clock=RunningClock(anchor))
    channel = ChannelSettings(  # type: ignore[call-arg]
        _env_file=None, line_channel_secret="0" * 32, line_channel_access_token="bench-token",
        line_api_base_url=fake_url, line_access_base_url=fake_url)
    line = LineChannel(core, None, channel)  # type: ignore[arg-type]  # it only sends here: no turns
    inbox = Inbox(core, {DELIVER: Delivery(core, {"line": line})})
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
                 "paid_at": now} for index in indexes])
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


def claim_all(core: Core) -> Counter[str]:
    """Send every due reminder by id, as the scheduler does; how many ended in each state."""
    outcomes: Counter[str] = Counter()
    while True:
        with core.transaction() as session:
            due = due_reminders(session, core.now(), limit=500)
        if not due:
            return outcomes
        for reminder_id in due:
            outcomes[str(send_reminder(core, reminder_id))] += 1


def deliver_jobs(core: Core) -> Counter[str]:
    """The deliver jobs by status."""
    with core.transaction() as session:
        return Counter({status: count for status, count in session.execute(
            select(InboundEvent.status, func.count()).where(InboundEvent.channel == DELIVER)
            .group_by(InboundEvent.status))})


def open_jobs(core: Core) -> int:
    jobs = deliver_jobs(core)
    return jobs["pending"] + jobs["processing"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--rate-limit", type=int, default=80, help="push requests a second the fake takes")
    parser.add_argument("--workers", type=int, default=2, help="inbox worker processes")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds delivering may take at most")
    args = parser.parse_args()
    count = max(1, min(args.reminders, MAX_REMINDERS))
    anchor = time.time()
    spawn = multiprocessing.get_context("spawn")
    urls, go, done = spawn.Queue(), spawn.Event(), spawn.Event()
    fake = spawn.Process(target=run_fake, args=(args.rate_limit, urls), daemon=True)
    fake.start()
    fake_url = urls.get(timeout=60)

    with tempfile.TemporaryDirectory() as folder:
        prepare(settings_for(folder)).engine.dispose()  # creates and migrates the database
        core = build_core(settings_for(folder), clock=RunningClock(anchor))
        seed(core, count)
        workers = [spawn.Process(target=run_worker, args=(folder, anchor, fake_url, go, done, args.deadline))
                   for _ in range(args.workers)]
        for worker in workers:
            worker.start()  # they start up while the reminders are claimed, and wait for `go`

        started = time.perf_counter()
        outcomes = claim_all(core)
        claimed_in = time.perf_counter() - started

        started = time.perf_counter()
        go.set()
        while open_jobs(core) and time.perf_counter() - started < args.deadline:
            time.sleep(0.1)
        delivered_in = time.perf_counter() - started
        done.set()
        for worker in workers:
            worker.join(timeout=60)
        jobs = deliver_jobs(core)
        core.engine.dispose()
    figures = fake_stats(fake_url)
    fake.terminate()

    settled = not (jobs["pending"] or jobs["processing"])
    duplicates = figures["pushes"] - figures["retry_keys"]
    print(f"reminders: {count} ready_now due at once; SQLite; fake LINE API at {args.rate_limit} requests/s; "
          f"{args.workers} inbox worker process(es)")
    print(f"claim: {dict(outcomes)} in {claimed_in:.2f} s ({count / claimed_in:.0f} reminders/s)")
    print(f"deliver: {figures['pushes']} pushes to {figures['users']} users in {delivered_in:.2f} s "
          f"({figures['pushes'] / delivered_in:.0f} sends/s){'' if settled else '  [DEADLINE REACHED]'}")
    print(f"429s seen: {figures['throttled']} (push answers {figures['answers']}); deliver jobs {dict(jobs)}")
    print(f"duplicates: {duplicates} ({figures['pushes']} pushes, {figures['retry_keys']} distinct retry keys); "
          f"spec violations: {figures['violation_count']} {figures['violations']}")
    if not settled or duplicates or figures["users"] != count or figures["violation_count"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
