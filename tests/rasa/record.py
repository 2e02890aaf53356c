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
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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
from tests.rasa.scenarios import SCENARIOS

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
                for message in SCENARIOS[name]:
                    recorder.calls = []
                    answer = client.say(message)
                    turns.append({"say": message, "answer": answer, "calls": recorder.calls})
                    print(f"{name}: {message!r} → {[m.get('text', '')[:60] for m in answer]}")
                dump_json(RECORDINGS / f"{name}.json", {"rasa": RASA_VERSION, "recorded": date.today().isoformat(),
                                                        "domain": domain_hash(), "turns": turns})
        proxy.should_exit = True


if __name__ == "__main__":
    record(sys.argv[1:] or list(SCENARIOS))
