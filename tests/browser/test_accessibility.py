"""Accessibility measured in the browser: axe-core (npm, tests/browser/package.json) runs inside Debian's Chromium on
the chat page, the sign-in page, the reset page and the payment page, in both languages, and must find no
violation of WCAG 2.1 A and AA or of its best practices."""

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from core.enums import DeliveryMethod, Language, LinkPurpose, PaymentMethod
from core.links import send_link_mail
from core.orders import OrderLine, create_order
from core.students import create_student
from tests.browser.conftest import DESKTOP, PHONE, violations

LINK = re.compile(r"(https?://\S+/links/[A-Za-z0-9_-]+)")


def mail_link(core, purpose: LinkPurpose, number: str, lang: str) -> None:
    """Mail a link as the mail worker does, here and now: queued, the served app's own worker could take the job
    and mail it to that server's outbox."""
    send_link_mail(core, {"purpose": purpose.value, "number": number, "lang": lang}, record=lambda _session: None)


@pytest.mark.parametrize(("locale", "viewport"), [("ja-JP", PHONE), ("en-US", DESKTOP)])
def test_the_chat_page_with_an_answer_a_card_and_buttons_has_no_violation(visit, locale, viewport):
    seen = visit(locale, viewport)
    page = seen.page
    menu = page.locator(".quick-reply").first
    expect(menu).to_be_visible()
    assert violations(page) == []
    page.locator(".quick-reply", has_text=re.compile("支払い方法|Payment methods")).first.click()  # a card comes
    expect(page.locator("#log .card")).to_have_count(1)
    expect(page.locator("#typing")).to_be_hidden()
    assert violations(page) == []


@pytest.fixture
def side_core(served, make_core, clock):
    """A core on the served app's database and clock's day, to prepare what a page shows (a link, an order)."""
    clock.set(datetime.now(UTC))
    return make_core(base_url=served.url)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_reset_page_has_no_violation(visit, side_core, inbox, lang):
    with side_core.transaction() as session:
        create_student(session, student_number="24M7001", department="medicine", year=3, now=side_core.now(),
                       email="a11y@students.example.ac.jp")
    mail_link(side_core, LinkPurpose.SECOND_PASSWORD_RESET, "24M7001", lang)
    [url] = LINK.findall(inbox.only().get_body(("plain",)).get_content())
    page = visit("ja-JP" if lang == "ja" else "en-US", PHONE).page
    page.goto(url)
    expect(page.locator("input[type=password]").first).to_be_visible()
    assert violations(page) == []


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_sign_in_page_has_no_violation(visit, side_core, inbox, lang):
    with side_core.transaction() as session:
        create_student(session, student_number="24M7003", department="medicine", year=3, now=side_core.now(),
                       email="a11y-sign-in@students.example.ac.jp", language=Language(lang))
    mail_link(side_core, LinkPurpose.WEB_SIGN_IN, "24M7003", lang)
    [url] = LINK.findall(inbox.only().get_body(("plain",)).get_content())
    page = visit("ja-JP" if lang == "ja" else "en-US", PHONE).page
    page.goto(url)
    expect(page.get_by_role("button", name="サインイン" if lang == "ja" else "Sign in")).to_be_visible()
    assert violations(page) == []


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_payment_page_and_its_result_have_no_violation(visit, side_core, lang):
    with side_core.transaction() as session:
        student = create_student(session, student_number="24M7002", department="medicine", year=3,
                                 now=side_core.now(), language=Language(lang))
        url = create_order(session, student=student, lines=[OrderLine("transcript", 2)],
                           delivery=DeliveryMethod.CAMPUS_PRINTER, payment=PaymentMethod.CREDIT_CARD,
                           profile=side_core.profile, gateway=side_core.payments, now=side_core.now()).payment_url
    page = visit("ja-JP" if lang == "ja" else "en-US", DESKTOP).page
    page.goto(url)
    assert violations(page) == []
    page.locator("form[method=post] button").click()
    expect(page.locator("#result")).to_be_visible()
    assert violations(page) == []
