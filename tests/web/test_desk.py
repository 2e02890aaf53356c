"""The agents' inbox over real HTTP: who may see it, its forms' CSRF and checks, the take race, replies that reach
the student once under the agent's display name, notes that never do, resolving with the satisfaction question,
the live fragments and the server-sent events."""

import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from bot.delivery.inbox import Inbox
from bot.delivery.notices import Delivery
from bot.handoff.agents import NoSlackDesk
from core import staff
from core.clock import TOKYO
from core.conversations import record
from core.enums import DeliveryMethod, Language, PaymentMethod
from core.handoffs import Reason, open_ticket, rate
from core.models import HandoffMessage, HandoffTicket, StaffAccount, TranscriptEntry
from core.orders import OrderLine, create_order
from core.students import create_student
from tests.web.test_admin import login_csrf

PASSWORD = "correct horse battery"
ADMIN = "hanako.sato@example.ac.jp"
YAMADA = "taro.yamada@example.ac.jp"
SUZUKI = "jiro.suzuki@example.ac.jp"
JA = {"Accept-Language": "ja,en;q=0.5"}


@pytest.fixture
def server(live_server):
    with live_server.core.transaction() as session:
        now = live_server.core.now()
        staff.create_account(session, ADMIN, PASSWORD, now)
        staff.create_account(session, YAMADA, PASSWORD, now, role=staff.Role.AGENT, display_name="山田")
        staff.create_account(session, SUZUKI, PASSWORD, now, role=staff.Role.AGENT, display_name="鈴木")
    return live_server


@pytest.fixture
def clients(server) -> Iterator[Callable[[], httpx.Client]]:
    """Browsers of their own (cookies apart) for the test to sign in."""
    opened: list[httpx.Client] = []

    def new() -> httpx.Client:
        client = httpx.Client(base_url=server.url, timeout=10, follow_redirects=False)
        opened.append(client)
        return client

    yield new
    for client in opened:
        client.close()


def sign_in(client: httpx.Client, email: str, headers: dict[str, str] | None = None) -> httpx.Client:
    response = client.post("/admin/login", data={"csrf": login_csrf(client), "email": email, "password": PASSWORD},
                           headers=headers)
    assert response.status_code == 303, response.text
    return client


def form_fields(html: str, action: str, form_id: str | None = None) -> dict[str, str]:
    """The hidden fields of the form posting to `action` (its CSRF token and its sending key)."""
    named = f' id="{form_id}"' if form_id else ""
    form = re.search(rf'<form method="post" action="{re.escape(action)}"{named}[^>]*>(.*?)</form>', html, re.S)
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(1)))


def open_one(core, user: str = "s1", *, lang: Language = Language.JA, student_id: int | None = None,
             minutes_ago: int = 0, topic: str | None = "payment_methods") -> int:
    """A waiting ticket for a web chat conversation with a few transcript lines; its id."""
    now = core.now()
    conversation = f"web:{user}"
    with core.transaction() as session:
        record(session, conversation, "in", "支払い方法を教えて", now - timedelta(minutes=minutes_ago + 2))
        record(session, conversation, "out", "クレジットカード、PayPay…", now - timedelta(minutes=minutes_ago + 2))
        record(session, conversation, "in", "第2パスワードは Zq81mnbv77 です。担当者と話したい",
               now - timedelta(minutes=minutes_ago + 1))
        ticket, _ = open_ticket(session, conversation_id=conversation, channel="web", user_id=user,
                                student_id=student_id, lang=lang, reason=Reason.ASKED, topic=topic,
                                bot_said="クレジットカード、PayPay…", now=now - timedelta(minutes=minutes_ago))
        return ticket.id


def ticket(core, ticket_id: int) -> HandoffTicket:
    with core.transaction() as session:
        row = session.get(HandoffTicket, ticket_id)
        session.expunge(row)
        return row


def act(client: httpx.Client, ticket_id: int, action: str, **fields: str) -> httpx.Response:
    """Open the ticket's page and send one of its forms (`canned`: the canned reply's own form)."""
    page = client.get(f"/admin/inbox/{ticket_id}").text
    if action == "canned":
        hidden = form_fields(page, f"/admin/inbox/{ticket_id}/reply", "canned-form")
        action = "reply"
    else:
        hidden = form_fields(page, f"/admin/inbox/{ticket_id}/{action}")
    return client.post(f"/admin/inbox/{ticket_id}/{action}", data={**hidden, **fields})


def done(response: httpx.Response, ticket_id: int) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(f"/admin/inbox/{ticket_id}?done="), location
    return location.split("done=")[1]


def student_sees(server, user: str = "s1") -> list[dict]:
    """What the web chat page fetches for the student: the messages after their turns."""
    return server.client.get("/api/chat/updates", params={"user": user, "after": 0}).json()["messages"]


def deliver(core) -> None:
    """Run the worker's delivery once (the live server's app has none running)."""
    worker = Inbox(core)
    worker.register(Delivery(core, {}))
    worker.register(NoSlackDesk())
    worker.drain()


# --- who may see what ---------------------------------------------------------------------------------------


def test_a_signed_out_visitor_is_sent_to_sign_in_and_the_events_refuse_them(server):
    ticket_id = open_one(server.core)
    for path in ("/admin/inbox", f"/admin/inbox/{ticket_id}", "/admin/inbox?fragment=queue"):
        response = server.client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/admin/login"
    assert server.client.post(f"/admin/inbox/{ticket_id}/take").headers["location"] == "/admin/login"
    assert server.client.get("/admin/inbox/events").status_code == 401
    assert ticket(server.core, ticket_id).status == "waiting"


def test_an_agent_sees_only_the_inbox_and_an_admin_sees_both(server, clients):
    agent = sign_in(clients(), YAMADA)
    assert agent.get("/admin").headers["location"] == "/admin/inbox"
    assert agent.get("/admin?days=7").headers["location"] == "/admin/inbox"
    export = agent.get("/admin/unrecognized.csv")
    assert export.status_code == 403 and "administrator" in export.text
    inbox = agent.get("/admin/inbox")
    assert inbox.status_code == 200 and 'href="/admin/inbox"' in inbox.text
    assert 'href="/admin"' not in inbox.text

    admin = sign_in(clients(), ADMIN)
    page = admin.get("/admin/inbox")
    assert page.status_code == 200 and 'href="/admin"' in page.text and 'href="/admin/inbox"' in page.text
    dashboard = admin.get("/admin", headers=JA)
    assert dashboard.status_code == 200 and '<html lang="ja">' in dashboard.text
    assert "<main lang=\"en\">" in dashboard.text and ">受信箱" in dashboard.text  # English charts, bilingual chrome


def test_the_pages_speak_the_browsers_language_and_remember_a_switch(server, clients):
    client = sign_in(clients(), YAMADA)
    assert "<title>(0) Inbox — madoguchi</title>" in client.get("/admin/inbox").text
    japanese = client.get("/admin/inbox", headers=JA)
    assert '<html lang="ja">' in japanese.text and "<title>(0) 受信箱 — madoguchi</title>" in japanese.text
    switched = client.get("/admin/inbox?lang=ja")
    cookie = switched.headers["set-cookie"]
    assert "madoguchi_staff_lang=ja" in cookie and "Path=/admin" in cookie and "HttpOnly" in cookie
    assert '<html lang="ja">' in client.get("/admin/inbox").text  # remembered without the header
    assert 'href="/admin/inbox?lang=en"' in client.get("/admin/inbox").text
    login = clients().get("/admin/login", headers=JA)
    assert "スタッフのサインイン" in login.text and "パスワード" in login.text
    english_first = clients().get("/admin/login", headers={"Accept-Language": "en-US,en;q=0.9,ja;q=0.8"})
    assert '<html lang="en">' in english_first.text
    expired = clients().post("/admin/login", data={"csrf": "forged"}, headers=JA)
    assert expired.status_code == 403 and "フォームの有効期限切れ" in expired.text
    assert 'href="/admin/login?lang=en"' in expired.text  # a switch to a page that can be fetched again


# --- the queue and a ticket's page ----------------------------------------------------------------------------


def test_the_queue_lists_waiting_tickets_first_with_what_an_agent_needs(server, clients):
    older = open_one(server.core, "s1", minutes_ago=30)
    newer = open_one(server.core, "s2", lang=Language.EN, minutes_ago=5, topic=None)
    taken = open_one(server.core, "s3", minutes_ago=60)
    client = sign_in(clients(), YAMADA, JA)
    assert done(act(client, taken, "take"), taken) == "taken"

    html = client.get("/admin/inbox", headers=JA).text
    assert "<title>(2) 受信箱 — madoguchi</title>" in html
    assert [int(found) for found in re.findall(r'<tr data-ticket="(\d+)"', html)] == [older, newer, taken]
    row = re.search(rf'<tr data-ticket="{older}".*?</tr>', html, re.S).group(0)
    assert f'href="/admin/inbox/{older}"' in row
    assert all(text in row for text in ("対応待ち", "日本語", "学生が担当者を希望", "支払い方法", "web", "30分"))
    assert "推定なし" in re.search(rf'<tr data-ticket="{newer}".*?</tr>', html, re.S).group(0)
    assert "山田 さんが対応中" in re.search(rf'<tr data-ticket="{taken}".*?</tr>', html, re.S).group(0)
    assert "コールセンターは受付時間内です（平日 9:00〜17:00）" in html
    assert "受信箱を開いている担当者：1人" in html  # the page view put this agent at the desk
    assert YAMADA not in html.replace(f"{YAMADA} でサインイン中", "")


def test_out_of_hours_the_banner_says_when_the_call_center_opens(server, clients, clock):
    clock.set(datetime(2026, 11, 28, 11, 0, tzinfo=TOKYO))  # a Saturday
    html = sign_in(clients(), YAMADA).get("/admin/inbox").text
    assert "The call center is closed now. It opens next on Mon, Nov 30, 9:00" in html


def test_a_tickets_page_shows_the_packet_the_masked_transcript_and_the_forms(server, clients):
    core = server.core
    with core.transaction() as session:
        student = create_student(session, student_number="24M1234", department="medicine", year=3, now=core.now())
        create_order(session, student=student, lines=[OrderLine("transcript", 2)],
                     delivery=DeliveryMethod.CAMPUS_PRINTER, payment=PaymentMethod.CREDIT_CARD,
                     profile=core.profile, gateway=core.payments, now=core.now())
        student_id = student.id
    ticket_id = open_one(core, student_id=student_id)
    html = sign_in(clients(), YAMADA, JA).get(f"/admin/inbox/{ticket_id}", headers=JA).text
    packet = re.search(r'<section aria-labelledby="packet-heading".*?</section>', html, re.S).group(0)
    assert "24M1234" in packet and "支払い方法" in packet and "学生が担当者を希望" in packet
    assert re.search(r'<th scope="row">[A-Z0-9]{4}-[A-Z0-9]{4}</th><td class="text">成績証明書×2</td><td>お支払い待ち',
                     packet)
    assert "クレジットカード、PayPay…" in packet  # what the bot already said
    transcript = re.search(r'<ol class="lines" id="transcript">.*?</ol>', html, re.S).group(0)
    assert "支払い方法を教えて" in transcript and "Zq81mnbv77" not in html  # the password was masked when stored
    assert 'id="take-form"' in html and 'name="text"' in html and 'id="canned"' in html
    assert "担当の山田です" in html  # a canned reply in the ticket's language, naming the agent
    assert "082-207-4262" in html  # the call center's contact, as a canned reply
    assert 'id="reply-text" name="text" rows="4" maxlength="2000"' in html
    assert sign_in(clients(), SUZUKI).get("/admin/inbox/99999").status_code == 404
    assert sign_in(clients(), SUZUKI).get("/admin/inbox/nope").status_code == 404
    for odd in ("%C2%B2", "%D9%A3", "99999999999", "2147483648"):  # "²", an Arabic-Indic 3, past INTEGER
        assert sign_in(clients(), SUZUKI).get(f"/admin/inbox/{odd}").status_code == 404


# --- forms: CSRF, checks, the take race ---------------------------------------------------------------------


def test_every_action_needs_the_sessions_csrf_token(server, clients):
    ticket_id = open_one(server.core)
    client = sign_in(clients(), YAMADA)
    for action in ("take", "reply", "note", "resolve", "back"):
        missing = client.post(f"/admin/inbox/{ticket_id}/{action}", data={"text": "x", "key": "k" * 16})
        forged = client.post(f"/admin/inbox/{ticket_id}/{action}",
                             data={"csrf": staff.csrf_token("another session"), "text": "x", "key": "k" * 16})
        assert missing.status_code == forged.status_code == 403, action
        assert "Form expired" in forged.text
    assert ticket(server.core, ticket_id).status == "waiting"


def test_an_empty_or_overlong_text_is_refused_naming_the_field(server, clients):
    ticket_id = open_one(server.core)
    client = sign_in(clients(), YAMADA)
    empty = act(client, ticket_id, "reply", text="   ")
    assert empty.status_code == 400 and "(text)" in empty.text
    long = act(client, ticket_id, "note", text="あ" * 2001)
    assert long.status_code == 400 and "(text)" in long.text and "2000" in long.text
    no_key = act(client, ticket_id, "reply", text="hello", key="")
    assert no_key.status_code == 400 and "(key)" in no_key.text
    assert act(client, ticket_id, "reply", text="あ" * 2000).status_code == 303  # the limit itself is fine
    csrf = form_fields(client.get("/admin/inbox").text, "/admin/logout")
    assert client.post("/admin/inbox/99999/take", data=csrf).status_code == 404
    assert client.post(f"/admin/inbox/{ticket_id}/delete", data=csrf).status_code == 404


def test_of_two_agents_taking_at_once_one_wins_and_the_other_is_told_who(server, clients):
    ticket_id = open_one(server.core)
    yamada, suzuki = sign_in(clients(), YAMADA, JA), sign_in(clients(), SUZUKI, JA)
    forms = [form_fields(client.get(f"/admin/inbox/{ticket_id}").text, f"/admin/inbox/{ticket_id}/take")
             for client in (yamada, suzuki)]
    start, outcomes = threading.Barrier(2), {}

    def press(name: str, client: httpx.Client, fields: dict[str, str]) -> None:
        start.wait()
        outcomes[name] = done(client.post(f"/admin/inbox/{ticket_id}/take", data=fields), ticket_id)

    presses = [threading.Thread(target=press, args=args)
               for args in (("山田", yamada, forms[0]), ("鈴木", suzuki, forms[1]))]
    for thread in presses:
        thread.start()
    for thread in presses:
        thread.join(timeout=20)
    assert sorted(outcomes.values()) == ["lost", "taken"]
    winner = next(name for name, outcome in outcomes.items() if outcome == "taken")
    loser_client, winner_email = (suzuki, YAMADA) if winner == "山田" else (yamada, SUZUKI)
    page = loser_client.get(f"/admin/inbox/{ticket_id}?done=lost", headers=JA).text
    assert f'role="status">{winner} さんが先に担当しました。' in page
    assert winner_email not in page
    assert ticket(server.core, ticket_id).assignee_name == winner
    with server.core.transaction() as session:
        events = session.scalars(select(HandoffMessage.text).where(HandoffMessage.direction == "event")).all()
    assert events.count("taken") == 1


# --- what reaches the student -------------------------------------------------------------------------------


def test_a_reply_reaches_the_student_once_under_the_display_name(server, clients):
    ticket_id = open_one(server.core)
    client = sign_in(clients(), YAMADA)
    page = client.get(f"/admin/inbox/{ticket_id}").text
    fields = {**form_fields(page, f"/admin/inbox/{ticket_id}/reply"), "text": "担当の山田です。確認します。"}
    assert done(client.post(f"/admin/inbox/{ticket_id}/reply", data=fields), ticket_id) == "sent"
    assert done(client.post(f"/admin/inbox/{ticket_id}/reply", data=fields), ticket_id) == "sent"  # sent twice
    [said] = [m for m in student_sees(server) if m["kind"] == "agent"]
    assert said["text"] == "担当の山田です。確認します。" and said["author"] == "山田"
    assert YAMADA not in json.dumps(student_sees(server), ensure_ascii=False)
    row = ticket(server.core, ticket_id)
    assert row.status == "assigned" and row.assignee_name == "山田"  # replying to a waiting ticket took it
    with server.core.transaction() as session:
        authors = session.scalars(select(TranscriptEntry.author).where(TranscriptEntry.direction == "agent")).all()
    assert authors == ["山田"]
    timeline = client.get(f"/admin/inbox/{ticket_id}?fragment=timeline").text
    assert "山田 (sent to the student)" in timeline and "<html" not in timeline and 'name="text"' not in timeline


def test_a_canned_reply_is_sent_in_the_tickets_language_without_a_script(server, clients):
    ticket_id = open_one(server.core, lang=Language.EN)
    client = sign_in(clients(), SUZUKI, JA)
    assert done(act(client, ticket_id, "canned", canned="greeting"), ticket_id) == "sent"
    [said] = [m for m in student_sees(server) if m["kind"] == "agent"]
    assert said["text"].startswith("Hello, this is 鈴木 from the help desk.")
    bad = act(client, ticket_id, "canned", canned="password_please")
    assert bad.status_code == 400 and "(canned)" in bad.text


def test_an_internal_note_never_reaches_the_student(server, clients):
    ticket_id = open_one(server.core)
    client = sign_in(clients(), YAMADA)
    assert done(act(client, ticket_id, "note", text="学生証の再発行の件かもしれません"), ticket_id) == "noted"
    deliver(server.core)
    assert all("再発行" not in m["text"] for m in student_sees(server))
    with server.core.transaction() as session:
        assert session.scalar(select(TranscriptEntry).where(TranscriptEntry.text.contains("再発行"))) is None
    html = client.get(f"/admin/inbox/{ticket_id}").text
    note = re.search(r'<li class="line tl-note">.*?</li>', html, re.S).group(0)
    assert "Internal note by 山田 (never sent to the student)" in note and "再発行" in note
    assert ticket(server.core, ticket_id).status == "waiting"  # a note takes nothing


def test_resolving_asks_the_student_how_it_went_and_closes_the_forms(server, clients):
    ticket_id = open_one(server.core)
    client = sign_in(clients(), YAMADA, JA)
    assert done(act(client, ticket_id, "take"), ticket_id) == "taken"
    assert done(act(client, ticket_id, "resolve"), ticket_id) == "resolved"
    deliver(server.core)
    [closing] = [m for m in student_sees(server) if m["kind"] == "note" and "今回の対応はいかがでしたか" in m["text"]]
    assert [button["label"] for button in closing["quick_replies"]] == ["満足した", "満足しなかった"]

    page = client.get(f"/admin/inbox/{ticket_id}?done=resolved", headers=JA).text
    assert 'role="status">解決済みにしました。' in page
    assert "この引き継ぎは終了しました：山田 さんが解決済みにしました" in page
    assert 'name="text"' not in page and 'id="take-form"' not in page and "学生の評価：未回答" in page
    with server.core.transaction() as session:
        rate(session, "web:s1", "good")
    assert "学生の評価：満足した" in client.get(f"/admin/inbox/{ticket_id}", headers=JA).text
    queue = client.get("/admin/inbox", headers=JA).text
    assert re.search(r'id="sat-resolved">1<', queue) and re.search(r'id="sat-good">1<', queue)
    assert re.search(r'id="sat-share">100%<', queue) and "data-ticket" not in queue


def test_closing_twice_or_taking_a_closed_ticket_says_it_was_closed(server, clients):
    ticket_id = open_one(server.core)
    client = sign_in(clients(), YAMADA)
    assert done(act(client, ticket_id, "back"), ticket_id) == "handed_back"
    deliver(server.core)
    assert any("担当者からこのチャットに戻りました" in m["text"] for m in student_sees(server))
    hidden = form_fields(client.get(f"/admin/inbox/{ticket_id}").text, "/admin/logout")  # the page has no forms left
    for action in ("take", "resolve", "back"):
        assert done(client.post(f"/admin/inbox/{ticket_id}/{action}", data=hidden), ticket_id) == "closed"
    for action in ("reply", "note"):
        response = client.post(f"/admin/inbox/{ticket_id}/{action}", data={**hidden, "text": "x", "key": "k" * 16})
        assert done(response, ticket_id) == "closed"
    assert ticket(server.core, ticket_id).closed_how == "handed_back"


# --- live ---------------------------------------------------------------------------------------------------


def test_the_fragments_are_the_live_parts_alone(server, clients):
    ticket_id = open_one(server.core)
    client = sign_in(clients(), YAMADA)
    queue = client.get("/admin/inbox?fragment=queue")
    assert queue.status_code == 200 and "<html" not in queue.text and f'data-ticket="{ticket_id}"' in queue.text
    timeline = client.get(f"/admin/inbox/{ticket_id}?fragment=timeline")
    assert timeline.status_code == 200 and "<html" not in timeline.text
    assert 'data-status="waiting"' in timeline.text and 'id="take-form"' in timeline.text
    assert "Ticket opened" in timeline.text


def desk_events(lines: Iterator[str], limit: int = 40) -> Iterator[dict]:
    """The `desk` events of a stream, read line by line (at most `limit` lines per event)."""
    while True:
        kind = None
        for _ in range(limit):
            line = next(lines)
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind == "desk":
                yield json.loads(line.removeprefix("data: "))
                break
        else:
            raise AssertionError(f"no desk event within {limit} lines")


def test_the_events_tell_the_desks_changes_and_keep_the_agent_at_the_desk(server, clients):
    client = sign_in(clients(), YAMADA)
    with client.stream("GET", "/admin/inbox/events") as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        events = desk_events(stream.iter_lines())
        first = next(events)
        assert first["open"] == first["waiting"] == 0
        with server.core.transaction() as session:
            assert staff.agents_at_desk(session, server.core.now()) == 1  # the stream's poll put them there
        open_one(server.core)
        changed = next(events)
        assert changed["revision"] > first["revision"] and changed["open"] == changed["waiting"] == 1


def test_signing_out_leaves_the_desk(server, clients):
    client = sign_in(clients(), YAMADA)
    page = client.get("/admin/inbox").text
    with server.core.transaction() as session:
        assert staff.agents_at_desk(session, server.core.now()) == 1
    assert client.post("/admin/logout", data=form_fields(page, "/admin/logout")).status_code == 303
    with server.core.transaction() as session:
        assert staff.agents_at_desk(session, server.core.now()) == 0
        assert session.scalar(select(StaffAccount.desk_seen_at).where(StaffAccount.email == YAMADA)) is None
