"""The sandbox payment gateway: payments taken on madoguchi's own pages, so the whole flow runs locally."""

import logging
import secrets
from datetime import datetime, time, timedelta

from sqlalchemy.orm import Session

from core.clock import TOKYO, require_aware
from core.enums import PaymentMethod, PaymentStatus
from core.models import Order, Payment
from core.profile import UniversityProfile

log = logging.getLogger(__name__)

# The end of the last day to pay at the store (the guide gives no deadline; see konbini_payment_days).
KONBINI_DEADLINE_TIME = time(23, 59, 59)
SANDBOX_PAGE_PATH = "/sandbox/pay/{reference}"


class SandboxGateway:
    """A PaymentGateway whose payment page is served by madoguchi itself; no real money moves.

    Online methods get a page that marks the order paid. Convenience-store cash gets a payment number
    and a deadline `profile.konbini_payment_days` days later at 23:59 Asia/Tokyo; its page simulates
    paying at the store.
    """

    name = "sandbox"

    def __init__(self, *, base_url: str, profile: UniversityProfile) -> None:
        self.base_url = base_url.rstrip("/")
        self.profile = profile

    def start_payment(self, session: Session, order: Order, now: datetime) -> Payment:
        """Open a pending payment for `order`, with a konbini number and deadline for convenience-store cash.

        Args:
            session: the session of the caller's transaction.
            order: a flushed order awaiting payment.
            now: the current time (aware).

        Returns:
            The new, flushed Payment row.
        """
        now = require_aware(now)
        konbini = order.payment_method is PaymentMethod.CONVENIENCE_STORE
        payment = Payment(
            order_id=order.id, gateway=self.name, reference=secrets.token_urlsafe(24),
            method=order.payment_method, amount_yen=order.total_yen, status=PaymentStatus.PENDING,
            konbini_number=_konbini_number() if konbini else None,
            deadline=self.konbini_deadline(now) if konbini else None, created_at=now,
        )
        order.payments.append(payment)
        session.flush()
        log.info("sandbox payment opened for order %s (%s)", order.number, payment.method.value)
        return payment

    def payment_url(self, payment: Payment) -> str | None:
        """The sandbox page; for konbini payments it shows the number and simulates paying at the store."""
        return self.base_url + SANDBOX_PAGE_PATH.format(reference=payment.reference)

    def konbini_deadline(self, now: datetime) -> datetime:
        """23:59 (Asia/Tokyo) on the day `konbini_payment_days` days after `now`."""
        day = require_aware(now).astimezone(TOKYO).date() + timedelta(days=self.profile.konbini_payment_days)
        return datetime.combine(day, KONBINI_DEADLINE_TIME, TOKYO)


def _konbini_number() -> str:
    # Twelve digits in groups of four, easy to read out at a store's terminal; random, so unguessable.
    digits = "".join(secrets.choice("0123456789") for _ in range(12))
    return f"{digits[:4]}-{digits[4:8]}-{digits[8:]}"
