"""The agents' inbox in a real browser (Debian's Chromium) against a live `madoguchi serve`: a student in the web
chat and an agent in /admin talk live until the bot takes over again; two agents take one ticket at once; the
inbox pages pass axe-core in both languages and are photographed on a phone and a desktop."""

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from core.enums import Language
from core.handoffs import OPEN, Reason, active_ticket, add_note, open_ticket, relay_from_agent, relay_from_student, take
from core.models import HandoffTicket
from core.profile import SHIPPED_PROFILE
from core.staff import Role, create_account
from intents import IntentModel
from tests.browser.conftest import (
    DESKTOP,
    MENU_JA,
    PHONE,
    ServedApp,
    Visit,
    ask,
    clean,
    conversation_user,
    new_visit,
    screenshot,
    serve_app,
    violations,
)
from tests.conftest import free_port

PASSWORD = "correct horse battery"
YAMADA = "taro.yamada@example.ac.jp"
SUZUKI = "jiro.suzuki@example.ac.jp"
NAMES = {YAMADA: "山田", SUZUKI: "鈴木"}


@pytest.fixture(scope="module")
def served(engine: Engine, nlu_model: IntentModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """`madoguchi serve` with the call center open around the clock (a copy of the shipped profile), so a person
    is promised whatever the real time; two agents' accounts in its database."""
    profile = yaml.safe_load(SHIPPED_PROFILE.read_text(encoding="utf-8"))
    profile["contacts"]["call_center"]["hours"] = {"days": "every_day", "open": "00:00", "close": "00:00"}
    path = tmp_path_factory.mktemp("desk-profile") / "profile.yaml"
    path.write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    running = serve_app(engine, nlu_model, tmp_path_factory, free_port(), UNIVERSITY_PROFILE=str(path))
    app = next(running)
    try:
        with Session(engine) as session, session.begin():
            for email, name in NAMES.items():
                create_account(session, email, PASSWORD, datetime.now(UTC), role=Role.AGENT, display_name=name)
        yield app
    finally:
        running.close()  # stops the server and empties the tables


@pytest.fixture
def desk(served: ServedApp, browser: Browser) -> Iterator[Callable[..., Visit]]:
    """Sign an agent in to the inbox in a browser context of their own, in a language and window size."""
    contexts: list[BrowserContext] = []

    def sign_in(email: str, locale: str = "ja-JP", viewport: dict[str, int] = DESKTOP) -> Visit:
        seen = new_visit(browser, served, locale, viewport)
        contexts.append(seen.context)
        page = seen.page
        page.goto(served.url + "/admin/login")
        page.locator("#email").fill(email)
        page.locator("#password").fill(PASSWORD)
        page.locator("#password").press("Enter")
        page.wait_for_url(served.url + "/admin/inbox")  # an agent's /admin is the inbox
        return seen

    yield sign_in
    for context in contexts:
        context.close()


@pytest.fixture(autouse=True)
def empty_desk(served: ServedApp) -> None:
    """No open ticket left by an earlier test: the counts each test sees are its own."""
    with Session(served.engine) as session, session.begin():
        session.execute(update(HandoffTicket).where(HandoffTicket.status.in_(OPEN)).values(
            status="resolved", closed_how="withdrawn", closed_at=datetime.now(UTC)))


def waiting_ticket(served: ServedApp, user: str, lang: Language = Language.JA) -> int:
    """A ticket waiting for an agent, opened directly in the served app's database; its id."""
    with Session(served.engine) as session, session.begin():
        ticket, _ = open_ticket(session, conversation_id=f"web:{user}", channel="web", user_id=user, student_id=None,
                                lang=lang, reason=Reason.ASKED, topic="payment_methods",
                                bot_said="お支払いには、クレジットカード、PayPay、コンビニ払いをご利用いただけます。",
                                now=datetime.now(UTC))
        return ticket.id


def ticket_of(served: ServedApp, page: Page) -> int:
    with Session(served.engine) as session:
        ticket = active_ticket(session, f"web:{conversation_user(page)}")
        assert ticket is not None, "the student's request opened no handoff ticket"
        return ticket.id


def test_a_student_and_an_agent_talk_live_and_then_the_bot_answers_again(served, desk, visit):
    agent = desk(YAMADA)  # the inbox open first: a person is promised only to a desk someone is at
    inbox = agent.page
    expect(inbox).to_have_title("(0) 受信箱 — madoguchi")
    student = visit("ja-JP", PHONE)
    chat = student.page
    expect(chat.get_by_role("button", name=MENU_JA)).to_be_visible()
    assert "担当者におつなぎします" in ask(chat, "メッセージ", "担当者と話したい", "送信")
    ticket_id = ticket_of(served, chat)

    row = inbox.locator(f'tr[data-ticket="{ticket_id}"]')
    expect(row).to_be_visible()  # live: no reload
    expect(inbox).to_have_title("(1) 受信箱 — madoguchi")
    expect(inbox.locator("#desk-badge")).to_have_text("1件待ち")
    expect(inbox.locator("#desk-announce")).to_have_text("新しい引き継ぎが届きました（対応待ち 1件）。")
    row.get_by_role("link").click()
    expect(inbox.locator("#packet")).to_contain_text("学生が担当者を希望")
    inbox.get_by_role("button", name="担当する").focus()  # by keyboard alone
    inbox.keyboard.press("Enter")
    expect(inbox.locator("#done")).to_have_text("この引き継ぎを担当しました。")
    expect(chat.locator("#log")).to_contain_text("担当者がお問い合わせを確認しました")

    inbox.get_by_label("定型文").focus()
    inbox.keyboard.press("Home")  # the greeting, which names the agent
    inbox.get_by_role("button", name="返信欄に入れる").focus()
    inbox.keyboard.press("Enter")
    reply = inbox.get_by_label("学生への返信")
    expect(reply).to_be_focused()
    expect(reply).to_have_value("担当の山田です。お問い合わせいただきありがとうございます。ご用件を確認いたします。")
    inbox.get_by_role("button", name="返信を送信").click()
    expect(inbox.locator("#done")).to_have_text("返信を送信しました。")
    said = chat.locator("#log .msg-agent").last
    expect(said).to_contain_text("ご用件を確認いたします。")
    expect(said).to_contain_text("山田")  # the display name, never the email
    assert YAMADA not in chat.content()

    reply.fill("書きかけの返信")
    chat.get_by_label("メッセージ").fill("成績証明書の申請について相談です")
    chat.get_by_role("button", name="送信").click()
    expect(inbox.locator("#timeline")).to_contain_text("成績証明書の申請について相談です")  # live
    expect(reply).to_have_value("書きかけの返信")  # the live part never touches the reply being written
    expect(inbox.locator("#desk-announce")).to_have_text("学生から新しいメッセージが届きました。")

    inbox.get_by_role("button", name="解決済みにする").click()
    expect(inbox.locator("#done")).to_contain_text("解決済みにしました。")
    expect(chat.locator("#log")).to_contain_text("今回の対応はいかがでしたか")
    expect(chat.get_by_role("button", name="満足した")).to_be_visible()
    assert "クレジットカード" in ask(chat, "メッセージ", "支払い方法を教えてください", "送信")  # the bot again
    clean(student)
    clean(agent)


def test_two_agents_taking_one_ticket_at_once_one_wins_and_the_other_is_told(served, desk):
    ticket_id = waiting_ticket(served, "race")
    pages = [desk(email).page for email in (YAMADA, SUZUKI)]
    for page in pages:
        page.goto(f"{served.url}/admin/inbox/{ticket_id}")
    buttons = [page.get_by_role("button", name="担当する") for page in pages]
    for button in buttons:
        expect(button).to_be_visible()
    for button in buttons:
        button.click(no_wait_after=True)  # both pressed before either answer comes back
    for page in pages:
        page.wait_for_url(re.compile(r"done=(taken|lost)$"))
    outcomes = {email: page.url.rsplit("=", 1)[1] for email, page in zip((YAMADA, SUZUKI), pages, strict=True)}
    assert sorted(outcomes.values()) == ["lost", "taken"]
    winner = next(email for email, outcome in outcomes.items() if outcome == "taken")
    loser = pages[1] if winner == YAMADA else pages[0]
    expect(loser.locator("#done")).to_have_text(f"{NAMES[winner]} さんが先に担当しました。")
    expect(loser.locator("#ticket-status")).to_have_text(f"{NAMES[winner]} さんが対応中")
    assert winner not in loser.content()


def ticket_with_a_conversation(served: ServedApp, lang: str) -> int:
    """A ticket an agent took and answered, with a student's message and an internal note (a full page), and a
    second one waiting; each in a conversation of its own for `lang`."""
    ticket_id = waiting_ticket(served, f"photo-{lang}")
    now = datetime.now(UTC)
    with Session(served.engine) as session, session.begin():
        ticket = session.get(HandoffTicket, ticket_id)
        assert ticket is not None
        key = f"photo:{ticket_id}"  # each test's messages are new ones, not repeats of the last test's
        take(session, ticket_id, "staff:photo", now, "山田")
        relay_from_agent(session, ticket, "担当の山田です。ご用件を確認いたします。", "山田", f"{key}:1", now,
                         signed=True)
        relay_from_student(session, ticket, "コンビニで払ったのに「お支払い待ち」のままです。", f"{key}:2", now)
        add_note(session, ticket, "入金の反映待ちの可能性。決済代行に確認する。", "山田", f"{key}:3", now)
    waiting_ticket(served, f"photo-{lang}-2", Language.EN)
    return ticket_id


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_inbox_pages_have_no_violation_on_a_phone_or_a_desktop(served, desk, lang):
    ticket_id = ticket_with_a_conversation(served, lang)
    agent = desk(SUZUKI, "ja-JP" if lang == "ja" else "en-US", PHONE)
    page = agent.page
    expect(page.locator("html")).to_have_attribute("lang", lang)
    for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(viewport)
        page.goto(f"{served.url}/admin/inbox")
        expect(page.locator("tr[data-ticket]")).to_have_count(2)
        assert violations(page) == []
        assert screenshot(page, f"inbox-queue-{size}-{lang}").stat().st_size > 0
        page.goto(f"{served.url}/admin/inbox/{ticket_id}")
        expect(page.locator("#timeline .tl-note")).to_have_count(1)
        assert violations(page) == []
        assert screenshot(page, f"inbox-ticket-{size}-{lang}").stat().st_size > 0
    clean(agent)
