"""Benchmark: the CPU one chat message costs in-process, without sockets: the turn alone (`Pipeline.answer`)
and the whole web app called as ASGI (`/api/chat`: body, turn, JSON answer, middleware), on a fresh SQLite
database, with the realistic mixed messages of bench_chat.py from 500 users. Run under cProfile with --profile.

Where wrk's figures (bench_throughput.py) say how many answers a second, this says where a message's time goes,
and does not vary with the machine's other load as much (CPU time, not wall time).
Usage: .venv/bin/python benchmarks/bench_turn.py [--messages 3000] [--profile] [--distinct]
"""

import argparse
import asyncio
import cProfile
import json
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_chat import MESSAGES
from bot.runtime import build_pipeline, load_channel_settings, prepare, serving_app
from core.settings import Settings
from handlers.turn import Channel, IncomingMessage

USERS = 500
WARM = 500  # messages before measuring: the model loaded, the conversations begun


DISTINCT = False  # --distinct: no typed message the same as another, so no understanding is read twice


def turns(count: int, seed: int) -> Iterator[tuple[str, dict[str, str]]]:
    """(user, message) pairs: the benchmark's messages in order, each from a random one of USERS."""
    chosen = random.Random(seed)
    for index in range(count):
        message = MESSAGES[index % len(MESSAGES)]
        if DISTINCT and "text" in message:
            message = {"text": f"{message['text']} {'ー' * (index % 7)}{seed}-{index}"}
        yield f"u{chosen.randrange(USERS)}", message


def cpu_ms_each(run: Callable[[], None], count: int, profile: bool) -> float:
    """CPU milliseconds per message of `run` (which handles `count` messages)."""
    profiler = cProfile.Profile() if profile else None
    started = time.process_time()
    if profiler:
        profiler.enable()
    run()
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    return 1000 * (time.process_time() - started) / count


def pipeline_alone(pipeline: Any, count: int, profile: bool) -> float:
    def answer(pairs: Iterator[tuple[str, dict[str, str]]]) -> None:
        for user, message in pairs:
            pipeline.answer(IncomingMessage(channel=Channel.WEB, user_id=user, conversation_id=f"web:{user}",
                                            text=message.get("text"), payload=message.get("payload")))

    answer(turns(WARM, seed=1))
    return cpu_ms_each(lambda: answer(turns(count, seed=2)), count, profile)


def whole_app(app: Any, count: int) -> float:
    async def post(body: bytes) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/api/chat", "raw_path": b"/api/chat", "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
                 "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())]}
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)
        if statuses != [200]:
            raise SystemExit(f"/api/chat answered {statuses}")

    def bodies(seed: int, number: int) -> list[bytes]:
        return [json.dumps({**message, "user": user}).encode() for user, message in turns(number, seed)]

    async def measure() -> float:
        async with app.router.lifespan_context(app):
            for body in bodies(3, WARM):
                await post(body)
            measured = bodies(4, count)
            started = time.process_time()
            for body in measured:
                await post(body)
            return 1000 * (time.process_time() - started) / count

    return asyncio.run(measure())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--profile", action="store_true", help="print the turn's cProfile (cumulative)")
    parser.add_argument("--distinct", action="store_true",
                        help="every typed message different (no understanding read again from its cache)")
    args = parser.parse_args()
    global DISTINCT
    DISTINCT = args.distinct
    with tempfile.TemporaryDirectory(prefix="madoguchi-turn-") as folder:
        settings = Settings(database_url=f"sqlite:///{folder}/turns.sqlite3", mail_outbox=f"{folder}/outbox",
                            scheduler="off")  # the model from data_dir (var/), trained once
        core = prepare(settings)
        pipeline = build_pipeline(core, settings)
        turn = pipeline_alone(pipeline, args.messages, args.profile)
        app = whole_app(serving_app(core, settings, pipeline, load_channel_settings()), args.messages)
    print(f"{'in-process, SQLite':<40} {'CPU ms a message':>17}")
    print(f"{'Pipeline.answer (the turn)':<40} {turn:>17.3f}")
    print(f"{'/api/chat as ASGI (app and turn)':<40} {app:>17.3f}")


if __name__ == "__main__":
    main()
