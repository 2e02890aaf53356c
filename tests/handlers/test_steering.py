"""Typed steering words inside guided steps, answers to the bot's own questions, and the answers of their own
for unpaid orders and for messages outside the desk's topics, by direct calls (layer 1)."""

from datetime import timedelta

import pytest

from core.enums import Language
from handlers import basic, login, money, pickup, reset, scope
from handlers.forms import CANCEL, RESUME, RESUME_QUESTION, FormEngine, start_payload
from handlers.ordering import ORDER
from handlers.registry import DuplicateHandler, HandlerRegistry
from intents.controls import Control
from intents.types import Entity, EntityType, Intent
from tests.handlers.conftest import all_text, payloads
from tests.handlers.test_forms_support import Chat, add_students, entity


@pytest.fixture
def chat(make_ctx, core):
    add_students(core)
    return Chat(make_ctx)


def steer(chat: Chat, control: Control, text: str, intent: Intent = Intent.OUT_OF_SCOPE, expecting: str | None = None):
    """The student types a steering word, understood as `control`."""
    ctx = chat.make_ctx(intent, text=text, state=chat.state, control=control, expecting=expecting)
    return chat._turn(ctx)


def at_the_payment_question(chat: Chat) -> None:
    chat.tap(start_payload(ORDER))
    chat.sign_in("24M1001")
    chat.tap("form:set:item:enrollment_certificate")
    chat.tap("form:set:copies:1")
    chat.tap("form:set:delivery:campus_printer")


def test_a_typed_cancel_ends_the_order_without_a_word_about_refunds(chat):
    at_the_payment_question(chat)
    replies = steer(chat, Control.CANCEL, "やっぱりやめます", Intent.REFUND)
    assert chat.state.form is None and "中止しました" in all_text(replies) and "返金" not in all_text(replies)


def test_a_typed_back_asks_the_question_before_again(chat):
    at_the_payment_question(chat)
    replies = steer(chat, Control.BACK, "戻る")
    assert "delivery" not in chat.state.slots and "form:set:delivery:mail" in payloads(replies)


def test_a_typed_yes_confirms_at_the_summary_and_is_asked_again_elsewhere(chat):
    at_the_payment_question(chat)
    replies = steer(chat, Control.YES, "はい")  # no yes/no question is open: the payment is asked again
    assert "次の質問にお答えください" in all_text(replies) and chat.state.form == ORDER
    chat.tap("form:set:payment:credit_card")
    replies = steer(chat, Control.YES, "はい、お願いします")
    assert chat.state.form is None and "申請を受け付けました" in all_text(replies)


def test_a_typed_no_or_change_at_the_summary_asks_which_answer_to_change(chat):
    at_the_payment_question(chat)
    chat.tap("form:set:payment:credit_card")
    for control, text in ((Control.NO, "いいえ"), (Control.CHANGE, "変更したい")):
        replies = steer(chat, control, text)
        assert "変更する項目" in all_text(replies) and "form:change:payment" in payloads(replies)
        assert chat.state.form == ORDER


def test_after_a_detour_yes_continues_and_no_cancels(chat):
    at_the_payment_question(chat)
    replies = chat.say("問い合わせ先は？", Intent.CONTACT)
    assert chat.state.expect == RESUME_QUESTION and {RESUME, CANCEL} <= set(payloads(replies))
    replies = steer(chat, Control.YES, "はい", expecting=RESUME_QUESTION)
    assert "form:set:payment:credit_card" in payloads(replies)
    chat.say("問い合わせ先は？", Intent.CONTACT)
    steer(chat, Control.NO, "いいえ", expecting=RESUME_QUESTION)
    assert chat.state.form is None


def test_a_refund_question_inside_the_order_is_answered_by_the_order(chat):
    at_the_payment_question(chat)
    replies = chat.say("返金できますか", Intent.REFUND)
    assert "お支払いもまだ" in all_text(replies) and "理由の如何によらず" not in all_text(replies)
    assert chat.state.form == ORDER and RESUME in payloads(replies)


def test_a_payment_question_at_the_payment_step_is_a_question_not_a_choice(chat):
    at_the_payment_question(chat)
    store = entity(EntityType.PAYMENT_METHOD, "convenience_store", "コンビニ払い")
    card_payment = entity(EntityType.PAYMENT_METHOD, "credit_card", "クレカ")
    chat.say("コンビニ払いってクレカ使えますか？", Intent.PAYMENT_METHODS, store, card_payment)
    assert "payment" not in chat.state.slots and chat.state.form == ORDER
    chat.say("PayPayで", Intent.PAYMENT_METHODS, entity(EntityType.PAYMENT_METHOD, "paypay", "PayPay"))
    assert chat.state.slots["payment"] == "paypay"


def test_the_reset_offer_takes_a_typed_yes_or_a_request_for_the_link(make_ctx, core):
    forms = FormEngine()
    reset.register(HandlerRegistry(), forms)
    steps = make_ctx(Intent.SECOND_PASSWORD_RESET, text="第2パスワードを忘れました")
    reset.second_password_reset(steps, forms)
    assert steps.state.expect == reset.OFFER
    yes = make_ctx(Intent.OUT_OF_SCOPE, text="はい", control=Control.YES, state=steps.state)
    assert "学籍番号" in all_text(reset._answer_to_offer(forms, yes)) and steps.state.form == reset.RESET
    steps.state.end_form()
    asks = make_ctx(Intent.SECOND_PASSWORD_RESET, text="再設定リンクを送ってください", state=steps.state)
    assert reset._answer_to_offer(forms, asks) is not None and steps.state.form == reset.RESET
    other = make_ctx(Intent.PAYMENT_METHODS, text="支払い方法は？", state=steps.state)
    assert reset._answer_to_offer(forms, other) is None


def test_a_request_for_the_link_itself_starts_the_form_at_once(make_ctx):
    forms = FormEngine()
    reset.register(HandlerRegistry(), forms)
    ctx = make_ctx(Intent.SECOND_PASSWORD_RESET, text="send me the reset link please", lang=Language.EN)
    assert "student number" in all_text(reset.second_password_reset(ctx, forms)) and ctx.state.form == reset.RESET
    steps = make_ctx(Intent.SECOND_PASSWORD_RESET, text="パスワードの再設定方法を教えてください")
    replies = reset.second_password_reset(steps, forms)
    assert steps.state.form is None and start_payload(reset.RESET) in payloads(replies)


def test_a_date_after_the_pickup_answer_answers_its_question(make_ctx, core):
    asked = make_ctx(Intent.PICKUP_TIMING, text="いつ受け取れますか")
    pickup.pickup_timing(asked)
    assert asked.state.expect == pickup.APPLIED_AT
    yesterday = (core.now() - timedelta(days=1)).replace(hour=16).isoformat()
    when = Entity(EntityType.DATETIME, yesterday, 0, 6, "昨日の16時")
    answer = make_ctx(Intent.OUT_OF_SCOPE, text="昨日の16時です", entities=(when,), state=asked.state, confidence=0.5)
    assert "受取開始" in all_text(pickup._answer_to_when(answer))
    assert pickup._answer_to_when(make_ctx(Intent.OUT_OF_SCOPE, text="うーん")) is None
    new_question = make_ctx(Intent.REFUND, text="昨日払ったけど返金できる？", entities=(when,), confidence=0.9)
    assert pickup._answer_to_when(new_question) is None


def test_a_follow_up_about_the_contacts_is_about_them(make_ctx):
    asked = make_ctx(Intent.CONTACT, text="問い合わせ先は")
    basic.contact(asked)
    assert asked.state.expect == basic.CONTACT_MORE
    assert "gakusei@" in all_text(basic._more_about_contacts(make_ctx(text="メールアドレスもありますか")))
    assert basic._more_about_contacts(make_ctx(text="メールアドレスを変更したい")) is None


def test_the_login_answers_read_a_department_next(make_ctx):
    ctx = make_ctx(Intent.LOGIN_HELP, payload="login:rejected")
    login.login_help(ctx)
    assert ctx.state.expect == login.MENU


def test_a_question_may_be_read_once_per_name():
    registry = HandlerRegistry()
    registry.expect("x", Intent.CONTACT, lambda ctx: None)
    with pytest.raises(DuplicateHandler):
        registry.expect("x", Intent.LOGIN_HELP, lambda ctx: None)


def test_an_unpaid_order_is_offered_a_cancel_not_the_refund_rules(chat, make_ctx, core):
    at_the_payment_question(chat)
    chat.tap("form:set:payment:convenience_store")
    chat.tap("form:set:confirm:yes")
    number = next(word for word in all_text(chat.turns[-1]).split() if len(word) == 9 and word[4] == "-")
    asks = make_ctx(Intent.REFUND, text="キャンセルしたい", state=chat.state)
    replies = money.refund(asks)
    assert number in all_text(replies) and "理由の如何によらず" not in all_text(replies)
    assert money.cancel_payload(number) in payloads(replies)
    paid_question = make_ctx(Intent.REFUND, text="払ったのに返金してほしい", state=chat.state)
    assert "理由の如何によらず" in all_text(money.refund(paid_question))
    cancelled = money.refund(make_ctx(Intent.REFUND, payload=money.cancel_payload(number), state=chat.state))
    assert "取り消しました" in all_text(cancelled)
    assert money.cancel_unpaid(make_ctx(Intent.REFUND, text="キャンセル", state=chat.state)) is None


def test_a_stranger_cannot_cancel_someone_elses_order(chat, make_ctx):
    at_the_payment_question(chat)
    chat.tap("form:set:payment:convenience_store")
    chat.tap("form:set:confirm:yes")
    number = next(word for word in all_text(chat.turns[-1]).split() if len(word) == 9 and word[4] == "-")
    stranger = money.refund(make_ctx(Intent.REFUND, payload=money.cancel_payload(number)))
    assert "取り消しました" not in all_text(stranger)


def test_paying_at_a_store_is_cash_only_first_never_a_plain_yes(make_ctx):
    store = entity(EntityType.PAYMENT_METHOD, "convenience_store", "セブン")
    card_payment = entity(EntityType.PAYMENT_METHOD, "credit_card", "クレカ")
    text = all_text(money.payment_methods(make_ctx(Intent.PAYMENT_METHODS, text="セブンでクレカ使える?",
                                                   entities=(store, card_payment))))
    assert text.startswith("コンビニ払いは現金のみです") and "はい、クレジットカード" not in text


def test_the_payment_deadline_is_answered_from_the_profile_saying_the_guide_gives_none(make_ctx, core):
    # The shipped profile marks konbini_payment_days as an assumption: the days are what this desk uses.
    text = all_text(money.payment_methods(make_ctx(Intent.PAYMENT_METHODS, text="支払いっていつまで？")))
    assert f"{core.profile.konbini_payment_days}日後の23:59" in text and "大学の案内には期限の記載がありません" in text


def test_a_payment_deadline_the_university_set_is_stated_as_its_rule(make_ctx, core):
    core.profile = core.profile.model_copy(update={"sources": {**core.profile.sources,
                                                               "konbini_payment_days": "university"}})
    text = all_text(money.payment_methods(make_ctx(Intent.PAYMENT_METHODS, text="支払いっていつまで？")))
    assert f"お申し込みの{core.profile.konbini_payment_days}日後の23:59です" in text and "記載がありません" not in text


@pytest.mark.parametrize("lang", list(Language))
def test_the_answers_outside_the_desk(make_ctx, lang):
    campus = all_text(scope.campus(make_ctx(text="サークルの勧誘は？", lang=lang)))
    assert "093-691-7211" in campus and ("学生支援課" in campus)
    abuse = scope.abuse(make_ctx(text="クソボット", lang=lang))
    assert "handoff:complaint" in payloads(abuse)
    assert not any(word in all_text(abuse) for word in ("ありがとう", "Thank you", "こんにちは", "Hello"))
    other = all_text(scope.unrelated(make_ctx(text="天気は？", lang=lang)))
    assert ("お答えできません" if lang is Language.JA else "can't answer") in other
    certificate = all_text(scope.unrelated(make_ctx(text="学割証明書がほしい", lang=lang)))
    assert "各学部窓口" in certificate
