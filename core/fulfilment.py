"""Fulfilment: what completes a paid order for its delivery, created when the payment completes.

A print at a convenience store's multi-copy machine or on the campus printer (学内印刷機) gets the number to
enter at the machine and its expiry; a window pickup the time it is ready from (the guide's rule, counted from
the payment); a mail order is marked sent (発送済み) by staff. The print numbers come from a port, so that a
university can plug in the real service's numbers; the sandbox adapter draws its own.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.calendar import BusinessCalendar
from core.clock import TOKYO, require_aware
from core.enums import PRINT_DELIVERIES, DeliveryMethod, OrderStatus
from core.errors import InvalidTransition
from core.models import Fulfilment, Order
from core.orders import ORDER_NUMBER_ALPHABET, PAID_STATUSES, advance
from core.profile import UniversityProfile
from core.reminders import schedule_print_expiry

log = logging.getLogger(__name__)

_STORE_LENGTH = 8
_CAMPUS_LENGTH = 6
_VALID_UNTIL = time(23, 59)  # a print number is valid through the end of its last day


@dataclass(frozen=True, slots=True)
class PrintReservation:
    """The number to print a paid order with at the machine, and when it stops working."""

    number: str
    expires_at: datetime


class FulfilmentPort(Protocol):
    """Where print numbers come from: the real service, or the sandbox."""

    name: str

    def reserve_print(self, order: Order, delivery: DeliveryMethod, now: datetime,
                      profile: UniversityProfile) -> PrintReservation:
        """Register the paid order for printing and return its number and expiry."""
        ...


class SandboxFulfilment:
    """Print numbers drawn here from `secrets` (8 characters for a store, a 6-digit campus code), valid through
    the end of the profile's `print_number_days`-th day: no real machine prints them."""

    name = "sandbox"

    def reserve_print(self, order: Order, delivery: DeliveryMethod, now: datetime,
                      profile: UniversityProfile) -> PrintReservation:
        """A fresh number and its expiry for `order`."""
        if delivery is DeliveryMethod.CAMPUS_PRINTER:
            number = "".join(secrets.choice("0123456789") for _ in range(_CAMPUS_LENGTH))
        else:
            # Read on a phone, typed on a machine's touch screen: the order numbers' letters (no 0/O, 1/I/L).
            number = "".join(secrets.choice(ORDER_NUMBER_ALPHABET) for _ in range(_STORE_LENGTH))
        last_day = require_aware(now).astimezone(TOKYO).date() + timedelta(days=profile.print_number_days)
        return PrintReservation(number, datetime.combine(last_day, _VALID_UNTIL, TOKYO))


def make_fulfilment(name: str) -> FulfilmentPort:
    """The fulfilment adapter called `name` (FULFILMENT setting); only "sandbox" ships.

    Raises:
        ValueError: for an adapter that does not exist, naming the setting.
    """
    if name == "sandbox":
        return SandboxFulfilment()
    raise ValueError(f"FULFILMENT={name!r} is not an adapter madoguchi has (available: sandbox)")


def fulfilment_of(session: Session, order: Order) -> Fulfilment | None:
    """The order's fulfilment, if its payment completed."""
    return session.scalars(select(Fulfilment).where(Fulfilment.order_id == order.id)).first()


def fulfil(session: Session, order: Order, *, port: FulfilmentPort, profile: UniversityProfile,
           calendar: BusinessCalendar, now: datetime) -> Fulfilment:
    """Create the fulfilment of a paid order once (a second call, also a concurrent one, returns the first).

    Raises:
        InvalidTransition: for an order that is not paid.
    """
    now = require_aware(now)
    existing = fulfilment_of(session, order)
    if existing is not None:
        return existing
    if order.status not in PAID_STATUSES or order.paid_at is None:
        raise InvalidTransition(order.number, order.status.value, "fulfilled")
    fulfilment = Fulfilment(order_id=order.id, delivery_method=order.delivery_method, provider=port.name,
                            created_at=now)
    if order.delivery_method in PRINT_DELIVERIES:
        reservation = port.reserve_print(order, order.delivery_method, now, profile)
        fulfilment.print_number, fulfilment.expires_at = reservation.number, reservation.expires_at
    elif order.delivery_method is DeliveryMethod.WINDOW_PICKUP:
        fulfilment.ready_at = calendar.pickup_window(order.paid_at)[0]
    try:
        with session.begin_nested():  # a concurrent call may have created it: theirs stands
            session.add(fulfilment)
            session.flush()
    except IntegrityError:
        found = fulfilment_of(session, order)
        if found is None:
            raise
        return found
    if fulfilment.expires_at is not None:
        schedule_print_expiry(session, order, fulfilment.expires_at, now)
    log.info("order %s fulfilment created: %s via %s", order.number, order.delivery_method.value, port.name)
    return fulfilment


def mark_shipped(session: Session, order: Order, now: datetime, actor: str) -> bool:
    """Record that staff sent a paid mail order (発送済み); False when it was marked already.

    Raises:
        InvalidTransition: for an order that is not a paid mail order.
    """
    now = require_aware(now)
    if order.delivery_method is not DeliveryMethod.MAIL:
        raise InvalidTransition(order.number, order.status.value, OrderStatus.SHIPPED.value)
    if order.status in (OrderStatus.SHIPPED, OrderStatus.COLLECTED):
        return False
    if order.status is OrderStatus.PAID:
        advance(session, order, OrderStatus.PROCESSING, now, actor)
    advance(session, order, OrderStatus.SHIPPED, now, actor)
    fulfilment = fulfilment_of(session, order)
    if fulfilment is None:
        fulfilment = Fulfilment(order_id=order.id, delivery_method=order.delivery_method, provider="staff",
                                created_at=now)
        session.add(fulfilment)
    fulfilment.shipped_at = now
    session.flush()
    return True
