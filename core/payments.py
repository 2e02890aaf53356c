"""The payments port: how the core asks a gateway to take payment for an order."""

from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from core.models import Order, Payment
from core.profile import UniversityProfile


class PaymentGateway(Protocol):
    """A payment provider; the shipped one is the local sandbox, a real one is a new adapter."""

    name: str

    def start_payment(self, session: Session, order: Order, now: datetime) -> Payment:
        """Open a payment for `order` and return its row (with a konbini number and deadline for cash)."""
        ...

    def payment_url(self, payment: Payment) -> str | None:
        """Where the student pays online, or None when they pay in a store with the konbini number."""
        ...


def make_gateway(name: str, *, base_url: str, profile: UniversityProfile) -> PaymentGateway:
    """The gateway adapter named by the PAYMENT_GATEWAY setting.

    Raises:
        ValueError: for an unknown name.
    """
    if name == "sandbox":
        from core.sandbox_gateway import SandboxGateway  # adapters are imported only when chosen

        return SandboxGateway(base_url=base_url, profile=profile)
    raise ValueError(f"unknown payment gateway {name!r}")
