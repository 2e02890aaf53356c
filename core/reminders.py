"""Reminders as rows: scheduled once per idempotency key, moved out of the quiet hours, claimed once when
due, and cancelled, skipped or missed with the reason when they should not be sent."""

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import partial
from types import MappingProxyType
from typing import TypeVar

from sqlalchemy import Case, Select, case, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from core.calendar import BusinessCalendar
from core.clock import TOKYO, require_aware
from core.db import changed_rows
from core.enums import OrderStatus, PaymentStatus
from core.jobs import IN_CHUNK, chunks
from core.models import Fulfilment, OneTimeLink, Order, OrderItem, Payment, Reminder, Student
from core.order_texts import pickup_window
from core.orders import payment_state
from core.profile import UniversityProfile

QUIET_START, QUIET_END = time(21, 0), time(8, 0)  # nothing is pushed to students in between
PICKUP_DAY_AT = time(13, 0)  # the guide's pickup time on the pickup day
DAY_BEFORE_AT = time(10, 0)  # the payment-deadline reminder, the day before
PERIOD_AT = time(10, 0)  # the parking-fee and insurance-period reminders, on the period's first day
UNCOLLECTED_AFTER_BUSINESS_DAYS = 3
LINK_NUDGE_AFTER = timedelta(minutes=25)  # one-time links last 30 minutes (the guide)

RowT = TypeVar("RowT")
KeyT = TypeVar("KeyT", str, int)


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


ORDER_KINDS = frozenset({Kind.READY_NOW, Kind.READY_PICKUP_DAY, Kind.READY_UNCOLLECTED, Kind.PRINT_EXPIRING,
                         Kind.SHIPPED})  # their subject is an order number
PRINTED_KINDS = frozenset({Kind.PRINT_EXPIRING, Kind.SHIPPED})  # their messages show the order's print number


@dataclass
class Subjects:
    """What a batch of reminders is about, loaded in a few queries: orders by number, their item codes and
    fulfilments by order id, payments by reference (with their orders), one-time links by id. Plain queries
    by id rather than the ORM's eager loading of relationships, which costs more than the rest of a batch."""

    orders: dict[str, Order] = field(default_factory=dict)
    item_codes: dict[int, list[str]] = field(default_factory=dict)
    fulfilments: dict[int, Fulfilment] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    links: dict[int, OneTimeLink] = field(default_factory=dict)


def load_subjects(session: Session, reminders: Iterable[Reminder]) -> Subjects:
    """The orders, payments and links `reminders` are about (what `reason` and the messages need)."""
    reminders = list(reminders)  # read once per kind of subject
    subjects = Subjects()
    subjects.orders = {order.number: order for order in _where_in(
        session, select(Order), Order.number, _subjects(reminders, ORDER_KINDS))}
    order_ids = sorted(order.id for order in subjects.orders.values())
    for chunk in chunks(order_ids, IN_CHUNK):
        for order_id, code in session.execute(select(OrderItem.order_id, OrderItem.item_code)
                                              .where(OrderItem.order_id.in_(chunk)).order_by(OrderItem.id)):
            subjects.item_codes.setdefault(order_id, []).append(code)
    printed = [order.id for number in _subjects(reminders, PRINTED_KINDS)
               if (order := subjects.orders.get(number)) is not None]
    subjects.fulfilments = {fulfilment.order_id: fulfilment for fulfilment in _where_in(
        session, select(Fulfilment), Fulfilment.order_id, printed)}
    subjects.payments = {payment.reference: payment for payment in _where_in(
        session, select(Payment).options(selectinload(Payment.order)), Payment.reference,
        _subjects(reminders, {Kind.PAYMENT_DEADLINE}))}
    link_ids = [int(subject) for subject in _subjects(reminders, {Kind.LINK_EXPIRING})]
    subjects.links = {link.id: link for link in _where_in(session, select(OneTimeLink), OneTimeLink.id, link_ids)}
    return subjects


def _subjects(reminders: Iterable[Reminder], kinds: Collection[Kind]) -> set[str]:
    """The subjects of those `reminders` of one of `kinds` (one without a subject is about nothing to load)."""
    return {reminder.subject for reminder in reminders if Kind(reminder.kind) in kinds and reminder.subject}


def _where_in(session: Session, query: Select[RowT], column: InstrumentedAttribute[KeyT],
              values: Iterable[KeyT]) -> Iterator[RowT]:
    """The rows of `query` whose `column` is one of `values`, in IN lists of at most IN_CHUNK values."""
    for chunk in chunks(sorted(set(values)), IN_CHUNK):
        yield from session.scalars(query.where(column.in_(chunk)))


def reason(reminder: Reminder, subjects: Subjects, now: datetime) -> str | None:
    """Why a due reminder should no longer be sent (collected, paid, used, expired), or None; from the
    batch's loaded subjects."""
    why = _WHY_NOT.get(Kind(reminder.kind))
    return why(reminder, subjects, now) if why is not None else None


def _order_is_not(wanted: OrderStatus, reminder: Reminder, subjects: Subjects, now: datetime) -> str | None:
    """A reminder about an order in the `wanted` state (ready, shipped): why not, once it moved on or is gone."""
    order = subjects.orders.get(reminder.subject or "")
    status = order.status if order else None
    return None if status == wanted else f"order is {status}"


def _payment_is_not_pending(reminder: Reminder, subjects: Subjects, now: datetime) -> str | None:
    payment = subjects.payments.get(reminder.subject or "")
    state = payment_state(payment, now) if payment else None
    return None if state == PaymentStatus.PENDING else f"payment is {state}"


def _print_number_is_gone(reminder: Reminder, subjects: Subjects, now: datetime) -> str | None:
    order = subjects.orders.get(reminder.subject or "")
    if order is None or order.status not in (OrderStatus.PAID, OrderStatus.PROCESSING):
        return f"order is {order.status if order else 'gone'}"
    fulfilment = subjects.fulfilments.get(order.id)
    expires_at = fulfilment.expires_at if fulfilment else None
    return None if expires_at is not None and expires_at > now else "print number expired"


def _link_is_gone(reminder: Reminder, subjects: Subjects, now: datetime) -> str | None:
    link = subjects.links.get(int(reminder.subject or 0))
    if link is None or link.used_at is not None or link.voided_at is not None:
        return "link used or replaced"
    return None if link.expires_at > now else "link expired"


# Why each kind of reminder may no longer be sent; the period reminders always are.
_WHY_NOT: Mapping[Kind, Callable[[Reminder, Subjects, datetime], str | None]] = MappingProxyType({
    Kind.READY_NOW: partial(_order_is_not, OrderStatus.READY),
    Kind.READY_PICKUP_DAY: partial(_order_is_not, OrderStatus.READY),
    Kind.READY_UNCOLLECTED: partial(_order_is_not, OrderStatus.READY),
    Kind.PAYMENT_DEADLINE: _payment_is_not_pending,
    Kind.SHIPPED: partial(_order_is_not, OrderStatus.SHIPPED),
    Kind.PRINT_EXPIRING: _print_number_is_gone,
    Kind.LINK_EXPIRING: _link_is_gone,
})


def why_not_relevant(session: Session, reminder: Reminder, now: datetime) -> str | None:
    """Why a due reminder should no longer be sent (collected, paid, used, expired), or None."""
    return reason(reminder, load_subjects(session, [reminder]), now)


def wanting(session: Session, student_ids: Iterable[int]) -> set[int]:
    """Those of the students who have not turned reminders off (「通知停止」)."""
    wanted: set[int] = set()
    for chunk in chunks(sorted(set(student_ids)), IN_CHUNK):
        wanted.update(session.scalars(select(Student.id).where(Student.id.in_(chunk),
                                                               Student.reminders_enabled.is_(True))))
    return wanted


def set_reminders(session: Session, student_id: int, enabled: bool) -> None:
    """Turn a student's reminders off (「通知停止」) or back on."""
    session.execute(update(Student).where(Student.id == student_id).values(reminders_enabled=enabled))


def due_reminders(session: Session, now: datetime, limit: int = 500) -> list[int]:
    """Ids of scheduled reminders due by `now`, oldest first."""
    return list(session.scalars(select(Reminder.id).where(Reminder.status == Status.SCHEDULED.value,
                                                          Reminder.due_at <= now)
                                .order_by(Reminder.due_at, Reminder.id).limit(limit)))


def claim_due(session: Session, now: datetime, limit: int = 500, skip: Sequence[int] = ()) -> list[Reminder]:
    """The scheduled reminders due by `now`, oldest first, at most `limit`, none of those in `skip`.

    On PostgreSQL their rows stay locked until the transaction ends and rows another scheduler holds are
    skipped (FOR UPDATE SKIP LOCKED). `finish_many` decides: it moves only rows that are still scheduled.
    """
    query = (select(Reminder).where(Reminder.status == Status.SCHEDULED.value, Reminder.due_at <= now)
             .order_by(Reminder.due_at, Reminder.id).limit(limit).with_for_update(skip_locked=True))
    if skip:
        query = query.where(Reminder.id.not_in(list(skip)))
    return list(session.scalars(query))


End = tuple[Reminder, Status, str | None]  # a reminder, the state it ends in, and why


def finish_many(session: Session, ends: Sequence[End], now: datetime) -> set[int]:
    """Move scheduled reminders to their end states in one UPDATE per state; the ids it moved (a reminder
    another scheduler ended first is left out). The reminders' loaded attributes follow the rows."""
    done: set[int] = set()
    by_status: dict[Status, dict[int, str | None]] = {}
    for reminder, status, outcome in ends:
        by_status.setdefault(status, {})[reminder.id] = outcome[:200] if outcome else None
    for status, outcomes in by_status.items():
        for chunk in chunks(sorted(outcomes), IN_CHUNK):
            texts = {reminder_id: outcomes[reminder_id] for reminder_id in chunk}
            distinct = set(texts.values())
            written: str | Case[str | None] | None = (
                next(iter(distinct)) if len(distinct) == 1
                else case(texts, value=Reminder.id))  # one statement even when each says something else
            statement = (update(Reminder).where(Reminder.id.in_(chunk), Reminder.status == Status.SCHEDULED.value)
                         .values(status=status.value, outcome=written, done_at=now).returning(Reminder.id)
                         .execution_options(synchronize_session=False))
            done.update(session.scalars(statement))
    for reminder, status, outcome in ends:
        if reminder.id in done:
            for name, value in (("status", status.value), ("outcome", outcome[:200] if outcome else None),
                                ("done_at", now)):
                set_committed_value(reminder, name, value)
        elif reminder in session:
            session.expire(reminder)  # ended by someone else: read what they wrote when asked
    return done


def defer_many(session: Session, reminders: Iterable[Reminder], morning: datetime) -> None:
    """Move due reminders reached in the quiet hours to `morning` (8:00), still scheduled."""
    reminders = list(reminders)
    for chunk in chunks(sorted(reminder.id for reminder in reminders), IN_CHUNK):
        session.execute(update(Reminder).where(Reminder.id.in_(chunk), Reminder.status == Status.SCHEDULED.value)
                        .values(due_at=morning, deferred=True).execution_options(synchronize_session=False))
    for reminder in reminders:
        if reminder in session:  # (read by another session, the caller's plan: nothing to refresh)
            session.expire(reminder, ["due_at", "deferred", "status"])


def finish(session: Session, reminder_id: int, status: Status, now: datetime, outcome: str | None = None) -> bool:
    """Move a scheduled reminder to its end state; False if another scheduler got there first."""
    return bool(changed_rows(session, update(Reminder).where(Reminder.id == reminder_id,
                                                             Reminder.status == Status.SCHEDULED.value)
                             .values(status=status.value, outcome=outcome, done_at=now)))


def past_grace(reminder: Reminder, now: datetime) -> bool:
    """True when the reminder is due longer ago than its grace: recorded missed, never sent late."""
    return now > reminder.due_at + timedelta(seconds=reminder.grace)


def upcoming(session: Session, now: datetime, days: int = 7) -> list[Reminder]:
    """Scheduled reminders due within `days` (and any overdue), for `madoguchi reminders list`."""
    return list(session.scalars(select(Reminder).where(Reminder.status == Status.SCHEDULED.value,
                                                       Reminder.due_at <= now + timedelta(days=days))
                                .order_by(Reminder.due_at, Reminder.id)))
