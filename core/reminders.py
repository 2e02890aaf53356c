"""Reminders as rows: scheduled once per idempotency key, moved out of the quiet hours, claimed once when
due, and cancelled, skipped or missed with the reason when they should not be sent."""

from datetime import date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.calendar import BusinessCalendar
from core.clock import TOKYO, require_aware
from core.enums import OrderStatus, PaymentStatus
from core.models import OneTimeLink, Order, Payment, Reminder, Student
from core.order_texts import pickup_window
from core.orders import payment_state
from core.profile import UniversityProfile

QUIET_START, QUIET_END = time(21, 0), time(8, 0)  # nothing is pushed to students in between
PICKUP_DAY_AT = time(13, 0)  # the guide's pickup time on the pickup day
DAY_BEFORE_AT = time(10, 0)  # the payment-deadline reminder, the day before
PERIOD_AT = time(10, 0)  # the parking-fee and insurance-period reminders, on the period's first day
UNCOLLECTED_AFTER_BUSINESS_DAYS = 3
LINK_NUDGE_AFTER = timedelta(minutes=25)  # one-time links last 30 minutes (the guide)


class Kind(StrEnum):
    """What a reminder is about."""

    READY_NOW = "ready_now"  # the order became ready to collect
    READY_PICKUP_DAY = "ready_pickup_day"  # 13:00 on the pickup day, if not collected
    READY_UNCOLLECTED = "ready_uncollected"  # after 3 business days, if not collected
    PAYMENT_DEADLINE = "payment_deadline"  # convenience-store payment, the day before its deadline
    PRINT_EXPIRING = "print_expiring"  # a paid print order's number, the day before it expires, if not printed
    SHIPPED = "shipped"  # staff sent a mail order (発送済み)
    LINK_EXPIRING = "link_expiring"  # a reset or email link unused 25 minutes after it was requested
    PARKING_PERIOD = "parking_period"  # the parking-fee period opens (linked students in year 2 and above)
    INSURANCE_PERIOD = "insurance_period"  # the insurance-renewal period opens (all linked students)


# How late each kind may still be sent when the scheduler was down at its time, then it is recorded missed.
GRACE = {
    Kind.READY_NOW: timedelta(hours=12),
    Kind.READY_PICKUP_DAY: timedelta(hours=3),
    Kind.READY_UNCOLLECTED: timedelta(hours=8),
    Kind.PAYMENT_DEADLINE: timedelta(hours=6),
    Kind.PRINT_EXPIRING: timedelta(hours=6),
    Kind.SHIPPED: timedelta(hours=12),
    Kind.LINK_EXPIRING: timedelta(minutes=4),  # a nudge after the link expired is noise
    Kind.PARKING_PERIOD: timedelta(days=3),
    Kind.INSURANCE_PERIOD: timedelta(days=3),
}


class Status(StrEnum):
    """What became of a reminder."""

    SCHEDULED = "scheduled"
    SENT = "sent"  # its messages are queued for delivery (exactly once)
    CANCELLED = "cancelled"  # no longer relevant (collected, paid, link used)
    SKIPPED = "skipped"  # the student opted out or cannot be reached
    MISSED = "missed"  # due while the scheduler was down, past its grace


def outside_quiet_hours(at: datetime) -> tuple[datetime, bool]:
    """`at`, or 8:00 (Asia/Tokyo) after it when it falls in the quiet hours; and whether it was moved."""
    local = require_aware(at).astimezone(TOKYO)
    if local.time() >= QUIET_START:
        return datetime.combine(local.date() + timedelta(days=1), QUIET_END, TOKYO), True
    if local.time() < QUIET_END:
        return datetime.combine(local.date(), QUIET_END, TOKYO), True
    return local, False


def schedule(session: Session, *, kind: Kind, key: str, due_at: datetime, now: datetime,
             student_id: int | None = None, channel: str | None = None, recipient: str | None = None,
             conversation_id: str | None = None, lang: str | None = None,
             subject: str | None = None) -> Reminder | None:
    """Add a reminder, moved out of the quiet hours; None when one with this key exists already."""
    if session.scalar(select(Reminder.id).where(Reminder.key == key[:200])) is not None:
        return None
    when, deferred = outside_quiet_hours(due_at)
    reminder = Reminder(kind=kind.value, key=key[:200], student_id=student_id, channel=channel, recipient=recipient,
                        conversation_id=conversation_id, lang=lang, subject=subject, due_at=when,
                        grace=int(GRACE[kind].total_seconds()), deferred=deferred, status=Status.SCHEDULED.value,
                        created_at=now)
    session.add(reminder)
    session.flush()
    return reminder


def schedule_ready(session: Session, order: Order, calendar: BusinessCalendar, now: datetime) -> list[Reminder]:
    """An order became ready to collect: at once; at 13:00 on its pickup day (the guide's window) if that is
    still to come; and 3 business days later, each only while it is not collected."""
    local = require_aware(now).astimezone(TOKYO)
    window = pickup_window(order, calendar)
    start_day = local.date() if calendar.is_business_day(local.date()) else calendar.next_business_day(local.date())
    later = calendar.add_business_days(start_day, UNCOLLECTED_AFTER_BUSINESS_DAYS)
    plan = [(Kind.READY_NOW, now), (Kind.READY_UNCOLLECTED, datetime.combine(later, PICKUP_DAY_AT, TOKYO))]
    if window is not None and window[0] > now:
        plan.insert(1, (Kind.READY_PICKUP_DAY, window[0]))  # else the first reminder says "from now"
    scheduled = []
    for kind, due in plan:
        reminder = schedule(session, kind=kind, key=f"{kind.value}:{order.number}", due_at=due, now=now,
                            student_id=order.student_id, subject=order.number)
        if reminder is not None:
            scheduled.append(reminder)
    return scheduled


def schedule_payment_deadline(session: Session, payment: Payment, order: Order, now: datetime) -> Reminder | None:
    """A convenience-store payment: 10:00 the day before its deadline (none if that is already past)."""
    if payment.deadline is None:
        return None
    day_before = require_aware(payment.deadline).astimezone(TOKYO).date() - timedelta(days=1)
    due = datetime.combine(day_before, DAY_BEFORE_AT, TOKYO)
    if due <= now:
        return None
    return schedule(session, kind=Kind.PAYMENT_DEADLINE, key=f"{Kind.PAYMENT_DEADLINE.value}:{payment.reference}",
                    due_at=due, now=now, student_id=order.student_id, subject=payment.reference)


def schedule_print_expiry(session: Session, order: Order, expires_at: datetime, now: datetime) -> Reminder | None:
    """A paid print order's number: 10:00 the day before it expires (none if that is already past)."""
    day_before = require_aware(expires_at).astimezone(TOKYO).date() - timedelta(days=1)
    due = datetime.combine(day_before, DAY_BEFORE_AT, TOKYO)
    if due <= now:
        return None
    return schedule(session, kind=Kind.PRINT_EXPIRING, key=f"{Kind.PRINT_EXPIRING.value}:{order.number}",
                    due_at=due, now=now, student_id=order.student_id, subject=order.number)


def schedule_shipped(session: Session, order: Order, now: datetime) -> Reminder | None:
    """A mail order was sent: the student is told at once (in the morning, if sent at night)."""
    return schedule(session, kind=Kind.SHIPPED, key=f"{Kind.SHIPPED.value}:{order.number}", due_at=now, now=now,
                    student_id=order.student_id, subject=order.number)


def schedule_link_nudge(session: Session, link: OneTimeLink, now: datetime, *, channel: str | None = None,
                        recipient: str | None = None, conversation_id: str | None = None,
                        lang: str | None = None) -> Reminder | None:
    """A one-time link requested in a chat: one nudge 25 minutes later if it is still unused."""
    return schedule(session, kind=Kind.LINK_EXPIRING, key=f"{Kind.LINK_EXPIRING.value}:{link.id}",
                    due_at=link.created_at + LINK_NUDGE_AFTER, now=now, student_id=link.student_id,
                    channel=channel, recipient=recipient, conversation_id=conversation_id, lang=lang,
                    subject=str(link.id))


def schedule_periods(session: Session, profile: UniversityProfile, year: int, now: datetime) -> list[Reminder]:
    """The parking-fee and insurance-renewal periods of `year` (from the profile's catalog), at 10:00 on
    their first day; one bulk reminder each, sent to every linked student it concerns."""
    scheduled = []
    for code, kind in (("parking_fee", Kind.PARKING_PERIOD), ("insurance_renewal", Kind.INSURANCE_PERIOD)):
        item = next((item for item in profile.catalog.items if item.code == code), None)
        if item is None or item.application_period is None:
            continue
        month, day = (int(part) for part in item.application_period.start.split("-"))
        start = date(year, month, day)
        due = datetime.combine(start, PERIOD_AT, TOKYO)
        if due + GRACE[kind] < now:
            continue
        reminder = schedule(session, kind=kind, key=f"{kind.value}:{year}", due_at=due, now=now, subject=code)
        if reminder is not None:
            scheduled.append(reminder)
    return scheduled


def why_not_relevant(session: Session, reminder: Reminder, now: datetime) -> str | None:
    """Why a due reminder should no longer be sent (collected, paid, used, expired), or None."""
    kind = Kind(reminder.kind)
    if kind in (Kind.READY_NOW, Kind.READY_PICKUP_DAY, Kind.READY_UNCOLLECTED):
        status = session.scalar(select(Order.status).where(Order.number == reminder.subject))
        return None if status == OrderStatus.READY else f"order is {status}"
    if kind is Kind.PAYMENT_DEADLINE:
        payment = session.scalars(select(Payment).where(Payment.reference == reminder.subject)).first()
        state = payment_state(payment, now) if payment else None
        return None if state == PaymentStatus.PENDING else f"payment is {state}"
    if kind is Kind.SHIPPED:
        status = session.scalar(select(Order.status).where(Order.number == reminder.subject))
        return None if status == OrderStatus.SHIPPED else f"order is {status}"
    if kind is Kind.PRINT_EXPIRING:
        order = session.scalars(select(Order).where(Order.number == reminder.subject)).first()
        if order is None or order.status not in (OrderStatus.PAID, OrderStatus.PROCESSING):
            return f"order is {order.status if order else 'gone'}"
        expires_at = order.fulfilment.expires_at if order.fulfilment else None
        return None if expires_at is not None and expires_at > now else "print number expired"
    if kind is Kind.LINK_EXPIRING:
        link = session.get(OneTimeLink, int(reminder.subject or 0))
        if link is None or link.used_at is not None or link.voided_at is not None:
            return "link used or replaced"
        return None if link.expires_at > now else "link expired"
    return None


def wants_reminders(session: Session, student_id: int | None) -> bool:
    """False when the student turned reminders off (「通知停止」)."""
    if student_id is None:
        return True
    return bool(session.scalar(select(Student.reminders_enabled).where(Student.id == student_id)))


def set_reminders(session: Session, student_id: int, enabled: bool) -> None:
    """Turn a student's reminders off (「通知停止」) or back on."""
    session.execute(update(Student).where(Student.id == student_id).values(reminders_enabled=enabled))


def due_reminders(session: Session, now: datetime, limit: int = 500) -> list[int]:
    """Ids of scheduled reminders due by `now`, oldest first."""
    return list(session.scalars(select(Reminder.id).where(Reminder.status == Status.SCHEDULED.value,
                                                          Reminder.due_at <= now)
                                .order_by(Reminder.due_at, Reminder.id).limit(limit)))


def finish(session: Session, reminder_id: int, status: Status, now: datetime, outcome: str | None = None) -> bool:
    """Move a scheduled reminder to its end state; False if another scheduler got there first."""
    return bool(session.execute(update(Reminder).where(Reminder.id == reminder_id,
                                                       Reminder.status == Status.SCHEDULED.value)
                                .values(status=status.value, outcome=outcome, done_at=now)).rowcount)


def past_grace(reminder: Reminder, now: datetime) -> bool:
    """True when the reminder is due longer ago than its grace: recorded missed, never sent late."""
    return now > reminder.due_at + timedelta(seconds=reminder.grace)


def upcoming(session: Session, now: datetime, days: int = 7) -> list[Reminder]:
    """Scheduled reminders due within `days` (and any overdue), for `madoguchi reminders list`."""
    return list(session.scalars(select(Reminder).where(Reminder.status == Status.SCHEDULED.value,
                                                       Reminder.due_at <= now + timedelta(days=days))
                                .order_by(Reminder.due_at, Reminder.id)))
