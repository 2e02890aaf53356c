"""The link pages over real HTTP: links taken from mail received over SMTP, forms, statuses, headers, logs."""

import logging
import re

import httpx
import pytest
from markupsafe import escape
from sqlalchemy import select

from bot.ops.logfilter import LinkTokenFilter, install_log_filters, uninstall_log_filters
from bot.page_language import accept_language
from core.enums import Language
from core.i18n import t
from core.links import request_email_registration, request_second_password_reset
from core.masking import redact_url_secrets
from core.models import Student
from core.passwords import verify_password
from core.students import create_student

GOOD = "Madoguchi2026"
LINK_URL = re.compile(r"(https?://\S+?)(/links/([A-Za-z0-9_-]+)\?lang=(?:ja|en))")


def page_text(key: str, lang: str) -> str:
    """A catalog text as it appears in a page (escaped like the templates escape it)."""
    return str(escape(t(key, lang)))


def add_student(core, number="24M1001", email="taro.yamada@example.ac.jp", lang=Language.JA) -> Student:
    with core.transaction() as session:
        return create_student(session, student_number=number, department="medicine", year=3, now=core.now(),
                              email=email, language=lang)


def link_from_mail(live_server, inbox) -> tuple[str, str]:
    """(path with query, token) of the link in the last mail, checked to point at the configured base URL."""
    live_server.app.state.inbox.drain()  # a reset or sign-in link is mailed by the worker, not the request
    match = LINK_URL.search(inbox.body(inbox.messages[-1]))
    assert match, "no link in the mail"
    assert match.group(1) == live_server.url
    return match.group(2), match.group(3)


def requested_reset(live_server, inbox, lang="ja") -> tuple[str, str]:
    add_student(live_server.core)
    request_second_password_reset(live_server.core, "24M1001", lang)
    return link_from_mail(live_server, inbox)


def stored_hash(core) -> str | None:
    with core.transaction() as session:
        return session.scalars(select(Student.second_password_hash)).one()


def assert_link_headers(response: httpx.Response) -> None:
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def test_reset_link_from_the_mail_shows_the_form(live_server, inbox):
    path, _ = requested_reset(live_server, inbox)
    response = live_server.client.get(path)
    assert response.status_code == 200
    assert_link_headers(response)
    html = response.text
    assert '<html lang="ja">' in html
    assert html.count('autocomplete="new-password"') == 2
    assert page_text("links.reset.password_label", "ja") in html
    assert page_text("links.reset.rules.upper", "ja") in html
    assert "11月24日（火）10:30" in html  # when the link expires
    assert 'href="?lang=en"' in html
    # Whose page this is, so that it does not look like phishing: the university and its service.
    assert '<p class="brand-university">産業医科大学</p>' in html and "証明書発行サービス</p>" in html
    assert "<title>第2パスワードの再設定 · 証明書発行サービス · 産業医科大学</title>" in html
    english = live_server.client.get(path, params={"lang": "en"}).text
    assert "University of Occupational and Environmental Health, Japan</p>" in english
    assert "Certificate Issuance Service</p>" in english and "産業医科大学" not in english


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_weak_password_names_each_broken_rule_and_keeps_the_link(live_server, inbox, lang):
    path, _ = requested_reset(live_server, inbox, lang)
    weak = "zzqqyyxx"
    response = live_server.client.post(path, data={"password": weak, "password_confirmation": weak})
    assert response.status_code == 200
    assert_link_headers(response)
    for code in ("no_upper", "no_digit"):
        assert page_text(f"passwords.rules.{code}", lang) in response.text
    assert page_text("passwords.rules.too_short", lang) not in response.text
    assert weak not in response.text, "a submitted password is never echoed"
    assert 'value="' not in response.text.split("<form", 1)[1].split("</form>", 1)[0]
    assert stored_hash(live_server.core) is None

    again = live_server.client.get(path)
    assert again.status_code == 200 and "<form" in again.text


def test_mismatched_entries_are_named(live_server, inbox):
    path, _ = requested_reset(live_server, inbox, "en")
    response = live_server.client.post(path, data={"password": GOOD, "password_confirmation": GOOD + "9"})
    assert response.status_code == 200
    assert page_text("links.reset.mismatch", "en") in response.text
    assert GOOD not in response.text
    assert stored_hash(live_server.core) is None


def test_a_good_password_is_set_and_the_link_is_then_used(live_server, inbox):
    path, _ = requested_reset(live_server, inbox)
    response = live_server.client.post(path, data={"password": GOOD, "password_confirmation": GOOD})
    assert response.status_code == 200
    assert_link_headers(response)
    assert page_text("links.reset.done", "ja") in response.text
    assert verify_password(stored_hash(live_server.core), GOOD)

    reopened = live_server.client.get(path)
    assert reopened.status_code == 410
    assert_link_headers(reopened)
    assert page_text("links.invalid.used.body", "ja") in reopened.text
    assert "第2パスワードを忘れた場合" in reopened.text
    resubmitted = live_server.client.post(path, data={"password": "Other2026x", "password_confirmation": "Other2026x"})
    assert resubmitted.status_code == 410
    assert verify_password(stored_hash(live_server.core), GOOD)


def test_an_expired_link_answers_410(live_server, inbox, clock):
    path, _ = requested_reset(live_server, inbox, "en")
    clock.advance(minutes=30)
    response = live_server.client.get(path)
    assert response.status_code == 410
    assert_link_headers(response)
    assert page_text("links.invalid.expired.body", "en") in response.text
    assert "「第2パスワードを忘れた場合」" in response.text
    posted = live_server.client.post(path, data={"password": GOOD, "password_confirmation": GOOD})
    assert posted.status_code == 410
    assert stored_hash(live_server.core) is None


def test_a_superseded_link_answers_410(live_server, inbox, clock):
    first, _ = requested_reset(live_server, inbox)
    clock.advance(minutes=1)
    request_second_password_reset(live_server.core, "24M1001", "ja")
    live_server.app.state.inbox.drain()  # the worker issues the new link
    response = live_server.client.get(first)
    assert response.status_code == 410
    assert page_text("links.invalid.superseded.body", "ja") in response.text


def test_an_unknown_link_answers_404_with_how_to_get_a_new_one(live_server):
    response = live_server.client.get("/links/" + "A" * 43)
    assert response.status_code == 404
    assert_link_headers(response)
    assert page_text("links.invalid.unknown.body", "ja") in response.text
    assert "第2パスワードを忘れた場合" in response.text
    assert live_server.client.get("/links/short").status_code == 404


def test_an_email_registration_link_confirms_on_opening(live_server, inbox, clock):
    core = live_server.core
    student = add_student(core, email=None, lang=Language.EN)
    request_email_registration(core, student, "taro@example.ac.jp", "en")
    path, _ = link_from_mail(live_server, inbox)

    response = live_server.client.get(path)
    assert response.status_code == 200
    assert_link_headers(response)
    assert page_text("links.confirm.done", "en") in response.text
    assert "taro@example.ac.jp" in response.text
    with core.transaction() as session:
        stored = session.scalars(select(Student)).one()
    assert stored.email == "taro@example.ac.jp" and stored.email_verified_at == clock.now()

    second = live_server.client.get(path)  # the student, after a mail scanner
    assert second.status_code == 200
    assert page_text("links.confirm.already", "en") in second.text


def test_an_expired_email_link_answers_410(live_server, inbox, clock):
    student = add_student(live_server.core, email=None)
    request_email_registration(live_server.core, student, "taro@example.ac.jp", "ja")
    path, _ = link_from_mail(live_server, inbox)
    clock.advance(minutes=31)
    response = live_server.client.get(path)
    assert response.status_code == 410
    assert page_text("links.invalid.how_to_email", "ja") in response.text


def test_language_from_query_then_student_then_accept_language(live_server, inbox):
    path, token = requested_reset(live_server, inbox, "en")  # the student prefers Japanese
    assert '<html lang="en">' in live_server.client.get(path).text
    bare = f"/links/{token}"
    assert '<html lang="ja">' in live_server.client.get(bare, headers={"Accept-Language": "en"}).text
    assert '<html lang="en">' in live_server.client.get(bare + "?lang=en").text
    unknown = "/links/" + "B" * 43
    assert '<html lang="en">' in live_server.client.get(unknown, headers={"Accept-Language": "en-GB,ja;q=0.5"}).text
    assert '<html lang="ja">' in live_server.client.get(unknown, headers={"Accept-Language": "fr"}).text
    assert '<html lang="ja">' in live_server.client.get(unknown + "?lang=xx").text


def test_accept_language_parsing():
    assert accept_language("ja,en-US;q=0.9") is Language.JA
    assert accept_language("fr-CH, fr;q=0.9, en;q=0.8, ja;q=0.7") is Language.EN
    assert accept_language("en;q=0, ja;q=0.1") is Language.JA
    assert accept_language("de, *;q=0.5") is None
    assert accept_language("en;q=oops") is None


def test_pages_use_no_host_header(live_server, inbox):
    path, _ = requested_reset(live_server, inbox)
    response = live_server.client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 200
    assert "evil.example" not in response.text


# --- logs ---------------------------------------------------------------------------------------------


@pytest.fixture
def log_filters():
    install_log_filters()
    yield
    uninstall_log_filters()


def test_the_token_never_reaches_a_log_line(live_server, inbox, caplog, monkeypatch, log_filters):
    # uvicorn's access log does not propagate and the fixture runs it at WARNING; open it up to caplog.
    monkeypatch.setattr(logging.getLogger("uvicorn.access"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="uvicorn.access")

    path, token = requested_reset(live_server, inbox)
    live_server.client.get(path)
    live_server.client.post(path, data={"password": "weak", "password_confirmation": "weak"})
    live_server.client.post(path, data={"password": GOOD, "password_confirmation": GOOD})
    live_server.client.get(path)
    student = add_student(live_server.core, "24M1002", None)
    request_email_registration(live_server.core, student, "hanako@example.ac.jp", "ja")
    email_path, email_token = link_from_mail(live_server, inbox)
    live_server.client.get(email_path)

    lines = [caplog.text, *(record.getMessage() for record in caplog.records)]
    assert any(record.name == "uvicorn.access" for record in caplog.records), "access lines were captured"
    assert "/links/[token]" in caplog.text
    for text in lines:
        assert token not in text and email_token not in text
        assert GOOD not in text, "a password was logged"


def test_the_filter_redacts_uvicorn_access_args_and_keeps_their_types():
    filt = LinkTokenFilter()
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/links/SeCrEtToKeN_abc-123?lang=ja", "1.1", 410), None)
    assert filt.filter(record)
    assert record.args == ("127.0.0.1:5000", "GET", "/links/[token]?lang=ja", "1.1", 410)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /links/[token]?lang=ja HTTP/1.1" 410'


def test_the_filter_redacts_messages_mappings_and_url_objects():
    filt = LinkTokenFilter()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "opened https://m.example/links/abcdefgh12345", None,
                               None)
    filt.filter(record)
    assert record.getMessage() == "opened https://m.example/links/[token]"

    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "HTTP Request: %s %s", None, None)
    record.args = ("GET", httpx.URL("http://127.0.0.1:8000/links/abcdefgh12345?lang=en"))
    filt.filter(record)
    assert record.getMessage() == "HTTP Request: GET http://127.0.0.1:8000/links/[token]?lang=en"

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%(path)s", None, None)
    record.args = {"path": "/links/abcdefgh12345/x", "n": 3}
    filt.filter(record)
    assert record.getMessage() == "/links/[token]/x"
    assert record.args["n"] == 3


def test_redact_leaves_other_paths_alone():
    assert redact_url_secrets("GET /healthz") == "GET /healthz"
    assert redact_url_secrets("/links/") == "/links/"
    assert redact_url_secrets('"GET /links/abc HTTP/1.1"') == '"GET /links/[token] HTTP/1.1"'


def test_install_is_idempotent(log_filters):
    install_log_filters()
    assert logging.getLogger("uvicorn.access").filters.count(install_log_filters()) == 1


def test_redact_hides_line_link_tokens_and_nonces():
    line = ("GET /line/link?linkToken=AbCdEf123456&lang=ja HTTP/1.1 → 303 "
            "/dialog/bot/accountLink?linkToken=x9&nonce=N0nce42")
    redacted = redact_url_secrets(line)
    assert "AbCdEf123456" not in redacted and "N0nce42" not in redacted and "x9&" not in redacted
    assert "linkToken=[token]&lang=ja" in redacted and "nonce=[token]" in redacted
