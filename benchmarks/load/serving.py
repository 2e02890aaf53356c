"""Waiting for a server a benchmark started as a process of its own, on loopback."""

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

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


def settle(process: subprocess.Popen, seconds: float = 120, idle_cores: float = 0.2) -> None:
    """Wait until a server and its children are idle: with several workers the first answers while the others
    still load the model, and the connections a load opens then would all go to the first."""
    deadline = time.monotonic() + seconds
    before = _tree_cpu_seconds(process.pid)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = _tree_cpu_seconds(process.pid)
        if now - before < idle_cores:
            return
        before = now


def _tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by a process and its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    tree, grown = {root}, True
    while grown:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grown = bool(children)
    return sum(used.get(pid, 0.0) for pid in tree)
