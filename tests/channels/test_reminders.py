"""Scheduled reminders end to end, with the test clock: each kind is scheduled by what triggers it (the agents'
`ready`, a convenience-store order in the chat, a reset link asked for on LINE, the yearly periods), sent by
`send_reminder` when due (as a reminder's own job does, by id) or in a batch (as the scheduler's sweep does),
and delivered by the inbox to the fake LINE API, which validates every call against the Messaging API spec.
Quiet hours, opt-out and unfollowed users included."""

import re
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from bot.delivery.reminders import MULTICAST_MAX, send_reminder
from bot.delivery.reminders import send_due as send_batch
from core.clock import TOKYO
from core.enums import DeliveryMethod, Language, OrderStatus, PaymentMethod
from core.links import reset_second_password
from core.models import ChannelAccount, Order, Payment, Reminder, Student
from core.orders import OrderLine, advance, create_order, find_order, mark_paid
from core.reminders import (
    Kind,
    Status,
    due_reminders,
    schedule,
    schedule_payment_deadline,
    schedule_periods,
    set_reminders,
)
from core.students import create_student
from tests.channels.conftest import AGENT_CHANNEL, Desk
from tests.channels.line.fake_line_api import MULTICAST, PUSH
from tests.channels.line.webhooks import user_id
from tests.channels.slack import payloads
from tests.samples import SAMPLE_ADDRESS

TOKEN_IN_URL = re.compile(r"https?://\S+/links/([A-Za-z0-9_-]+)\?lang=(ja|en)")
NEW_PASSWORD = "Harukaze2026"


def at(day: int, hour: int, minute: int = 0, month: int = 11, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TOKYO)


# --- students, orders and what the bot is told ------------------------------------------------------------------

def linked_student(desk: Desk, number: str, *, year: int = 2, email: str | None = None,
                   language: Language = Language.JA) -> tuple[int, str]:
    """A student whose LINE account is linked and following; their id and LINE user id."""
    line_user, now = user_id(), desk.core.now()
    with desk.core.transaction() as session:
        student = create_student(session, student_number=number, department="medicine", year=year, now=now,
                                 email=email, language=language)
        session.add(ChannelAccount(channel="line", external_id=line_user, student_id=student.id, following=True,
                                   linked_at=now, created_at=now, updated_at=now))
        return student.id, line_user


def processing_order(desk: Desk, student_id: int) -> str:
    """A paid window-pickup order being prepared (what an agent marks ready); its number."""
    now = desk.core.now()
    with desk.core.transaction() as session:
        student = session.get(Student, student_id)
        placed = create_order(session, student=student, lines=[OrderLine("student_id_reissue")],
                              delivery=DeliveryMethod.WINDOW_PICKUP, payment=PaymentMethod.CREDIT_CARD,
                              profile=desk.core.profile, gateway=desk.core.payments, now=now, address=SAMPLE_ADDRESS)
        advance(session, placed.order, OrderStatus.PAID, now, "gateway")
        advance(session, placed.order, OrderStatus.PROCESSING, now, "staff:test")
        return placed.order.number


def command(desk: Desk, text: str) -> str:
    """A `/madoguchi` command typed in the agents' channel; the answer shown to the agent."""
    response = desk.slack_form(payloads.slash_command(text, channel=AGENT_CHANNEL, user="U0AGENT0001"))
    assert response.status_code == 200, response.text
    return response.text


def line_says(desk: Desk, line_user: str, text: str) -> None:
    desk.line_post(desk.events.text(line_user, text))
    desk.work()


def line_taps(desk: Desk, line_user: str, data: str) -> None:
    desk.line_post(desk.events.postback(line_user, data))
    desk.work()


# --- the scheduler's part, and what LINE saw ------------------------------------------------------------------------

def send_due(desk: Desk) -> dict[str, Status | None]:
    """Send every reminder due now, by id, as the scheduler does; then let the worker deliver. Each
    reminder's kind and end state."""
    with desk.core.transaction() as session:
        due = [(reminder_id, session.get(Reminder, reminder_id).kind)
               for reminder_id in due_reminders(session, desk.core.now())]
    sent = {kind: send_reminder(desk.core, reminder_id) for reminder_id, kind in due}
    desk.work()
    return sent


def rows(desk: Desk) -> list[Reminder]:
    with desk.core.transaction() as session:
        found = list(session.scalars(select(Reminder).order_by(Reminder.due_at, Reminder.id)))
        session.expunge_all()
        return found


def row(desk: Desk, kind: Kind) -> Reminder:
    [found] = [reminder for reminder in rows(desk) if reminder.kind == kind.value]
    return found


def plan(desk: Desk) -> list[tuple[str, str, str]]:
    """Each reminder's kind, status and due time (Asia/Tokyo, `Wed 25 13:00`). The desk's clock starts at
    Tue 24 10:00."""
    return [(r.kind, r.status, r.due_at.astimezone(TOKYO).strftime("%a %d %H:%M")) for r in rows(desk)]


def pushes(desk: Desk, to: str | None = None) -> list[Any]:
    """Pushes that reached their user (only those to `to`, if given)."""
    return [call for call in desk.line.calls_to(PUSH) if call.delivered and to in (None, call.body["to"])]


def text_of(call: Any) -> str:
    [message] = call.messages
    return message["text"]


def quick_replies(call: Any) -> dict[str, str]:
    """The quick-reply buttons of a call's last message: label → postback data."""
    items = call.messages[-1].get("quickReply", {}).get("items", [])
    return {item["action"]["label"]: item["action"].get("data") or item["action"].get("text") for item in items}


def retry_keys(calls: list[Any]) -> list[str]:
    keys = [call.headers["x-line-retry-key"] for call in calls]
    assert all(uuid.UUID(key) for key in keys)
    return keys


# --- ready to collect -----------------------------------------------------------------------------------------------

def test_a_ready_order_is_pushed_at_once_at_the_pickup_time_and_after_three_business_days(desk):
    student_id, line_user = linked_student(desk, "24M1001")
    number = processing_order(desk, student_id)

    told = command(desk, f"ready {number}")
    assert told == f"申請 {number} を「受取可能」にし、学生に通知しました（1件の連携アカウント）。"
    desk.work()
    [first] = pushes(desk)
    assert first.body["to"] == line_user
    assert "受取可能" in text_of(first) and number in text_of(first) and "学生証再発行料" in text_of(first)
    assert "2026年11月25日（水）13:00から受取可能です" in text_of(first)
    assert "「通知停止」" in text_of(first), "every reminder says how to stop them"
    # Ready Tuesday 10:00: the window opens Wednesday 13:00; three business days after Tuesday is Friday.
    assert plan(desk) == [("ready_now", "sent", "Tue 24 10:00"), ("ready_pickup_day", "scheduled", "Wed 25 13:00"),
                          ("ready_uncollected", "scheduled", "Fri 27 13:00")]
    assert send_due(desk) == {}

    desk.clock.set(at(25, 12, 59))
    assert send_due(desk) == {}
    desk.clock.set(at(25, 13, 0))
    # The push's answer is lost on the way back (a 500 after LINE took it): the retry meets its retry key.
    desk.line.fail_next(PUSH, 500, deliver=True)
    assert send_due(desk) == {"ready_pickup_day": Status.SENT}
    desk.clock.advance(seconds=2)  # the inbox's backoff after the failed attempt
    desk.work()
    assert [call.status for call in desk.line.calls_to(PUSH)[1:]] == [500, 409]
    [_, second] = pushes(desk)
    assert "本日から学生支援課の窓口で受け取れます" in text_of(second) and number in text_of(second)

    # Sending the same reminder again (a second scheduler, a restart) sends nothing.
    pickup_day = row(desk, Kind.READY_PICKUP_DAY)
    assert send_reminder(desk.core, pickup_day.id) is None
    desk.work()
    assert len(pushes(desk)) == 2

    desk.clock.set(at(27, 13, 0))
    assert send_due(desk) == {"ready_uncollected": Status.SENT}
    third = pushes(desk)[-1]
    assert "まだ受け取られていないようです" in text_of(third) and "平日 08:30–17:00" in text_of(third)
    assert len(pushes(desk)) == 3
    assert len(set(retry_keys(pushes(desk)))) == 3
    assert [r.status for r in rows(desk)] == ["sent", "sent", "sent"]
    assert not desk.stored("pending", "processing", "failed")


def test_once_collected_the_remaining_ready_reminders_are_cancelled_and_nothing_is_sent(desk):
    student_id, _ = linked_student(desk, "24M1001")
    number = processing_order(desk, student_id)
    command(desk, f"ready {number}")
    desk.work()
    assert len(pushes(desk)) == 1

    desk.clock.set(at(25, 11, 0))
    with desk.core.transaction() as session:
        advance(session, find_order(session, number), OrderStatus.COLLECTED, desk.core.now(), "staff:test")

    for when in (at(25, 13, 0), at(27, 13, 0)):
        desk.clock.set(when)
        send_due(desk)
    assert len(pushes(desk)) == 1
    assert [(r.kind, r.status, r.outcome) for r in rows(desk)] == [
        ("ready_now", "sent", "1 message(s) queued"), ("ready_pickup_day", "cancelled", "order is collected"),
        ("ready_uncollected", "cancelled", "order is collected")]


# --- the convenience-store payment deadline -------------------------------------------------------------------------

def test_a_convenience_store_order_in_the_chat_is_reminded_the_day_before_its_deadline(desk):
    _, line_user = linked_student(desk, "24M1001")
    line_says(desk, line_user, "在学証明書を1通、学内印刷機で、コンビニ払いで")
    line_taps(desk, line_user, "form:set:confirm:yes")
    with desk.core.transaction() as session:
        [payment] = session.scalars(select(Payment)).all()
        number = session.get(Order, payment.order_id).number
    assert "払込票番号" in str(desk.line.delivered_texts())
    assert plan(desk) == [("payment_deadline", "scheduled", "Thu 26 10:00")]

    desk.clock.set(at(26, 9, 59))
    assert send_due(desk) == {}
    before = len(desk.line.deliveries())
    desk.clock.set(at(26, 10, 0))
    assert send_due(desk) == {"payment_deadline": Status.SENT}
    [push] = pushes(desk)
    assert push.body["to"] == line_user and len(desk.line.deliveries()) == before + 1
    said = text_of(push)
    assert number in said and "2026年11月27日（金）23:59" in said and "現金のみ" in said
    assert "コンビニ" in said and retry_keys([push])
    assert send_due(desk) == {} and len(pushes(desk)) == 1


def test_a_deadline_reminder_is_cancelled_once_paid(desk):
    student_id, _ = linked_student(desk, "24M1001")
    now = desk.core.now()
    with desk.core.transaction() as session:
        placed = create_order(session, student=session.get(Student, student_id), lines=[OrderLine("transcript")],
                              delivery=DeliveryMethod.MAIL, payment=PaymentMethod.CONVENIENCE_STORE,
                              profile=desk.core.profile, gateway=desk.core.payments, now=now, address=SAMPLE_ADDRESS)
        assert schedule_payment_deadline(session, placed.payment, placed.order, now) is not None
        reference = placed.payment.reference
    desk.clock.set(at(25, 18, 0))
    with desk.core.transaction() as session:
        mark_paid(session, reference, desk.core.now())

    desk.clock.set(at(26, 10, 0))
    assert send_due(desk) == {"payment_deadline": Status.CANCELLED}
    assert pushes(desk) == [] and row(desk, Kind.PAYMENT_DEADLINE).outcome == "payment is paid"


# --- the print number before it expires -----------------------------------------------------------------------

def print_order_paid(desk: Desk, line_user: str) -> tuple[str, str]:
    """A convenience-store print order placed in the LINE chat and paid; its number and print number."""
    line_says(desk, line_user, "成績証明書を1通、コンビニで印刷して、クレジットカードで")
    line_taps(desk, line_user, "form:set:confirm:yes")
    with desk.core.transaction() as session:
        [payment] = session.scalars(select(Payment)).all()
        desk.core.record_payment(session, payment.reference)
        order = session.get(Order, payment.order_id)
        return order.number, order.fulfilment.print_number


def test_a_paid_print_order_is_reminded_of_its_number_the_day_before_it_expires_once(desk):
    _, line_user = linked_student(desk, "24M1001")
    number, print_number = print_order_paid(desk, line_user)
    assert plan(desk) == [("print_expiring", "scheduled", "Mon 30 10:00")]

    desk.clock.set(at(30, 9, 59))
    assert send_due(desk) == {}
    desk.clock.set(at(30, 10, 0))
    assert send_due(desk) == {"print_expiring": Status.SENT}
    [push] = pushes(desk, to=line_user)[-1:]
    said = text_of(push)
    assert number in said and print_number in said and "2026年12月1日（火）23:59" in said and retry_keys([push])
    assert "intent:order_status" in quick_replies(push).values()
    sent = len(pushes(desk))
    assert send_due(desk) == {} and len(pushes(desk)) == sent, "reminded twice"


def test_a_print_reminder_is_cancelled_once_printed(desk):
    _, line_user = linked_student(desk, "24M1001")
    number, _ = print_order_paid(desk, line_user)
    with desk.core.transaction() as session:
        order = find_order(session, number)
        advance(session, order, OrderStatus.PROCESSING, desk.core.now(), "staff:test")
        advance(session, order, OrderStatus.PRINTED, desk.core.now(), "staff:test")
    sent = len(pushes(desk))
    desk.clock.set(at(30, 10, 0))
    assert send_due(desk) == {"print_expiring": Status.CANCELLED}
    assert len(pushes(desk)) == sent and row(desk, Kind.PRINT_EXPIRING).outcome == "order is printed"


def test_a_student_who_prefers_english_is_reminded_in_english(desk):
    student_id, line_user = linked_student(desk, "24M1001", language=Language.EN)  # no conversation yet
    now = desk.core.now()
    with desk.core.transaction() as session:
        placed = create_order(session, student=session.get(Student, student_id), lines=[OrderLine("transcript")],
                              delivery=DeliveryMethod.MAIL, payment=PaymentMethod.CONVENIENCE_STORE,
                              profile=desk.core.profile, gateway=desk.core.payments, now=now, address=SAMPLE_ADDRESS)
        schedule_payment_deadline(session, placed.payment, placed.order, now)
        number = placed.order.number
    desk.clock.set(at(26, 10, 0))
    assert send_due(desk) == {"payment_deadline": Status.SENT}
    [push] = pushes(desk, line_user)
    assert number in text_of(push) and "Fri, Nov 27, 2026, 23:59" in text_of(push)
    assert "cash only" in text_of(push) and "stop reminders" in text_of(push)


# --- a one-time link about to expire ------------------------------------------------------------------------------

def asks_for_a_reset_link(desk: Desk, line_user: str) -> None:
    line_says(desk, line_user, "第2パスワードを忘れました")
    line_taps(desk, line_user, "form:start:reset")  # an identified student is not asked for their number


def test_a_reset_link_asked_for_on_line_is_nudged_once_25_minutes_later(desk, inbox):
    _, line_user = linked_student(desk, "24M1001", email="taro@students.example.ac.jp")
    asks_for_a_reset_link(desk, line_user)
    assert inbox.only()["To"] == "taro@students.example.ac.jp"
    nudge = row(desk, Kind.LINK_EXPIRING)
    assert (nudge.channel, nudge.recipient, nudge.lang) == ("line", line_user, "ja")
    assert plan(desk) == [("link_expiring", "scheduled", "Tue 24 10:25")]
    answered = len(desk.line.deliveries())

    desk.clock.advance(minutes=24, seconds=59)
    assert send_due(desk) == {}
    desk.clock.advance(seconds=1)
    assert send_due(desk) == {"link_expiring": Status.SENT}
    [push] = pushes(desk)
    assert push.body["to"] == line_user and len(desk.line.deliveries()) == answered + 1
    assert "30分で使えなくなります" in text_of(push)
    assert quick_replies(push)["新しいリンクを申し込む"] == "intent:second_password_reset"
    assert retry_keys([push])
    desk.clock.advance(minutes=1)
    assert send_due(desk) == {} and len(pushes(desk)) == 1


def test_a_used_link_is_not_nudged(desk, inbox):
    _, line_user = linked_student(desk, "24M1001", email="taro@students.example.ac.jp")
    asks_for_a_reset_link(desk, line_user)
    token = TOKEN_IN_URL.search(inbox.body(inbox.only()))[1]
    desk.clock.advance(minutes=10)
    reset_second_password(desk.core, token, NEW_PASSWORD, NEW_PASSWORD)

    desk.clock.advance(minutes=15)
    assert send_due(desk) == {"link_expiring": Status.CANCELLED}
    assert pushes(desk) == [] and row(desk, Kind.LINK_EXPIRING).outcome == "link used or replaced"


def test_a_link_asked_for_without_a_linked_account_gets_no_reminder_row(desk, inbox):
    with desk.core.transaction() as session:
        create_student(session, student_number="24M1001", department="medicine", year=2, now=desk.core.now(),
                       email="taro@students.example.ac.jp")
    # The web chat (a typed number still identifies there) and an unlinked LINE user typing the number: the
    # mail goes, but a nudge would tell whoever typed the number that the account exists.
    desk.web_chat("web-user-1", "第2パスワードを忘れました")
    assert desk.http.post("/api/chat", json={"user": "web-user-1", "payload": "form:start:reset"}).status_code == 200
    desk.web_chat("web-user-1", "24M1001")
    desk.work()  # the worker mails the link now, before the clock moves on
    desk.clock.advance(minutes=2)  # past the per-minute limit on reset mails
    stranger = user_id()
    line_says(desk, stranger, "第2パスワードを忘れました")
    line_taps(desk, stranger, "form:start:reset")
    line_says(desk, stranger, "24M1001")
    assert len(inbox.messages) == 2
    assert rows(desk) == []


# --- the parking-fee period, in bulk --------------------------------------------------------------------------------

def add_line_students(desk: Desk, specs: list[tuple[int, Language, bool, bool]]) -> list[str]:
    """Students with linked LINE accounts, inserted in bulk: (year, language, following, reminders on) each;
    their LINE user ids in the same order."""
    now = desk.core.now()
    numbers = [f"{20 + index // 10000}P{index % 10000:04d}" for index in range(len(specs))]
    with desk.core.transaction() as session:
        session.execute(insert(Student), [
            {"student_number": number, "department": "medicine", "year": year, "preferred_language": lang,
             "reminders_enabled": enabled, "created_at": now, "updated_at": now}
            for number, (year, lang, _, enabled) in zip(numbers, specs, strict=True)])
        ids = {number: student_id for number, student_id in session.execute(
            select(Student.student_number, Student.id).where(Student.student_number.in_(numbers)))}
        users = [f"U{index:032x}" for index in range(len(specs))]
        session.execute(insert(ChannelAccount), [
            {"channel": "line", "external_id": user, "student_id": ids[number], "following": following,
             "linked_at": now, "created_at": now, "updated_at": now}
            for user, number, (_, _, following, _) in zip(users, numbers, specs, strict=True)])
    return users


def test_the_parking_fee_period_is_multicast_to_following_students_in_year_two_and_above(desk):
    specs = ([(2 + index % 5, Language.JA, True, True) for index in range(1001)]
             + [(3, Language.EN, True, True) for _ in range(200)]
             + [(1, Language.JA, True, True) for _ in range(40)]  # year 1: not concerned
             + [(2, Language.JA, False, True) for _ in range(15)]  # blocked the account
             + [(4, Language.EN, True, False) for _ in range(12)])  # turned reminders off
    users = add_line_students(desk, specs)
    expected = {Language.JA: set(users[:1001]), Language.EN: set(users[1001:1201])}
    with desk.core.transaction() as session:  # a Slack-linked student in year 3 gets a direct message
        slack_student = create_student(session, student_number="23S0001", department="medicine", year=3,
                                       now=desk.core.now())
        session.add(ChannelAccount(channel="slack", external_id=payloads.STUDENT, student_id=slack_student.id,
                                   following=True, linked_at=desk.core.now(), created_at=desk.core.now(),
                                   updated_at=desk.core.now()))
    with desk.core.transaction() as session:
        schedule_periods(session, desk.core.profile, 2027, desk.core.now())
    assert plan(desk) == [
        ("insurance_period", "scheduled", "Sat 20 10:00"), ("parking_period", "scheduled", "Tue 01 10:00")]

    desk.clock.set(at(1, 10, 0, month=6, year=2027))
    # The insurance period opened in March: far past its grace, it is recorded missed, never sent late.
    assert send_due(desk) == {"insurance_period": Status.MISSED, "parking_period": Status.SENT}

    calls = desk.line.calls_to(MULTICAST)
    assert calls and all(call.status == 200 and call.delivered for call in calls)
    assert all(len(call.body["to"]) <= MULTICAST_MAX for call in calls)
    by_lang: dict[Language, list[str]] = {Language.JA: [], Language.EN: []}
    for call in calls:
        [message] = call.messages
        lang = Language.JA if "学生駐車場使用料" in message["text"] else Language.EN
        by_lang[lang] += call.body["to"]
    assert sorted(len(call.body["to"]) for call in calls) == [1, 200, 500, 500]
    assert {lang: set(users) for lang, users in by_lang.items()} == expected
    assert sum(len(users) for users in by_lang.values()) == 1201, "a student got it twice"
    ja = next(call for call in calls if "学生駐車場使用料" in call.messages[0]["text"])
    assert "6月1日〜6月10日" in ja.messages[0]["text"] and "2年次生以上" in ja.messages[0]["text"]
    en = next(call for call in calls if "Student parking fee" in call.messages[0]["text"])
    assert "Jun 1 to Jun 10" in en.messages[0]["text"] and "stop reminders" in en.messages[0]["text"]
    assert len(set(retry_keys(calls))) == len(calls)
    assert pushes(desk) == []
    [dm] = [post for post in desk.slack.posts() if post.params.get("channel") == payloads.STUDENT]
    assert "学生駐車場使用料" in dm.params["text"]
    assert row(desk, Kind.PARKING_PERIOD).outcome == "5 message(s) queued"

    # Sent once: the same reminder again, and the worker again, send nothing more.
    assert send_reminder(desk.core, row(desk, Kind.PARKING_PERIOD).id) is None
    desk.work()
    assert len(desk.line.calls_to(MULTICAST)) == len(calls)


def test_a_multicast_refused_by_the_rate_limit_waits_for_retry_after_and_is_delivered_once(desk):
    users = add_line_students(desk, [(2, Language.JA, True, True) for _ in range(MULTICAST_MAX + 1)])
    with desk.core.transaction() as session:
        schedule_periods(session, desk.core.profile, 2027, desk.core.now())
    fake_seconds = [0.0]
    desk.line.limit_rate(1, retry_after=3, clock=lambda: fake_seconds[0])  # one call a second, by the test's clock

    desk.clock.set(at(1, 10, 0, month=6, year=2027))
    send_due(desk)
    assert [call.status for call in desk.line.calls_to(MULTICAST)] == [200, 429]
    desk.clock.advance(seconds=2)
    fake_seconds[0] += 2
    desk.inbox.drain()
    assert len(desk.line.calls_to(MULTICAST)) == 2, "retried before Retry-After"
    desk.clock.advance(seconds=1)
    desk.inbox.drain()
    assert [call.status for call in desk.line.calls_to(MULTICAST)] == [200, 429, 200]
    delivered = [user for call in desk.line.deliveries() for user in call.body["to"]]
    assert sorted(delivered) == sorted(users) and desk.line.throttled == 1


# --- quiet hours ----------------------------------------------------------------------------------------------------

def test_a_reminder_due_at_22_is_sent_at_8_the_next_morning(desk):
    student_id, line_user = linked_student(desk, "24M1001")
    number = processing_order(desk, student_id)
    desk.clock.set(at(24, 22, 0))

    command(desk, f"ready {number}")
    desk.work()
    assert pushes(desk) == [], "pushed in the quiet hours"
    ready_now = row(desk, Kind.READY_NOW)
    assert (ready_now.status, ready_now.deferred) == ("scheduled", True)
    assert ready_now.due_at == at(25, 8, 0)

    for when in (at(24, 23, 59), at(25, 3, 0), at(25, 7, 59)):
        desk.clock.set(when)
        assert send_due(desk) == {}
    desk.clock.set(at(25, 8, 0))
    assert send_due(desk) == {"ready_now": Status.SENT}
    [push] = pushes(desk)
    assert push.body["to"] == line_user and "受取可能" in text_of(push)


def test_a_reminder_reached_late_at_night_waits_for_the_morning(desk):
    # The scheduler was down from before 10:00 until 21:30: the parking-fee period is within its grace, but
    # nothing is pushed at night.
    [line_user] = add_line_students(desk, [(2, Language.JA, True, True)])
    with desk.core.transaction() as session:
        schedule_periods(session, desk.core.profile, 2027, desk.core.now())
    desk.clock.set(at(1, 21, 30, month=6, year=2027))
    assert send_due(desk) == {"insurance_period": Status.MISSED, "parking_period": None}
    parking = row(desk, Kind.PARKING_PERIOD)
    assert (parking.status, parking.due_at, parking.deferred) == ("scheduled", at(2, 8, 0, month=6, year=2027), True)
    desk.clock.set(at(2, 7, 59, month=6, year=2027))
    assert send_due(desk) == {} and desk.line.calls == []
    desk.clock.set(at(2, 8, 0, month=6, year=2027))
    assert send_due(desk) == {"parking_period": Status.SENT}
    [call] = desk.line.calls_to(MULTICAST)
    assert call.body["to"] == [line_user]


# --- opting out -----------------------------------------------------------------------------------------------------

def test_a_student_who_stops_reminders_is_skipped_and_gets_them_again_after_turning_them_on(desk):
    student_id, line_user = linked_student(desk, "24M1001")
    number = processing_order(desk, student_id)

    line_says(desk, line_user, "通知停止")
    assert "お知らせの送信を停止しました" in desk.line.delivered_texts()[-1]
    with desk.core.transaction() as session:
        assert session.get(Student, student_id).reminders_enabled is False
    before = len(desk.line.deliveries())
    command(desk, f"ready {number}")
    desk.work()
    assert len(desk.line.deliveries()) == before
    assert (row(desk, Kind.READY_NOW).status, row(desk, Kind.READY_NOW).outcome) == (
        "skipped", "the student turned reminders off")

    line_says(desk, line_user, "通知再開")
    assert "お知らせの送信を再開しました" in desk.line.delivered_texts()[-1]
    desk.clock.set(at(25, 13, 0))
    assert send_due(desk) == {"ready_pickup_day": Status.SENT}
    [push] = pushes(desk)
    assert push.body["to"] == line_user and number in text_of(push)


def test_stop_reminders_in_english_and_an_unlinked_user_is_told_reminders_need_a_linked_account(desk):
    student_id, line_user = linked_student(desk, "24M1001", language=Language.EN)
    line_says(desk, line_user, "Stop reminders, please.")
    assert "I have stopped sending you reminders" in desk.line.delivered_texts()[-1]
    with desk.core.transaction() as session:
        assert session.get(Student, student_id).reminders_enabled is False
    line_says(desk, line_user, "start reminders")
    assert "Reminders are on again" in desk.line.delivered_texts()[-1]
    with desk.core.transaction() as session:
        assert session.get(Student, student_id).reminders_enabled is True

    stranger = user_id()
    line_says(desk, stranger, "通知停止")
    assert "ご本人の確認ができた方" in desk.line.delivered_texts()[-1]


# --- unfollowed -----------------------------------------------------------------------------------------------------

def test_a_student_who_blocked_the_account_gets_nothing(desk, inbox):
    student_id, line_user = linked_student(desk, "24M1001", email="taro@students.example.ac.jp")
    number = processing_order(desk, student_id)
    asks_for_a_reset_link(desk, line_user)
    desk.line_post(desk.events.unfollow(line_user))
    desk.work()
    desk.line.reset()

    assert "学生には通知していません（no reachable chat account）" in command(desk, f"ready {number}")
    desk.clock.advance(minutes=25)
    sent = send_due(desk)
    assert sent == {"link_expiring": Status.SKIPPED}
    desk.clock.set(at(25, 13, 0))
    assert send_due(desk) == {"ready_pickup_day": Status.SKIPPED}
    assert desk.line.calls == [], "a blocked account was pushed to"
    assert Counter(r.status for r in rows(desk)) == Counter({"skipped": 3, "scheduled": 1})



# --- a batch, as the scheduler's sweep sends them ---------------------------------------------------------------


def ready_order(desk: Desk, student_id: int, status: OrderStatus = OrderStatus.READY) -> str:
    """A paid window-pickup order moved to `status` (ready, or collected after that); its number."""
    number = processing_order(desk, student_id)
    with desk.core.transaction() as session:
        order = find_order(session, number)
        advance(session, order, OrderStatus.READY, desk.core.now(), "staff:test")
        if status is OrderStatus.COLLECTED:
            advance(session, order, OrderStatus.COLLECTED, desk.core.now(), "staff:test")
    return number


def one_of_each_outcome(desk: Desk) -> dict[str, tuple[int, str]]:
    """Reminders due now that end in every way a due reminder can, by name: their ids and LINE users."""
    made: dict[str, tuple[int, str]] = {}
    now = desk.core.now()
    for name, number in (("sent", "24M2001"), ("collected", "24M2002"), ("stopped", "24M2003"),
                         ("blocked", "24M2004"), ("late", "24M2005")):
        student_id, line_user = linked_student(desk, number, language=Language.EN if name == "sent" else Language.JA)
        order = ready_order(desk, student_id, OrderStatus.COLLECTED if name == "collected" else OrderStatus.READY)
        due = now - timedelta(days=2) if name == "late" else now  # READY_NOW's grace is 12 hours
        with desk.core.transaction() as session:
            if name == "stopped":
                set_reminders(session, student_id, False)
            if name == "blocked":
                session.execute(update(ChannelAccount).where(ChannelAccount.external_id == line_user)
                                .values(following=False))
            reminder = schedule(session, kind=Kind.READY_NOW, key=f"ready_now:{order}", due_at=due, now=now,
                                student_id=student_id, subject=order)
            made[name] = (reminder.id, line_user)
    with desk.core.transaction() as session:
        period = schedule(session, kind=Kind.PARKING_PERIOD, key="parking_period:batch", due_at=now, now=now,
                          subject="parking_fee")
        made["period"] = (period.id, "")
    return made


EXPECTED = {
    "sent": ("sent", "1 message(s) queued"),
    "collected": ("cancelled", "order is collected"),
    "stopped": ("skipped", "the student turned reminders off"),
    "blocked": ("skipped", "no reachable chat account"),
    "late": ("missed", "past its grace"),
    "period": ("sent", "2 message(s) queued"),  # multicasts in Japanese and English, to the students in year 2+
}


@pytest.mark.parametrize("way", ["batch", "one_by_one"])
def test_a_batch_ends_each_reminder_as_sending_it_alone_does(desk, way):
    made = one_of_each_outcome(desk)
    ids = {reminder_id: name for name, (reminder_id, _) in made.items()}

    if way == "batch":
        batch = send_batch(desk.core, desk.core.now())
        assert batch.seen == len(made)
        ended = {ids[reminder_id]: status.value for reminder_id, status in batch.ended.items()}
    else:
        ended = {name: send_reminder(desk.core, reminder_id).value for name, (reminder_id, _) in made.items()}
    desk.work()

    assert ended == {name: status for name, (status, _) in EXPECTED.items()}
    outcomes = {ids[r.id]: (r.status, r.outcome) for r in rows(desk)}
    assert {name: status for name, (status, _) in outcomes.items()} == ended
    assert all(EXPECTED[name][1] in outcome for name, (_, outcome) in outcomes.items()), outcomes
    [push] = pushes(desk)
    assert push.body["to"] == made["sent"][1] and "ready" in text_of(push), "in the student's own language"
    # Year 2 students whose accounts follow and who want reminders (not the stopped or the blocked one).
    assert sorted(sorted(call.body["to"]) for call in desk.line.calls_to(MULTICAST)) == sorted(
        [[made["sent"][1]], sorted([made["collected"][1], made["late"][1]])])
    assert send_batch(desk.core, desk.core.now()).seen == 0, "nothing is left due"


def test_a_batch_reached_at_night_ends_what_it_can_and_moves_the_rest_to_the_morning(desk):
    desk.clock.set(at(24, 20, 0))
    made = one_of_each_outcome(desk)
    ids = {reminder_id: name for name, (reminder_id, _) in made.items()}
    desk.clock.set(at(24, 21, 30))  # the scheduler was down: reached in the quiet hours, within the grace

    batch = send_batch(desk.core, desk.core.now())
    assert {ids[reminder_id]: status.value for reminder_id, status in batch.ended.items()} == {
        "collected": "cancelled", "stopped": "skipped", "late": "missed"}
    waiting = {ids[r.id]: (r.status, r.due_at, r.deferred) for r in rows(desk) if r.status == "scheduled"}
    assert waiting == {name: ("scheduled", at(25, 8, 0), True) for name in ("sent", "blocked", "period")}
    desk.work()
    assert desk.line.calls == [], "pushed at night"

    desk.clock.set(at(25, 8, 0))
    assert {ids[i]: s.value for i, s in send_batch(desk.core, desk.core.now()).ended.items()} == {
        "sent": "sent", "blocked": "skipped", "period": "sent"}
    desk.work()
    assert [call.body["to"] for call in pushes(desk)] == [made["sent"][1]]


def test_a_big_batch_is_claimed_in_batches_and_each_student_gets_one_push(desk):
    students = [linked_student(desk, f"24M3{index:03d}") for index in range(25)]
    now = desk.core.now()
    with desk.core.transaction() as session:
        for index, (student_id, _) in enumerate(students):
            schedule(session, kind=Kind.LINK_EXPIRING if index % 5 == 0 else Kind.SHIPPED,
                     key=f"batch:{index}", due_at=now, now=now, student_id=student_id, subject="0")
    batches = []
    while (batch := send_batch(desk.core, now, limit=10)).seen:
        batches.append(batch)
    assert [batch.seen for batch in batches] == [10, 10, 5]
    # No order "0" and no link 0: every one is cancelled, each exactly once, with its own reason.
    assert Counter(status for batch in batches for status in batch.ended.values()) == {Status.CANCELLED: 25}
    assert Counter(r.outcome for r in rows(desk)) == {"order is None": 20, "link used or replaced": 5}
