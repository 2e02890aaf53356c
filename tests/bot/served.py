"""`madoguchi serve --workers 2` run as a subprocess for the tests of several workers."""

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

MADOGUCHI = str(Path(sys.executable).parent / "madoguchi")


class Served:
    """`madoguchi serve --workers 2` as a subprocess: its stderr lines are read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:  # type: ignore[union-attr]
            self.lines.put(line)

    def wait_for(self, needle: str, count: int, timeout: float = 90) -> list[str]:
        """The first `count` lines containing `needle`, read within `timeout` seconds in all."""
        deadline = datetime.now() + timedelta(seconds=timeout)
        found = [line for line in self.seen if needle in line]
        while len(found) < count:
            left = (deadline - datetime.now()).total_seconds()
            assert left > 0 and self.process.poll() is None, f"no {count}x {needle!r}; stderr: {self.seen[-5:]}"
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if needle in line:
                found.append(line)
        return found[:count]


@pytest.fixture
def two_workers(tmp_path: Path, nlu_model) -> Iterator[tuple[Served, str, Path]]:
    from tests.conftest import free_port

    nlu_model.save(tmp_path / "nlu-model.joblib")  # the session's model: no training in the subprocess
    port = free_port()
    env = {key: val for key, val in os.environ.items()
           if not key.startswith(("DATABASE_URL", "BASE_URL", "SMTP_", "PROMETHEUS_", "WEB_CONCURRENCY", "LOG_"))}
    env.update(DATA_DIR=str(tmp_path), DEMO_DATA="false")
    process = subprocess.Popen([MADOGUCHI, "serve", "--port", str(port), "--workers", "2", "--no-scheduler"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    served = Served(process)
    try:
        yield served, f"http://127.0.0.1:{port}", tmp_path / "metrics"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
