"""Signing a browser in to the web chat over real HTTP: the mailed link's page (a button, so that a mail scanner
opening it signs no one in), the session cookie, the chat page's "signed in as", sign-out, used and expired links."""

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from bot.web.app import create_app
from bot.web.signin import COOKIE
from core.enums import Language
from core.links import request_web_sign_in
from core.models import WebSession
from tests.web.test_link_pages import add_student, link_from_mail


def sessions(core) -> list[WebSession]:
    with core.transaction() as session:
        found = list(session.scalars(select(WebSession)))
        session.expunge_all()
        return found


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_link_page_asks_before_signing_in_and_then_signs_this_browser_in(live_server, inbox, lang):
    core = live_server.core
    add_student(core, lang=Language(lang))
    request_web_sign_in(core, "24M1001", lang)
    path, token = link_from_mail(live_server, inbox)
    page = live_server.client.get(path)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "24***01" in page.text and 'method="post"' in page.text and "24M1001" not in page.text
    assert ("産業医科大学" if lang == "ja" else "University of Occupational") in page.text
    assert sessions(core) == [] and COOKIE not in page.headers.get("set-cookie", ""), "opening signs no one in"

    signed = live_server.client.post(path)
    assert signed.status_code == 303 and signed.headers["location"] == f"/?signed_in=1&lang={lang}"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/" in cookie and "Max-Age=43200" in cookie and "Secure" not in cookie  # http on loopback
    [row] = sessions(core)
    assert row.ended_at is None and token not in cookie

    chat_page = live_server.client.get("/", params={"lang": lang})
    assert ("24***01 でサインイン中" if lang == "ja" else "Signed in as 24***01") in chat_page.text
    assert 'id="sign-out"' in chat_page.text


def test_a_used_or_expired_link_is_explained_and_signs_no_one_in(live_server, inbox, clock):
    core = live_server.core
    add_student(core)
    request_web_sign_in(core, "24M1001", "ja")
    used_path, _ = link_from_mail(live_server, inbox)
    assert live_server.client.post(used_path).status_code == 303
    live_server.client.cookies.clear()
    again = live_server.client.post(used_path)
    assert again.status_code == 410 and "使用済み" in again.text and "学籍番号をもう一度入力" in again.text
    clock.advance(minutes=2)
    request_web_sign_in(core, "24M1001", "ja")
    expired_path, _ = link_from_mail(live_server, inbox)
    clock.advance(minutes=31)
    expired = live_server.client.post(expired_path)
    assert expired.status_code == 410 and "有効期限" in expired.text
    assert len(sessions(core)) == 1 and COOKIE not in expired.headers.get("set-cookie", "")


def test_sign_out_ends_the_session_and_forgets_the_cookie(live_server, inbox):
    core = live_server.core
    add_student(core)
    request_web_sign_in(core, "24M1001", "ja")
    path, _ = link_from_mail(live_server, inbox)
    live_server.client.post(path)
    out = live_server.client.post("/signout")
    assert out.status_code == 200 and out.json() == {"signed_out": True}
    assert f'{COOKIE}=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    [row] = sessions(core)
    assert row.ended_at is not None
    assert "サインイン中" not in live_server.client.get("/").text
    assert live_server.client.post("/signout").json() == {"signed_out": False}


def test_behind_https_the_session_cookie_is_secure(make_core, inbox):
    core = make_core(base_url="https://madoguchi.example.ac.jp")
    add_student(core)
    app = create_app(core)
    request_web_sign_in(core, "24M1001", "ja")
    app.state.inbox.drain()  # the app's worker mails the link
    token = inbox.body(inbox.messages[-1]).split("/links/")[1].split("?")[0]
    with TestClient(app, base_url="https://madoguchi.example.ac.jp") as client:
        signed = client.post(f"/links/{token}", follow_redirects=False)
    assert signed.status_code == 303 and "Secure" in signed.headers["set-cookie"]
    with core.transaction() as session:
        assert session.scalar(select(func.count()).select_from(WebSession)) == 1


def test_another_sites_form_cannot_sign_a_visitor_in_with_its_own_link(live_server, inbox):
    core = live_server.core
    add_student(core)
    request_web_sign_in(core, "24M1001", "ja")
    path, _ = link_from_mail(live_server, inbox)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site", "Origin": "null"}):
        forged = live_server.client.post(path, headers=headers)
        assert forged.status_code == 404 and COOKIE not in forged.headers.get("set-cookie", "")
    assert sessions(core) == []
    ours = live_server.client.post(path, headers={"Origin": live_server.url})  # the page's own button
    assert ours.status_code == 303 and len(sessions(core)) == 1
