"""How orders read to students: summaries, labels, pickup windows, window-pickup steps and refusals."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.addresses import MailingAddress
from core.calendar import BusinessCalendar
from core.catalog import LocalizedText, is_stated
from core.enums import PRINT_DELIVERIES, DeliveryMethod, Language, OrderStatus, PaymentMethod, PaymentStatus
from core.errors import (
    DeliveryNotAllowed,
    DomainError,
    InvalidOrder,
    InvalidOrderLine,
    InvalidTransition,
    NotEligible,
    OrderNotFound,
    PaymentExpired,
    PaymentMethodNotOffered,
    PaymentNotFound,
    RefundNotPossible,
    UnknownItem,
)
from core.formatting import format_datetime, format_yen, join_list
from core.i18n import t
from core.models import Order, OrderItem
from core.orders import PricedLine
from core.profile import UniversityProfile


@dataclass(frozen=True)
class OrderSummary:
    """Everything the bot and the pages show about an order, language-neutral."""

    number: str
    status: OrderStatus
    delivery: DeliveryMethod
    payment_method: PaymentMethod
    lines: tuple[PricedLine, ...]
    total_yen: int
    created_at: datetime
    paid_at: datetime | None
    pickup_window: tuple[datetime, datetime] | None
    payment_status: PaymentStatus | None
    konbini_number: str | None
    payment_deadline: datetime | None
    mailing_address: MailingAddress | None = None
    print_number: str | None = None  # the number to print with, once paid (convenience store, campus printer)
    print_expires_at: datetime | None = None
    shipped_at: datetime | None = None

    @property
    def prices_are_examples(self) -> bool:
        """True if any price is an example from the shipped profile rather than a real fee."""
        return any(line.price_is_example for line in self.lines)


def pickup_window(order: Order, calendar: BusinessCalendar) -> tuple[datetime, datetime] | None:
    """(earliest, latest) collection times at the 学生支援課 window, or None if not a window-pickup order or not
    paid yet: the guide's rule (13:00 on the next business day; after 15:00 possibly a business day later)
    counts from the payment's completion, so an unpaid order has no date to promise.
    """
    if order.delivery_method is not DeliveryMethod.WINDOW_PICKUP or order.paid_at is None:
        return None
    return calendar.pickup_window(order.paid_at)


def summarize(order: Order, profile: UniversityProfile, calendar: BusinessCalendar) -> OrderSummary:
    """The language-neutral summary of an order, with its latest payment and pickup window."""
    payment = order.payments[-1] if order.payments else None
    fulfilment = order.fulfilment
    return OrderSummary(
        number=order.number, status=order.status, delivery=order.delivery_method,
        payment_method=order.payment_method,
        lines=tuple(_summary_line(item, profile) for item in order.items),
        total_yen=order.total_yen, created_at=order.created_at, paid_at=order.paid_at,
        pickup_window=pickup_window(order, calendar),
        payment_status=payment.status if payment else None,
        konbini_number=payment.konbini_number if payment else None,
        payment_deadline=payment.deadline if payment else None,
        mailing_address=MailingAddress.from_json(order.mailing_address) if order.mailing_address else None,
        print_number=fulfilment.print_number if fulfilment else None,
        print_expires_at=fulfilment.expires_at if fulfilment else None,
        shipped_at=fulfilment.shipped_at if fulfilment else None,
    )


def _summary_line(item: OrderItem, profile: UniversityProfile) -> PricedLine:
    try:
        example = profile.catalog.get(item.item_code).price_is_example
    except UnknownItem:
        example = False
    return PricedLine(item_code=item.item_code, name=item_name(item.item_code, profile), copies=item.copies,
                      unit_price_yen=item.unit_price_yen, price_is_example=example)


def item_name(code: str, profile: UniversityProfile) -> LocalizedText:
    """The catalog's name of an item, or its code for an item since removed from the profile."""
    try:
        return profile.catalog.get(code).name
    except UnknownItem:  # an item since removed from the profile still has its code to show
        return LocalizedText(ja=code, en=code)


def status_label(status: OrderStatus, lang: Language | str) -> str:
    """The student-facing name of a status."""
    return t(f"orders.status.{OrderStatus(status).value}", lang)


def delivery_label(delivery: DeliveryMethod, lang: Language | str) -> str:
    """The student-facing name of a delivery method."""
    return t(f"orders.delivery.{DeliveryMethod(delivery).value}", lang)


def delivery_labels(methods: Iterable[DeliveryMethod], lang: Language | str) -> str:
    """Delivery methods' names as one list (「学内印刷機で印刷、郵送」)."""
    return join_list([delivery_label(method, lang) for method in methods], lang)


def payment_label(method: PaymentMethod | str, lang: Language | str, profile: UniversityProfile) -> str:
    """The profile's name of a payment method (the guide's wording), or the raw value if not offered."""
    try:
        option = profile.payment_option(PaymentMethod(method))
    except ValueError:
        option = None
    return option.name(lang) if option else str(method)


def pickup_window_text(window: tuple[datetime, datetime], lang: Language | str,
                       profile: UniversityProfile) -> str:
    """`From 13:00 on ...`, or the range when an application after the cutoff may take a day longer."""
    earliest, latest = window
    if earliest == latest:
        return t("orders.pickup.from", lang, earliest=format_datetime(earliest, lang))
    return t("orders.pickup.range", lang, earliest=format_datetime(earliest, lang),
             latest=format_datetime(latest, lang), cutoff=f"{profile.pickup.cutoff:%H:%M}")


def window_pickup_steps(lang: Language | str, profile: UniversityProfile) -> list[str]:
    """How to apply for window pickup on the service (郵送, 送付先カテゴリ「大学窓口で受取り」, 住所「窓口受取り」)."""
    values = {"ready_at": f"{profile.pickup.ready_at:%H:%M}", "cutoff": f"{profile.pickup.cutoff:%H:%M}"}
    return [t(f"orders.window_pickup.{step}", lang, **values) for step in _WINDOW_PICKUP_STEPS]


_WINDOW_PICKUP_STEPS = ("choose_mail", "copies", "category", "address", "ready", "bring_id", "done_mail")


def describe(summary: OrderSummary, lang: Language | str, profile: UniversityProfile, *, owner: bool = False) -> str:
    """The summary as chat text, in `lang`. The print number and the mailing address only for `owner` (the
    student proven to have placed it): a print number prints the certificate, an address is personal data."""
    parts = [t("orders.summary.number", lang, number=summary.number)]
    parts += [t("orders.summary.line", lang, item=line.name(lang), copies=line.copies,
                subtotal=format_yen(line.subtotal_yen, lang)) for line in summary.lines]
    parts.append(t("orders.summary.total", lang, total=format_yen(summary.total_yen, lang)))
    parts.append(t("orders.summary.delivery", lang, delivery=delivery_label(summary.delivery, lang)))
    parts.append(t("orders.summary.payment", lang, payment=payment_label(summary.payment_method, lang, profile)))
    parts.append(t("orders.summary.status", lang, status=status_label(summary.status, lang)))
    if summary.status is OrderStatus.AWAITING_PAYMENT and summary.konbini_number:
        parts.append(t("orders.summary.konbini_number", lang, konbini_number=summary.konbini_number))
    if summary.status is OrderStatus.AWAITING_PAYMENT and summary.payment_deadline:
        parts.append(t("orders.summary.deadline", lang, deadline=format_datetime(summary.payment_deadline, lang)))
    option = profile.payment_option(summary.payment_method)
    if summary.status is OrderStatus.AWAITING_PAYMENT and option is not None and option.cash_only:
        parts.append(t("orders.summary.cash_only", lang))
    if summary.pickup_window and summary.status in {OrderStatus.PAID, OrderStatus.PROCESSING, OrderStatus.READY}:
        parts.append(pickup_window_text(summary.pickup_window, lang, profile))
    elif summary.delivery is DeliveryMethod.WINDOW_PICKUP and summary.status is OrderStatus.AWAITING_PAYMENT:
        parts.append(t("orders.summary.ready_after_payment", lang, ready_at=f"{profile.pickup.ready_at:%H:%M}",
                       cutoff=f"{profile.pickup.cutoff:%H:%M}"))
    personal = fulfilment_lines(summary, lang, profile)
    if owner:
        parts += personal
    elif summary.print_number or summary.mailing_address:
        parts.append(t("orders.owner_only", lang))
    return "\n".join(parts)


def address_lines(address: MailingAddress, lang: Language | str) -> list[str]:
    """A mailing address as the student confirms it: the category, where, to whom, the phone number."""
    return [t("orders.mail.category", lang), t("orders.mail.address", lang, address=address.lines()[0]),
            t("orders.mail.recipient", lang, recipient=address.recipient), t("orders.mail.phone", lang,
                                                                              phone=address.phone)]


def fulfilment_lines(summary: OrderSummary, lang: Language | str, profile: UniversityProfile) -> list[str]:
    """What completes the order for its delivery: the print number and its expiry (once paid; where to print
    it), the mailing address and whether it was sent (with what the 「郵送対応完了」 mail means)."""
    delivery, status = summary.delivery, summary.status
    lines: list[str] = []
    if delivery in PRINT_DELIVERIES:
        if summary.print_number and status in (OrderStatus.PAID, OrderStatus.PROCESSING):
            expires = format_datetime(summary.print_expires_at, lang) if summary.print_expires_at else "-"
            lines.append(t(f"orders.print.number.{delivery.value}", lang, number=summary.print_number,
                           expires=expires))
            if delivery is DeliveryMethod.CONVENIENCE_STORE and profile.print_stores is not None:
                lines.append(t("orders.print.stores", lang, stores=profile.print_stores(lang)))
            if not is_stated(profile.sources.get("print_number_days")):
                lines.append(t("orders.print.expiry_example", lang))
        elif status is OrderStatus.AWAITING_PAYMENT:
            lines.append(t("orders.print.after_payment", lang))
    if delivery is DeliveryMethod.MAIL:
        if summary.mailing_address is not None:
            lines += address_lines(summary.mailing_address, lang)
        if summary.shipped_at is not None:
            lines.append(t("orders.mail.shipped", lang, shipped=format_datetime(summary.shipped_at, lang)))
        elif status in (OrderStatus.PAID, OrderStatus.PROCESSING):
            lines.append(t("orders.mail.not_shipped", lang))
    return lines


def explain(error: DomainError, lang: Language | str, profile: UniversityProfile) -> str:
    """A polite sentence for an order or payment refusal, from the `orders.errors.*` catalog texts.

    Raises:
        KeyError: for an error this module does not raise (its text lives in another area).
    """
    def item(code: str) -> str:
        return item_name(code, profile)(lang)

    def joined(labels: Sequence[str]) -> str:
        return join_list(labels, lang)

    match error:
        case UnknownItem():
            return t("orders.errors.unknown_item", lang, item=error.item_code)
        case DeliveryNotAllowed():
            def label(value: str) -> str:
                try:
                    return delivery_label(DeliveryMethod(value), lang)
                except ValueError:
                    return value
            return t("orders.errors.delivery_not_allowed", lang, item=item(error.item_code),
                     delivery=label(error.delivery_method), allowed=joined([label(a) for a in error.allowed]))
        case NotEligible():
            return t(f"orders.errors.not_eligible.{error.reason}", lang, item=item(error.item_code),
                     required_year=error.required_year, student_year=error.student_year)
        case InvalidOrderLine():
            return t(f"orders.errors.invalid_order.{error.reason}", lang, item=item(error.item_code),
                     max=error.max_copies)
        case InvalidOrder():
            return t(f"orders.errors.invalid_order.{error.reason}", lang)
        case PaymentMethodNotOffered():
            return t("orders.errors.payment_method_not_offered", lang, method=error.method,
                     offered=joined([payment_label(m, lang, profile) for m in error.offered]))
        case RefundNotPossible():
            return t("orders.errors.refund_not_possible", lang)
        case InvalidTransition():
            return t("orders.errors.invalid_transition", lang, order=error.order_number,
                     status=status_label(OrderStatus(error.from_status), lang),
                     to=status_label(OrderStatus(error.to_status), lang))
        case OrderNotFound():
            return t("orders.errors.order_not_found", lang, order=error.order_number)
        case PaymentNotFound():
            return t("orders.errors.payment_not_found", lang)
        case PaymentExpired():
            deadline = format_datetime(error.deadline, lang) if error.deadline else "-"
            return t("orders.errors.payment_expired", lang, order=error.order_number, deadline=deadline)
    raise KeyError(error.code)
