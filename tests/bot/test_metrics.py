"""GET /metrics over real HTTP: each chat message, fallback, handoff, link and reminder moves its series by
exactly what happened, and with two `madoguchi serve` workers a scrape adds up both, whichever answers."""

import json
import re
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update
from starlette.testclient import TestClient

from bot.delivery.reminders import send_reminder
from bot.web.app import create_app
from bot.web.signin import COOKIE
from core.clock import TOKYO
from core.enums import Language, LinkPurpose
from core.handoffs import ClosedHow, Reason, active_ticket, close, open_ticket
from core.models import ChannelAccount, OneTimeLink, Reminder, Student
from core.reminders import Kind, Status, schedule, schedule_link_nudge
from core.retention import forget_student, purge_expired
from core.students import create_student, find_student
from core.web_sessions import start_session
from tests.bot.served import two_workers  # noqa: F401 (a fixture)

LINK_URL = re.compile(r"https?://\S+?(/links/[A-Za-z0-9_-]+)\?lang=(?:ja|en)")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape by name and sorted labels; every series must be madoguchi's."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert sample.name.startswith("madoguchi_"), sample.name
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def scrape(client: httpx.Client | TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples that changed, by how much (histogram buckets and sums left out, and the fallback ratio, which
    can stay put when a test's messages have the share of the earlier ones: all checked apart)."""
    keys = set(before) | set(after)
    return {key: after.get(key, 0.0) - before.get(key, 0.0) for key in keys
            if after.get(key, 0.0) != before.get(key, 0.0) and not key[0].endswith(("_bucket", "_sum", "_created"))
            and key[0] != "madoguchi_fallback_ratio"}


def chat(server, user: str, **body: str) -> list[dict]:
    response = server.client.post("/api/chat", json={"user": user, **body})
    assert response.status_code == 200
    return response.json()["replies"]


def test_chat_handoff_link_and_reminder_each_move_their_series_exactly(chat_server, inbox, clock):
    core = chat_server.core
    core.agents_on_slack = True  # a desk that reaches people: in hours the student's messages are relayed
    with core.transaction() as session:
        student = create_student(session, student_number="24M1001", department="medicine", year=3, now=core.now(),
                                 email="taro.yamada@example.ac.jp")
        # A chat account of the student's, so the reminder below has somewhere to go.
        session.add(ChannelAccount(channel="web", external_id="m-reset", student_id=student.id, following=True,
                                   linked_at=core.now(), created_at=core.now(), updated_at=core.now()))
    before = scrape(chat_server.client)

    chat(chat_server, "m-ja", text="支払い方法を教えて")
    chat(chat_server, "m-en", text="How can I pay?")
    assert "理解できませんでした" in chat(chat_server, "m-miss", text="ぬふぁ なにゅ")[0]["text"]
    assert "担当者" in chat(chat_server, "m-person", text="担当者と話したいです")[0]["text"]
    assert chat(chat_server, "m-person", text="まだですか") == []  # in hours: relayed to the agents, bot silent
    with core.transaction() as session:  # this browser is signed in as the student: the link is mailed at once
        signed_in = start_session(session, session.get(Student, student.id), "email", core.now())
    chat_server.client.cookies.set(COOKIE, signed_in)
    chat(chat_server, "m-reset", payload="form:start:reset")
    chat_server.app.state.inbox.drain()  # the app's worker issues and mails the link
    chat_server.client.cookies.clear()
    middle = scrape(chat_server.client)

    assert moved(before, middle) == {
        ("madoguchi_messages_total", (("channel", "web"), ("intent", "payment_methods"), ("lang", "ja"))): 1,
        ("madoguchi_messages_total", (("channel", "web"), ("intent", "payment_methods"), ("lang", "en"))): 1,
        ("madoguchi_messages_total", (("channel", "web"), ("intent", "out_of_scope"), ("lang", "ja"))): 1,
        ("madoguchi_messages_total", (("channel", "web"), ("intent", "human_agent"), ("lang", "ja"))): 1,
        ("madoguchi_messages_total", (("channel", "web"), ("intent", "relayed"), ("lang", "ja"))): 1,
        ("madoguchi_messages_total", (("channel", "web"), ("intent", "other"), ("lang", "ja"))): 1,
        ("madoguchi_fallbacks_total", (("channel", "web"), ("lang", "ja"))): 1,
        ("madoguchi_message_seconds_count", (("channel", "web"),)): 6,
        ("madoguchi_handoffs_opened_total", (("reason", "asked"),)): 1,
        ("madoguchi_handoffs_open", (("status", "waiting"),)): 1,
        ("madoguchi_links_issued_total", (("purpose", "second_password_reset"),)): 1,
    }
    seconds = "madoguchi_message_seconds_sum"
    assert value(middle, seconds, channel="web") > value(before, seconds, channel="web")
    assert value(middle, "madoguchi_message_seconds_bucket", channel="web", le="+Inf") == value(
        middle, "madoguchi_message_seconds_count", channel="web")
    assert value(middle, "madoguchi_database_up") == 1

    with core.transaction() as session:
        close(session, active_ticket(session, "web:m-person").id, ClosedHow.RESOLVED, core.now(), agent="UAGENT")
        link = session.scalars(select(OneTimeLink)).one()
        nudge = schedule_link_nudge(session, link, core.now(), lang="ja")  # to the student's chat accounts
        night = schedule(session, kind=Kind.READY_NOW, key="ready_now:TEST-0001", now=core.now(),
                         due_at=datetime(2026, 11, 24, 22, 30, tzinfo=TOKYO), student_id=student.id, subject="TEST")
        assert nudge is not None and night is not None and night.deferred
    clock.advance(minutes=25)
    assert send_reminder(core, nudge.id) is Status.SENT
    path = LINK_URL.search(inbox.body(inbox.messages[-1])).group(1)
    used = chat_server.client.post(path, data={"password": "Madoguchi2026", "password_confirmation": "Madoguchi2026"})
    assert used.status_code == 200
    after = scrape(chat_server.client)

    assert moved(middle, after) == {
        ("madoguchi_handoffs_closed_total", (("how", "resolved"),)): 1,
        ("madoguchi_handoffs_open", (("status", "waiting"),)): -1,
        ("madoguchi_links_used_total", (("purpose", "second_password_reset"),)): 1,
        ("madoguchi_reminders_sent_total", (("kind", "link_expiring"),)): 1,
        ("madoguchi_reminders_deferred_total", (("kind", "ready_now"),)): 1,
        ("madoguchi_reminders_scheduled", (("kind", "ready_now"),)): 1,
    }


def test_the_fallback_ratio_is_the_share_of_answered_messages_not_understood(chat_server):
    before = scrape(chat_server.client)
    for text in ("ぬふぁ なにゅ", "支払い方法を教えて", "支払い方法を教えて", "支払い方法を教えて"):
        chat(chat_server, "ratio", text=text)
    after = scrape(chat_server.client)
    answered = sum(v for (name, labels), v in after.items()
                   if name == "madoguchi_messages_total" and ("intent", "relayed") not in labels)
    fallbacks = sum(v for (name, _), v in after.items() if name == "madoguchi_fallbacks_total")
    assert value(after, "madoguchi_fallback_ratio") == pytest.approx(fallbacks / answered)
    assert sum(v for (name, _), v in moved(before, after).items() if name == "madoguchi_messages_total") == 4


def test_a_metrics_token_is_asked_for_when_set(core):
    app = create_app(core)
    app.state.metrics_token = "s3cret-metrics-token-0123"
    with TestClient(app) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        allowed = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token-0123"})
        assert allowed.status_code == 200 and "madoguchi_database_up 1.0" in allowed.text


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(core):
    with TestClient(create_app(core)) as client:
        response = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


# --- several workers ------------------------------------------------------------------------------------------


def _send_together(base: str, users: list[str]) -> None:
    """One chat message per user, four at a time, each on a connection of its own: whichever worker is
    accepting takes it, and with several in flight both workers get some."""
    def send(user: str) -> int:
        return httpx.post(f"{base}/api/chat", json={"user": user, "text": "支払い方法を教えて"}, timeout=30).status_code

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(send, users)) == {200}


def _totals_together(base: str, times: int) -> list[float]:
    def total(_: int) -> float:
        response = httpx.get(f"{base}/metrics", timeout=30)
        assert response.status_code == 200
        return sum(v for (name, _), v in parse(response.text).items() if name == "madoguchi_messages_total")

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(total, range(times)))


def test_two_workers_count_every_message_once_whichever_answers_the_scrape(two_workers):  # noqa: F811
    served, base, metrics_dir = two_workers
    served.wait_for("Application startup complete", 2)
    workers = {int(re.search(r"Started server process \[(\d+)\]", line).group(1))
               for line in served.wait_for("Started server process", 2)}
    sent = 0
    for batch in range(10):  # until both workers have answered some (the first batch nearly always does)
        _send_together(base, [f"b{batch}-{index}" for index in range(8)])
        sent += 8
        if {int(path.stem.split("_")[-1]) for path in metrics_dir.glob("counter_*.db")} == workers:
            break
    assert {int(path.stem.split("_")[-1]) for path in metrics_dir.glob("counter_*.db")} == workers

    scrapes = 0
    for _ in range(10):  # until both workers have answered a scrape, each of which must see every message
        assert _totals_together(base, 8) == [sent] * 8
        scrapes += 8
        answered = {json.loads(line)["process"] for line in served.wait_for('"GET /metrics', scrapes)}
        if answered == workers:
            break
    assert answered == workers, "both workers answered scrapes"

    served.process.send_signal(signal.SIGTERM)
    served.process.wait(timeout=30)
    while not served.lines.empty():
        served.seen.append(served.lines.get())
    for line in served.seen:
        parsed = json.loads(line)  # LOG_FORMAT=auto: JSON, stderr being no terminal
        assert "conversation_id" in parsed and parsed["time"].endswith("+00:00")


def test_purging_and_forgetting_do_not_take_a_counter_down(core):
    """Retention and forgetting delete rows the counters are counted from; what they counted stays (see
    core.tallies), so Prometheus never sees a reset."""
    with core.transaction() as session:
        student = create_student(session, student_number="24M1001", department="medicine", year=3, now=core.now(),
                                 email="taro.yamada@example.ac.jp")
        old = core.now() - timedelta(days=200)
        session.add(OneTimeLink(student_id=student.id, purpose=LinkPurpose.SECOND_PASSWORD_RESET, token_hash="a" * 64,
                                email="taro.yamada@example.ac.jp", created_at=old, expires_at=old, used_at=old))
        schedule(session, kind=Kind.READY_NOW, key="ready_now:OLD", now=old, due_at=old, student_id=student.id)
    with core.transaction() as session:
        session.execute(update(Reminder).values(status=Status.SENT.value, done_at=old))
        close(session, _opened(session, "web:old", old).id, ClosedHow.RESOLVED, old)
        _opened(session, "web:theirs", core.now(), student_id=student.id)
    with TestClient(create_app(core)) as client:
        before = scrape(client)
        assert value(before, "madoguchi_links_used_total", purpose="second_password_reset") == 1
        assert value(before, "madoguchi_reminders_sent_total", kind="ready_now") == 1
        assert value(before, "madoguchi_handoffs_opened_total", reason="asked") == 2
        assert purge_expired(core).total >= 3
        with core.transaction() as session:
            assert forget_student(session, "24M1001", now=core.now()) is not None
            assert find_student(session, "24M1001") is None
        after = scrape(client)
    counters = {key: count for key, count in before.items() if key[0].endswith("_total")}
    assert counters and {key: after.get(key) for key in counters} == counters
    assert value(after, "madoguchi_handoffs_open", status="waiting") == 0, "a gauge does go down"


def _opened(session, conversation, at, student_id=None):
    ticket, _ = open_ticket(session, conversation_id=conversation, channel="web", user_id=conversation[4:],
                            student_id=student_id, lang=Language.JA, reason=Reason.ASKED, topic=None, bot_said=None,
                            now=at)
    return ticket
