"""Domain errors: refusals a student should see, each carrying the data to explain it politely."""

from dataclasses import dataclass
from datetime import datetime


class DomainError(Exception):
    """A refusal the bot turns into a polite reply; `code` names its message in the catalogs."""

    code = "domain_error"

    def message_args(self) -> dict[str, object]:
        """The values the message template needs."""
        return {}

    def __str__(self) -> str:
        return f"{self.code}: {self.message_args()}"


@dataclass
class UnknownItem(DomainError):
    """The catalog has no item with this code."""

    item_code: str
    code = "unknown_item"

    def message_args(self) -> dict[str, object]:
        return {"item": self.item_code}


@dataclass
class DeliveryNotAllowed(DomainError):
    """The item cannot be delivered this way."""

    item_code: str
    delivery_method: str
    allowed: tuple[str, ...]
    code = "delivery_not_allowed"

    def message_args(self) -> dict[str, object]:
        return {"item": self.item_code, "delivery": self.delivery_method, "allowed": self.allowed}


@dataclass
class NotEligible(DomainError):
    """The student may not order this item (e.g. the parking fee below year 2)."""

    item_code: str
    reason: str  # "min_year" or "final_year_only"
    required_year: int
    student_year: int
    code = "not_eligible"

    def message_args(self) -> dict[str, object]:
        return {"item": self.item_code, "reason": self.reason, "required_year": self.required_year,
                "student_year": self.student_year}


@dataclass
class InvalidOrder(DomainError):
    """The order itself is malformed: no items, bad copies, an item twice."""

    reason: str
    code = "invalid_order"

    def message_args(self) -> dict[str, object]:
        return {"reason": self.reason}


@dataclass
class RefundNotPossible(DomainError):
    """Refunds do not exist: once paid, fees are not returned for any reason (the guide's rule)."""

    order_number: str | None = None
    code = "refund_not_possible"

    def message_args(self) -> dict[str, object]:
        return {"order": self.order_number or ""}


@dataclass
class InvalidTransition(DomainError):
    """The order cannot move from its status to the one asked (e.g. cancel after payment)."""

    order_number: str
    from_status: str
    to_status: str
    code = "invalid_transition"

    def message_args(self) -> dict[str, object]:
        return {"order": self.order_number, "from": self.from_status, "to": self.to_status}


@dataclass
class OrderNotFound(DomainError):
    """No order with this number (for this student)."""

    order_number: str
    code = "order_not_found"

    def message_args(self) -> dict[str, object]:
        return {"order": self.order_number}


@dataclass
class StudentNotFound(DomainError):
    """No student with this number; only for staff paths, never to answer a reset request."""

    student_number: str
    code = "student_not_found"


@dataclass
class RateLimited(DomainError):
    """Too many one-time links were requested; try again after `retry_after`."""

    retry_after: datetime
    code = "rate_limited"

    def message_args(self) -> dict[str, object]:
        return {"retry_after": self.retry_after}


@dataclass
class LinkInvalid(DomainError):
    """A one-time link cannot be used: `reason` is expired, used, superseded or unknown."""

    reason: str
    code = "link_invalid"

    def message_args(self) -> dict[str, object]:
        return {"reason": self.reason}


@dataclass
class WeakSecondPassword(DomainError):
    """A proposed second password breaks rules; `violations` are the rule codes, in order."""

    violations: tuple[str, ...]
    code = "weak_second_password"

    def message_args(self) -> dict[str, object]:
        return {"violations": self.violations}


@dataclass
class InvalidOrderLine(InvalidOrder):
    """An InvalidOrder about one line: copies outside 1..max_copies, or the item listed twice."""

    item_code: str = ""
    copies: int = 0
    max_copies: int = 1

    def message_args(self) -> dict[str, object]:
        return {"reason": self.reason, "item": self.item_code, "copies": self.copies, "max": self.max_copies}


@dataclass
class PaymentMethodNotOffered(DomainError):
    """The university does not accept this payment method (or it is not a method at all)."""

    method: str
    offered: tuple[str, ...]
    code = "payment_method_not_offered"

    def message_args(self) -> dict[str, object]:
        return {"method": self.method, "offered": self.offered}


@dataclass
class PaymentNotFound(DomainError):
    """No payment with this gateway reference."""

    reference: str
    code = "payment_not_found"

    def message_args(self) -> dict[str, object]:
        return {"reference": self.reference}


@dataclass
class PaymentExpired(DomainError):
    """The payment deadline (e.g. of a convenience-store payment) has passed; the order cannot be paid."""

    order_number: str
    deadline: datetime | None
    code = "payment_expired"

    def message_args(self) -> dict[str, object]:
        return {"order": self.order_number, "deadline": self.deadline}


@dataclass
class InvalidEmailAddress(DomainError):
    """The address cannot be used; `reason` is format, full_width, spaces or same_as_current."""

    reason: str
    code = "invalid_email"

    def message_args(self) -> dict[str, object]:
        return {"reason": self.reason}


@dataclass
class PasswordMismatch(DomainError):
    """The two entries of a new second password differ; `violations` are the rules the first also breaks."""

    violations: tuple[str, ...] = ()
    code = "second_password_mismatch"

    def message_args(self) -> dict[str, object]:
        return {"violations": self.violations}
