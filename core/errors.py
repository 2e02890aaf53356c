"""Domain errors: refusals a student should see, each carrying the data to explain it politely."""

from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from typing import ClassVar


class DomainError(Exception):
    """A refusal the bot turns into a polite reply; `code` names its message in the catalogs.

    A subclass is a dataclass whose fields are the data of the refusal; they are the message's arguments.
    """

    code = "domain_error"
    # The names the messages give some fields (`{item}` for `item_code`), the same in every message.
    ARGUMENT_NAMES: ClassVar[Mapping[str, str]] = {
        "item_code": "item", "delivery_method": "delivery", "order_number": "order", "from_status": "from",
        "to_status": "to", "max_copies": "max",
    }

    def message_args(self) -> dict[str, object]:
        """The values the message template needs: each field, by its name in the messages."""
        if not is_dataclass(self):
            return {}
        return {self.ARGUMENT_NAMES.get(field.name, field.name): getattr(self, field.name) for field in fields(self)}

    def __str__(self) -> str:
        return f"{self.code}: {self.message_args()}"


@dataclass
class UnknownItem(DomainError):
    """The catalog has no item with this code."""

    item_code: str
    code = "unknown_item"


@dataclass
class DeliveryNotAllowed(DomainError):
    """The item cannot be delivered this way."""

    item_code: str
    delivery_method: str
    allowed: tuple[str, ...]
    code = "delivery_not_allowed"


@dataclass
class NotEligible(DomainError):
    """The student may not order this item (e.g. the parking fee below year 2)."""

    item_code: str
    reason: str  # "min_year" or "final_year_only"
    required_year: int
    student_year: int
    code = "not_eligible"


@dataclass
class InvalidOrder(DomainError):
    """The order itself is malformed: no items, bad copies, an item twice."""

    reason: str
    code = "invalid_order"


@dataclass
class RefundNotPossible(DomainError):
    """Refunds do not exist: once paid, fees are not returned for any reason (the guide's rule)."""

    order_number: str = ""  # empty for the rule itself, asked about no order
    code = "refund_not_possible"


@dataclass
class InvalidTransition(DomainError):
    """The order cannot move from its status to the one asked (e.g. cancel after payment)."""

    order_number: str
    from_status: str
    to_status: str
    code = "invalid_transition"


@dataclass
class OrderNotFound(DomainError):
    """No order with this number (for this student)."""

    order_number: str
    code = "order_not_found"


@dataclass
class StudentNotFound(DomainError):
    """No student with this number; only for staff paths, never to answer a reset request."""

    student_number: str
    code = "student_not_found"

    def message_args(self) -> dict[str, object]:
        """None: a student number never goes into a message (or, through `str()`, a log line)."""
        return {}


@dataclass
class RateLimited(DomainError):
    """Too many one-time links were requested; try again after `retry_after`."""

    retry_after: datetime
    code = "rate_limited"


@dataclass
class LinkInvalid(DomainError):
    """A one-time link cannot be used: `reason` is expired, used, superseded or unknown."""

    reason: str
    code = "link_invalid"


@dataclass
class WeakSecondPassword(DomainError):
    """A proposed second password breaks rules; `violations` are the rule codes, in order."""

    violations: tuple[str, ...]
    code = "weak_second_password"


@dataclass
class InvalidOrderLine(InvalidOrder):
    """An InvalidOrder about one line: copies outside 1..max_copies, or the item listed twice."""

    item_code: str = ""
    copies: int = 0
    max_copies: int = 1


@dataclass
class PaymentMethodNotOffered(DomainError):
    """The university does not accept this payment method (or it is not a method at all)."""

    method: str
    offered: tuple[str, ...]
    code = "payment_method_not_offered"


@dataclass
class PaymentNotFound(DomainError):
    """No payment with this gateway reference."""

    reference: str
    code = "payment_not_found"


@dataclass
class PaymentExpired(DomainError):
    """The payment deadline (e.g. of a convenience-store payment) has passed; the order cannot be paid."""

    order_number: str
    deadline: datetime | None
    code = "payment_expired"


@dataclass
class InvalidEmailAddress(DomainError):
    """The address cannot be used; `reason` is format, full_width, spaces or same_as_current."""

    reason: str
    code = "invalid_email"


@dataclass
class PasswordMismatch(DomainError):
    """The two entries of a new second password differ; `violations` are the rules the first also breaks."""

    violations: tuple[str, ...] = ()
    code = "second_password_mismatch"
