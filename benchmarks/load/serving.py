"""Waiting for a server a benchmark started as a process of its own, on loopback."""

import subprocess
import time
from collections.abc import Callable

import httpx


def answers(url: str) -> bool:
    """The server at `url` answers (anything but a 5xx)."""
    return httpx.get(url, timeout=5).status_code < 500


def wait_up(url: str, process: subprocess.Popen, seconds: float = 300,
            ready: Callable[[str], bool] = answers) -> None:
    """Return once `ready(url)`; exit the benchmark if the process ends first or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server for {url} exited with {process.returncode}")
        try:
            if ready(url):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not come up within {seconds:.0f} s")
