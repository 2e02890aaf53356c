"""Order status: by order number, the identified student's recent orders, the lookup form, 「郵送対応完了」."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.enums import DeliveryMethod, Language, OrderStatus, PaymentMethod
from core.fulfilment import fulfil
from core.models import Order
from core.orders import OrderLine, advance, create_order
from core.students import find_student
from handlers.forms import CANCEL, RESUME, set_payload, start_payload
from handlers.replies import Link
from handlers.status import LOOKUP, asks_about_done_mail, order_number_in
from intents.types import EntityType, Intent
from tests.handlers.test_forms_support import Chat, add_students, all_text, entity, payloads
from tests.samples import SAMPLE_ADDRESS


@pytest.fixture
def chat(make_ctx, core):
    add_students(core)
    return Chat(make_ctx)


def place(core, number: str = "24M1001", *, item: str = "transcript", copies: int = 2,
          delivery: DeliveryMethod = DeliveryMethod.MAIL, payment: PaymentMethod = PaymentMethod.CREDIT_CARD,
          to: tuple[OrderStatus, ...] = ()) -> str:
    """Place an order for a student, move it through `to`, and return its number."""
    with core.transaction() as session:
        placed = create_order(session, student=find_student(session, number), lines=[OrderLine(item, copies)],
                              delivery=delivery, payment=payment, profile=core.profile, gateway=core.payments,
                              now=core.now(), address=SAMPLE_ADDRESS)
        for status in to:
            advance(session, placed.order, status, core.now(), "staff:test")
        return placed.order.number


def identify(chat: Chat, number: str = "24M1001") -> None:
    """The student signs in (the mailed link opened in this browser)."""
    chat.sign_in(number)


@pytest.mark.parametrize(("text", "number"), [
    ("K7PM-3QXA", "K7PM-3QXA"),
    ("注文番号はk7pm3qxaです", "K7PM-3QXA"),
    ("ｋ７ｐｍ－３ｑｘａの状況を教えて", "K7PM-3QXA"),
    ("status of K7PM 3QXA please", "K7PM-3QXA"),
    ("KXPM-RQXA", "KXPM-RQXA"),
    ("KXPMRQXA", "KXPMRQXA"[:4] + "-" + "KXPMRQXA"[4:]),
    ("my payments status", None),
    ("do you have them ready", None),
    ("Abcd2345", None),  # mixed case: a password rather than an order number
    ("学籍番号は24M1001です", None),
    ("申請の状況を教えて", None),
])
def test_order_numbers_are_found_in_messages(text, number):
    assert order_number_in(text) == number


def test_the_done_mail_is_recognized():
    assert asks_about_done_mail("郵送対応完了というメールが来ました")
    assert asks_about_done_mail("I got a 'mailing completed' mail")
    assert not asks_about_done_mail("郵送で受け取りたい")


def test_an_order_by_number_shows_its_status_summary_meaning_and_payment_link(chat, core):
    number = place(core)
    identify(chat)
    replies = chat.say(f"{number.lower()}の状況を教えて", Intent.ORDER_STATUS)
    text = all_text(replies)
    assert number in text and "お支払い待ち" in text and "成績証明書 ×2" in text
    assert "まだお支払いが完了していません" in text
    [link] = [reply for reply in replies if isinstance(reply, Link)]
    assert "/sandbox/pay/" in link.url
    assert chat.state.form is None


def test_a_paid_orders_address_and_print_number_show_only_to_the_student_who_ordered(chat, core):
    mailed = place(core, to=(OrderStatus.PAID,))
    printed = place(core, delivery=DeliveryMethod.CONVENIENCE_STORE, to=(OrderStatus.PAID,))
    with core.transaction() as session:
        for number in (mailed, printed):
            order = session.scalars(select(Order).where(Order.number == number)).one()
            fulfil(session, order, port=core.fulfilment, profile=core.profile, calendar=core.calendar,
                   now=core.now())
        print_number = session.scalars(select(Order).where(Order.number == printed)).one().fulfilment.print_number
    anonymous = all_text(chat.say(f"{mailed} {printed}の状況", Intent.ORDER_STATUS))
    chat.tap(CANCEL)
    assert mailed not in anonymous and "サインイン" in anonymous  # nothing of an order before a sign-in
    identify(chat, "21M1003")  # another student, signed in
    stranger = ""
    for number in (mailed, printed):
        stranger += all_text(chat.say(f"{number}の状況を教えて", Intent.ORDER_STATUS))
        chat.tap(CANCEL)
    assert SAMPLE_ADDRESS.street not in stranger and print_number not in stranger and "成績証明書" not in stranger
    assert "見つかりません" in stranger and chat.personal == []

    identify(chat)  # 24M1001, who placed both
    own = all_text(chat.say(f"{mailed}の状況を教えて", Intent.ORDER_STATUS))
    assert f"医生ケ丘 {SAMPLE_ADDRESS.street}" in own and "山田 太郎 様" in own
    assert SAMPLE_ADDRESS.street in chat.personal and SAMPLE_ADDRESS.phone in chat.personal  # masked when stored
    own = all_text(chat.say(f"{printed}の状況を教えて", Intent.ORDER_STATUS))
    assert f"プリント予約番号「{print_number}」" in own and print_number in chat.personal


def test_a_ready_order_means_collect_it_at_the_window(chat, core):
    number = place(core, item="student_id_reissue", copies=1, delivery=DeliveryMethod.WINDOW_PICKUP,
                   to=(OrderStatus.PAID, OrderStatus.PROCESSING, OrderStatus.READY))
    identify(chat)
    replies = chat.say(f"{number} はどうなっていますか", Intent.ORDER_STATUS)
    text = all_text(replies)
    assert "窓口で受取可能" in text and "郵送対応完了" in text and "受取り可能" in text
    assert "学生証" in text and "08:30–17:00" in text
    assert not any(isinstance(reply, Link) for reply in replies)


@pytest.mark.parametrize(("to", "words"), [
    ((OrderStatus.PAID,), "お支払いを確認しました"),
    ((OrderStatus.PAID, OrderStatus.PROCESSING), "発行の手続きを行っています"),
    ((OrderStatus.PAID, OrderStatus.PROCESSING, OrderStatus.SHIPPED), "郵送しました"),
    ((OrderStatus.PAID, OrderStatus.PROCESSING, OrderStatus.SHIPPED, OrderStatus.COLLECTED), "受取りが完了"),
    ((OrderStatus.CANCELLED,), "取り消されています"),
])
def test_each_status_says_what_it_means(chat, core, to, words):
    number = place(core, to=to)
    identify(chat)
    assert words in all_text(chat.say(number, Intent.ORDER_STATUS))


def test_a_printed_order_names_its_delivery(chat, core):
    number = place(core, delivery=DeliveryMethod.CAMPUS_PRINTER,
                   to=(OrderStatus.PAID, OrderStatus.PROCESSING, OrderStatus.PRINTED))
    identify(chat)
    assert "学内印刷機で印刷" in all_text(chat.say(number, Intent.ORDER_STATUS))


def test_a_konbini_order_past_its_deadline_is_expired(chat, core, clock):
    number = place(core, payment=PaymentMethod.CONVENIENCE_STORE)
    identify(chat)
    text = all_text(chat.say(number, Intent.ORDER_STATUS))
    assert "コンビニ" in text and "払込票番号" in text
    clock.set(core.now() + timedelta(days=5))
    replies = chat.say(number, Intent.ORDER_STATUS)
    assert "期限を過ぎた" in all_text(replies) and not any(isinstance(r, Link) for r in replies)


def test_an_unknown_order_number_is_not_found_and_asked_again(chat):
    identify(chat)
    replies = chat.say("K7PM-3QXAの状況は？", Intent.ORDER_STATUS)
    text = all_text(replies)
    assert "見つかりません" in text and "K7PM-3QXA" in text
    assert chat.state.form == LOOKUP and CANCEL in payloads(replies)


def test_an_identified_student_sees_their_own_recent_orders_only(chat, core):
    first = place(core, to=(OrderStatus.PAID,))
    latest = place(core, item="student_id_reissue", copies=1, delivery=DeliveryMethod.WINDOW_PICKUP)
    someone_elses = place(core, "21M1003")
    identify(chat)
    replies = chat.say("申請の状況を教えて", Intent.ORDER_STATUS)
    text = all_text(replies)
    assert latest in text and first in text and someone_elses not in text
    assert text.index(latest) < text.index(first)
    assert "お支払い済み" in text and "お支払い待ち" in text
    assert start_payload(LOOKUP) in payloads(replies)


def test_an_identified_student_without_orders_is_offered_to_apply(chat):
    identify(chat)
    replies = chat.say("申請の状況を教えて", Intent.ORDER_STATUS)
    assert "まだご注文はありません" in all_text(replies) and start_payload("order") in payloads(replies)


def test_without_a_sign_in_the_student_number_is_asked_for_a_sign_in_link(chat):
    replies = chat.say("申請の状況を教えて", Intent.ORDER_STATUS)
    assert chat.state.form == LOOKUP and "サインイン" in all_text(replies) and "学籍番号" in all_text(replies)


def test_the_lookup_form_takes_an_order_number_and_shows_it_once_signed_in(chat, core):
    number = place(core)
    chat.say("申請の状況を教えて", Intent.ORDER_STATUS)
    before = all_text(chat.say(number.replace("-", "").lower()))
    assert number not in before and "サインインしたご本人にのみ" in before and chat.state.form == LOOKUP
    chat.say("24M1001", Intent.OUT_OF_SCOPE, entity(EntityType.STUDENT_NUMBER, "24M1001"))
    replies = chat.sign_in("24M1001")  # the number given before the sign-in is shown, being theirs
    assert number in all_text(replies) and "成績証明書 ×2" in all_text(replies) and chat.state.form is None


def test_a_student_number_in_the_lookup_reveals_nothing_and_only_asks_for_a_sign_in_link(chat, core):
    place(core)
    chat.say("申請の状況を教えて", Intent.ORDER_STATUS)
    known = chat.say("24M1001", Intent.OUT_OF_SCOPE, entity(EntityType.STUDENT_NUMBER, "24M1001"))
    unknown = chat.say("99Z9999", Intent.OUT_OF_SCOPE, entity(EntityType.STUDENT_NUMBER, "99Z9999"))
    assert all_text(known) == all_text(unknown)
    assert "サインイン用のワンタイムURLをお送りしました" in all_text(known) and chat.state.form == LOOKUP
    assert chat.state.student_id is None


def test_the_lookup_form_shows_the_identified_students_own_orders(chat, core):
    number = place(core)
    identify(chat)
    replies = chat.tap(start_payload(LOOKUP))
    assert set_payload("lookup", number) in payloads(replies)
    replies = chat.say("24M1001", Intent.OUT_OF_SCOPE, entity(EntityType.STUDENT_NUMBER, "24M1001"))
    assert number in all_text(replies) and chat.state.form is None
    chat.tap(start_payload(LOOKUP))
    other = chat.say("21M1003", Intent.OUT_OF_SCOPE, entity(EntityType.STUDENT_NUMBER, "21M1003"))
    assert "個人情報" in all_text(other)


def test_a_tapped_order_button_shows_that_order(chat, core):
    number = place(core)
    identify(chat)
    chat.tap(start_payload(LOOKUP))
    assert number in all_text(chat.tap(set_payload("lookup", number)))


def test_the_lookup_form_refuses_an_unknown_number_and_a_password(chat):
    identify(chat)
    chat.tap(start_payload(LOOKUP))
    assert "見つかりません" in all_text(chat.say("K7PM-3QXA"))
    replies = chat.say("Abcd1234x")
    assert "必要ありません" in all_text(replies) and "Abcd1234x" not in all_text(replies)
    assert chat.state.form == LOOKUP


def test_the_done_mail_question_is_explained_with_a_button_to_check(chat):
    replies = chat.say("郵送対応完了というメールが来ました", Intent.ORDER_STATUS)
    text = all_text(replies)
    assert "「受取り可能」" in text and "学生証" in text and "学生支援課" in text
    assert start_payload(LOOKUP) in payloads(replies) and chat.state.form is None


def test_the_done_mail_question_of_an_identified_student_shows_their_orders(chat, core):
    number = place(core, item="student_id_reissue", copies=1, delivery=DeliveryMethod.WINDOW_PICKUP,
                   to=(OrderStatus.PAID, OrderStatus.PROCESSING, OrderStatus.READY))
    identify(chat)
    text = all_text(chat.say("郵送対応完了のメールが届きました", Intent.ORDER_STATUS))
    assert "「受取り可能」" in text and number in text and "窓口で受取可能" in text


def test_a_status_question_mid_form_does_not_take_over(chat):
    chat.tap(start_payload("reset"))
    replies = chat.say("申請の状況を教えて", Intent.ORDER_STATUS)
    assert chat.state.form == "reset" and start_payload(LOOKUP) in payloads(replies) and RESUME in payloads(replies)


def test_status_in_english(make_ctx, core):
    add_students(core, "22N2002")
    number = place(core, "22N2002", to=(OrderStatus.PAID,))
    chat = Chat(make_ctx, lang=Language.EN)
    chat.sign_in("22N2002")
    text = all_text(chat.say(f"What is the status of {number}?", Intent.ORDER_STATUS))
    assert "Paid" in text and "payment has been received" in text
    assert "mailing completed" in all_text(chat.say("What does the mailing completed mail mean?",
                                                    Intent.ORDER_STATUS))


def test_orders_are_not_changed_by_looking(chat, core):
    number = place(core)
    chat.say(number, Intent.ORDER_STATUS)
    with core.transaction() as session:
        assert session.query(Order).filter_by(number=number).one().status is OrderStatus.AWAITING_PAYMENT
