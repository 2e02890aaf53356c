"""The order form, called directly: identification, item, copies, delivery, payment, summary and the order."""

import pytest
from sqlalchemy import func, select

from core.addresses import MailingAddress
from core.enums import DeliveryMethod, Language, OrderStatus, PaymentMethod
from core.models import Order
from handlers.forms import CANCEL, RESUME, change_payload, set_payload, start_payload
from handlers.ordering import ORDER
from handlers.replies import Card, Link, Text
from intents.types import EntityType, Intent, ItemCode
from tests.handlers.test_forms_support import Chat, add_students, all_text, card, entity, payloads

CERTIFICATES = ["enrollment_certificate", "transcript", "expected_graduation_certificate"]
FEES = ["student_id_reissue", "parking_card_reissue", "parking_fee", "insurance_renewal"]


@pytest.fixture
def chat(make_ctx, core):
    add_students(core)
    return Chat(make_ctx)


def identify(chat: Chat, number: str = "24M1001"):
    """The student types their number (a sign-in link is mailed) and opens the link: the form goes on."""
    asked = chat.say(f"学籍番号は{number}です", Intent.OUT_OF_SCOPE, entity(EntityType.STUDENT_NUMBER, number))
    assert "サインイン用のワンタイムURLをお送りしました" in all_text(asked), all_text(asked)
    return chat.sign_in(number)


def orders(core) -> list[Order]:
    with core.transaction() as session:
        return list(session.scalars(select(Order)))


def item_offers(replies) -> list[str]:
    return [p.removeprefix("form:set:item:") for p in payloads(replies) if p.startswith("form:set:item:")]


# --- identification -----------------------------------------------------------------------------------------


def test_an_unidentified_student_is_asked_for_the_student_number_honestly(chat):
    replies = chat.say("証明書を申請したい", Intent.ORDER_CERTIFICATE)
    text = all_text(replies)
    assert chat.state.form == ORDER
    assert "サインイン" in text and "学籍番号" in text and "メールアドレス" in text and "パスワード" in text
    assert payloads(replies) == [CANCEL]


def test_an_unknown_and_a_known_student_number_get_the_same_answer_and_identify_no_one(chat, core, inbox):
    chat.say("証明書を申請したい", Intent.ORDER_CERTIFICATE)
    unknown = chat.say("学籍番号は99Z9999です", Intent.OUT_OF_SCOPE, entity(EntityType.STUDENT_NUMBER, "99Z9999"))
    known = chat.say("学籍番号は24M1001です", Intent.OUT_OF_SCOPE, entity(EntityType.STUDENT_NUMBER, "24M1001"))
    assert all_text(unknown) == all_text(known) and "見つかりませんでした" not in all_text(known)
    assert chat.state.student_id is None and chat.state.form == ORDER
    core.settle()  # the link goes out after the answer: only to the registered address of the real number
    [mail] = inbox.messages
    assert mail["To"] == "taro.yamada@students.example.ac.jp" and "/links/" in inbox.body(mail)


def test_a_student_number_typed_plainly_and_full_width_is_accepted(chat):
    chat.say("証明書を申請したい", Intent.ORDER_CERTIFICATE)
    replies = chat.say("２４ｍ－１００１")
    assert "サインイン用のワンタイムURLをお送りしました" in all_text(replies) and chat.state.student_id is None
    assert "どの証明書" in all_text(chat.sign_in("24M1001"))


def test_a_number_of_the_wrong_shape_is_explained(chat):
    chat.say("証明書を申請したい", Intent.ORDER_CERTIFICATE)
    replies = chat.say("12345")
    assert "24M1001" in all_text(replies) and chat.state.student_id is None


def test_a_pasted_password_is_neither_taken_nor_repeated(chat):
    chat.say("証明書を申請したい", Intent.ORDER_CERTIFICATE)
    replies = chat.say("24M1001 Abcd1234x", Intent.OUT_OF_SCOPE, entity(EntityType.STUDENT_NUMBER, "24M1001"))
    text = all_text(replies)
    assert "必要ありません" in text and "Abcd1234x" not in text
    assert chat.state.student_id is None


def test_an_identified_student_is_not_asked_again(chat):
    chat.say("証明書を申請したい", Intent.ORDER_CERTIFICATE)
    identify(chat)
    chat.tap(CANCEL)
    replies = chat.say("証明書を申請したい", Intent.ORDER_CERTIFICATE)
    assert "どの証明書" in all_text(replies)


# --- items ------------------------------------------------------------------------------------------------


def test_the_certificate_intent_offers_certificates_and_the_fee_intent_fees(chat):
    chat.say("証明書を申請したい", Intent.ORDER_CERTIFICATE)
    # Year 3 is offered the 卒業見込み証明書 too: the final-year rule is not the guide's (asked to confirm instead).
    assert item_offers(identify(chat)) == CERTIFICATES
    chat.tap(CANCEL)
    replies = chat.say("学生証などの料金", Intent.FEE_ITEMS)
    assert item_offers(replies) == FEES
    assert "（例）" in all_text(replies) and "6月上旬頃" in all_text(replies)


def test_a_final_year_student_is_offered_the_expected_graduation_certificate(chat):
    chat.say("証明書を申請したい", Intent.ORDER_CERTIFICATE)
    assert item_offers(identify(chat, "21M1003")) == CERTIFICATES


def test_the_start_button_offers_every_item(chat):
    replies = chat.tap(start_payload(ORDER))
    assert chat.state.form == ORDER
    identify(chat, "21M1003")
    assert item_offers(chat.turns[-1]) == CERTIFICATES + FEES
    assert len(payloads(replies)) == 1


def test_the_parking_fee_is_refused_below_year_two_and_other_fees_offered(chat):
    chat.say("駐車場使用料を払いたい", Intent.FEE_ITEMS, entity(EntityType.ITEM, ItemCode.PARKING_FEE))
    replies = identify(chat, "25M1002")
    text = all_text(replies)
    assert "2年次生以上" in text and "現在1年次" in text
    assert "parking_fee" not in item_offers(replies) and "student_id_reissue" in item_offers(replies)
    assert "item" not in chat.state.slots


def test_the_expected_graduation_certificate_outside_the_final_year_asks_to_confirm_not_refuses(chat):
    chat.say("証明書を申請したい", Intent.ORDER_CERTIFICATE)
    identify(chat)  # year 3 of 6
    replies = chat.say("卒業見込み証明書", Intent.ORDER_CERTIFICATE,
                       entity(EntityType.ITEM, ItemCode.EXPECTED_GRADUATION_CERTIFICATE))
    text = all_text(replies)
    assert "通常は最終学年（6年次）" in text and "学生支援課（093-691-7211）にご確認" in text
    assert "申し訳ございません" not in text and chat.state.slots["item"] == "expected_graduation_certificate"
    assert "何通" in text  # the order goes on


def test_a_forged_item_payload_is_refused(chat):
    chat.tap(start_payload(ORDER))
    identify(chat)
    replies = chat.tap(set_payload("item", "diploma"))
    assert "取り扱っていません" in all_text(replies) and "item" not in chat.state.slots


# --- copies, delivery, payment ----------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["2", "２", "2通", "２通"])
def test_copies_typed_as_a_bare_number(chat, answer):
    chat.say("成績証明書", Intent.ORDER_CERTIFICATE, entity(EntityType.ITEM, ItemCode.TRANSCRIPT))
    identify(chat)
    chat.say(answer)
    assert chat.state.slots["copies"] == 2


def test_copies_from_an_entity_and_a_button(chat):
    chat.say("成績証明書", Intent.ORDER_CERTIFICATE, entity(EntityType.ITEM, ItemCode.TRANSCRIPT))
    replies = identify(chat)
    assert [p for p in payloads(replies) if p.startswith("form:set:copies:")] == [
        set_payload("copies", str(n)) for n in range(1, 11)]
    chat.say("3部", Intent.OUT_OF_SCOPE, entity(EntityType.COPIES, 3))
    assert chat.state.slots["copies"] == 3
    chat.tap(change_payload("copies"))
    chat.tap(set_payload("copies", "4"))
    assert chat.state.slots["copies"] == 4


@pytest.mark.parametrize("answer", ["0", "11", "99通"])
def test_copies_out_of_range_are_refused(chat, answer):
    chat.say("成績証明書", Intent.ORDER_CERTIFICATE, entity(EntityType.ITEM, ItemCode.TRANSCRIPT))
    identify(chat)
    replies = chat.say(answer)
    assert "1部から10部" in all_text(replies) and "copies" not in chat.state.slots


def test_delivery_offers_only_what_the_item_allows_and_explains_a_refusal(chat):
    chat.say("成績証明書を2通", Intent.ORDER_CERTIFICATE, entity(EntityType.ITEM, ItemCode.TRANSCRIPT),
             entity(EntityType.COPIES, 2))
    replies = identify(chat)
    assert [p for p in payloads(replies) if p.startswith("form:set:delivery:")] == [
        set_payload("delivery", m) for m in ("campus_printer", "convenience_store", "mail")]
    replies = chat.say("窓口で受け取りたい", Intent.WINDOW_PICKUP_HOWTO,
                       entity(EntityType.DELIVERY_METHOD, DeliveryMethod.WINDOW_PICKUP))
    text = all_text(replies)
    assert "お申し込みいただけません" in text and "郵送" in text
    assert "delivery" not in chat.state.slots


def test_a_bare_store_name_means_printing_there_at_the_delivery_question(chat):
    chat.say("成績証明書を2通", Intent.ORDER_CERTIFICATE, entity(EntityType.ITEM, ItemCode.TRANSCRIPT),
             entity(EntityType.COPIES, 2))
    identify(chat)
    chat.say("コンビニ", Intent.DELIVERY_OPTIONS)
    assert chat.state.slots["delivery"] == "convenience_store"
    chat.say("コンビニ", Intent.PAYMENT_METHODS)
    assert chat.state.slots["payment"] == "convenience_store"


def test_a_fee_item_skips_copies_and_delivery(chat):
    chat.say("学生証を再発行したい", Intent.FEE_ITEMS, entity(EntityType.ITEM, ItemCode.STUDENT_ID_REISSUE))
    replies = identify(chat)
    assert "お支払い方法" in all_text(replies)
    assert len([p for p in payloads(replies) if p.startswith("form:set:payment:")]) == 8


@pytest.mark.parametrize(("text", "item", "expected"), [
    ("保険の継続手続きもこのサービスでやるの？", ItemCode.INSURANCE_RENEWAL,
     ["傷害・賠償責任保険の継続手続き", "1,500円"]),
    ("駐車場の使用料はここで払うんですか", ItemCode.PARKING_FEE, ["学生駐車場使用料", "6月上旬", "2年次生以上"]),
    ("学生証の再発行料っていくら？", ItemCode.STUDENT_ID_REISSUE, ["学生証再発行料", "2,000円", "学生支援課窓口"]),
])
def test_a_question_about_an_item_is_answered_with_a_button_to_apply(chat, text, item, expected):
    replies = chat.say(text, Intent.FEE_ITEMS, entity(EntityType.ITEM, item))
    assert chat.state.form is None
    assert all(words in all_text(replies) for words in expected), all_text(replies)
    assert start_payload(ORDER) in payloads(replies)


def test_a_question_about_an_item_in_english(make_ctx, core):
    chat = Chat(make_ctx, lang=Language.EN)
    replies = chat.say("is the parking fee paid through this?", Intent.FEE_ITEMS,
                       entity(EntityType.ITEM, ItemCode.PARKING_FEE))
    assert chat.state.form is None and "early June" in all_text(replies) and "example" in all_text(replies)


@pytest.mark.parametrize("text", ["学生証の再発行をお願いしたいです", "学生証の再発行って申し込めますか？"])
def test_a_wish_for_an_item_starts_the_application(chat, text):
    chat.say(text, Intent.FEE_ITEMS, entity(EntityType.ITEM, ItemCode.STUDENT_ID_REISSUE))
    assert chat.state.form == ORDER


def test_a_price_question_mid_form_is_answered_and_the_open_question_asked_again(chat):
    chat.say("学生証を再発行したい", Intent.FEE_ITEMS, entity(EntityType.ITEM, ItemCode.STUDENT_ID_REISSUE))
    identify(chat)
    replies = chat.say("あ、ちなみにいくらでしたっけ？", Intent.PICKUP_TIMING)  # whatever the classifier guessed
    text = all_text(replies)
    assert "2,000円" in text and "お支払い方法" in text
    assert RESUME not in payloads(replies) and chat.state.form == ORDER


# --- prefill, summary, change ---------------------------------------------------------------------------


def test_the_first_message_prefills_item_copies_and_payment(chat):
    chat.say("成績証明書を2通、コンビニ払いで", Intent.ORDER_CERTIFICATE,
             entity(EntityType.ITEM, ItemCode.TRANSCRIPT), entity(EntityType.COPIES, 2),
             entity(EntityType.PAYMENT_METHOD, PaymentMethod.CONVENIENCE_STORE))
    replies = identify(chat)
    assert "受取方法" in all_text(replies)
    summary = card(chat.tap(set_payload("delivery", "campus_printer")))
    fields = dict(summary.fields)
    assert fields["項目"] == "成績証明書" and fields["部数"] == "2通"
    assert fields["単価"] == "200円（例）" and fields["合計"] == "400円（例）"
    assert fields["お支払い方法"] == "コンビニ現金払い" and "現金のみ" in fields["ご注意"]


def test_an_identified_student_with_everything_said_goes_straight_to_the_summary(chat):
    chat.tap(start_payload(ORDER))
    identify(chat)
    chat.tap(CANCEL)
    replies = chat.say("在学証明書を1通、学内印刷機で、PayPayで", Intent.ORDER_CERTIFICATE,
                       entity(EntityType.ITEM, ItemCode.ENROLLMENT_CERTIFICATE), entity(EntityType.COPIES, 1),
                       entity(EntityType.DELIVERY_METHOD, DeliveryMethod.CAMPUS_PRINTER),
                       entity(EntityType.PAYMENT_METHOD, PaymentMethod.PAYPAY))
    assert dict(card(replies).fields)["受取方法"] == "学内印刷機で印刷"


def test_a_prefilled_delivery_the_item_lacks_is_explained(chat):
    chat.say("学生証を郵送で", Intent.FEE_ITEMS, entity(EntityType.ITEM, ItemCode.STUDENT_ID_REISSUE),
             entity(EntityType.DELIVERY_METHOD, DeliveryMethod.MAIL))
    replies = identify(chat)
    assert "学生支援課窓口で受取り" in all_text(replies) and "お申し込みいただけません" in all_text(replies)


def test_the_summary_asks_for_an_explicit_no_refunds_confirmation(chat):
    chat.say("学生証を再発行したい", Intent.FEE_ITEMS, entity(EntityType.ITEM, ItemCode.STUDENT_ID_REISSUE))
    identify(chat)
    summary = card(chat.tap(set_payload("payment", "credit_card")))
    assert "返金できません" in summary.footer and "例" in summary.footer
    fields = dict(summary.fields)
    assert "部数" not in fields
    assert "2026年11月25日（水）13:00" in fields["受取りの目安（今お支払いの場合）"]
    assert [b.payload for b in summary.quick_replies] == [
        set_payload("confirm", "yes"), change_payload("item"), change_payload("payment"), CANCEL]
    assert "返金" in summary.quick_replies[0].label


def test_a_typed_yes_does_not_place_the_order(chat, core):
    chat.say("学生証を再発行したい", Intent.FEE_ITEMS, entity(EntityType.ITEM, ItemCode.STUDENT_ID_REISSUE))
    identify(chat)
    chat.tap(set_payload("payment", "credit_card"))
    replies = chat.say("はい")
    assert "ボタン" in all_text(replies) and isinstance(replies[-1], Card)
    assert orders(core) == []


def test_a_field_changed_at_the_summary_returns_to_the_summary(chat):
    chat.say("成績証明書を2通、学内印刷機、クレジットカードで", Intent.ORDER_CERTIFICATE,
             entity(EntityType.ITEM, ItemCode.TRANSCRIPT), entity(EntityType.COPIES, 2),
             entity(EntityType.DELIVERY_METHOD, DeliveryMethod.CAMPUS_PRINTER),
             entity(EntityType.PAYMENT_METHOD, PaymentMethod.CREDIT_CARD))
    assert isinstance(identify(chat)[-1], Card)
    replies = chat.tap(change_payload("payment"))
    assert "お支払い方法" in all_text(replies)
    summary = card(chat.tap(set_payload("payment", "paypay")))
    assert dict(summary.fields)["お支払い方法"] == "PayPay" and dict(summary.fields)["部数"] == "2通"
    summary = card(chat.say("3通にしてください", Intent.ORDER_CERTIFICATE, entity(EntityType.COPIES, 3)))
    assert dict(summary.fields)["部数"] == "3通"


def test_changing_to_an_item_with_one_delivery_drops_the_old_delivery(chat):
    chat.say("成績証明書を2通、郵送、PayPayで", Intent.ORDER_CERTIFICATE,
             entity(EntityType.ITEM, ItemCode.TRANSCRIPT), entity(EntityType.COPIES, 2),
             entity(EntityType.DELIVERY_METHOD, DeliveryMethod.MAIL),
             entity(EntityType.PAYMENT_METHOD, PaymentMethod.PAYPAY))
    identify(chat)
    chat.tap(change_payload("item"))
    fields = dict(card(chat.tap(set_payload("item", "student_id_reissue"))).fields)
    assert fields["受取方法"] == "学生支援課窓口で受取り" and "部数" not in fields


def test_restating_the_order_mid_form_takes_the_new_answers(chat):
    chat.say("成績証明書を申請したい", Intent.ORDER_CERTIFICATE, entity(EntityType.ITEM, ItemCode.TRANSCRIPT))
    identify(chat)
    replies = chat.say("在学証明書を3通で", Intent.ORDER_CERTIFICATE,
                       entity(EntityType.ITEM, ItemCode.ENROLLMENT_CERTIFICATE), entity(EntityType.COPIES, 3))
    assert "受取方法" in all_text(replies)  # the copies answer the open question; the item comes along
    assert chat.state.slots["item"] == "enrollment_certificate" and chat.state.slots["copies"] == 3
    replies = chat.say("やっぱり学生証の再発行にします", Intent.FEE_ITEMS,
                       entity(EntityType.ITEM, ItemCode.STUDENT_ID_REISSUE))
    assert "承知しました" in all_text(replies) and "お支払い方法" in all_text(replies)
    assert chat.state.slots["item"] == "student_id_reissue" and "copies" not in chat.state.slots


# --- detour, cancel -------------------------------------------------------------------------------------


def test_a_question_mid_form_is_answered_and_the_form_resumes(chat):
    chat.say("成績証明書", Intent.ORDER_CERTIFICATE, entity(EntityType.ITEM, ItemCode.TRANSCRIPT))
    identify(chat)
    replies = chat.say("支払い方法は？", Intent.PAYMENT_METHODS)
    assert "[answer about payment_methods]" in all_text(replies)
    assert payloads(replies)[-2:] == [RESUME, CANCEL]
    replies = chat.tap(RESUME)
    assert "何通" in all_text(replies) and set_payload("copies", "1") in payloads(replies)


def test_every_question_re_renders_when_resumed(chat):
    chat.say("成績証明書を申請したい", Intent.ORDER_CERTIFICATE)
    for answer in (lambda: identify(chat), lambda: chat.tap(set_payload("item", "transcript")),
                   lambda: chat.tap(set_payload("copies", "1")), lambda: chat.tap(set_payload("delivery", "mail")),
                   lambda: chat.say("807-8555"), lambda: chat.say("1-1 ハイツ医生ケ丘101"),
                   lambda: chat.say("山田 太郎"), lambda: chat.say("090-1234-5678"),
                   lambda: chat.tap(set_payload("payment", "paypay"))):
        asked = chat.turns[-1]
        chat.say("連絡先は？", Intent.CONTACT)
        assert chat.tap(RESUME) == asked
        answer()
    assert isinstance(chat.turns[-1][-1], Card)


def test_the_order_intent_mid_form_does_not_restart_it(chat):
    chat.say("成績証明書", Intent.ORDER_CERTIFICATE, entity(EntityType.ITEM, ItemCode.TRANSCRIPT))
    identify(chat)
    replies = chat.say("証明書を申請したい", Intent.ORDER_CERTIFICATE)
    assert "途中" in all_text(replies) and chat.state.slots["item"] == "transcript"


def test_cancel_mid_form_places_nothing(chat, core):
    chat.say("成績証明書", Intent.ORDER_CERTIFICATE, entity(EntityType.ITEM, ItemCode.TRANSCRIPT))
    identify(chat)
    replies = chat.tap(CANCEL)
    assert "中止しました" in all_text(replies) and chat.state.form is None and orders(core) == []


# --- placing -------------------------------------------------------------------------------------------


def place(chat: Chat, payment: str, *, item=ItemCode.TRANSCRIPT, copies: int = 2, delivery: str | None = "mail"):
    chat.say("申請したい", Intent.ORDER_CERTIFICATE, entity(EntityType.ITEM, item))
    identify(chat)
    if copies > 1:
        chat.tap(set_payload("copies", str(copies)))
    if delivery:
        chat.tap(set_payload("delivery", delivery))
    if delivery == "mail":
        for answer in ("807-8555", "1-1 ハイツ医生ケ丘101", "山田 太郎", "090-1234-5678"):
            chat.say(answer)
    chat.tap(set_payload("payment", payment))
    return chat.tap(set_payload("confirm", "yes"))


def test_a_card_payment_order_gives_the_number_and_the_payment_link(chat, core):
    replies = place(chat, "credit_card")
    [order] = orders(core)
    assert order.status is OrderStatus.AWAITING_PAYMENT and order.total_yen == 400
    assert order.delivery_method is DeliveryMethod.MAIL and order.payment_method is PaymentMethod.CREDIT_CARD
    with core.transaction() as session:
        address = MailingAddress.from_json(session.get(Order, order.id).mailing_address)
    assert address.lines() == ("〒807-8555 福岡県北九州市八幡西区医生ケ丘 1-1 ハイツ医生ケ丘101", "山田 太郎",
                               "09012345678")
    assert order.number in all_text(replies)
    [link] = [reply for reply in replies if isinstance(reply, Link)]
    assert "/sandbox/pay/" in link.url and "クレジットカード決済" in link.text
    assert chat.state.form is None and chat.state.slots == {}
    assert "intent:order_status" in payloads(replies)


def test_a_convenience_store_order_gives_the_payment_number_deadline_and_cash_only(chat, core):
    replies = place(chat, "convenience_store")
    text = all_text(replies)
    [order] = orders(core)
    with core.transaction() as session:
        payment = session.get(Order, order.id).payments[0]
        konbini_number = payment.konbini_number
    assert konbini_number and konbini_number in text
    assert "2026年11月27日（金）23:59" in text and "現金支払いのみ" in text and "ローソン" in text


def test_a_window_pickup_order_tells_when_and_how_to_collect(chat, core):
    replies = place(chat, "paypay", item=ItemCode.STUDENT_ID_REISSUE, copies=1, delivery=None)
    text = all_text(replies)
    assert "2026年11月25日（水）13:00" in text and "学生証" in text and "郵送対応完了" in text
    [order] = orders(core)
    assert order.delivery_method is DeliveryMethod.WINDOW_PICKUP


def test_two_orders_in_one_conversation(chat, core):
    place(chat, "paypay")
    chat.say("成績証明書", Intent.ORDER_CERTIFICATE, entity(EntityType.ITEM, ItemCode.TRANSCRIPT))
    chat.tap(set_payload("copies", "1"))
    chat.tap(set_payload("delivery", "campus_printer"))
    chat.tap(set_payload("payment", "apple_pay"))
    chat.tap(set_payload("confirm", "yes"))
    with core.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 2


def test_the_whole_form_in_english(make_ctx, core):
    add_students(core, "22N2002")
    chat = Chat(make_ctx, lang=Language.EN)
    replies = chat.say("I want 2 copies of my transcript, pay at a convenience store", Intent.ORDER_CERTIFICATE,
                       entity(EntityType.COPIES, 2), entity(EntityType.ITEM, ItemCode.TRANSCRIPT),
                       entity(EntityType.PAYMENT_METHOD, PaymentMethod.CONVENIENCE_STORE))
    assert "sign in" in all_text(replies) and "student number" in all_text(replies)
    replies = chat.say("My student number is 22N2002", Intent.OUT_OF_SCOPE,
                       entity(EntityType.STUDENT_NUMBER, "22N2002"))
    assert "one-time sign-in URL" in all_text(replies)
    assert "receive" in all_text(chat.sign_in("22N2002"))
    summary = card(chat.tap(set_payload("delivery", "convenience_store")))
    assert summary.title == "Please check your application"
    assert dict(summary.fields)["Total"] == "¥400 (example)" and "refunded" in summary.footer
    replies = chat.tap(set_payload("confirm", "yes"))
    text = all_text(replies)
    assert "order number" in text and "Payment number" in text and "Nov 27, 2026" in text
    assert "cash" in text


def test_another_form_in_progress_is_not_taken_over(chat):
    chat.tap(start_payload("reset"))
    replies = chat.say("証明書を申請したい", Intent.ORDER_CERTIFICATE)
    assert chat.state.form == "reset"
    assert start_payload(ORDER) in payloads(replies) and RESUME in payloads(replies)


def test_replies_are_texts_links_and_cards_only(chat):
    for reply in place(chat, "credit_card"):
        assert isinstance(reply, Text | Link | Card)
