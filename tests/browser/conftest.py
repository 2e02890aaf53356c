"""Browser-test fixtures: a live `madoguchi serve` subprocess on loopback and Debian's Chromium driven by Playwright."""

import email
import email.policy
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
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
    data_dir: Path
    log: list[str] = field(default_factory=list)

    def mailed_links(self) -> list[str]:
        """The one-time links in the mails the app wrote to its outbox (no SMTP set), oldest first."""
        outbox = self.data_dir / "outbox"
        mails = sorted(outbox.glob("*.eml"), key=lambda path: path.stat().st_mtime) if outbox.exists() else []
        found = []
        for path in mails:
            body = email.message_from_bytes(path.read_bytes(), policy=email.policy.default).get_body(("plain",))
            assert body is not None, f"{path} has no plain-text body"
            found += re.findall(r"https?://\S+/links/[A-Za-z0-9_-]+\?lang=(?:ja|en)", body.get_content())
        return found


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
    yield from serve_app(engine, nlu_model, tmp_path_factory, free_port())


def serve_app(engine: Engine, nlu_model: IntentModel, tmp_path_factory: pytest.TempPathFactory, port: int,
              **settings: str) -> Generator[ServedApp, None, None]:
    """`madoguchi serve` on `port` with extra settings (environment variables), until the generator is closed."""
    data_dir = tmp_path_factory.mktemp("browser-var")
    nlu_model.save(data_dir / "nlu-model.joblib")
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "BASE_URL", "SMTP_", "OIDC_"))}
    env.update(DATA_DIR=str(data_dir), DATABASE_URL=engine.url.render_as_string(hide_password=False), BASE_URL=url,
               DEMO_DATA="false", **settings)
    process = subprocess.Popen([MADOGUCHI, "serve", "--port", str(port), "--no-scheduler"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    app = ServedApp(url=url, engine=engine, data_dir=data_dir)
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
    """Debian's Chromium, headless (Playwright never downloads a browser here); its absence fails the browser
    tests, which are never skipped. One per module: Playwright's sync API holds an event loop in this thread,
    which a later module's asyncio.run would find running."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian's Chromium is missing ({CHROMIUM}): `make test` installs it "
                    "(apt-get install chromium fonts-ipafont-gothic)", pytrace=False)
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
def demo_students(served: ServedApp) -> None:
    """The demo students in the served app's database (`DEMO_DATA` is off there: each test adds its own)."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from core.profile import load_profile
    from core.students import load_demo_students

    with Session(served.engine) as session, session.begin():
        load_demo_students(session, load_profile(), datetime.now(UTC))


def new_visit(browser: Browser, served: ServedApp, locale: str, viewport: dict[str, int]) -> Visit:
    """A new browser context (its own storage and cookies) in a language and window size, noting what its page
    asks of other hosts and what it logs as errors; nothing opened yet."""
    # The locale sets both navigator.language and the Accept-Language header, as a browser's language does.
    context = browser.new_context(locale=locale, viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    page = context.new_page()
    seen = Visit(context, page, [], [], [])
    page.on("request", lambda request: None if request.url.startswith((served.url, "data:"))
            else seen.foreign_requests.append(request.url))
    page.on("console", lambda message: seen.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    return seen


@pytest.fixture
def visit(served: ServedApp, browser: Browser) -> Iterator[Callable[..., Visit]]:
    """Open the chat page in a new context (its own storage and cookies) in a language and window size."""
    contexts: list[BrowserContext] = []

    def open_page(locale: str = "ja-JP", viewport: dict[str, int] = PHONE) -> Visit:
        seen = new_visit(browser, served, locale, viewport)
        contexts.append(seen.context)
        page = seen.page

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


# --- what the browser tests do on the pages ---------------------------------------------------------------

MENU_JA, MENU_EN = "支払い方法", "Payment methods"


def conversation_user(page: Page) -> str:
    """The conversation id the page keeps in localStorage."""
    return page.evaluate("JSON.parse(localStorage.getItem('madoguchi.chat')).user")


def bot_texts(page: Page):
    return page.locator("#log .msg-bot")


def ask(page: Page, label: str, text: str, send: str) -> str:
    """Type a message, send it, and return the text of the bot's answer (all its messages) once it is shown."""
    before = bot_texts(page).count()
    page.get_by_label(label).fill(text)
    page.get_by_role("button", name=send).click()
    page.wait_for_function("n => document.querySelectorAll('#log .msg-bot').length > n"
                           " && document.getElementById('typing').hidden", arg=before)
    return "\n".join(bot_texts(page).nth(i).inner_text() for i in range(before, bot_texts(page).count()))


def clean(visit) -> None:
    """Nothing fetched from another host, no script error and no CSP violation in the console."""
    assert visit.foreign_requests == []
    assert visit.errors == []


AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def violations(page: Page) -> list[str]:
    """What axe-core finds on the page as it is now: each violated rule with the elements it names."""
    assert AXE.exists(), "axe-core is missing: `make test` installs it (npm ci --prefix tests/browser)"
    page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluated by the browser's debugger: the page's CSP allows it
    found = page.evaluate("""rules => axe.run(document, {runOnly: {type: 'tag', values: rules},
                                                         resultTypes: ['violations']})
        .then(result => result.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))""",
                          RULES)
    return list(found)


def mailed_link(served: ServedApp, before: int) -> str:
    """The sign-in link mailed after the chat answered (the mail goes out in the background)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        links = served.mailed_links()
        if len(links) > before:
            return links[-1]
        time.sleep(0.1)
    raise AssertionError("no sign-in mail in the outbox:\n" + "".join(served.log[-20:]))


def signed_in_page(page: Page, served: ServedApp, number: str) -> str:
    """Type the number in the chat, open the mailed link in this browser and press Sign in; the chat's answer
    once it is back."""
    before = len(served.mailed_links())
    answer = ask(page, "メッセージ", number, "送信")
    assert "サインイン用のワンタイムURLをお送りしました" in answer
    link = mailed_link(served, before)
    bot_lines = page.locator("#log .msg-bot").count()
    page.goto(link)
    expect(page.get_by_role("button", name="サインイン")).to_be_visible()
    assert violations(page) == []
    page.get_by_role("button", name="サインイン").click()
    expect(page.locator("#signed-in")).to_be_visible()  # back on the chat page, signed in
    assert "signed_in" not in page.url  # the page told the chat once and dropped the mark from its address
    page.wait_for_function("n => document.querySelectorAll('#log .msg-bot').length > n"
                           " && document.getElementById('typing').hidden", arg=bot_lines)
    return page.locator("#log .msg-bot").last.inner_text()
