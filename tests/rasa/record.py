"""Record what a real Rasa sends to madoguchi's action server: `python -m tests.rasa.record [SCENARIO ...]`.

A proxy between `rasa run` and `madoguchi actions` keeps every action call (the request Rasa posts and the
answer) of each scenario in tests/rasa/scenarios.py, with the REST exchange around it, in
tests/rasa/recordings/<scenario>.json. The bridge tests replay those requests; re-record when the domain,
the rules or Rasa's version change (the recordings name the Rasa version and the domain's hash).
"""

import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.rasa.bridge import SESSION_METADATA
from core.db import make_engine
from core.students import find_student
from core.web_sessions import start_session
from tests.conftest import free_port
from tests.rasa.live import (
    DOMAIN,
    RASA_VERSION,
    RestClient,
    dump_json,
    rasa_missing,
    rasa_with_actions,
    trained_model,
)
from tests.rasa.scenarios import SCENARIOS, SIGN_IN, SIGNED_IN

RECORDINGS = Path(__file__).parent / "recordings"


class Recorder:
    """A reverse proxy to the action server that keeps each call, tagged with the turn it belongs to."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.calls = upstream, []  # type: ignore[var-annotated]
        self.app = Starlette(routes=[Route("/webhook", self.forward, methods=["POST"])])

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.post(self.upstream, content=body, headers={"content-type": "application/json"})
        self.calls.append({"request": _json(body), "status": answer.status_code, "response": _json(answer.content)})
        return Response(answer.content, answer.status_code, media_type="application/json")

    def serve(self, port: int) -> uvicorn.Server:
        server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:  # uvicorn's own flag, polled: the proxy is ready when it flips
            time.sleep(0.05)
        return server


def _json(raw: bytes) -> Any:
    return json.loads(raw) if raw else None


def domain_hash() -> str:
    """The hash of the domain the recordings were made with (replay tests compare it)."""
    return hashlib.sha256(DOMAIN.read_bytes()).hexdigest()[:16]


def start_session_in(work: Path, number: str) -> str:
    """A signed-in session for `number` in the action server's database (what opening the mailed link does)."""
    engine = make_engine(f"sqlite:///{(work / 'var' / 'madoguchi.sqlite3').as_posix()}")
    try:
        with Session(engine) as session, session.begin():
            return start_session(session, find_student(session, number), "email", datetime.now(UTC))
    finally:
        engine.dispose()


def record(names: list[str]) -> None:
    missing = rasa_missing()
    if missing:
        sys.exit(missing)
    model = trained_model()
    RECORDINGS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        actions_port, proxy_port, rasa_port = free_port(), free_port(), free_port()
        env = {**os.environ, "DATA_DIR": str(work / "var")}
        env = {key: value for key, value in env.items() if not key.startswith(("DATABASE_URL", "SMTP_"))}
        recorder = Recorder(f"http://127.0.0.1:{actions_port}/webhook")
        proxy = recorder.serve(proxy_port)
        with rasa_with_actions(model, env, work, actions_port, rasa_port, f"http://127.0.0.1:{proxy_port}/webhook") \
                as rasa_url:
            for name in names:
                client = RestClient(rasa_url, sender=f"rec-{name}")
                turns = []
                metadata: dict[str, str] = {}
                for message in SCENARIOS[name]:
                    if message == SIGN_IN:  # the mailed link opened: the front end passes the session from now on
                        metadata = {SESSION_METADATA: start_session_in(work, SIGNED_IN[name])}
                    recorder.calls = []
                    answer = client.say(message, **metadata)
                    turns.append({"say": message, "answer": answer, "calls": recorder.calls})
                    print(f"{name}: {message!r} → {[m.get('text', '')[:60] for m in answer]}")
                dump_json(RECORDINGS / f"{name}.json", {"rasa": RASA_VERSION, "recorded": date.today().isoformat(),
                                                        "domain": domain_hash(), "signed_in": SIGNED_IN.get(name),
                                                        "turns": turns})
        proxy.should_exit = True


if __name__ == "__main__":
    record(sys.argv[1:] or list(SCENARIOS))
