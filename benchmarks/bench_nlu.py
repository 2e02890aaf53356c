"""Benchmark of the intent model: training time, model loading time and latency of one `understand` call
(normalization, entities, the reading of Japanese with SudachiPy, clauses and scores: the whole of it).

Run with `.venv/bin/python benchmarks/bench_nlu.py [--calls N]`. Prints the figures and whether each meets
its bar (training ≤ 10 s, loading ≤ 2 s, one classification p99 ≤ 5 ms). Not a test: it only measures.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from intents.classifier import train  # noqa: E402
from intents.data import load_examples  # noqa: E402
from intents.understander import load_understander  # noqa: E402

TRAIN_BAR_S, LOAD_BAR_S, P99_BAR_MS = 10.0, 2.0, 5.0

_COLD_LOAD = """
import sys, time
started = time.perf_counter()
from intents.understander import load_understander
load_understander(__import__("pathlib").Path(sys.argv[1]))
print(time.perf_counter() - started)
"""


def _verdict(value: float, bar: float) -> str:
    return "ok" if value <= bar else "OVER THE BAR"


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    """Measure and print training, loading and classification figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000, help="understand() calls to time")
    parser.add_argument("--trainings", type=int, default=3, help="trainings to time")
    args = parser.parse_args()

    train_times = []
    for _ in range(args.trainings):
        started = time.perf_counter()
        model = train()
        train_times.append(time.perf_counter() - started)
    examples = sum(sum(by_lang.values()) for by_lang in model.example_counts.values())
    worst = max(train_times)
    print(
        f"training ({examples} examples, {args.trainings} runs): best {min(train_times):.2f} s, "
        f"worst {worst:.2f} s  [bar {TRAIN_BAR_S:.0f} s: {_verdict(worst, TRAIN_BAR_S)}]"
    )

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "nlu-model.joblib"
        model.save(path)
        print(f"model file: {path.stat().st_size / 1e6:.1f} MB")
        command = [sys.executable, "-c", _COLD_LOAD, str(path)]
        cold = [
            float(subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True).stdout)
            for _ in range(3)
        ]
        started = time.perf_counter()
        understander = load_understander(path)
        warm = time.perf_counter() - started
    print(
        f"loading in a new process, imports included (3 runs): worst {max(cold):.2f} s  "
        f"[bar {LOAD_BAR_S:.0f} s: {_verdict(max(cold), LOAD_BAR_S)}]; in a warm process: {warm:.3f} s"
    )

    # The training sentences and the held-out sets' (long messages of several clauses among them), each new
    # to the understander's caches, so that each call does the whole work: readings, clauses, scores.
    texts = [example.text for example in load_examples()]
    texts += [json.loads(line)["text"] for path in sorted((REPO / "benchmarks" / "nlu").glob("*.jsonl"))
              for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts += ["明日の16時に窓口で在学証明書を２通受け取れますか。学籍番号は24M1001です" * 3, "x" * 10_000]
    for index in range(200):  # warm-up on other words than the ones measured
        understander.understand(f"warm-up {index}")
    latencies = []
    for index in range(args.calls):
        text = texts[index % len(texts)]
        started = time.perf_counter()
        understander.understand(text)
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    p99 = _percentile(latencies, 0.99)
    print(
        f"one understand() call ({args.calls} calls over {len(texts)} messages): "
        f"mean {statistics.fmean(latencies):.3f} ms, p50 {_percentile(latencies, 0.5):.3f} ms, p99 {p99:.3f} ms, "
        f"max {latencies[-1]:.3f} ms  [bar p99 {P99_BAR_MS:.0f} ms: {_verdict(p99, P99_BAR_MS)}]"
    )


if __name__ == "__main__":
    main()
