"""Signing in to the web chat in a real browser: the number typed in the chat, the link taken from the app's
outbox (as a newcomer does with the demo students), the sign-in page, the chat going on where it was up to the
order, sign-out, a used link, and an anonymous visitor refused another student's order by its number."""


from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Order
from tests.browser.conftest import MENU_JA, PHONE, ask, clean, screenshot, signed_in_page


def test_sign_in_from_the_outbox_then_an_order_to_the_end_then_sign_out(visit, served, demo_students):
    seen = visit("ja-JP", PHONE)
    page = seen.page
    expect(page.get_by_role("button", name=MENU_JA)).to_be_visible()
    assert "サインイン" in ask(page, "メッセージ", "成績証明書を1通、学内印刷機で、PayPayで払いたいです", "送信")

    back = signed_in_page(page, served, "24M1001")
    expect(page.locator("#signed-in")).to_have_text("24***01 でサインイン中")
    expect(page.locator("#log")).to_contain_text("24***01としてサインインしました")
    assert "お申し込み内容の確認" in back  # the order went on where it was: everything was said before
    page.get_by_role("button", name="返金不可を確認し申請").click()
    expect(page.locator("#log")).to_contain_text("ご注文番号")
    with Session(served.engine) as session:
        [number] = session.scalars(select(Order.number)).all()
    screenshot(page, "chat-phone-ja-signed-in-order")

    page.get_by_role("button", name="サインアウト").click()
    expect(page.locator("#signed-in")).to_have_count(0)
    answer = ask(page, "メッセージ", f"{number}の状況を教えて", "送信")
    assert "ご本人にのみお知らせしています" in answer and "成績証明書" not in answer and "PayPay" not in answer
    clean(seen)


def test_a_used_link_signs_no_other_browser_in_and_a_stranger_sees_no_order(visit, served, demo_students):
    first = visit("ja-JP", PHONE).page
    expect(first.get_by_role("button", name=MENU_JA)).to_be_visible()
    ask(first, "メッセージ", "証明書を申請したい", "送信")
    signed_in_page(first, served, "21M1003")
    link = served.mailed_links()[-1]

    stranger = visit("ja-JP", PHONE).page  # another browser, with the link someone forwarded
    stranger.goto(link)
    expect(stranger.locator("h1")).to_have_text("このURLは使用済みです")
    stranger.goto(served.url + "/")
    expect(stranger.locator("#signed-in")).to_have_count(0)
    answer = ask(stranger, "メッセージ", "申請の状況を教えて", "送信")
    assert "サインイン" in answer and "21M1003" not in answer
