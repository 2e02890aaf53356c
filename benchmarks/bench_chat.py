"""Benchmark: one whole chat message (understanding, handler, database read and write) through /api/chat.

Runs the real app in-process on a fresh SQLite database and prints p50/p99 latency per message.
Usage: .venv/bin/python benchmarks/bench_chat.py [--messages N]
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

P99_BAR_MS = 15.0
# Realistic turns: openers, two questions, hiragana and romaji, a form and its steering words, taps.
MESSAGES = [
    {"text": "支払い方法を教えてください"}, {"text": "how can I pay?"}, {"text": "問い合わせ先は？"},
    {"text": "こんにちは"}, {"text": "明日の天気は？"}, {"payload": "intent:contact"},
    {"payload": "intent:payment_methods"}, {"text": "thanks!"}, {"text": "ログインできません"},
    {"text": "成績証明書を申請したい"}, {"text": "when can I pick up my student ID?"}, {"text": "返金できますか"},
    {"text": "すみません、学生証をなくしました。再発行したいです"},
    {"text": "支払い方法と、学生支援課の電話番号を教えて"},
    {"text": "what time does the call center open, and can I pay at Lawson?"}, {"text": "キャンセルで"},
    {"text": "しはらいほうほうをおしえてください"}, {"text": "seiseki shoumeisho x2"},
    {"text": "セブンでクレカ使える?"},
    {"text": "お世話になっております。看護学科2年の高橋です。在学証明書は郵送でも受け取れますか。"
             "よろしくお願いいたします。"},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), _env_file=None)  # type: ignore[call-arg]
        core = prepare(settings)
        app = create_app(core, build_pipeline(core, settings))
        timings = []
        with TestClient(app) as client:
            for number in range(args.messages + 50):
                body = {"user": f"bench-{number % 40}", **MESSAGES[number % len(MESSAGES)]}
                started = time.perf_counter()
                response = client.post("/api/chat", json=body)
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, response.text
                if number >= 50:  # the first requests warm caches and connections
                    timings.append(elapsed)
    timings.sort()
    p50 = statistics.median(timings)
    p99 = timings[int(len(timings) * 0.99) - 1]
    verdict = "ok" if p99 <= P99_BAR_MS else "OVER"
    print(f"/api/chat in-process on SQLite, {len(timings)} messages: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
          f"max {timings[-1]:.2f} ms  [bar p99 {P99_BAR_MS:.0f} ms: {verdict}]")


if __name__ == "__main__":
    main()
