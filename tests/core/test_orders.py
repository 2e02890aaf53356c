"""Orders: validation, totals, numbers, the lifecycle, payment (idempotent and concurrent), no refunds."""

import re
import threading
from datetime import datetime

import pytest
from sqlalchemy import func, select, update

from core import order_texts, orders
from core.clock import TOKYO
from core.enums import DeliveryMethod, Language, OrderStatus, PaymentMethod, PaymentStatus
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
    UnknownItem,
)
from core.formatting import format_yen
from core.i18n import core_messages, t
from core.models import Order, OrderEvent, Payment, Student
from core.orders import OrderLine, unconfirmed_rules
from core.students import create_student
from tests.samples import SAMPLE_ADDRESS

GUIDE_NO_REFUND_JA = "支払手続きが完了された場合、理由の如何によらず返金はできません"
GUIDE_NO_REFUND_EN = "Once the payment procedure has been completed"
NUMBER = re.compile(rf"^[{orders.ORDER_NUMBER_ALPHABET}]{{4}}-[{orders.ORDER_NUMBER_ALPHABET}]{{4}}$")

CERT = OrderLine("enrollment_certificate", 1)
ALL_PATHS = {
    DeliveryMethod.WINDOW_PICKUP: ("student_id_reissue", OrderStatus.READY),
    DeliveryMethod.CAMPUS_PRINTER: ("enrollment_certificate", OrderStatus.PRINTED),
    DeliveryMethod.CONVENIENCE_STORE: ("transcript", OrderStatus.PRINTED),
    DeliveryMethod.MAIL: ("enrollment_certificate", OrderStatus.SHIPPED),
}


def add_student(core, number="24M1001", department="medicine", year=3, language=Language.JA) -> Student:
    with core.transaction() as session:
        return create_student(session, student_number=number, department=department, year=year, now=core.now(),
                              language=language)


def place(core, student, lines=(CERT,), delivery=DeliveryMethod.CAMPUS_PRINTER,
          payment=PaymentMethod.CREDIT_CARD) -> orders.PlacedOrder:
    with core.transaction() as session:
        return orders.create_order(session, student=student, lines=list(lines), delivery=delivery, payment=payment,
                                   profile=core.profile, gateway=core.payments, now=core.now(), address=SAMPLE_ADDRESS)


def quote(core, student, lines, delivery=DeliveryMethod.CAMPUS_PRINTER, payment=PaymentMethod.CREDIT_CARD):
    return orders.quote(student=student, lines=lines, delivery=delivery, payment=payment, profile=core.profile)


def events(core, order_id: int) -> list[tuple[str | None, str, str, datetime]]:
    with core.transaction() as session:
        rows = session.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))
        return [(e.from_status.value if e.from_status else None, e.to_status.value, e.actor, e.at) for e in rows]


def status_of(core, order_id: int) -> OrderStatus:
    with core.transaction() as session:
        return session.get(Order, order_id).status


def walk(core, order_id: int, to: OrderStatus, actor="staff:tanaka") -> None:
    """Move an order along its delivery's happy path until it reaches `to`."""
    with core.transaction() as session:
        order = session.get(Order, order_id)
        path = [OrderStatus.PAID, OrderStatus.PROCESSING, orders.FULFILLED_STATUS[order.delivery_method],
                OrderStatus.COLLECTED]
        for step in path[: path.index(to) + 1]:
            orders.advance(session, order, step, core.now(), actor)


# --- validation and totals -------------------------------------------------------------------------------


def test_total_is_price_times_copies_summed(core):
    student = add_student(core)
    placed = place(core, student, [OrderLine("enrollment_certificate", 2), OrderLine("transcript", 3)])
    assert placed.order.total_yen == 200 * 2 + 200 * 3
    assert placed.order.status is OrderStatus.AWAITING_PAYMENT
    assert placed.payment.amount_yen == 1000
    with core.transaction() as session:
        order = session.get(Order, placed.order.id)
        assert [(i.item_code, i.copies, i.unit_price_yen) for i in order.items] == [
            ("enrollment_certificate", 2, 200), ("transcript", 3, 200)]
    assert events(core, placed.order.id) == [(None, "awaiting_payment", "student", core.now())]


def test_quote_validates_and_totals_without_writing(core):
    student = add_student(core, year=2)
    checked = quote(core, student, [OrderLine("parking_fee", 1), OrderLine("parking_card_reissue", 1)],
                    DeliveryMethod.WINDOW_PICKUP, PaymentMethod.PAYPAY)
    assert checked.total_yen == 6000 + 1000
    assert [line.subtotal_yen for line in checked.lines] == [6000, 1000]
    assert checked.prices_are_examples
    with core.transaction() as session:
        assert session.scalar(select(func.count(Order.id))) == 0


def test_parking_fee_is_refused_below_year_two(core):
    first_year = add_student(core, year=1)
    with pytest.raises(NotEligible) as refused:
        quote(core, first_year, [OrderLine("parking_fee")], DeliveryMethod.WINDOW_PICKUP)
    assert (refused.value.reason, refused.value.required_year, refused.value.student_year) == ("min_year", 2, 1)
    second_year = add_student(core, number="23M1001", year=2)
    assert quote(core, second_year, [OrderLine("parking_fee")], DeliveryMethod.WINDOW_PICKUP).total_yen == 6000


def with_final_year_rule(core, source: str):
    """The core with the expected-graduation certificate's final-year rule marked as coming from `source`."""
    catalog = core.profile.catalog
    items = tuple(item.model_copy(update={"sources": {**item.sources, "final_year_only": source}})
                  if item.code == "expected_graduation_certificate" else item for item in catalog.items)
    core.profile = core.profile.model_copy(update={"catalog": catalog.model_copy(update={"items": items})})
    return core


@pytest.mark.parametrize(("department", "year", "allowed"), [
    ("medicine", 5, False), ("medicine", 6, True), ("nursing", 3, False), ("nursing", 4, True),
    ("occupational_health", 1, False),
])
def test_a_final_year_rule_the_university_states_refuses_other_years(core, department, year, allowed):
    with_final_year_rule(core, "university")
    student = add_student(core, department=department, year=year)
    lines = [OrderLine("expected_graduation_certificate")]
    if allowed:
        assert quote(core, student, lines).total_yen == 200
        return
    with pytest.raises(NotEligible) as refused:
        quote(core, student, lines)
    assert refused.value.reason == "final_year_only"
    assert refused.value.required_year == core.profile.department(department).years
    assert refused.value.student_year == year


def test_the_shipped_final_year_rule_is_an_assumption_to_confirm_never_a_refusal(core):
    # The guide does not say that only final-year students may order the 卒業見込み証明書.
    item = core.profile.catalog.get("expected_graduation_certificate")
    assert item.assumptions() == ("final_year_only",)
    third_year = add_student(core, department="medicine", year=3)
    assert quote(core, third_year, [OrderLine("expected_graduation_certificate")]).total_yen == 200
    [unconfirmed] = unconfirmed_rules(item, third_year, core.profile)
    assert (unconfirmed.reason, unconfirmed.required_year, unconfirmed.student_year) == ("final_year_only", 6, 3)
    sixth_year = add_student(core, number="21M1099", department="medicine", year=6)
    assert unconfirmed_rules(item, sixth_year, core.profile) == []


@pytest.mark.parametrize(("item", "delivery"), [
    ("student_id_reissue", DeliveryMethod.MAIL),
    ("student_id_reissue", DeliveryMethod.CONVENIENCE_STORE),
    ("enrollment_certificate", DeliveryMethod.WINDOW_PICKUP),
])
def test_delivery_the_catalog_forbids_is_refused(core, item, delivery):
    student = add_student(core)
    with pytest.raises(DeliveryNotAllowed) as refused:
        quote(core, student, [OrderLine(item)], delivery)
    assert refused.value.item_code == item
    assert refused.value.allowed == tuple(d.value for d in core.profile.catalog.get(item).deliveries)


def test_mixed_order_fails_on_the_item_that_cannot_come_that_way(core):
    student = add_student(core)
    with pytest.raises(DeliveryNotAllowed) as refused:
        quote(core, student, [CERT, OrderLine("student_id_reissue")], DeliveryMethod.CAMPUS_PRINTER)
    assert refused.value.item_code == "student_id_reissue"


def test_unknown_delivery_and_unknown_item_are_refused(core):
    student = add_student(core)
    with pytest.raises(DeliveryNotAllowed):
        quote(core, student, [CERT], "drone")
    with pytest.raises(UnknownItem):
        quote(core, student, [OrderLine("diploma_copy")])


def test_payment_method_must_be_one_the_profile_offers(core):
    student = add_student(core)
    with pytest.raises(PaymentMethodNotOffered) as unknown:
        quote(core, student, [CERT], payment="bitcoin")
    assert "credit_card" in unknown.value.offered
    narrow = core.profile.model_copy(update={"payment_methods": tuple(
        option for option in core.profile.payment_methods if option.method is not PaymentMethod.PAYPAY)})
    with pytest.raises(PaymentMethodNotOffered) as not_offered:
        orders.quote(student=student, lines=[CERT], delivery=DeliveryMethod.MAIL, payment=PaymentMethod.PAYPAY,
                     profile=narrow)
    assert not_offered.value.method == "paypay"
    assert "paypay" not in not_offered.value.offered
    # Every method of the guide's list is offered by the shipped profile.
    for method in PaymentMethod:
        assert quote(core, student, [CERT], payment=method).payment is method


@pytest.mark.parametrize(("item", "copies", "ok"), [
    ("enrollment_certificate", 0, False), ("enrollment_certificate", 1, True),
    ("enrollment_certificate", 10, True), ("enrollment_certificate", 11, False),
    ("enrollment_certificate", -1, False), ("student_id_reissue", 1, True), ("student_id_reissue", 2, False),
])
def test_copies_must_be_between_one_and_the_items_maximum(core, item, copies, ok):
    student = add_student(core)
    delivery = core.profile.catalog.get(item).deliveries[0]
    if ok:
        assert quote(core, student, [OrderLine(item, copies)], delivery).lines[0].copies == copies
        return
    with pytest.raises(InvalidOrderLine) as refused:
        quote(core, student, [OrderLine(item, copies)], delivery)
    assert refused.value.reason == "copies_out_of_range"
    assert refused.value.max_copies == core.profile.catalog.get(item).max_copies
    assert isinstance(refused.value, InvalidOrder)


def test_empty_order_and_an_item_twice_are_invalid(core):
    student = add_student(core)
    with pytest.raises(InvalidOrder) as empty:
        quote(core, student, [])
    assert empty.value.reason == "empty"
    with pytest.raises(InvalidOrder) as twice:
        quote(core, student, [CERT, OrderLine("transcript"), OrderLine("enrollment_certificate", 2)])
    assert twice.value.reason == "duplicate_item"


def test_a_refused_order_writes_nothing(core):
    student = add_student(core, year=1)
    with pytest.raises(NotEligible):
        place(core, student, [OrderLine("parking_fee")], DeliveryMethod.WINDOW_PICKUP)
    with core.transaction() as session:
        assert session.scalar(select(func.count(Order.id))) == 0
        assert session.scalar(select(func.count(Payment.id))) == 0


# --- order numbers ---------------------------------------------------------------------------------------


def test_order_numbers_are_short_readable_and_unique(core):
    assert not set("0O1IL") & set(orders.ORDER_NUMBER_ALPHABET)
    student = add_student(core)
    numbers = [place(core, student).order.number for _ in range(25)]
    assert all(NUMBER.match(number) for number in numbers)
    assert len(set(numbers)) == len(numbers)
    assert all(NUMBER.match(orders.generate_order_number()) for _ in range(200))


def test_a_colliding_number_is_drawn_again(core, monkeypatch):
    student = add_student(core)
    drawn = iter(["AAAA-2222", "AAAA-2222", "BBBB-3333"])
    monkeypatch.setattr(orders, "generate_order_number", lambda: next(drawn))
    assert place(core, student).order.number == "AAAA-2222"
    assert place(core, student).order.number == "BBBB-3333"


def test_endless_collisions_give_up_loudly(core, monkeypatch):
    student = add_student(core)
    monkeypatch.setattr(orders, "generate_order_number", lambda: "AAAA-2222")
    place(core, student)
    with pytest.raises(RuntimeError, match="no free order number"):
        place(core, student)


# --- lookup ------------------------------------------------------------------------------------------------


def test_find_order_accepts_the_number_typed_any_way(core, monkeypatch):
    student = add_student(core)
    monkeypatch.setattr(orders, "generate_order_number", lambda: "K7PM-3QXA")
    placed = place(core, student)
    with core.transaction() as session:
        for typed in ["K7PM-3QXA", "k7pm-3qxa", "K7PM3QXA", " k7pm 3qxa ", "Ｋ７ＰＭ－３ＱＸＡ", "ｋ７ｐｍ３ｑｘａ",
                      "K7PM－3QXA", "K7PM ー 3QXA"]:
            assert orders.find_order(session, typed).id == placed.order.id, typed
            assert orders.find_order(session, typed, student=student).id == placed.order.id


def test_find_order_hides_other_students_orders_and_rejects_garbage(core):
    owner, other = add_student(core), add_student(core, number="24M1002")
    placed = place(core, owner)
    with core.transaction() as session:
        with pytest.raises(OrderNotFound):
            orders.find_order(session, placed.order.number, student=other)
        for garbage in ["", "K7PM", "K7PM-3QXA-1", "O0O0-1I1L", "ZZZZ-ZZZZ"]:
            with pytest.raises(OrderNotFound):
                orders.find_order(session, garbage)
        with pytest.raises(PaymentNotFound):
            orders.find_payment(session, "no-such-reference")


def test_recent_orders_newest_first_and_limited(core, clock):
    student, other = add_student(core), add_student(core, number="24M1002")
    numbers = []
    for _ in range(7):
        numbers.append(place(core, student).order.number)
        clock.advance(minutes=1)
    place(core, other)
    with core.transaction() as session:
        assert [o.number for o in orders.recent_orders(session, student)] == numbers[::-1][:5]
        assert len(orders.recent_orders(session, student, limit=10)) == 7


# --- lifecycle -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("delivery", list(ALL_PATHS))
def test_each_delivery_follows_its_path_and_logs_every_step(core, clock, delivery):
    item, fulfilled = ALL_PATHS[delivery]
    student = add_student(core)
    placed = place(core, student, [OrderLine(item)], delivery)
    steps = [OrderStatus.PAID, OrderStatus.PROCESSING, fulfilled, OrderStatus.COLLECTED]
    for step in steps:
        clock.advance(hours=1)
        with core.transaction() as session:
            order = session.get(Order, placed.order.id)
            assert orders.advance(session, order, step, core.now(), "staff:tanaka").status is step
    logged = events(core, placed.order.id)
    assert [(f, to) for f, to, _, _ in logged] == [
        (None, "awaiting_payment"), ("awaiting_payment", "paid"), ("paid", "processing"),
        ("processing", fulfilled.value), (fulfilled.value, "collected")]
    assert [actor for _, _, actor, _ in logged][1:] == ["staff:tanaka"] * 4
    assert logged[-1][3] == core.now()
    with core.transaction() as session:
        order = session.get(Order, placed.order.id)
        assert order.payments[0].status is PaymentStatus.PAID  # paying by advance also settles the payment
        assert order.paid_at is not None


def _reachable(delivery: DeliveryMethod) -> list[OrderStatus]:
    return [OrderStatus.AWAITING_PAYMENT, OrderStatus.PAID, OrderStatus.PROCESSING,
            orders.FULFILLED_STATUS[delivery], OrderStatus.COLLECTED]


@pytest.mark.parametrize("delivery", list(ALL_PATHS))
def test_every_step_outside_the_table_is_refused(core, delivery):
    item, _ = ALL_PATHS[delivery]
    student = add_student(core)
    for position, status in enumerate(_reachable(delivery)):
        placed = place(core, student, [OrderLine(item)], delivery)
        if status is not OrderStatus.AWAITING_PAYMENT:
            walk(core, placed.order.id, status)
        allowed = {_reachable(delivery)[position + 1]} if position + 1 < len(_reachable(delivery)) else set()
        if status is OrderStatus.AWAITING_PAYMENT:
            allowed.add(OrderStatus.CANCELLED)
        before = events(core, placed.order.id)
        for target in set(OrderStatus) - allowed:
            expected = RefundNotPossible if target is OrderStatus.CANCELLED else InvalidTransition
            with pytest.raises(expected), core.transaction() as session:
                orders.advance(session, session.get(Order, placed.order.id), target, core.now(), "staff:tanaka")
            assert status_of(core, placed.order.id) is status, (status, target)
        assert events(core, placed.order.id) == before


def test_the_transition_table_matches_the_lifecycle():
    assert orders.TRANSITIONS[OrderStatus.AWAITING_PAYMENT] == {OrderStatus.PAID, OrderStatus.CANCELLED}
    assert orders.TRANSITIONS[OrderStatus.COLLECTED] == orders.TRANSITIONS[OrderStatus.CANCELLED] == set()
    assert set(orders.TRANSITIONS) == set(OrderStatus)
    assert set(orders.FULFILLED_STATUS) == set(DeliveryMethod)


def test_a_stale_read_cannot_move_an_order_twice(core):
    student = add_student(core)
    placed = place(core, student)
    walk(core, placed.order.id, OrderStatus.PAID)
    with core.transaction() as session:
        order = session.get(Order, placed.order.id)
        # Another writer moved it on behind this session's back; the ORM object still says PAID.
        session.execute(update(Order).where(Order.id == order.id).values(status=OrderStatus.PROCESSING),
                        execution_options={"synchronize_session": False})
        with pytest.raises(InvalidTransition):
            orders.advance(session, order, OrderStatus.PROCESSING, core.now(), "staff:tanaka")
        assert order.status is OrderStatus.PROCESSING


# --- cancel and refunds ------------------------------------------------------------------------------------


def test_cancel_before_payment(core, clock):
    student = add_student(core)
    placed = place(core, student)
    clock.advance(minutes=5)
    with core.transaction() as session:
        order = orders.cancel_order(session, session.get(Order, placed.order.id), core.now())
        assert order.status is OrderStatus.CANCELLED
        assert order.payments[0].status is PaymentStatus.CANCELLED
    with core.transaction() as session:  # cancelling twice changes nothing
        orders.cancel_order(session, session.get(Order, placed.order.id), core.now())
    assert events(core, placed.order.id)[1:] == [("awaiting_payment", "cancelled", "student", core.now())]
    with pytest.raises(InvalidTransition), core.transaction() as session:
        orders.mark_paid(session, placed.payment.reference, core.now())
    assert status_of(core, placed.order.id) is OrderStatus.CANCELLED


@pytest.mark.parametrize("status", [OrderStatus.PAID, OrderStatus.PROCESSING, OrderStatus.PRINTED,
                                    OrderStatus.COLLECTED])
def test_cancel_after_payment_is_refused_because_there_are_no_refunds(core, status):
    student = add_student(core)
    placed = place(core, student)
    walk(core, placed.order.id, status)
    before = events(core, placed.order.id)
    with pytest.raises(RefundNotPossible) as refused, core.transaction() as session:
        orders.cancel_order(session, session.get(Order, placed.order.id), core.now())
    assert refused.value.order_number == placed.order.number
    assert status_of(core, placed.order.id) is status
    assert events(core, placed.order.id) == before


def test_refund_is_always_refused_with_the_guides_words(core):
    student = add_student(core)
    placed = place(core, student)
    walk(core, placed.order.id, OrderStatus.PAID)
    for target in (placed.order, placed.order.number, None):
        with pytest.raises(RefundNotPossible) as refused:
            orders.request_refund(target)
        assert refused.value.code == "refund_not_possible"
    assert GUIDE_NO_REFUND_JA in order_texts.explain(refused.value, Language.JA, core.profile)
    assert GUIDE_NO_REFUND_EN in order_texts.explain(refused.value, Language.EN, core.profile)
    assert "cannot be refunded for any reason" in t("orders.errors.refund_not_possible", Language.EN)


# --- payment -------------------------------------------------------------------------------------------


def test_mark_paid_is_idempotent(core, clock):
    student = add_student(core)
    placed = place(core, student)
    clock.advance(minutes=3)
    paid_at = core.now()
    with core.transaction() as session:
        first = orders.mark_paid(session, placed.payment.reference, core.now())
    clock.advance(minutes=3)
    with core.transaction() as session:
        second = orders.mark_paid(session, placed.payment.reference, core.now())
    assert (first.newly_paid, second.newly_paid) == (True, False)
    assert second.order.paid_at == paid_at and second.payment.paid_at == paid_at
    assert second.payment.status is PaymentStatus.PAID
    assert events(core, placed.order.id)[1:] == [("awaiting_payment", "paid", "gateway", paid_at)]


def test_mark_paid_seeing_a_stale_order_pays_once(core):
    student = add_student(core)
    placed = place(core, student)
    with core.transaction() as session:
        payment = orders.find_payment(session, placed.payment.reference)
        assert payment.order.status is OrderStatus.AWAITING_PAYMENT
        # A concurrent payment committed between our read and our write (as on PostgreSQL's READ COMMITTED).
        session.execute(update(Order).where(Order.id == placed.order.id).values(status=OrderStatus.PAID),
                        execution_options={"synchronize_session": False})
        assert orders.mark_paid(session, placed.payment.reference, core.now()).newly_paid is False
    assert [to for _, to, _, _ in events(core, placed.order.id)] == ["awaiting_payment"]


def test_mark_paid_twice_at_once_pays_once(core):
    student = add_student(core)
    placed = place(core, student)
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[bool] = []
    failures: list[BaseException] = []

    def pay() -> None:
        try:
            with core.transaction() as session:
                barrier.wait()  # both transactions are open before either touches the order
                outcomes.append(orders.mark_paid(session, placed.payment.reference, core.now()).newly_paid)
        except BaseException as exc:  # reported to the main thread below
            failures.append(exc)

    threads = [threading.Thread(target=pay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert sorted(outcomes) == [False, True]
    assert [to for _, to, _, _ in events(core, placed.order.id)] == ["awaiting_payment", "paid"]
    assert status_of(core, placed.order.id) is OrderStatus.PAID


def test_online_payment_has_a_sandbox_url_and_no_deadline(core):
    student = add_student(core)
    placed = place(core, student)
    assert placed.payment.gateway == "sandbox"
    assert placed.payment_url == core.url(f"sandbox/pay/{placed.payment.reference}")
    assert placed.konbini_number is None and placed.deadline is None
    assert len(placed.payment.reference) >= 32


def test_konbini_payment_gets_a_number_and_a_deadline(core, clock):
    student = add_student(core)
    placed = place(core, student, payment=PaymentMethod.CONVENIENCE_STORE)
    assert re.fullmatch(r"\d{4}-\d{4}-\d{4}", placed.konbini_number)
    # 2026-11-24 10:00 plus konbini_payment_days (3) days, until 23:59 Tokyo time.
    assert core.profile.konbini_payment_days == 3
    assert placed.deadline == datetime(2026, 11, 27, 23, 59, 59, tzinfo=TOKYO)
    assert placed.payment_url is not None  # the sandbox page simulates paying at the store
    clock.set(datetime(2026, 11, 27, 23, 59, tzinfo=TOKYO))
    with core.transaction() as session:
        assert orders.mark_paid(session, placed.payment.reference, core.now()).newly_paid


def test_konbini_payment_after_the_deadline_is_refused_and_expires(core, clock):
    student = add_student(core)
    placed = place(core, student, payment=PaymentMethod.CONVENIENCE_STORE)
    clock.set(datetime(2026, 11, 28, 0, 0, tzinfo=TOKYO))
    with pytest.raises(PaymentExpired) as late, core.transaction() as session:
        orders.mark_paid(session, placed.payment.reference, core.now())
    assert late.value.deadline == placed.deadline
    with core.transaction() as session:
        assert orders.payment_state(orders.find_payment(session, placed.payment.reference), core.now()) \
            is PaymentStatus.EXPIRED
        assert orders.expire_overdue_payments(session, core.now()) == [placed.order.number]
        assert orders.expire_overdue_payments(session, core.now()) == []
    assert status_of(core, placed.order.id) is OrderStatus.CANCELLED
    assert events(core, placed.order.id)[-1][:3] == ("awaiting_payment", "cancelled", "system")
    with pytest.raises(PaymentExpired), core.transaction() as session:
        orders.mark_paid(session, placed.payment.reference, core.now())


def test_unknown_payment_reference_is_refused(core):
    with pytest.raises(PaymentNotFound), core.transaction() as session:
        orders.mark_paid(session, "nope", core.now())


# --- pickup window and texts -------------------------------------------------------------------------------


def test_window_pickup_order_exposes_its_pickup_window(core, clock):
    student = add_student(core)
    placed = place(core, student, [OrderLine("student_id_reissue")], DeliveryMethod.WINDOW_PICKUP)
    with core.transaction() as session:
        order = session.get(Order, placed.order.id)
        # Not paid yet: the guide counts from the payment, so no date is promised, only the rule.
        assert order_texts.pickup_window(order, core.calendar) is None
        summary = order_texts.summarize(order, core.profile, core.calendar)
        unpaid = order_texts.describe(summary, Language.JA, core.profile)
        assert "お支払い待ち" in unpaid and "受取可能" not in unpaid and "2026年11月25日" not in unpaid
        assert "お支払いが完了した日の翌営業日13:00から" in unpaid
    clock.set(datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO))
    paid_early = place(core, student, [OrderLine("student_id_reissue")], DeliveryMethod.WINDOW_PICKUP)
    with core.transaction() as session:
        order = orders.mark_paid(session, paid_early.payment.reference, core.now()).order
        # Paid Tuesday 10:00: from 13:00 the next business day.
        window = order_texts.pickup_window(order, core.calendar)
        assert window == (datetime(2026, 11, 25, 13, 0, tzinfo=TOKYO),) * 2
        summary = order_texts.summarize(order, core.profile, core.calendar)
        assert "2026年11月25日（水）13:00から受取可能" in order_texts.describe(summary, Language.JA, core.profile)
    clock.set(datetime(2026, 11, 24, 16, 0, tzinfo=TOKYO))  # paid after the 15:00 cutoff
    with core.transaction() as session:
        order = orders.mark_paid(session, placed.payment.reference, core.now()).order
        window = order_texts.pickup_window(order, core.calendar)
        assert window == (datetime(2026, 11, 25, 13, 0, tzinfo=TOKYO), datetime(2026, 11, 26, 13, 0, tzinfo=TOKYO))
        summary = order_texts.summarize(order, core.profile, core.calendar)
        text = order_texts.describe(summary, Language.EN, core.profile)
    assert "Wed, Nov 25, 2026, 13:00 (Japan time)" in text and "Thu, Nov 26, 2026, 13:00" in text
    other = place(core, student)
    with core.transaction() as session:
        assert order_texts.pickup_window(session.get(Order, other.order.id), core.calendar) is None


def test_window_pickup_instructions_follow_the_guide(core):
    ja = "\n".join(order_texts.window_pickup_steps(Language.JA, core.profile))
    for words in ["「郵送」", "「大学窓口で受取り」", "「窓口受取り」", "郵便番号は入力不要", "翌営業日の13:00",
                  "15:00以降", "学生証", "「郵送対応完了」", "「受取り可能」"]:
        assert words in ja, words
    en = "\n".join(order_texts.window_pickup_steps(Language.EN, core.profile))
    for words in ["「郵送」", "「大学窓口で受取り」", "「窓口受取り」", "No postal code", "13:00", "ready to collect"]:
        assert words in en, words


def test_summary_text_shows_items_total_and_konbini_details(core):
    student = add_student(core)
    placed = place(core, student, [OrderLine("enrollment_certificate", 2), OrderLine("transcript", 1)],
                   payment=PaymentMethod.CONVENIENCE_STORE)
    with core.transaction() as session:
        summary = order_texts.summarize(session.get(Order, placed.order.id), core.profile, core.calendar)
    ja = order_texts.describe(summary, Language.JA, core.profile)
    assert placed.order.number in ja and "在学証明書 ×2" in ja and "合計：600円" in ja
    assert "コンビニ現金払い" in ja and placed.konbini_number in ja and "2026年11月27日（金）23:59" in ja
    assert "現金でのお支払いのみ" in ja
    en = order_texts.describe(summary, Language.EN, core.profile)
    assert "Certificate of Enrollment ×2" in en and "Total: ¥600" in en and "Fri, Nov 27, 2026, 23:59" in en
    assert "cash only (cards, PayPay etc. cannot be used at the store)" in en
    card = place(core, student)
    with core.transaction() as session:
        summary = order_texts.summarize(session.get(Order, card.order.id), core.profile, core.calendar)
        card_text = order_texts.describe(summary, Language.EN, core.profile)
    assert "cash only" not in card_text and "Pay by" not in card_text
    assert format_yen(12000, Language.JA) == "12,000円"


def test_every_refusal_has_a_polite_text_in_both_languages(core):
    refusals = [
        UnknownItem("diploma_copy"), DeliveryNotAllowed("student_id_reissue", "mail", ("window_pickup",)),
        DeliveryNotAllowed("enrollment_certificate", "drone", ("mail",)),
        NotEligible("parking_fee", "min_year", 2, 1), NotEligible("expected_graduation_certificate",
                                                                  "final_year_only", 6, 5),
        InvalidOrder("empty"), InvalidOrderLine("duplicate_item", item_code="transcript"),
        InvalidOrderLine("copies_out_of_range", item_code="student_id_reissue", copies=2, max_copies=1),
        PaymentMethodNotOffered("bitcoin", ("credit_card", "paypay")), RefundNotPossible("K7PM-3QXA"),
        InvalidTransition("K7PM-3QXA", "paid", "cancelled"), OrderNotFound("K7PM-3QXA"),
        PaymentNotFound("x"), PaymentExpired("K7PM-3QXA", datetime(2026, 11, 27, 23, 59, tzinfo=TOKYO)),
    ]
    for refusal in refusals:
        for lang in Language:
            text = order_texts.explain(refusal, lang, core.profile)
            assert text and "{" not in text, (refusal, lang)
    assert "学生駐車場使用料は2年次生以上" in order_texts.explain(refusals[3], Language.JA, core.profile)
    assert "1部から1部" in order_texts.explain(refusals[7], Language.JA, core.profile)
    assert "学生支援課窓口で受取り" in order_texts.explain(refusals[1], Language.JA, core.profile)
    assert "PayPay" in order_texts.explain(refusals[8], Language.EN, core.profile)


def test_order_and_payment_texts_exist_in_both_languages_with_the_same_placeholders():
    catalog = core_messages()
    ours = {key for key in catalog.keys(Language.JA) | catalog.keys(Language.EN)
            if key.startswith(("orders.", "payments."))}
    assert ours
    for key in sorted(ours):
        assert key in catalog.keys(Language.JA) and key in catalog.keys(Language.EN), key
        assert catalog.placeholders(key, Language.JA) == catalog.placeholders(key, Language.EN), key
    for status in OrderStatus:
        assert f"orders.status.{status.value}" in ours
    for delivery in DeliveryMethod:
        assert f"orders.delivery.{delivery.value}" in ours
