"""Fulfilment of each delivery, created when the payment completes (SQLite and PostgreSQL): the print number and
its expiry with a reminder the day before, the window's ready time from the payment, a mail order's address and
発送済み; once only, also when the gateway reports twice at the same moment; a real service's port plugged in."""

import re
import threading
from datetime import datetime

import pytest
from sqlalchemy import func, select

from core import orders
from core.addresses import MailingAddress
from core.clock import TOKYO
from core.enums import DeliveryMethod, Language, OrderStatus, PaymentMethod
from core.errors import InvalidOrder, InvalidTransition
from core.fulfilment import PrintReservation, SandboxFulfilment, fulfil, fulfilment_of, make_fulfilment, mark_shipped
from core.models import Fulfilment, Order, Reminder
from core.order_texts import describe, summarize
from core.orders import OrderLine
from core.reminders import Kind
from core.students import create_student
from tests.samples import SAMPLE_ADDRESS

_numbers = iter(range(1, 10_000))
ITEMS = {
    DeliveryMethod.CONVENIENCE_STORE: "transcript",
    DeliveryMethod.CAMPUS_PRINTER: "enrollment_certificate",
    DeliveryMethod.MAIL: "transcript",
    DeliveryMethod.WINDOW_PICKUP: "student_id_reissue",
}


def placed(core, delivery: DeliveryMethod, *, address: MailingAddress | None = SAMPLE_ADDRESS) -> orders.PlacedOrder:
    with core.transaction() as session:
        student = create_student(session, student_number=f"24M{1000 + next(_numbers)}", department="medicine",
                                 year=3, now=core.now())
        return orders.create_order(session, student=student, lines=[OrderLine(ITEMS[delivery])], delivery=delivery,
                                   payment=PaymentMethod.CREDIT_CARD, profile=core.profile, gateway=core.payments,
                                   now=core.now(), address=address)


def pay(core, order: orders.PlacedOrder) -> Fulfilment:
    with core.transaction() as session:
        core.record_payment(session, order.payment.reference)
        found = fulfilment_of(session, session.get(Order, order.order.id))
        session.expunge(found)
        return found


def test_a_convenience_store_print_gets_a_number_valid_through_the_last_day_and_a_reminder_the_day_before(core):
    order = placed(core, DeliveryMethod.CONVENIENCE_STORE)
    with core.transaction() as session:
        assert fulfilment_of(session, session.get(Order, order.order.id)) is None, "nothing before the payment"
    fulfilment = pay(core, order)
    assert re.fullmatch(r"[23456789ABCDEFGHJKMNPQRSTVWXYZ]{8}", fulfilment.print_number)
    # Paid on Tue 2026-11-24 10:00; the shipped profile's print_number_days (7, an example) ends on Dec 1.
    assert fulfilment.expires_at == datetime(2026, 12, 1, 23, 59, tzinfo=TOKYO)
    assert fulfilment.provider == "sandbox" and fulfilment.ready_at is None
    with core.transaction() as session:
        [reminder] = session.scalars(select(Reminder).where(Reminder.kind == Kind.PRINT_EXPIRING.value)).all()
        assert reminder.subject == order.order.number
        assert reminder.due_at == datetime(2026, 11, 30, 10, 0, tzinfo=TOKYO)


def test_a_campus_printer_code_is_six_digits(core):
    fulfilment = pay(core, placed(core, DeliveryMethod.CAMPUS_PRINTER))
    assert re.fullmatch(r"[0-9]{6}", fulfilment.print_number) and fulfilment.expires_at is not None


def test_a_window_pickup_is_ready_from_the_business_day_after_the_payment_not_the_order(core, clock):
    order = placed(core, DeliveryMethod.WINDOW_PICKUP)  # ordered Tue 10:00
    clock.set(datetime(2026, 11, 25, 16, 0, tzinfo=TOKYO))  # paid Wed after the 15:00 cutoff
    fulfilment = pay(core, order)
    assert fulfilment.ready_at == datetime(2026, 11, 26, 13, 0, tzinfo=TOKYO)
    assert fulfilment.print_number is None


def test_a_mail_order_keeps_its_address_and_is_marked_sent_once(core, clock):
    order = placed(core, DeliveryMethod.MAIL)
    fulfilment = pay(core, order)
    assert fulfilment.print_number is None and fulfilment.shipped_at is None
    clock.advance(hours=26)
    with core.transaction() as session:
        stored = session.get(Order, order.order.id)
        assert MailingAddress.from_json(stored.mailing_address) == SAMPLE_ADDRESS
        assert mark_shipped(session, stored, core.now(), actor="staff:tanaka") is True
        assert stored.status is OrderStatus.SHIPPED and stored.fulfilment.shipped_at == core.now()
        assert mark_shipped(session, stored, core.now(), actor="staff:tanaka") is False
        text = describe(summarize(stored, core.profile, core.calendar), Language.JA, core.profile, owner=True)
    assert "郵送先：〒807-8555 福岡県北九州市八幡西区医生ケ丘 1-1 医生ケ丘ハイツ101" in text
    assert "2026年11月25日（水）12:00に発送しました" in text


def test_a_mail_order_needs_an_address_and_only_mail_keeps_one(core):
    with pytest.raises(InvalidOrder) as refused:
        placed(core, DeliveryMethod.MAIL, address=None)
    assert refused.value.reason == "address_required"
    printed = placed(core, DeliveryMethod.CAMPUS_PRINTER)
    with core.transaction() as session:
        assert session.get(Order, printed.order.id).mailing_address is None
        assert session.scalar(select(func.count()).select_from(Order)) == 1, "the refused order left no row"


def test_nothing_is_fulfilled_or_sent_before_the_payment(core):
    order = placed(core, DeliveryMethod.MAIL)
    with core.transaction() as session:
        unpaid = session.get(Order, order.order.id)
        with pytest.raises(InvalidTransition):
            fulfil(session, unpaid, port=core.fulfilment, profile=core.profile, calendar=core.calendar,
                   now=core.now())
        with pytest.raises(InvalidTransition):
            mark_shipped(session, unpaid, core.now(), actor="staff:tanaka")
    printed = placed(core, DeliveryMethod.CAMPUS_PRINTER)
    pay(core, printed)
    with core.transaction() as session, pytest.raises(InvalidTransition):  # only mail is sent
        mark_shipped(session, session.get(Order, printed.order.id), core.now(), actor="staff:tanaka")


def test_a_payment_reported_twice_at_the_same_moment_is_fulfilled_once(core):
    order = placed(core, DeliveryMethod.CONVENIENCE_STORE)
    barrier, errors = threading.Barrier(2, timeout=30), []

    def report() -> None:
        try:
            with core.transaction() as session:
                barrier.wait()  # both transactions are open before either touches the order
                core.record_payment(session, order.payment.reference)
        except BaseException as error:  # reported to the main thread below
            errors.append(error)

    threads = [threading.Thread(target=report) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with core.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Fulfilment)) == 1
        assert session.scalar(select(func.count()).select_from(Reminder)
                              .where(Reminder.kind == Kind.PRINT_EXPIRING.value)) == 1


class RealServicePort:
    """A university's own adapter: numbers and expiry from the real service."""

    name = "ntt-west"

    def reserve_print(self, order, delivery, now, profile) -> PrintReservation:
        return PrintReservation(f"R-{order.number}", datetime(2026, 12, 3, 23, 59, tzinfo=TOKYO))


def test_a_university_plugs_in_the_real_services_numbers(core):
    core.fulfilment = RealServicePort()
    order = placed(core, DeliveryMethod.CONVENIENCE_STORE)
    fulfilment = pay(core, order)
    assert fulfilment.print_number == f"R-{order.order.number}" and fulfilment.provider == "ntt-west"
    assert fulfilment.expires_at == datetime(2026, 12, 3, 23, 59, tzinfo=TOKYO)


def test_only_the_sandbox_adapter_ships_and_a_wrong_setting_names_itself():
    assert isinstance(make_fulfilment("sandbox"), SandboxFulfilment)
    with pytest.raises(ValueError, match="FULFILMENT='real'"):
        make_fulfilment("real")


def test_a_print_number_is_shown_only_to_the_student_who_ordered(core):
    order = placed(core, DeliveryMethod.CONVENIENCE_STORE)
    number = pay(core, order).print_number
    with core.transaction() as session:
        summary = summarize(session.get(Order, order.order.id), core.profile, core.calendar)
    assert number in describe(summary, Language.JA, core.profile, owner=True)
    stranger = describe(summary, Language.EN, core.profile)
    assert number not in stranger and "shown only once you are confirmed" in stranger
