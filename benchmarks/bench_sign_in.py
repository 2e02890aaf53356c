"""Benchmark: the chat's answer to a student number given for signing in, for a registered student and for a
number that exists nowhere, through /api/chat: the answers must take as long (the link is looked up, stored and
mailed after the answer), so that timing tells no one whether a student exists.

Runs the real app in-process on a fresh SQLite database with the demo students; prints the median and p90 of
each and their ratio. Usage: .venv/bin/python benchmarks/bench_sign_in.py [--rounds N]
"""

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
from starlette.testclient import TestClient  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.runtime import build_pipeline, prepare  # noqa: E402
from bot.web.app import create_app  # noqa: E402
from core.settings import Settings  # noqa: E402

RATIO_BAR = 1.25  # the slower median over the faster: beyond this, timing would tell who exists
NUMBERS = {"registered": "24M1001", "unknown": "99Z9999"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    timings: dict[str, list[float]] = {kind: [] for kind in NUMBERS}
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), _env_file=None)  # type: ignore[call-arg]
        core = prepare(settings)
        app = create_app(core, build_pipeline(core, settings))
        with TestClient(app) as client:
            for round_ in range(args.rounds + 10):
                for kind, number in NUMBERS.items():  # interleaved: the same conditions for both
                    user = f"bench-{kind}-{round_}"
                    client.post("/api/chat", json={"user": user, "payload": "form:start:order"})
                    started = time.perf_counter()
                    response = client.post("/api/chat", json={"user": user, "text": number})
                    elapsed = (time.perf_counter() - started) * 1000
                    assert response.status_code == 200, response.text
                    if round_ >= 10:  # warm-up
                        timings[kind].append(elapsed)
            core.settle()
    medians = {kind: statistics.median(values) for kind, values in timings.items()}
    for kind, values in timings.items():
        values.sort()
        print(f"{kind:>10}: median {medians[kind]:.2f} ms, p90 {values[int(len(values) * 0.9)]:.2f} ms "
              f"({len(values)} answers)")
    ratio = max(medians.values()) / min(medians.values())
    print(f"ratio of the medians: {ratio:.3f} (bar {RATIO_BAR})")
    if ratio > RATIO_BAR:
        raise SystemExit("the answer's timing tells whether a student exists")


if __name__ == "__main__":
    main()
