"""Benchmark: /api/chat's throughput and p99 under wrk (1 thread, 16 connections, realistic mixed ja/en messages
from many users), beside the bare baseline (Starlette + uvicorn answering a JSON POST) measured in the same run.

Each stack runs as its own process on loopback: the bare app under uvicorn, `madoguchi serve` on a fresh SQLite
database (one process), and, with --postgres, `madoguchi serve` on PostgreSQL with one and with two workers. All
are started first; then each round loads each stack in turn for --seconds, so that a machine whose speed drifts
(a shared host) slows every stack alike. Each round's ratios are printed, and the median over the rounds.
Usage: .venv/bin/python benchmarks/bench_throughput.py [--seconds 5] [--rounds 3] [--postgres URL]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_chat import MESSAGES  # noqa: E402
from benchmarks.load.serving import settle, wait_up  # noqa: E402
from tests.conftest import free_port  # noqa: E402

BIN = Path(sys.executable).parent
LUA = ROOT / "benchmarks" / "load" / "chat.lua"
CONNECTIONS = 16
USERS = 500


@dataclass(frozen=True)
class Figure:
    """One stack's throughput and tail latency."""

    stack: str
    requests_per_second: float
    p99_ms: float
    errors: int


def chat_answers(url: str) -> bool:
    """The app answers a chat message (its model loaded): the bare app and madoguchi alike."""
    return httpx.post(f"{url}/api/chat", json={"user": "warm", "text": "こんにちは"}, timeout=5).status_code == 200


def load(url: str, seconds: int) -> tuple[float, float, int]:
    """wrk against /api/chat: requests per second, p99 in ms, and non-2xx or socket errors."""
    env = {**os.environ, "BENCH_MESSAGES": str(len(MESSAGES)), "BENCH_USERS": str(USERS)}
    for index, message in enumerate(MESSAGES, start=1):
        env[f"BENCH_MESSAGE_{index}"] = json.dumps(message, ensure_ascii=False)[1:-1]
    warm = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", "-d2s", "-s", str(LUA), url], env=env,
                          capture_output=True, text=True)
    if warm.returncode != 0:
        raise SystemExit(warm.stderr)
    run = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(LUA), url],
                         env=env, capture_output=True, text=True)
    out = run.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return rps, p99_ms, errors + run.stderr.count("status ")


@dataclass
class Stack:
    """A server under test: its name, its process and its URL."""

    name: str
    process: subprocess.Popen
    url: str


def start(name: str, command: list[str], env: dict[str, str], port: int) -> Stack:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Stack(name, process, f"http://127.0.0.1:{port}")


def madoguchi(name: str, folder: Path, database_url: str | None = None, workers: int = 1) -> Stack:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "SLACK_", "LINE_"))}
    env.update(DATA_DIR=str(folder), LOG_LEVEL="WARNING", SCHEDULER="off", BASE_URL=f"http://127.0.0.1:{port}")
    if database_url:
        env["DATABASE_URL"] = database_url
    return start(name, [str(BIN / "madoguchi"), "serve", "--port", str(port), "--workers", str(workers)], env, port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="each stack's load in each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", help="a PostgreSQL URL whose database may be emptied (e.g. the test one)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_throughput: NOT MEASURED: wrk is not installed (apt-get install -y wrk)")
        return
    with tempfile.TemporaryDirectory(prefix="madoguchi-load-") as folder:
        port = free_port()
        stacks = [start("bare Starlette + uvicorn", [str(BIN / "uvicorn"), "benchmarks.load.bare_app:app", "--port",
                                                     str(port), "--no-access-log", "--log-level", "warning"],
                        {**os.environ, "PYTHONPATH": str(ROOT)}, port)]
        stacks.append(madoguchi("madoguchi /api/chat, SQLite, 1 process", Path(folder) / "sqlite"))
        if args.postgres:
            subprocess.run([str(BIN / "madoguchi"), "db", "upgrade"], check=True, capture_output=True,
                           env={**os.environ, "DATABASE_URL": args.postgres, "DATA_DIR": folder})
            for workers in (1, 2):  # the same database: one server's rows slow the other's queries alike
                stacks.append(madoguchi(f"madoguchi /api/chat, PostgreSQL, {workers} worker(s)",
                                        Path(folder) / f"pg{workers}", args.postgres, workers))
        try:
            for stack in stacks:
                wait_up(stack.url, stack.process, 180, chat_answers)
            for stack in stacks:
                settle(stack.process)  # every worker started (the first answers before the others are up)
            rounds = [[Figure(stack.name, *load(stack.url, args.seconds)) for stack in stacks]
                      for _ in range(args.rounds)]
        finally:
            for stack in stacks:
                stack.process.terminate()
            for stack in stacks:
                stack.process.wait(timeout=30)
    report(rounds, two_workers=bool(args.postgres))


def report(rounds: list[list[Figure]], two_workers: bool) -> None:
    """Each round's figures with their ratio to the bare stack, then the median ratios over the rounds."""
    print(f"{'round':<6} {'stack':<45} {'req/s':>9} {'ratio':>7} {'p99 ms':>9} {'errors':>7}")
    for number, figures in enumerate(rounds, start=1):
        bare = figures[0].requests_per_second
        for figure in figures:
            print(f"{number:<6} {figure.stack:<45} {figure.requests_per_second:>9.0f} "
                  f"{figure.requests_per_second / bare:>7.3f} {figure.p99_ms:>9.1f} {figure.errors:>7}")
    sqlite = [figures[1].requests_per_second / figures[0].requests_per_second for figures in rounds]
    p99 = max(figures[1].p99_ms for figures in rounds)
    print(f"median over {len(rounds)} rounds: SQLite {statistics.median(sqlite):.3f} of bare "
          f"(rounds {min(sqlite):.3f}-{max(sqlite):.3f}), worst p99 {p99:.1f} ms")
    if two_workers:
        gain = [figures[3].requests_per_second / figures[2].requests_per_second for figures in rounds]
        print(f"median over {len(rounds)} rounds: PostgreSQL 2 workers {statistics.median(gain):.2f} times 1 "
              f"(rounds {min(gain):.2f}-{max(gain):.2f})")


if __name__ == "__main__":
    main()
