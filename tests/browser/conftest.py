"""Browser-test fixtures: a live `madoguchi serve` subprocess on loopback and Debian's Chromium driven by Playwright."""

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from sqlalchemy import Engine

from intents import IntentModel
from tests.conftest import _empty_tables, free_port, stop_process

MADOGUCHI = str(Path(sys.executable).parent / "madoguchi")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
START_SECONDS = 90  # the first start migrates nothing and trains nothing (the model is copied in); generous anyway
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@dataclass
class ServedApp:
    """`madoguchi serve` running on loopback, on the session's test database."""

    url: str
    engine: Engine
    log: list[str] = field(default_factory=list)


def _pump(stream, lines: list[str], started: "queue.Queue[bool]") -> None:
    """Read the server's output to the end (so its pipe never fills); say once when uvicorn is up or gone."""
    for line in stream:
        lines.append(line)
        if "Uvicorn running" in line:
            started.put(True)
    started.put(False)


@pytest.fixture(scope="module")
def served(engine: Engine, nlu_model: IntentModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """`madoguchi serve` as a user starts it, with its own DATA_DIR and the test database (SQLite file or the
    session's PostgreSQL schema); the session's trained intent model is copied in so the server does not train."""
    data_dir = tmp_path_factory.mktemp("browser-var")
    nlu_model.save(data_dir / "nlu-model.joblib")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "BASE_URL", "SMTP_"))}
    env.update(DATA_DIR=str(data_dir), DATABASE_URL=engine.url.render_as_string(hide_password=False), BASE_URL=url,
               DEMO_DATA="false")
    process = subprocess.Popen([MADOGUCHI, "serve", "--port", str(port), "--no-scheduler"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    app = ServedApp(url=url, engine=engine)
    started: queue.Queue[bool] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, app.log, started), daemon=True).start()
    try:
        try:
            up = started.get(timeout=START_SECONDS)
        except queue.Empty:
            up = False
        assert up, "madoguchi serve did not start:\n" + "".join(app.log[-40:])
        assert httpx.get(f"{url}/healthz", timeout=10).json()["status"] == "ok"
        yield app
    finally:
        stop_process(process)
        _empty_tables(engine)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (Playwright never downloads a browser here)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Visit:
    """One browser context on the served page, with what it asked of other hosts and what it logged as errors."""

    context: BrowserContext
    page: Page
    foreign_requests: list[str]
    errors: list[str]
    dialogs: list[str]


@pytest.fixture
def visit(served: ServedApp, browser: Browser) -> Iterator[Callable[..., Visit]]:
    """Open the chat page in a new context (its own storage and cookies) in a language and window size."""
    contexts: list[BrowserContext] = []

    def open_page(locale: str = "ja-JP", viewport: dict[str, int] = PHONE) -> Visit:
        # The locale sets both navigator.language and the Accept-Language header, as a browser's language does.
        context = browser.new_context(locale=locale, viewport=viewport)  # type: ignore[arg-type]
        contexts.append(context)
        context.set_default_timeout(10_000)
        page = context.new_page()
        seen = Visit(context, page, [], [], [])
        page.on("request", lambda request: None if request.url.startswith((served.url, "data:"))
                else seen.foreign_requests.append(request.url))
        page.on("console", lambda message: seen.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: seen.errors.append(str(error)))

        def on_dialog(dialog) -> None:
            seen.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.accept()

        page.on("dialog", on_dialog)
        page.goto(served.url + "/")
        return seen

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot under test-artifacts/ at the repository root."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
