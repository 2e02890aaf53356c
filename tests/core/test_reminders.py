"""Reminder rows: the quiet hours, one row per key, the plans for a ready order, a payment deadline and a
link, the yearly periods, relevance at sending time, and one claim per reminder."""

from datetime import datetime, timedelta

import pytest

from core import orders, reminders
from core.clock import TOKYO
from core.enums import DeliveryMethod, OrderStatus, PaymentMethod
from core.models import Order
from core.orders import OrderLine
from core.reminders import Kind, Status
from tests.core.test_orders import add_student, place

TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)


@pytest.mark.parametrize(("at", "expected", "moved"), [
    ((20, 59), (24, 20, 59), False),
    ((21, 0), (25, 8, 0), True),
    ((23, 30), (25, 8, 0), True),
    ((3, 0), (24, 8, 0), True),
    ((8, 0), (24, 8, 0), False),
])
def test_nothing_is_due_in_the_quiet_hours(at, expected, moved):
    when, deferred = reminders.outside_quiet_hours(datetime(2026, 11, 24, *at, tzinfo=TOKYO))
    assert (when.day, when.hour, when.minute, deferred) == (*expected, moved)


def test_a_key_is_scheduled_once(core):
    with core.transaction() as session:
        first = reminders.schedule(session, kind=Kind.READY_NOW, key="ready_now:X", due_at=TUESDAY, now=TUESDAY)
        again = reminders.schedule(session, kind=Kind.READY_NOW, key="ready_now:X", due_at=TUESDAY, now=TUESDAY)
        assert first is not None and again is None


def ready_order(core, clock):
    student = add_student(core)
    placed = place(core, student, lines=(OrderLine("student_id_reissue", 1),), delivery=DeliveryMethod.WINDOW_PICKUP)
    with core.transaction() as session:
        order = session.get(Order, placed.order.id)
        orders.mark_paid(session, order.payments[-1].reference, core.now())
        for status in (OrderStatus.PROCESSING, OrderStatus.READY):
            orders.advance(session, order, status, core.now(), actor="test")
    return placed.order.number


def test_a_ready_order_is_reminded_now_at_the_pickup_time_and_after_three_business_days(core, clock):
    # Paid Tuesday 10:00: the window opens Wednesday 13:00; three business days after Tuesday is Friday.
    number = ready_order(core, clock)
    with core.transaction() as session:
        order = orders.find_order(session, number)
        plan = reminders.schedule_ready(session, order, core.calendar, core.now())
        assert [(r.kind, r.due_at.astimezone(TOKYO).strftime("%a %H:%M")) for r in plan] == [
            ("ready_now", "Tue 10:00"), ("ready_pickup_day", "Wed 13:00"), ("ready_uncollected", "Fri 13:00")]
        assert reminders.schedule_ready(session, order, core.calendar, core.now()) == []
        assert reminders.why_not_relevant(session, plan[1], core.now()) is None
        orders.advance(session, order, OrderStatus.COLLECTED, core.now(), actor="test")
        assert reminders.why_not_relevant(session, plan[1], core.now()) == "order is collected"


def test_a_convenience_store_payment_is_reminded_at_ten_the_day_before_its_deadline(core):
    student = add_student(core)
    placed = place(core, student, lines=(OrderLine("transcript", 1),), delivery=DeliveryMethod.CONVENIENCE_STORE,
                   payment=PaymentMethod.CONVENIENCE_STORE)
    with core.transaction() as session:
        order = session.get(Order, placed.order.id)
        payment = order.payments[-1]
        reminder = reminders.schedule_payment_deadline(session, payment, order, core.now())
        deadline = payment.deadline.astimezone(TOKYO)
        assert reminder.due_at.astimezone(TOKYO) == datetime.combine(
            deadline.date() - timedelta(days=1), datetime.min.time().replace(hour=10), TOKYO)
        assert reminders.why_not_relevant(session, reminder, core.now()) is None
        orders.mark_paid(session, payment.reference, core.now())
        assert reminders.why_not_relevant(session, reminder, core.now()).startswith("payment is")


def test_the_yearly_periods_come_from_the_profile(core):
    with core.transaction() as session:
        plan = reminders.schedule_periods(session, core.profile, 2027, TUESDAY)
        assert [(r.kind, r.due_at.astimezone(TOKYO).strftime("%m-%d %H:%M")) for r in plan] == [
            ("parking_period", "06-01 10:00"), ("insurance_period", "03-20 10:00")]
        assert reminders.schedule_periods(session, core.profile, 2027, TUESDAY) == []
        assert reminders.schedule_periods(session, core.profile, 2026, TUESDAY) == [], "this year's are past"


def test_a_due_reminder_is_finished_once_and_missed_after_its_grace(core):
    with core.transaction() as session:
        reminder = reminders.schedule(session, kind=Kind.LINK_EXPIRING, key="link_expiring:1", due_at=TUESDAY,
                                      now=TUESDAY)
        assert reminders.due_reminders(session, TUESDAY - timedelta(seconds=1)) == []
        assert reminders.due_reminders(session, TUESDAY) == [reminder.id]
        assert not reminders.past_grace(reminder, TUESDAY + timedelta(minutes=4))
        assert reminders.past_grace(reminder, TUESDAY + timedelta(minutes=4, seconds=1))
        assert reminders.finish(session, reminder.id, Status.SENT, TUESDAY)
        assert not reminders.finish(session, reminder.id, Status.MISSED, TUESDAY), "a second claim loses"
        assert reminders.due_reminders(session, TUESDAY) == []
