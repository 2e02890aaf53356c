"""Retention: chat data older than the profile's retention is purged in batches (orders never), and a student
is forgotten: no table holds their number, email or name afterwards, and the accounting totals are unchanged."""

import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import String, Text, func, select

from core import orders
from core.conversations import ConversationState, record, save_state
from core.db import Base
from core.enums import Language, LinkPurpose, PaymentMethod
from core.fulfilment import mark_shipped
from core.handoffs import ClosedHow, Reason, close, open_ticket, relay_from_agent, relay_from_student
from core.jobs import DELIVER, enqueue
from core.models import (
    AccountLinkNonce,
    ChannelAccount,
    Conversation,
    HandoffMessage,
    HandoffTicket,
    InboundEvent,
    OneTimeLink,
    Order,
    OrderEvent,
    OrderItem,
    Payment,
    Reminder,
    Student,
    TranscriptEntry,
)
from core.orders import OrderLine
from core.profile import ProfileError, load_profile
from core.retention import forget_student, purge_expired
from core.students import create_student, find_student, set_second_password
from tests.samples import SAMPLE_ADDRESS

NUMBER, EMAIL, NAME = "24M1001", "taro.yamada@example.ac.jp", "山田 太郎"
OTHER = "25N2002"
LINE_USER = "U" + "a1" * 16
OTHER_LINE_USER = "U" + "b2" * 16
PATTERN = r"[0-9]{2}[A-Z][0-9]{4}"


# --- a student with a bit of everything ---------------------------------------------------------------


def _event(session, channel, event_id, payload, at, status="done"):
    session.add(InboundEvent(channel=channel, event_id=event_id, payload=json.dumps(payload), received_at=at,
                             next_attempt_at=at, status=status, attempts=1, sent_parts=0,
                             processed_at=at if status == "done" else None))


def _account(session, external_id, student_id, now):
    session.add(ChannelAccount(channel="line", external_id=external_id, student_id=student_id, following=True,
                               linked_at=now, created_at=now, updated_at=now))


def _paid_order(core, student, method=PaymentMethod.CREDIT_CARD):
    with core.transaction() as session:
        placed = orders.create_order(session, student=session.get(Student, student.id),
                                     lines=[OrderLine("enrollment_certificate", 2)], delivery="campus_printer",
                                     payment=method, profile=core.profile, gateway=core.payments, now=core.now())
        orders.mark_paid(session, placed.payment.reference, core.now())
        return placed.order.number


def populate(core) -> dict[str, object]:
    """The student to forget, with orders, links, chat accounts, conversations on LINE and the web chat, a
    handoff with relayed messages, reminders and stored events and jobs; and another student who keeps all."""
    now = core.now()
    with core.transaction() as session:
        student = create_student(session, student_number=NUMBER, department="medicine", year=3, now=now, name=NAME,
                                 email=EMAIL)
        set_second_password(session, student, "SecretPass2026", now)
        other = create_student(session, student_number=OTHER, department="nursing", year=2, now=now,
                               name="佐藤 花子", email="hanako@example.ac.jp")
        _account(session, LINE_USER, student.id, now)
        _account(session, OTHER_LINE_USER, other.id, now)
        session.add(OneTimeLink(student_id=student.id, purpose=LinkPurpose.SECOND_PASSWORD_RESET,
                                token_hash="f" * 64, email=EMAIL, created_at=now,
                                expires_at=now + timedelta(minutes=30)))
        session.add(AccountLinkNonce(nonce_hash="e" * 64, channel="line", student_id=student.id, created_at=now,
                                     expires_at=now + timedelta(minutes=10)))
        # Their LINE conversation, identified.
        line_conversation = f"line:{LINE_USER}"
        save_state(session, ConversationState(line_conversation, "line", LINE_USER, lang=Language.JA,
                                              student_id=student.id), now)
        record(session, line_conversation, "in", f"学籍番号は{NUMBER}です", now, student_number_pattern=PATTERN)
        record(session, line_conversation, "out", "ありがとうございます", now)
        # A web chat whose state expired (no student on it any more), where they typed their number full-width
        # and their address.
        save_state(session, ConversationState("web:browser-1", "web", "browser-1"), now)
        record(session, "web:browser-1", "in", "２４Ｍ１００１ です", now)
        record(session, "web:browser-1", "in", f"メールは {EMAIL.upper()} に変えたい", now)
        # The other student's conversation, naming the forgotten one as a classmate.
        save_state(session, ConversationState(f"line:{OTHER_LINE_USER}", "line", OTHER_LINE_USER,
                                              student_id=other.id), now)
        record(session, f"line:{OTHER_LINE_USER}", "in", f"友達の{NAME}さんも同じ質問です", now)
        # A handoff of their LINE conversation, with messages both ways (and their jobs).
        ticket, _ = open_ticket(session, conversation_id=line_conversation, channel="line", user_id=LINE_USER,
                                student_id=student.id, lang=Language.JA, reason=Reason.ASKED, topic=None,
                                bot_said=f"{NAME}様の学籍番号 {NUMBER}", now=now)
        relay_from_student(session, ticket, f"{NUMBER} の証明書が届きません", "line:m1", now,
                           student_number_pattern=PATTERN)
        relay_from_agent(session, ticket, f"{NAME}さん、確認します", "U0AGENT01", "slack:1", now,
                         student_number_pattern=PATTERN)
        # Reminders: one for them, one to their web conversation, one for the other student.
        for key, student_id, channel, recipient, conversation in (
                ("ready_now:X", student.id, None, None, None),
                ("link_expiring:1", None, "web", "browser-1", "web:browser-1"),
                ("ready_now:Y", other.id, None, None, None)):
            session.add(Reminder(kind="ready_now", key=key, student_id=student_id, channel=channel,
                                 recipient=recipient, conversation_id=conversation, due_at=now + timedelta(days=1),
                                 grace=3600, status="scheduled", created_at=now))
        # Stored events and jobs: their LINE webhook event, a job delivering to them, a pending multicast to
        # both students, and the other student's own event.
        _event(session, "line", "ev-1", {"type": "message", "source": {"type": "user", "userId": LINE_USER},
                                         "message": {"type": "text", "text": f"{NUMBER} です"}}, now)
        enqueue(session, DELIVER, "to-them", {"kind": "replies", "channel": "line", "user": LINE_USER,
                                              "conversation": line_conversation, "replies": []}, now)
        enqueue(session, DELIVER, "period", {"kind": "multicast", "channel": "line",
                                             "users": [LINE_USER, OTHER_LINE_USER], "replies": []}, now)
        _event(session, "line", "ev-2", {"type": "message", "source": {"type": "user", "userId": OTHER_LINE_USER},
                                         "message": {"type": "text", "text": f"{NAME}さんの件"}}, now)
    with core.transaction() as session:
        student, other = find_student(session, NUMBER), find_student(session, OTHER)
    orders_of_student = [_paid_order(core, student), _paid_order(core, student, PaymentMethod.CREDIT_CARD)]
    return {"student": student, "other": other, "orders": orders_of_student, "other_order": _paid_order(core, other)}


def text_cells(core) -> list[tuple[str, str, str]]:
    """Every text value of every table: (table, column, value)."""
    cells = []
    with core.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [column for column in table.columns if isinstance(column.type, (String, Text))]
            for row in connection.execute(select(*columns)) if columns else ():
                cells += [(table.name, column.name, value) for column, value in zip(columns, row, strict=True)
                          if isinstance(value, str)]
    return cells


def accounting(core) -> tuple:
    with core.transaction() as session:
        return (session.scalar(select(func.count(Order.id))), session.scalar(select(func.sum(Order.total_yen))),
                session.scalar(select(func.sum(Payment.amount_yen))),
                session.scalar(select(func.sum(OrderItem.copies * OrderItem.unit_price_yen))),
                session.scalar(select(func.count(OrderEvent.id))),
                sorted(session.execute(select(Order.number, Order.status, Order.total_yen, Order.paid_at)).all()))


def count(core, entity) -> int:
    with core.transaction() as session:
        return session.scalar(select(func.count()).select_from(entity)) or 0


# --- forgetting ---------------------------------------------------------------------------------------


def test_after_forgetting_no_table_holds_the_number_the_email_or_the_name(core, caplog):
    made = populate(core)
    before = accounting(core)
    hits = [cell for cell in text_cells(core)
            if any(needle in cell[2].upper() for needle in (NUMBER, "２４Ｍ１００１", EMAIL.upper()))
            or NAME in cell[2]]
    assert {table for table, _, _ in hits} >= {"students", "one_time_links", "transcript_entries", "handoff_messages",
                                               "handoff_tickets", "inbound_events"}, "the test data covers the tables"

    caplog.set_level(logging.INFO, logger="core.retention")
    with core.transaction() as session:
        result = forget_student(session, "２４ｍ-1001", now=core.now())  # typed any way

    assert result is not None
    leftovers = [cell for cell in text_cells(core)
                 if any(needle in cell[2].upper() for needle in (NUMBER, "２４Ｍ１００１", EMAIL.upper(),
                                                                   "TARO.YAMADA", LINE_USER.upper()))
                 or NAME in cell[2] or "山田" in cell[2]]
    assert leftovers == []
    assert accounting(core) == before, "orders, items, events and payments are all kept, amounts unchanged"
    with core.transaction() as session:
        assert set(session.scalars(select(Order.student_id).where(Order.number.in_(made["orders"])))) == {None}
        assert session.scalar(select(Order.student_id).where(Order.number == made["other_order"])) is not None
        assert session.get(Student, made["student"].id) is None
    assert result.orders_kept == 2
    assert result.deleted["students"] == 1 and result.deleted["conversations"] == 2
    # the ticket's two relayed messages and its "opened" event
    assert result.deleted["handoff_tickets"] == 1 and result.deleted["handoff_messages"] == 3
    assert result.deleted["channel_accounts"] == 1 and result.deleted["one_time_links"] == 1
    assert result.deleted["account_link_nonces"] == 1 and result.deleted["reminders"] == 2
    assert NUMBER not in caplog.text and "24*** 01" not in caplog.text and "24***01" in caplog.text


def test_the_other_student_keeps_everything_but_the_forgotten_name(core):
    populate(core)
    with core.transaction() as session:
        forget_student(session, NUMBER, now=core.now())
    with core.transaction() as session:
        other = find_student(session, OTHER)
        assert other is not None and other.email == "hanako@example.ac.jp"
        assert session.scalar(select(func.count(ChannelAccount.id))) == 1
        assert [conversation.id for conversation in session.scalars(select(Conversation))] == \
            [f"line:{OTHER_LINE_USER}"]
        assert [entry.text for entry in session.scalars(select(TranscriptEntry))] == \
            ["友達の[forgotten]さんも同じ質問です"]
        assert [reminder.key for reminder in session.scalars(select(Reminder))] == ["ready_now:Y"]
        payloads = {event.event_id: json.loads(event.payload) for event in session.scalars(select(InboundEvent))}
    assert payloads["period"]["users"] == [OTHER_LINE_USER], "the pending multicast still goes to the other student"
    assert payloads["ev-2"]["message"]["text"] == "[forgotten]さんの件"
    assert "ev-1" not in payloads and "to-them" not in payloads
    assert not [key for key in payloads if key.startswith(("card:", "student:", "agent:"))], "the ticket's jobs go too"


def test_forgetting_twice_finds_nobody_the_second_time(core):
    populate(core)
    with core.transaction() as session:
        assert forget_student(session, NUMBER, now=core.now()) is not None
    with core.transaction() as session:
        assert forget_student(session, NUMBER, now=core.now()) is None


def test_a_student_without_chats_or_orders_is_forgotten_too(core):
    with core.transaction() as session:
        create_student(session, student_number="26M0001", department="medicine", year=1, now=core.now())
    with core.transaction() as session:
        result = forget_student(session, "26M0001", now=core.now())
    assert result is not None and result.deleted["students"] == 1 and result.orders_kept == 0
    assert count(core, Student) == 0


# --- the daily purge ----------------------------------------------------------------------------------


def aged(core, clock, days_ago: float) -> None:
    """Chat data of every purged kind, made `days_ago` days before the clock's time."""
    now = clock.now()
    at = now - timedelta(days=days_ago)
    tag = f"{days_ago:g}"
    with core.transaction() as session:
        student = find_student(session, NUMBER) or create_student(session, student_number=NUMBER,
                                                                  department="medicine", year=3, now=at, email=EMAIL)
        conversation = f"web:old-{tag}"
        save_state(session, ConversationState(conversation, "web", f"old-{tag}"), at)
        record(session, conversation, "in", "こんにちは", at)
        record(session, conversation, "out", "こんにちは。", at)
        _event(session, "line", f"done-{tag}", {"n": 1}, at)
        _event(session, "line", f"failed-{tag}", {"n": 2}, at, status="failed")
        _event(session, "line", f"pending-{tag}", {"n": 3}, at, status="pending")  # never purged unhandled
        closed, _ = open_ticket(session, conversation_id=conversation, channel="web", user_id=f"old-{tag}",
                                student_id=None, lang=Language.JA, reason=Reason.ASKED, topic=None, bot_said="…",
                                now=at)
        relay_from_student(session, closed, "help", f"web:{tag}:1", at)
        close(session, closed.id, ClosedHow.RESOLVED, at)
        still_open, _ = open_ticket(session, conversation_id=f"web:open-{tag}", channel="web", user_id="x",
                                    student_id=None, lang=Language.JA, reason=Reason.ASKED, topic=None, bot_said="…",
                                    now=at)
        for status in ("sent", "scheduled"):
            session.add(Reminder(kind="ready_now", key=f"{status}-{tag}", student_id=student.id, due_at=at, grace=60,
                                 status=status, created_at=at, done_at=at if status == "sent" else None))
        session.add(OneTimeLink(student_id=student.id, purpose=LinkPurpose.SECOND_PASSWORD_RESET,
                                token_hash=f"{tag:0>64}"[-64:], email=EMAIL, created_at=at,
                                expires_at=at + timedelta(minutes=30)))
        session.add(AccountLinkNonce(nonce_hash=f"{tag:x>64}"[-64:], channel="line", student_id=student.id,
                                     created_at=at, expires_at=at + timedelta(minutes=10)))
        assert still_open is not None


def test_the_purge_deletes_what_is_older_than_the_retention_and_keeps_the_rest(core, clock, caplog):
    aged(core, clock, 181)
    aged(core, clock, 179)
    with core.transaction() as session:
        student = find_student(session, NUMBER)
    order = _paid_order(core, student)
    caplog.set_level(logging.INFO, logger="core.retention")

    lines = count(core, TranscriptEntry)
    dry = purge_expired(core, dry_run=True)
    assert count(core, TranscriptEntry) == lines, "a dry run deletes nothing"
    result = purge_expired(core, batch=1)  # one row per transaction: the batching loop is exercised

    assert result.deleted == dry.deleted
    assert result.cutoff == clock.now() - timedelta(days=180)
    assert dict(result.deleted) == {"transcript_entries": 2, "conversations": 1, "inbound_events": 2,
                                    # a relayed message, and the ticket's opened and taken events
                                    "handoff_tickets": 1, "handoff_messages": 3, "reminders": 1,
                                    "one_time_links": 1, "account_link_nonces": 1, "order_addresses": 0}
    with core.transaction() as session:
        assert {entry.conversation_id for entry in session.scalars(select(TranscriptEntry))} == {"web:old-179"}
        assert sorted(session.scalars(select(InboundEvent.event_id).where(InboundEvent.channel == "line"))) == \
            ["done-179", "failed-179", "pending-179", "pending-181"]
        assert session.scalar(select(func.count(HandoffTicket.id)).where(HandoffTicket.status != "resolved")) == 2
        assert sorted(session.scalars(select(Reminder.key))) == ["scheduled-179", "scheduled-181", "sent-179"]
        assert session.scalar(select(func.count(HandoffMessage.id)).where(HandoffMessage.direction != "event")) == 1
        assert session.scalar(select(Order.number)) == order, "orders are never purged"
    assert "retention (180 days" in caplog.text and "transcript_entries 2" in caplog.text
    assert purge_expired(core).total == 0, "a second run finds nothing"


def test_forgetting_a_student_clears_the_address_of_their_mail_order(core):
    with core.transaction() as session:
        student = create_student(session, student_number=NUMBER, department="medicine", year=3, now=core.now())
        number = orders.create_order(session, student=student, lines=[OrderLine("transcript")], delivery="mail",
                                     payment=PaymentMethod.PAYPAY, profile=core.profile, gateway=core.payments,
                                     now=core.now(), address=SAMPLE_ADDRESS).order.number
    with core.transaction() as session:
        forget_student(session, NUMBER, now=core.now())
    with core.transaction() as session:
        order = session.scalars(select(Order).where(Order.number == number)).one()
        assert order.mailing_address is None and order.student_id is None and order.total_yen == 200


def test_a_mail_orders_address_goes_once_the_order_is_done_and_old_and_the_order_stays(core, clock):
    with core.transaction() as session:
        student = create_student(session, student_number=NUMBER, department="medicine", year=3, now=core.now())

    def mail_order(shipped: bool) -> str:
        with core.transaction() as session:
            placed = orders.create_order(session, student=session.get(Student, student.id),
                                         lines=[OrderLine("transcript")], delivery="mail",
                                         payment=PaymentMethod.CREDIT_CARD, profile=core.profile,
                                         gateway=core.payments, now=core.now(), address=SAMPLE_ADDRESS)
            core.record_payment(session, placed.payment.reference)
            if shipped:
                mark_shipped(session, placed.order, core.now(), actor="staff:test")
            return placed.order.number

    old_sent, old_waiting = mail_order(shipped=True), mail_order(shipped=False)
    clock.advance(days=2)
    recent_sent = mail_order(shipped=True)
    clock.advance(days=179)  # the first two are 181 days old, the last 179

    assert purge_expired(core, dry_run=True).deleted["order_addresses"] == 1
    assert purge_expired(core).deleted["order_addresses"] == 1
    with core.transaction() as session:
        kept = dict(session.execute(select(Order.number, Order.mailing_address)).all())
    assert kept[old_sent] is None, "sent half a year ago: the address is no longer needed"
    assert kept[old_waiting] is not None and kept[recent_sent] is not None
    assert purge_expired(core).deleted["order_addresses"] == 0


def test_the_retention_comes_from_the_profile(core, clock):
    aged(core, clock, 40)
    assert purge_expired(core, dry_run=True).total == 0
    short = core.profile.model_copy(update={"retention_days": 30})
    core.profile = short
    assert purge_expired(core).deleted["transcript_entries"] == 2


def test_a_day_of_retention_is_measured_from_the_clock(core, clock):
    aged(core, clock, 1)
    assert purge_expired(core, days=1, dry_run=True).total == 0, "exactly one day old is kept"
    clock.advance(seconds=1)
    assert purge_expired(core, days=1).deleted["transcript_entries"] == 2


@pytest.mark.parametrize("value", [0, -5])
def test_the_profile_refuses_a_retention_of_no_days(tmp_path, value):
    from core.profile import SHIPPED_PROFILE

    text = SHIPPED_PROFILE.read_text(encoding="utf-8").replace("retention_days: 180", f"retention_days: {value}")
    path = tmp_path / "profile.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=r"retention_days: .*greater than 0"):
        load_profile(path)


def test_the_shipped_profile_keeps_chats_180_days():
    assert load_profile().retention_days == 180


def test_a_profile_without_the_key_keeps_the_default(tmp_path):
    from core.profile import SHIPPED_PROFILE

    text = "\n".join(line for line in SHIPPED_PROFILE.read_text(encoding="utf-8").splitlines()
                     if not line.startswith("retention_days"))
    path = tmp_path / "profile.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_profile(path).retention_days == 180


# --- the migration that lets orders outlive their student ---------------------------------------------


def test_the_migration_keeps_every_orders_items_events_and_payments_on_sqlite(tmp_path):
    """SQLite alters orders by copying the table; with foreign keys on, dropping the old copy would delete the
    orders' children by cascade: the migration must bring them through, both ways."""
    from sqlalchemy import text

    from core import migrate
    from core.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'orders.sqlite3'}")
    migrate.upgrade(engine, "0007")
    at = "2026-01-05 01:00:00"
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO students (id, student_number, department, year, preferred_language, reminders_enabled, "
            "created_at, updated_at) VALUES (1, '24M1001', 'medicine', 3, 'ja', 1, :at, :at)"), {"at": at})
        connection.execute(text(
            "INSERT INTO orders (id, number, student_id, delivery_method, payment_method, status, total_yen, "
            "created_at, updated_at) VALUES (1, 'AAAA-BBBB', 1, 'mail', 'credit_card', 'paid', 800, :at, :at)"),
            {"at": at})
        connection.execute(text("INSERT INTO order_items (order_id, item_code, copies, unit_price_yen) "
                                "VALUES (1, 'transcript', 2, 400)"))
        connection.execute(text("INSERT INTO order_events (order_id, to_status, at, actor) "
                                "VALUES (1, 'paid', :at, 'gateway')"), {"at": at})
        connection.execute(text("INSERT INTO payments (order_id, gateway, reference, method, amount_yen, status, "
                                "created_at) VALUES (1, 'sandbox', 'ref-1', 'credit_card', 800, 'paid', :at)"),
                           {"at": at})

    def children() -> tuple[int, ...]:
        with engine.connect() as connection:
            return tuple(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                         for table in ("orders", "order_items", "order_events", "payments"))

    migrate.upgrade(engine, "0008")
    assert children() == (1, 1, 1, 1)
    migrate.downgrade(engine, "0007")
    assert children() == (1, 1, 1, 1), "an order with its student comes back down whole"
    migrate.upgrade(engine, "0008")
    with engine.begin() as connection:
        connection.execute(text("UPDATE orders SET student_id = NULL"))  # as forgetting leaves it
    migrate.downgrade(engine, "0007")
    assert children() == (0, 0, 0, 0), "the older schema cannot hold an order without a student"
    engine.dispose()
