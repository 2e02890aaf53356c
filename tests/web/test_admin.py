"""The staff pages over real HTTP: sign-in with CSRF and throttling, sessions, and a dashboard whose tables and
SVG charts show what is in the database."""

import csv
import io
import re
from xml.etree import ElementTree

import httpx
import pytest
from sqlalchemy import select

from bot.delivery.inbox import MAX_ATTEMPTS, Call, ChannelProcessor, Inbox, Job
from core import staff
from core.models import TranscriptEntry
from core.students import load_demo_students
from tests.core.test_analytics import add_conversation, jst, say, seed

PASSWORD = "correct horse battery"
EMAIL = "hanako.sato@example.ac.jp"


@pytest.fixture
def server(live_server):
    with live_server.core.transaction() as session:
        staff.create_account(session, EMAIL, PASSWORD, live_server.core.now())
    return live_server


def login_csrf(client: httpx.Client) -> str:
    page = client.get("/admin/login")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def sign_in(client: httpx.Client, email: str = EMAIL, password: str = PASSWORD) -> httpx.Response:
    return client.post("/admin/login", data={"csrf": login_csrf(client), "email": email, "password": password})


def signed_in(server) -> httpx.Client:
    response = sign_in(server.client)
    assert response.status_code == 303 and response.headers["location"] == "/admin", response.text
    return server.client


def page_csrf(html: str) -> str:
    return re.search(r'action="/admin/logout".*?name="csrf" value="([^"]+)"', html, re.S).group(1)


def table_row(html: str, table: str, day: str) -> list[str]:
    """The cells of one day's row in a table of the page."""
    body = re.search(rf'<table id="{table}">(.*?)</table>', html, re.S).group(1)
    row = re.search(rf'<tr data-day="{day}">(.*?)</tr>', body, re.S).group(1)
    return re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)


def table_header(html: str, table: str) -> list[str]:
    head = re.search(rf'<table id="{table}">\s*<thead>(.*?)</thead>', html, re.S).group(1)
    return re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)


def bars(html: str, chart: str) -> list[dict[str, str]]:
    """The bars of one SVG chart, each as its data attributes."""
    svg = re.search(rf'<svg class="chart" id="chart-{chart}".*?</svg>', html, re.S).group(0)
    return [dict(re.findall(r'data-(day|series|value)="([^"]*)"', rect))
            for rect in re.findall(r'<rect class="bar"[^>]*>', svg)]


def test_every_staff_page_sends_a_signed_out_visitor_to_the_sign_in_page(server):
    for path in ("/admin", "/admin?days=7", "/admin/unrecognized.csv"):
        response = server.client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/admin/login"
    assert server.client.post("/admin/logout").headers["location"] == "/admin/login"


def test_the_sign_in_page_is_a_plain_form_under_the_security_headers(server):
    response = server.client.get("/admin/login")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert 'type="password"' in response.text and "<script" not in response.text and "style=" not in response.text
    cookie = response.headers["set-cookie"]
    assert "madoguchi_staff_login=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_signing_in_sets_an_httponly_strict_cookie_secure_on_https(server):
    csrf = login_csrf(server.client)
    server.core.base_url = "https://madoguchi.example.ac.jp"  # the public URL decides, not the request
    response = server.client.post("/admin/login", data={"csrf": csrf, "email": EMAIL, "password": PASSWORD})
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    session_cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("madoguchi_staff="))
    flags = {part.strip().lower() for part in session_cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "secure", "path=/admin"} <= flags
    assert not any(flag.startswith(("max-age", "expires")) for flag in flags)  # gone when the browser closes


def test_on_plain_http_the_cookie_is_not_secure_and_the_session_works(server):
    response = sign_in(server.client)
    session_cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("madoguchi_staff="))
    assert "secure" not in session_cookie.lower()
    page = server.client.get("/admin")
    assert page.status_code == 200 and f"Signed in as {EMAIL}" in page.text


def test_a_wrong_password_and_an_unknown_email_get_the_same_page(server):
    wrong = sign_in(server.client, password="not the password")
    unknown = sign_in(server.client, email="nobody@example.ac.jp")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.text == unknown.text
    assert "The email or the password is wrong." in wrong.text
    assert "not the password" not in wrong.text and "nobody@" not in unknown.text  # nothing typed is echoed
    assert server.client.get("/admin").status_code == 303


def test_five_failures_refuse_even_the_right_password_for_fifteen_minutes(server, clock):
    for attempt in range(5):
        assert sign_in(server.client, password=f"wrong password {attempt}").status_code == 401
    refused = sign_in(server.client)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "900"
    assert "Too many failed sign-ins" in refused.text
    assert "madoguchi_staff=" not in refused.headers.get("set-cookie", "")
    clock.advance(minutes=15)
    assert sign_in(server.client).status_code == 303


def test_a_sign_in_without_the_forms_csrf_token_is_refused(server):
    login_csrf(server.client)  # the browser has the cookie, but the form does not carry the token
    missing = server.client.post("/admin/login", data={"email": EMAIL, "password": PASSWORD})
    forged = server.client.post("/admin/login", data={"csrf": "forged", "email": EMAIL, "password": PASSWORD})
    with httpx.Client(base_url=server.url) as other:  # a form posted from another site carries no cookie
        no_cookie = other.post("/admin/login", data={"csrf": "x" * 43, "email": EMAIL, "password": PASSWORD})
    assert missing.status_code == forged.status_code == no_cookie.status_code == 403
    assert "madoguchi_staff=" not in missing.headers.get("set-cookie", "")


def test_signing_out_needs_the_csrf_token_and_ends_the_session(server):
    client = signed_in(server)
    page = client.get("/admin")
    old_cookie = client.cookies.get("madoguchi_staff")
    assert client.post("/admin/logout", data={}).status_code == 403
    assert client.post("/admin/logout", data={"csrf": staff.csrf_token("another session")}).status_code == 403
    assert client.get("/admin").status_code == 200  # still signed in
    out = client.post("/admin/logout", data={"csrf": page_csrf(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    assert client.get("/admin").status_code == 303
    with httpx.Client(base_url=server.url, cookies={"madoguchi_staff": old_cookie}) as replay:
        assert replay.get("/admin").status_code == 303  # the old cookie is worth nothing now


def test_a_disabled_accounts_session_stops_working(server):
    client = signed_in(server)
    assert client.get("/admin").status_code == 200
    with server.core.transaction() as session:
        staff.disable_account(session, EMAIL, server.core.now())
    assert client.get("/admin").status_code == 303
    assert sign_in(client).status_code == 401


def test_an_idle_session_ends(server, clock):
    client = signed_in(server)
    clock.advance(hours=8)
    assert client.get("/admin").status_code == 303


def test_signing_in_again_replaces_the_old_session(server):
    client = signed_in(server)
    first = client.cookies.get("madoguchi_staff")
    assert client.get("/admin/login").headers["location"] == "/admin"  # no form for the signed-in
    client.cookies.set("madoguchi_staff_login", "k" * 43, domain="127.0.0.1", path="/admin/login")
    again = client.post("/admin/login", data={"csrf": "k" * 43, "email": EMAIL, "password": PASSWORD})
    assert again.status_code == 303
    assert client.cookies.get("madoguchi_staff") != first
    with httpx.Client(base_url=server.url, cookies={"madoguchi_staff": first}) as old:
        assert old.get("/admin").status_code == 303


def test_the_dashboard_shows_what_the_database_holds(server):
    seed(server.core)
    client = signed_in(server)
    page = client.get("/admin?days=7")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    assert "2026-11-18 to 2026-11-24" in html and 'aria-current="page">last 7 days' in html
    assert re.search(r'id="total-messages">9<', html) and re.search(r'id="total-not-understood">3<', html)
    assert re.search(r'id="total-handoffs">2<', html)

    # (1) messages per day, by intent: the table and the stacked bars
    assert table_header(html, "messages-table") == ["Day", "not understood", "payment methods", "greet",
                                                    "pickup timing", "refund", "relayed to a person", "Total"]
    assert table_row(html, "messages-table", "2026-11-24") == ["2026-11-24", "2", "1", "1", "0", "0", "1", "5"]
    assert table_row(html, "messages-table", "2026-11-23") == ["2026-11-23", "1", "1", "0", "0", "1", "0", "3"]
    assert table_row(html, "messages-table", "2026-11-20") == ["2026-11-20", "0", "0", "0", "0", "0", "0", "0"]
    message_bars = bars(html, "messages")
    assert len(message_bars) == 8  # one segment per non-zero (day, intent)
    today = {bar["series"]: int(bar["value"]) for bar in message_bars if bar["day"] == "2026-11-24"}
    assert today == {"out_of_scope": 2, "payment_methods": 1, "greet": 1, "to a person": 1}

    # (2) the fallback rate
    assert table_row(html, "fallback-table", "2026-11-24") == ["2026-11-24", "2", "4", "50.0%"]
    assert table_row(html, "fallback-table", "2026-11-23") == ["2026-11-23", "1", "3", "33.3%"]
    assert table_row(html, "fallback-table", "2026-11-21") == ["2026-11-21", "0", "0", "–"]
    assert {bar["day"]: bar["value"] for bar in bars(html, "fallback")} == {
        "2026-11-18": "0.0%", "2026-11-23": "33.3%", "2026-11-24": "50.0%"}  # no bar for a day without messages

    # (3) the handoff rate
    assert table_row(html, "handoff-table", "2026-11-24") == ["2026-11-24", "1", "2", "50.0%"]
    assert {bar["day"]: bar["value"] for bar in bars(html, "handoff")} == {
        "2026-11-18": "0.0%", "2026-11-23": "50.0%", "2026-11-24": "50.0%"}
    assert "misses 1, refund dispute 1" in html

    # every chart is well-formed SVG and can be read without seeing it
    for chart in ("messages", "fallback", "handoff"):
        svg = re.search(rf'<svg class="chart" id="chart-{chart}".*?</svg>', html, re.S).group(0)
        root = ElementTree.fromstring(svg)
        assert root.get("role") == "img" and [child.tag for child in root][:2] == ["title", "desc"]
    assert "9 student messages from 2026-11-18 to 2026-11-24" in html


def test_the_period_selector_reaches_back_30_days_and_refuses_others(server):
    seed(server.core)
    client = signed_in(server)
    html = client.get("/admin").text  # 30 days by default
    assert "2026-10-26 to 2026-11-24" in html and re.search(r'id="total-messages">10<', html)
    assert table_row(html, "messages-table", "2026-11-17")[1] == "1"
    assert len(re.findall(r'<tr data-day="', html.split('id="messages-table"')[1].split("</table>")[0])) == 30
    bad = client.get("/admin?days=10")
    assert bad.status_code == 400 and "7, 30, 90" in bad.text


def test_questions_not_understood_are_listed_escaped(server):
    seed(server.core)
    html = signed_in(server).get("/admin?days=7").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # nothing the CSP would block: scripts only from files of our own, no inline styles
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all('src="/static/' in tag or 'type="application/json"' in tag for tag in scripts)
    assert "style=" not in html
    recent = re.search(r'<table id="recent-table">(.*?)</table>', html, re.S).group(1)
    body = recent.split("<tbody>")[1]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]
    assert [row[:4] for row in rows] == [
        ["2026-11-24 09:05", "web", "ja", "&lt;script&gt;alert(1)&lt;/script&gt;"],
        ["2026-11-24 00:30", "line", "en", "What is the weather"],
        ["2026-11-23 23:59", "slack", "–", "  what is the WEATHER "],
    ]
    # The guess stored with each message; none on a line stored before guesses were kept.
    assert [row[4].strip() for row in rows] == ["payment methods, 12.0% sure", "contact, 31.0% sure", "20.0% sure"]
    frequent = re.search(r'<table id="frequent-table">(.*?)</table>', html, re.S).group(1)
    assert re.search(r">what is the weather</td><td>2</td>", frequent, re.I)


def test_the_csv_export_lists_every_not_understood_message_safely(server):
    seed(server.core)
    with server.core.transaction() as session:
        add_conversation(session, "web:csv")
        say(session, "web:csv", jst(24, 8), "=HYPERLINK(\"http://x\")", "out_of_scope", 0.01)
    response = signed_in(server).get("/admin/unrecognized.csv?days=30")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="unrecognized-2026-11-24-30d.csv"' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["asked_at_jst", "channel", "language", "best_guess", "confidence", "text"]
    assert [row[5] for row in rows[1:]] == ["<script>alert(1)</script>", "'=HYPERLINK(\"http://x\")",
                                            "What is the weather", "  what is the WEATHER ", "old question"]
    assert rows[1][:5] == ["2026-11-24 09:05", "web", "ja", "payment_methods", "0.12"]
    assert rows[4][3] == "", "no guess on a line stored before it was kept"


def test_only_free_text_the_bot_could_not_place_counts_as_not_understood(make_core, inbox, pipeline_for):
    """Taps, answers to a form's questions, typed steering words and questions the bot placed outside its topics
    (another office's matter, small talk) are understood; only a message it could not read is listed."""
    from tests.conftest import serve

    with serve(make_core, pipeline_for) as live:
        with live.core.transaction() as session:
            staff.create_account(session, EMAIL, PASSWORD, live.core.now())
            load_demo_students(session, live.core.profile, live.core.now())
        turns = [{"text": "成績証明書を2通申請したい"}, {"text": "24M1001"}, {"payload": "form:set:delivery:mail"},
                 {"text": "キャンセルで"}, {"text": "学食って何時まで？"},
                 {"text": "明日の天気は？"}, {"payload": "form:set:confirm:yes"}, {"text": "ぬふぁ なにゅ"},
                 {"payload": "intent:contact"}]
        for turn in turns:
            assert live.client.post("/api/chat", json={"user": "u10", **turn}).status_code == 200
        html = signed_in(live).get("/admin?days=7").text
        with live.core.transaction() as session:
            stored = dict(session.execute(select(TranscriptEntry.text, TranscriptEntry.intent)
                                          .where(TranscriptEntry.direction == "in")).all())
    recent = re.search(r'<table id="recent-table">(.*?)</table>', html, re.S).group(1)
    assert "ぬふぁ なにゅ" in recent
    placed = ("24M1001", "form:set:", "キャンセルで", "学食って何時まで？", "明日の天気は？", "intent:contact")
    for understood in placed:
        assert understood not in recent, understood
    assert stored["24M1001"] == "order_certificate" and stored["[form:set:delivery:mail]"] == "order_certificate"
    assert stored["キャンセルで"] == "order_certificate"
    assert stored["学食って何時まで？"] == "out_of_scope/campus" and stored["明日の天気は？"] == "out_of_scope/other"
    assert stored["[form:set:confirm:yes]"] == "other"  # a stale button: the order was cancelled
    assert stored["ぬふぁ なにゅ"] == "out_of_scope"


def test_an_empty_dashboard_says_so(server):
    html = signed_in(server).get("/admin?days=90").text
    assert re.search(r'id="total-messages">0<', html) and "None in this period." in html
    assert bars(html, "messages") == [] and len(re.findall(r'<tr data-day="', html)) == 3 * 90


def test_a_question_the_bot_missed_in_the_chat_shows_with_the_bots_best_guess(make_core, inbox, pipeline_for):
    from tests.conftest import serve

    with serve(make_core, pipeline_for) as live:
        with live.core.transaction() as session:
            staff.create_account(session, EMAIL, PASSWORD, live.core.now())
        reply = live.client.post("/api/chat", json={"user": "u9", "text": "ぬふぁ なにゅ"})
        assert reply.status_code == 200
        html = signed_in(live).get("/admin?days=7").text
        with live.core.transaction() as session:
            guess = session.scalar(select(TranscriptEntry.guess).where(TranscriptEntry.direction == "in"))
    recent = re.search(r'<table id="recent-table">(.*?)</table>', html, re.S).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", recent, re.S)
    assert cells[1:4] == ["web", "ja", "ぬふぁ なにゅ"]
    assert guess, "the guess was stored with the message"
    assert re.fullmatch(rf"{guess.replace('_', ' ')}, \d+\.\d% sure", cells[4].strip()), (guess, cells[4])


def test_events_the_worker_gave_up_on_are_listed_for_staff(server, clock):
    class Refused(ChannelProcessor):
        channel = "line"

        def prepare(self, job: Job) -> list[dict]:
            return [{"text": "hello"}]

        def send(self, call: Call) -> None:
            raise ConnectionError("LINE <b>unreachable</b> for user 24M1001")

    core = server.core
    inbox = Inbox(core, {"line": Refused()})
    inbox.accept("line", "ev-1", {"text": "hi"})
    for _ in range(MAX_ATTEMPTS):
        inbox.drain()
        clock.advance(minutes=6)
    html = signed_in(server).get("/admin?days=7").text
    table = re.search(r'<table id="failed-table">(.*?)</table>', html, re.S).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", table.split("<tbody>")[1], re.S)
    assert cells[1:3] == ["line", str(MAX_ATTEMPTS)]
    assert "ConnectionError: LINE &lt;b&gt;unreachable&lt;/b&gt;" in cells[3]  # escaped
    assert "24M1001" not in cells[3]  # masked when it was stored
    metrics = server.client.get("/metrics").text
    assert 'madoguchi_events_failed_total{channel="line"} 1.0' in metrics
