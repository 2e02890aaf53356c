"""Single sign-on in a real browser: the chat page's "university account" link, the real OpenID provider's
login page on loopback (oidc-provider, started by the test), back to the chat signed in; a provider user who is
no student gets the explanation page. Accessibility of that page checked with axe-core."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import MENU_JA, PHONE, ServedApp, serve_app, violations
from tests.conftest import free_port, stop_process
from tests.web.test_oidc import CLIENT_ID, CLIENT_SECRET, SCOPE, pytestmark, start_provider  # noqa: F401 - the skip


@pytest.fixture(scope="module")
def sso(engine, nlu_model, tmp_path_factory) -> Iterator[ServedApp]:
    """`madoguchi serve` with single sign-on on, and the provider it trusts."""
    port, provider_port = free_port(), free_port()
    provider = start_provider(provider_port, f"http://127.0.0.1:{port}/signin/oidc/callback")
    served = serve_app(engine, nlu_model, tmp_path_factory, port, OIDC_ISSUER=f"http://127.0.0.1:{provider_port}",
                       OIDC_CLIENT_ID=CLIENT_ID, OIDC_CLIENT_SECRET=CLIENT_SECRET, OIDC_SCOPE=SCOPE)
    try:
        yield next(served)
    finally:
        served.close()
        stop_process(provider)


@pytest.fixture
def students(sso) -> None:
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from core.profile import load_profile
    from core.students import load_demo_students

    with Session(sso.engine) as session, session.begin():
        load_demo_students(session, load_profile(), datetime.now(UTC))


def sign_on_as(page, login: str) -> None:
    """The chat page's link, then the provider's development login and consent pages, as a student fills them."""
    page.get_by_role("link", name="大学のアカウントでサインイン").click()
    page.get_by_placeholder("Enter any login").fill(login)
    page.get_by_placeholder("and password").fill("anything")
    page.locator("button[type=submit]").first.click()
    page.locator("button[type=submit]", has_text="Continue").click()


@pytest.fixture
def chat_page(browser, sso, students) -> Iterator:
    """The chat page in a fresh browser context (its own cookies), shown and ready."""
    context = browser.new_context(locale="ja-JP", viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(sso.url + "/")
    expect(page.get_by_role("button", name=MENU_JA)).to_be_visible()
    yield page
    context.close()


def test_a_student_signs_on_and_the_chat_knows_them(chat_page):
    page = chat_page
    sign_on_as(page, "24M1001")
    expect(page.locator("#signed-in")).to_have_text("24***01 でサインイン中")
    expect(page.locator("#log")).to_contain_text("24***01としてサインインしました")
    expect(page.get_by_role("link", name="大学のアカウントでサインイン")).to_have_count(0)


def test_a_provider_user_who_is_no_student_is_told_whom_to_ask(chat_page):
    page = chat_page
    sign_on_as(page, "99Z9999")
    expect(page.locator("h1")).to_have_text("大学のアカウントでサインインできませんでした")
    expect(page.locator("[role=alert]")).to_contain_text("対応する学生が証明書発行サービスに見つかりませんでした")
    expect(page.get_by_role("link", name="チャットに戻る")).to_be_visible()
    assert violations(page) == []
