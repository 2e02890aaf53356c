"""The web chat page in a real browser (Debian's Chromium) against a live `madoguchi serve` on loopback."""

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from core.handoffs import active_ticket, relay_from_agent
from tests.browser.conftest import (
    DESKTOP,
    MENU_EN,
    MENU_JA,
    PHONE,
    ask,
    bot_texts,
    clean,
    conversation_user,
    screenshot,
    signed_in_page,
)


def test_first_open_shows_the_menu_and_a_tap_reaches_the_payment_methods(visit):
    seen = visit("ja-JP", PHONE)
    page = seen.page
    expect(page).to_have_title("証明書発行サービス チャットサポート")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    menu_button = page.get_by_role("button", name=MENU_JA)
    expect(menu_button).to_be_visible()
    menu_button.click()
    expect(page.locator("#log .msg-me").last).to_have_text(f"あなた{MENU_JA}")  # the tap shows as the student's line
    expect(page.locator("#log")).to_contain_text("PayPay")
    expect(page.locator("#log .card dt").first).to_have_text("在学証明書")  # the price list comes as a card
    expect(page.get_by_role("button", name=MENU_JA)).to_have_count(0)  # the old menu's buttons are gone
    clean(seen)


def test_typed_questions_in_japanese_then_english_after_the_switch(visit):
    seen = visit("ja-JP", DESKTOP)
    page = seen.page
    expect(page.get_by_role("button", name=MENU_JA)).to_be_visible()
    assert "PayPay" in ask(page, "メッセージ", "支払い方法を教えてください", "送信")

    page.get_by_role("link", name="English").click()  # the page's switch
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#log")).to_contain_text("支払い方法を教えてください")  # the conversation came along
    expect(bot_texts(page).last).to_contain_text("I'll answer in English")  # and the bot follows the switch
    answer = ask(page, "Message", "Who should I contact about my certificate?", "Send")
    assert "Here is who to contact" in answer
    assert not any("\u3040" <= char <= "\u30ff" for char in answer), answer  # English (no kana; names may be kanji)
    clean(seen)


def test_the_bots_own_language_button_switches_the_page_too(visit):
    seen = visit("ja-JP", PHONE)
    page = seen.page
    page.get_by_role("button", name="English").click()  # the last button of the bot's menu
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_label("Message")).to_be_visible()
    expect(page.locator("#log")).to_contain_text("I'll answer in English")
    expect(page.locator("#log .msg-bot")).to_have_count(2)  # the menu, then the switch: no second switch after it
    clean(seen)


def test_an_english_browser_gets_the_english_page_and_bot(visit):
    seen = visit("en-US", PHONE)
    page = seen.page
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name=MENU_EN)).to_be_visible()
    assert "PayPay" in ask(page, "Message", "How can I pay?", "Send")
    # By keyboard alone, with the typing indicator shown while the answer is on its way (the request is held
    # in the browser until the indicator has been seen, then goes to the server unchanged).
    held = []
    page.route("**/api/chat", lambda route: held.append(route))
    page.get_by_role("button", name="Main menu").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#typing")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    assert len(held) == 1
    held[0].continue_()
    page.unroute("**/api/chat")
    expect(page.locator("#typing")).to_be_hidden()
    contacts = page.get_by_role("button", name="Contacts")
    contacts.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#log")).to_contain_text("Here is who to contact")
    clean(seen)


def test_a_reload_keeps_the_conversation_and_start_over_clears_it(visit):
    seen = visit("ja-JP", PHONE)
    page = seen.page
    expect(page.get_by_role("button", name=MENU_JA)).to_be_visible()
    assert "093-691-7211" in ask(page, "メッセージ", "問い合わせ先を教えてください", "送信")
    user = conversation_user(page)

    page.reload()
    expect(page.locator("#log")).to_contain_text("問い合わせ先を教えてください")
    expect(bot_texts(page).last).to_contain_text("093-691-7211")
    assert conversation_user(page) == user

    page.get_by_role("button", name="最初からやり直す").click()
    expect(page.get_by_role("button", name=MENU_JA)).to_be_visible()
    expect(page.locator("#log .msg")).to_have_count(1)  # only the new menu
    assert conversation_user(page) != user
    assert seen.dialogs == ["confirm: これまでの会話を消して、最初からやり直しますか。"]
    clean(seen)


def test_an_agents_reply_appears_without_a_reload(visit, served):
    seen = visit("ja-JP", PHONE)
    page = seen.page
    expect(page.get_by_role("button", name=MENU_JA)).to_be_visible()
    ask(page, "メッセージ", "担当者と話したい", "送信")
    conversation = f"web:{conversation_user(page)}"
    with Session(served.engine) as session, session.begin():
        ticket = active_ticket(session, conversation)
        assert ticket is not None, "the student's request opened no handoff ticket"
        relay_from_agent(session, ticket, "担当の山田です。ご用件を伺います。", "yamada", "browser-test:1",
                         datetime.now(UTC))
    agent = page.locator("#log .msg-agent")
    expect(agent).to_have_count(1)
    expect(agent).to_contain_text("担当の山田です。ご用件を伺います。")
    expect(agent).to_contain_text("担当者")  # named as a person, not the bot
    page.reload()
    expect(page.locator("#log .msg-agent")).to_have_count(1)  # kept, and not shown twice after the reload
    clean(seen)


def test_a_mail_orders_summary_shows_the_address_on_its_own_lines_on_a_phone(visit, served, demo_students):
    seen = visit("ja-JP", PHONE)
    page = seen.page
    expect(page.get_by_role("button", name=MENU_JA)).to_be_visible()
    ask(page, "メッセージ", "成績証明書を郵送で1通", "送信")
    assert "郵便番号" in signed_in_page(page, served, "24M1001")
    for said in ("807-8555", "1-1 医生ケ丘ハイツ203号室", "山田 太郎", "090-1234-5678", "PayPayで"):
        ask(page, "メッセージ", said, "送信")
    address = page.locator("#log .card dt", has_text="郵送先").last.locator("xpath=following-sibling::dd[1]")
    expect(address).to_contain_text("〒807-8555 福岡県北九州市八幡西区医生ケ丘 1-1 医生ケ丘ハイツ203号室")
    lines = [line for line in address.inner_text().splitlines() if line.strip()]
    assert lines[0] == "送付先カテゴリ：自宅など", lines  # one part on each line, as on an envelope
    assert lines[2:] == ["宛名：山田 太郎 様", "電話番号：09012345678"], lines
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "chat-phone-ja-mail-summary")
    clean(seen)


def test_the_contacts_phone_numbers_and_mail_address_are_links_a_phone_can_use(visit):
    seen = visit("ja-JP", PHONE)
    page = seen.page
    expect(page.get_by_role("button", name=MENU_JA)).to_be_visible()
    answer = ask(page, "メッセージ", "問い合わせ先を教えてください", "送信")
    assert "093-691-7211" in answer
    expect(page.locator('#log a[href="tel:0936917211"]')).to_have_text("093-691-7211")
    expect(page.locator('#log a[href="tel:0822074262"]').first).to_have_text("082-207-4262")
    expect(page.locator('#log a[href="mailto:gakusei@mbox.pub.uoeh-u.ac.jp"]')).to_have_count(1)
    ask(page, "メッセージ", "電話 093-691-7211 <b>x</b> a@b.example", "送信")  # the student's own words stay text
    expect(page.locator("#log .msg-me a")).to_have_count(0)
    clean(seen)


def test_markup_typed_by_the_student_is_shown_as_text(visit):
    seen = visit("en-US", DESKTOP)
    page = seen.page
    expect(page.get_by_role("button", name=MENU_EN)).to_be_visible()
    typed = "<img src=x onerror=alert(1)>"
    ask(page, "Message", typed, "Send")
    expect(page.locator("#log .msg-me .text").last).to_have_text(typed)
    assert page.locator("#log img").count() == 0
    assert seen.dialogs == []
    assert [r for r in seen.foreign_requests] == []
    assert not any(r.endswith("/x") for r in seen.errors)


@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize(("size", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_screenshots_of_the_page(visit, lang, size, viewport):
    seen = visit("ja-JP" if lang == "ja" else "en-US", viewport)
    page = seen.page
    page.get_by_role("button", name=MENU_JA if lang == "ja" else MENU_EN).click()  # an answer with a card
    expect(page.locator("#log .card")).to_have_count(1)
    expect(page.locator("#typing")).to_be_hidden()
    # Nothing wider than the window: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    overflowing = page.evaluate("""() => {
        const edge = document.getElementById('log').getBoundingClientRect().right + 1;
        return [...document.querySelectorAll('#log *')].filter(e => e.getBoundingClientRect().right > edge)
            .map(e => e.tagName + ': ' + e.textContent.slice(0, 40));
    }""")
    assert overflowing == []
    path = screenshot(page, f"chat-{size}-{lang}")
    assert path.stat().st_size > 10_000
    clean(seen)
