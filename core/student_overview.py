"""A student's own overview, read only: their number, whether reminders are on, and their open orders."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from core.enums import DeliveryMethod, Language, OrderStatus
from core.models import Order, Student

# Orders that have reached their end: nothing more will happen to them, so they are not "open".
FINISHED = frozenset({OrderStatus.COLLECTED, OrderStatus.CANCELLED})
OPEN_LIMIT = 5  # open orders listed; the others are counted (the chat's order status lists them all)


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """One of the student's orders that is not collected or cancelled, as plain values."""

    number: str
    status: OrderStatus
    delivery: DeliveryMethod
    created_at: datetime
    items: tuple[tuple[str, int], ...]  # (catalog item code, copies)


@dataclass(frozen=True, slots=True)
class StudentOverview:
    """What a student may see of their own record at a glance."""

    student_number: str
    preferred_language: Language
    reminders_enabled: bool
    open_orders: tuple[OpenOrder, ...]  # newest first, at most the limit asked for
    more_open: int  # open orders beyond those listed


def student_overview(session: Session, student_id: int, limit: int = OPEN_LIMIT) -> StudentOverview | None:
    """The overview of one student, or None if there is no such student (forgotten since it was linked).

    Args:
        session: a session (only read from).
        student_id: the student whose own overview this is; nobody else's orders are ever read.
        limit: how many open orders to list.
    """
    student = session.get(Student, student_id)
    if student is None:
        return None
    is_open = (Order.student_id == student_id) & Order.status.not_in(FINISHED)
    orders = session.scalars(select(Order).where(is_open).options(selectinload(Order.items))
                             .order_by(Order.created_at.desc(), Order.id.desc()).limit(limit)).all()
    total = session.scalar(select(func.count()).select_from(Order).where(is_open)) or 0
    listed = tuple(OpenOrder(number=order.number, status=order.status, delivery=order.delivery_method,
                             created_at=order.created_at,
                             items=tuple((item.item_code, item.copies) for item in order.items))
                   for order in orders)
    return StudentOverview(student_number=student.student_number, preferred_language=student.preferred_language,
                           reminders_enabled=bool(student.reminders_enabled), open_orders=listed,
                           more_open=max(0, total - len(listed)))
