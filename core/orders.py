"""Orders: validation against the catalog, placing, paying and the status lifecycle."""

import logging
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.addresses import MailingAddress
from core.catalog import CatalogItem, LocalizedText
from core.clock import require_aware
from core.db import changed_rows
from core.enums import DeliveryMethod, OrderStatus, PaymentMethod, PaymentStatus
from core.errors import (
    DeliveryNotAllowed,
    InvalidOrder,
    InvalidOrderLine,
    InvalidTransition,
    NotEligible,
    OrderNotFound,
    PaymentExpired,
    PaymentMethodNotOffered,
    PaymentNotFound,
    RefundNotPossible,
)
from core.masking import mask_student_number
from core.models import Order, OrderEvent, OrderItem, Payment, Student
from core.payments import PaymentGateway
from core.profile import UniversityProfile

log = logging.getLogger(__name__)

# No 0/O, 1/I/L (misread when typed from a phone screen) and no U (avoids accidental words).
ORDER_NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
ORDER_NUMBER_LENGTH = 8
# 30**8 numbers make a collision rare; a long run of them means a broken random source, not bad luck.
_MAX_NUMBER_ATTEMPTS = 10

TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.AWAITING_PAYMENT: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.PROCESSING}),
    OrderStatus.PROCESSING: frozenset({OrderStatus.READY, OrderStatus.PRINTED, OrderStatus.SHIPPED}),
    OrderStatus.READY: frozenset({OrderStatus.COLLECTED}),
    OrderStatus.PRINTED: frozenset({OrderStatus.COLLECTED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.COLLECTED}),
    OrderStatus.COLLECTED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}
"""Every legal status change; PROCESSING's next step is narrowed further by the delivery method."""

FULFILLED_STATUS: Mapping[DeliveryMethod, OrderStatus] = {
    DeliveryMethod.WINDOW_PICKUP: OrderStatus.READY,  # the 「郵送対応完了」 mail: ready to collect
    DeliveryMethod.CAMPUS_PRINTER: OrderStatus.PRINTED,
    DeliveryMethod.CONVENIENCE_STORE: OrderStatus.PRINTED,
    DeliveryMethod.MAIL: OrderStatus.SHIPPED,
}

PAID_STATUSES = frozenset({OrderStatus.PAID, OrderStatus.PROCESSING, OrderStatus.READY, OrderStatus.PRINTED,
                           OrderStatus.SHIPPED, OrderStatus.COLLECTED})


@dataclass(frozen=True)
class OrderLine:
    """One item of an order as the student asks for it."""

    item_code: str
    copies: int = 1


@dataclass(frozen=True)
class PricedLine:
    """One item of an order with its price: a quote's line (today's price) or a placed order's (the price it
    was ordered at), as the bot, the pages and the agents show it."""

    item_code: str
    name: LocalizedText
    copies: int
    unit_price_yen: int
    price_is_example: bool  # the shipped profile's example price, not a real fee

    @classmethod
    def quoted(cls, item: CatalogItem, copies: int) -> "PricedLine":
        """`copies` of a catalog item at today's price."""
        return cls(item_code=item.code, name=item.name, copies=copies, unit_price_yen=item.price_yen,
                   price_is_example=item.price_is_example)

    @property
    def subtotal_yen(self) -> int:
        """Price times copies."""
        return self.unit_price_yen * self.copies


@dataclass(frozen=True)
class Quote:
    """A validated order that is not yet written: what the bot shows before the student confirms."""

    lines: tuple[PricedLine, ...]
    delivery: DeliveryMethod
    payment: PaymentMethod
    total_yen: int

    @property
    def prices_are_examples(self) -> bool:
        """True if any price is an example from the shipped profile rather than a real fee."""
        return any(line.price_is_example for line in self.lines)


@dataclass(frozen=True)
class PlacedOrder:
    """A new order with its payment: where to pay online, or the konbini number and deadline."""

    order: Order
    payment: Payment
    payment_url: str | None

    @property
    def konbini_number(self) -> str | None:
        """The number to pay with at a convenience store, for konbini payments."""
        return self.payment.konbini_number

    @property
    def deadline(self) -> datetime | None:
        """When the payment expires, if it does."""
        return self.payment.deadline


@dataclass(frozen=True)
class PaymentResult:
    """What `mark_paid` did: `newly_paid` is False when the order had already been paid."""

    order: Order
    payment: Payment
    newly_paid: bool


# --- validation and placing ---------------------------------------------------------------------------


def quote(*, student: Student, lines: Sequence[OrderLine], delivery: DeliveryMethod | str,
          payment: PaymentMethod | str, profile: UniversityProfile) -> Quote:
    """Validate an order against the catalog and the student, and compute its total, writing nothing.

    Args:
        student: who orders; their year and department decide eligibility.
        lines: the items with their copies; each item at most once.
        delivery: how the items reach the student; every item must allow it.
        payment: one of the profile's payment methods.
        profile: the university profile with the catalog.

    Returns:
        The validated lines with prices and the total in yen.

    Raises:
        InvalidOrder: no lines (reason "empty"); InvalidOrderLine for copies outside 1..max_copies
            ("copies_out_of_range") or an item listed twice ("duplicate_item").
        UnknownItem: an item code the catalog lacks.
        NotEligible: the parking fee below its min_year, or a final-year-only item (卒業見込み証明書)
            for a student not in their department's final year.
        DeliveryNotAllowed: an item that cannot be delivered this way.
        PaymentMethodNotOffered: a payment method the university does not accept.
    """
    if not lines:
        raise InvalidOrder("empty")
    method = _payment_method(payment, profile)
    delivery_method = _delivery_method(delivery, lines, profile)
    quoted: list[PricedLine] = []
    seen: set[str] = set()
    for line in lines:
        item = profile.catalog.get(line.item_code)
        if item.code in seen:
            raise InvalidOrderLine("duplicate_item", item_code=item.code, copies=line.copies,
                                   max_copies=item.max_copies)
        seen.add(item.code)
        copies = line.copies
        if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= item.max_copies:
            raise InvalidOrderLine("copies_out_of_range", item_code=item.code,
                                   copies=copies if isinstance(copies, int) else 0, max_copies=item.max_copies)
        check_eligible(item, student, profile)
        if delivery_method not in item.deliveries:
            raise DeliveryNotAllowed(item.code, delivery_method.value, tuple(d.value for d in item.deliveries))
        quoted.append(PricedLine.quoted(item, copies))
    return Quote(lines=tuple(quoted), delivery=delivery_method, payment=method,
                 total_yen=sum(line.subtotal_yen for line in quoted))


def _payment_method(payment: PaymentMethod | str, profile: UniversityProfile) -> PaymentMethod:
    offered = tuple(option.method.value for option in profile.payment_methods)
    try:
        method = PaymentMethod(payment)
    except ValueError:
        raise PaymentMethodNotOffered(str(payment), offered) from None
    if profile.payment_option(method) is None:
        raise PaymentMethodNotOffered(method.value, offered)
    return method


def _delivery_method(delivery: DeliveryMethod | str, lines: Sequence[OrderLine],
                     profile: UniversityProfile) -> DeliveryMethod:
    try:
        return DeliveryMethod(delivery)
    except ValueError:
        # Not a method at all: explain it with the first item's allowed methods.
        item = profile.catalog.get(lines[0].item_code)
        raise DeliveryNotAllowed(item.code, str(delivery), tuple(d.value for d in item.deliveries)) from None


def eligibility_problems(item: CatalogItem, student: Student, profile: UniversityProfile) -> list[NotEligible]:
    """Every eligibility rule of the item the student does not meet, stated or assumed: its min_year above the
    student's year ("min_year"), or a final-year-only item for a student not in their department's final year
    ("final_year_only")."""
    problems = []
    if item.min_year is not None and student.year < item.min_year:
        problems.append(NotEligible(item.code, "min_year", required_year=item.min_year, student_year=student.year))
    if item.final_year_only:
        final_year = profile.department(student.department).years
        if student.year != final_year:
            problems.append(NotEligible(item.code, "final_year_only", required_year=final_year,
                                        student_year=student.year))
    return problems


def check_eligible(item: CatalogItem, student: Student, profile: UniversityProfile) -> None:
    """Refuse an item the student may not order by a rule the guide or the university states, as `quote` does
    (the bot checks before asking further). A rule the profile marks as an assumption is never a refusal:
    `unconfirmed_rules` gives those, for the bot to ask the student to confirm with the office.

    Raises:
        NotEligible: the first stated rule the student does not meet (see `eligibility_problems`).
    """
    for problem in eligibility_problems(item, student, profile):
        if item.stated(problem.reason):
            raise problem


def unconfirmed_rules(item: CatalogItem, student: Student, profile: UniversityProfile) -> list[NotEligible]:
    """The assumed eligibility rules (not the guide's, not the university's) the student does not meet."""
    return [problem for problem in eligibility_problems(item, student, profile) if not item.stated(problem.reason)]


def generate_order_number() -> str:
    """A random order number like `K7PM-3QXA`, from `secrets`."""
    chars = "".join(secrets.choice(ORDER_NUMBER_ALPHABET) for _ in range(ORDER_NUMBER_LENGTH))
    return f"{chars[:4]}-{chars[4:]}"


def create_order(session: Session, *, student: Student, lines: Sequence[OrderLine],
                 delivery: DeliveryMethod | str, payment: PaymentMethod | str, profile: UniversityProfile,
                 gateway: PaymentGateway, now: datetime, actor: str = "student",
                 address: MailingAddress | None = None) -> PlacedOrder:
    """Validate and place an order awaiting payment, and open its payment at the gateway.

    Args:
        session: the session of the caller's transaction.
        student: who orders.
        lines: the items with their copies.
        delivery: how the items reach the student.
        payment: how the student pays.
        profile: the university profile with the catalog.
        gateway: the payment gateway adapter.
        now: the current time (aware).
        actor: who placed it, for the first OrderEvent.
        address: where a 郵送 order goes (required for mail, ignored for the other deliveries).

    Returns:
        The order, its payment and where to pay (or the konbini number and deadline).

    Raises:
        InvalidOrder, UnknownItem, NotEligible, DeliveryNotAllowed, PaymentMethodNotOffered: see `quote`;
            InvalidOrder("address_required") for mail without an address.
    """
    now = require_aware(now)
    checked = quote(student=student, lines=lines, delivery=delivery, payment=payment, profile=profile)
    if checked.delivery is DeliveryMethod.MAIL and address is None:
        raise InvalidOrder("address_required")
    order = _insert_with_fresh_number(session, student, checked, now)
    if checked.delivery is DeliveryMethod.MAIL and address is not None:
        order.mailing_address = address.to_json()
    order.events.append(OrderEvent(from_status=None, to_status=OrderStatus.AWAITING_PAYMENT, at=now, actor=actor))
    session.flush()
    placed_payment = gateway.start_payment(session, order, now)
    log.info("order %s placed by %s: %d yen, %s%s, %s via %s", order.number,
             mask_student_number(student.student_number), order.total_yen, order.delivery_method.value,
             f" to {address.masked()}" if order.mailing_address and address else "", order.payment_method.value,
             gateway.name)
    return PlacedOrder(order=order, payment=placed_payment, payment_url=gateway.payment_url(placed_payment))


def _insert_with_fresh_number(session: Session, student: Student, checked: Quote, now: datetime) -> Order:
    for _ in range(_MAX_NUMBER_ATTEMPTS):
        number = generate_order_number()
        if _number_taken(session, number):
            log.warning("order number collision on %s; drawing another", number)
            continue
        order = Order(
            number=number, student_id=student.id, delivery_method=checked.delivery,
            payment_method=checked.payment, status=OrderStatus.AWAITING_PAYMENT, total_yen=checked.total_yen,
            created_at=now, updated_at=now,
            items=[OrderItem(item_code=line.item_code, copies=line.copies, unit_price_yen=line.unit_price_yen)
                   for line in checked.lines],
        )
        try:
            # A savepoint, so a number taken by a concurrent transaction costs a retry, not the order.
            with session.begin_nested():
                session.add(order)
                session.flush()
        except IntegrityError:
            if not _number_taken(session, number):
                raise
            log.warning("order number %s taken concurrently; drawing another", number)
            continue
        return order
    raise RuntimeError(f"no free order number after {_MAX_NUMBER_ATTEMPTS} attempts")


def _number_taken(session: Session, number: str) -> bool:
    return session.scalar(select(Order.id).where(Order.number == number)) is not None


# --- lookup -----------------------------------------------------------------------------------------------


# Hyphens and dashes as phones and Japanese IMEs type them (ー is the long-vowel mark, often typed for "-").
_NUMBER_SEPARATORS = frozenset("-‐‑‒–—―−ー_.")


def normalize_order_number(text: str) -> str | None:
    """`ｋ７ｐｍ３ｑｘａ`, `k7pm 3qxa` or `K7PM-3QXA` → `K7PM-3QXA`; None if it cannot be an order number."""
    chars = "".join(ch for ch in unicodedata.normalize("NFKC", text).upper()
                    if not ch.isspace() and ch not in _NUMBER_SEPARATORS)
    if len(chars) != ORDER_NUMBER_LENGTH or any(ch not in ORDER_NUMBER_ALPHABET for ch in chars):
        return None
    return f"{chars[:4]}-{chars[4:]}"


def find_order(session: Session, number: str, student: Student | None = None) -> Order:
    """The order with this number, typed any way (case, full-width, with or without the hyphen).

    Args:
        session: a session.
        number: the order number as the student typed it.
        student: if given, only this student's orders are found (another's looks like no order at all).

    Raises:
        OrderNotFound: if there is no such order (for this student).
    """
    normalized = normalize_order_number(number)
    if normalized is None:
        raise OrderNotFound(number.strip())
    query = select(Order).where(Order.number == normalized)
    if student is not None:
        query = query.where(Order.student_id == student.id)
    order = session.scalars(query).one_or_none()
    if order is None:
        raise OrderNotFound(normalized)
    return order


def recent_orders(session: Session, student: Student, limit: int = 5) -> list[Order]:
    """The student's newest orders first."""
    query = (select(Order).where(Order.student_id == student.id)
             .order_by(Order.created_at.desc(), Order.id.desc()).limit(limit))
    return list(session.scalars(query))


def find_payment(session: Session, reference: str) -> Payment:
    """The payment with this gateway reference.

    Raises:
        PaymentNotFound: if there is none.
    """
    payment = session.scalars(select(Payment).where(Payment.reference == reference)).one_or_none()
    if payment is None:
        raise PaymentNotFound(reference)
    return payment


# --- lifecycle --------------------------------------------------------------------------------------------


def next_statuses(order: Order) -> frozenset[OrderStatus]:
    """The statuses `order` may move to now (PROCESSING leads only to its delivery's own step)."""
    if order.status is OrderStatus.PROCESSING:
        return frozenset({FULFILLED_STATUS[order.delivery_method]})
    return TRANSITIONS[order.status]


def _move(session: Session, order: Order, to: OrderStatus, now: datetime, actor: str) -> bool:
    """Change the status only if nobody changed it since we read it; log the event. False if someone had."""
    expected = order.status
    values: dict[str, object] = {"status": to, "updated_at": now}
    if to is OrderStatus.PAID:
        values["paid_at"] = now
    # A conditional UPDATE rather than read-then-write: two concurrent callers cannot both win.
    changed = changed_rows(session, update(Order).where(Order.id == order.id, Order.status == expected)
                           .values(**values).execution_options(synchronize_session=False))
    session.refresh(order, attribute_names=["status", "updated_at", "paid_at"])
    if changed != 1:
        return False
    order.events.append(OrderEvent(from_status=expected, to_status=to, at=now, actor=actor))
    session.flush()
    log.info("order %s: %s -> %s by %s", order.number, expected.value, to.value, actor)
    return True


def _set_payment_status(session: Session, payment: Payment, to: PaymentStatus, now: datetime) -> bool:
    values: dict[str, object] = {"status": to}
    if to is PaymentStatus.PAID:
        values["paid_at"] = now
    changed = changed_rows(session, update(Payment).where(Payment.id == payment.id,
                                                          Payment.status == PaymentStatus.PENDING)
                           .values(**values).execution_options(synchronize_session=False))
    session.refresh(payment, attribute_names=["status", "paid_at"])
    return changed == 1


def advance(session: Session, order: Order, to_status: OrderStatus | str, now: datetime, actor: str) -> Order:
    """Move an order one step along its lifecycle, writing an OrderEvent.

    awaiting_payment → paid → processing → ready (window pickup) / printed (campus printer, convenience
    store) / shipped (mail) → collected; cancelled only from awaiting_payment. Moving to PAID marks the
    order's pending payment paid (as `mark_paid` does); moving to CANCELLED is `cancel_order`.

    Args:
        session: the session of the caller's transaction.
        order: the order to move.
        to_status: the next status.
        now: the current time (aware).
        actor: who moves it: "student", "gateway", "staff:<name>" or "system".

    Returns:
        The order, in its new status.

    Raises:
        InvalidTransition: if the table does not allow the step from the order's current status.
        RefundNotPossible: when cancelling a paid order.
    """
    now = require_aware(now)
    to = OrderStatus(to_status)
    if to is OrderStatus.CANCELLED:
        return cancel_order(session, order, now, actor=actor)
    if to not in next_statuses(order):
        raise InvalidTransition(order.number, order.status.value, to.value)
    if to is OrderStatus.PAID:
        pending = [p for p in order.payments if p.status is PaymentStatus.PENDING]
        if pending:
            return _pay(session, pending[-1], now, actor).order
    if not _move(session, order, to, now, actor):
        raise InvalidTransition(order.number, order.status.value, to.value)
    return order


def cancel_order(session: Session, order: Order, now: datetime, actor: str = "student") -> Order:
    """Cancel an order that is not paid yet; cancelling a cancelled order changes nothing.

    Args:
        session: the session of the caller's transaction.
        order: the order to cancel.
        now: the current time (aware).
        actor: who cancels it.

    Returns:
        The cancelled order.

    Raises:
        RefundNotPossible: if the order was paid: paid fees are not returned for any reason.
    """
    now = require_aware(now)
    if order.status is OrderStatus.CANCELLED:
        return order
    if order.status is not OrderStatus.AWAITING_PAYMENT or not _move(session, order, OrderStatus.CANCELLED,
                                                                      now, actor):
        if order.status is OrderStatus.CANCELLED:  # cancelled concurrently: the same outcome
            return order
        log.info("order %s: cancel refused in status %s (no refunds)", order.number, order.status.value)
        raise RefundNotPossible(order.number)
    for payment in order.payments:
        _set_payment_status(session, payment, PaymentStatus.CANCELLED, now)
    return order


def request_refund(order: Order | str | None = None) -> NoReturn:
    """Refunds do not exist: the guide says paid fees are not returned for any reason.

    Raises:
        RefundNotPossible: always, with the order number when one is given.
    """
    number = order.number if isinstance(order, Order) else order
    log.info("refund requested for order %s: refused (no refunds)", number or "-")
    raise RefundNotPossible(number or "")


def mark_paid(session: Session, payment_reference: str, now: datetime, actor: str = "gateway") -> PaymentResult:
    """Record that the gateway took payment; paying twice (even at the same moment) pays once.

    Args:
        session: the session of the caller's transaction.
        payment_reference: the gateway's reference of the payment.
        now: the current time (aware).
        actor: who reports the payment, for the OrderEvent.

    Returns:
        The order and payment, and whether this call paid them (False if already paid).

    Raises:
        PaymentNotFound: for an unknown reference.
        PaymentExpired: if the payment's deadline has passed or it was expired.
        InvalidTransition: if the order was cancelled.
    """
    now = require_aware(now)
    return _pay(session, find_payment(session, payment_reference), now, actor)


def _pay(session: Session, payment: Payment, now: datetime, actor: str) -> PaymentResult:
    order = payment.order
    if order.status in PAID_STATUSES:
        return PaymentResult(order, payment, newly_paid=False)
    _refuse_unpayable(order, payment, now)
    if not _move(session, order, OrderStatus.PAID, now, actor):
        # Someone changed the order between our read and our UPDATE: paid (harmless) or cancelled.
        if order.status in PAID_STATUSES:
            session.refresh(payment)
            return PaymentResult(order, payment, newly_paid=False)
        raise InvalidTransition(order.number, order.status.value, OrderStatus.PAID.value)
    _set_payment_status(session, payment, PaymentStatus.PAID, now)
    return PaymentResult(order, payment, newly_paid=True)


def _refuse_unpayable(order: Order, payment: Payment, now: datetime) -> None:
    if payment.status is PaymentStatus.EXPIRED or (payment.deadline is not None and now > payment.deadline):
        raise PaymentExpired(order.number, payment.deadline)
    if order.status is OrderStatus.CANCELLED or payment.status is PaymentStatus.CANCELLED:
        raise InvalidTransition(order.number, order.status.value, OrderStatus.PAID.value)


def payment_state(payment: Payment, now: datetime) -> PaymentStatus:
    """What the student should be told about a payment now: a pending one past its deadline is expired."""
    if payment.order.status in PAID_STATUSES or payment.status is PaymentStatus.PAID:
        return PaymentStatus.PAID
    if payment.status is PaymentStatus.EXPIRED or (payment.deadline is not None and now > payment.deadline):
        return PaymentStatus.EXPIRED
    if payment.order.status is OrderStatus.CANCELLED or payment.status is PaymentStatus.CANCELLED:
        return PaymentStatus.CANCELLED
    return PaymentStatus.PENDING


def expire_overdue_payments(session: Session, now: datetime, actor: str = "system") -> list[str]:
    """Expire pending payments past their deadline and cancel their unpaid orders (a scheduled job's work).

    Returns:
        The numbers of the orders cancelled.
    """
    now = require_aware(now)
    overdue = session.scalars(select(Payment).where(Payment.status == PaymentStatus.PENDING,
                                                    Payment.deadline.is_not(None), Payment.deadline < now))
    cancelled = []
    for payment in list(overdue):
        if not _set_payment_status(session, payment, PaymentStatus.EXPIRED, now):
            continue
        order = payment.order
        if order.status is OrderStatus.AWAITING_PAYMENT and _move(session, order, OrderStatus.CANCELLED, now,
                                                                  actor):
            cancelled.append(order.number)
    return cancelled
