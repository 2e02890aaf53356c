"""Payment methods with prices, and refunds, called directly (layer 1)."""

from datetime import datetime

import pytest

from core.clock import TOKYO
from core.enums import Language, PaymentMethod
from core.formatting import format_yen
from handlers import money
from handlers.replies import Card
from intents.types import Entity, EntityType, Intent
from tests.handlers.conftest import all_text, payloads


def method(value: PaymentMethod) -> Entity:
    return Entity(EntityType.PAYMENT_METHOD, value, 0, 1, "x")


@pytest.mark.parametrize("lang", list(Language))
def test_every_method_of_the_guide_with_brands_cash_only_and_no_refunds(make_ctx, core, lang):
    replies = money.payment_methods(make_ctx(Intent.PAYMENT_METHODS, lang=lang))
    text = all_text(replies[:1])
    for option in core.profile.payment_methods:
        assert option.name(lang) in text
        if option.brands:
            assert option.brands(lang) in text
    assert ("現金支払いのみ" if lang is Language.JA else "only pay in cash") in text
    assert ("返金できません" if lang is Language.JA else "cannot be refunded") in text


@pytest.mark.parametrize("lang", list(Language))
def test_every_item_has_its_price_marked_as_an_example(make_ctx, core, lang):
    replies = money.payment_methods(make_ctx(Intent.PAYMENT_METHODS, lang=lang))
    card = next(reply for reply in replies if isinstance(reply, Card))
    prices = dict(card.fields)
    for item in core.profile.catalog.items:
        assert format_yen(item.price_yen, lang) in prices[item.name(lang)]
        assert ("例" if lang is Language.JA else "example") in prices[item.name(lang)]
    assert card.footer and "intent:refund" in payloads(replies)


def test_a_named_method_gets_a_direct_yes(make_ctx):
    text = all_text(money.payment_methods(make_ctx(Intent.PAYMENT_METHODS, entities=(method(PaymentMethod.PAYPAY),))))
    assert text.startswith("はい、PayPayをご利用いただけます。")


def test_a_card_at_the_convenience_store_gets_cash_only(make_ctx):
    entities = (method(PaymentMethod.CONVENIENCE_STORE), method(PaymentMethod.CREDIT_CARD))
    text = all_text(money.payment_methods(make_ctx(Intent.PAYMENT_METHODS, lang=Language.EN, entities=entities)))
    assert text.startswith("Convenience-store payment is cash only")
    assert "Yes, you can use Credit card" not in text


@pytest.mark.parametrize(("lang", "wanted"), [
    (Language.JA, ["理由の如何によらず返金はできません", "証明書の種類", "通数", "受取方法", "申請する前に学生支援課"]),
    (Language.EN, ["cannot be refunded for any reason", "type of certificate", "number of copies",
                   "delivery method", "before you apply"]),
])
def test_refund_is_impossible_and_explains_how_to_avoid_mistakes(make_ctx, lang, wanted):
    replies = money.refund(make_ctx(Intent.REFUND, lang=lang))
    text = all_text(replies)
    for word in wanted:
        assert word in text, word
    assert "093-691-7211" in text and "08:30–17:00" in text
    assert ("ただいま受付中です" if lang is Language.JA else "open now") in text
    assert "intent:contact" in payloads(replies)


def test_refund_on_a_saturday_says_when_the_office_opens(make_ctx):
    saturday = datetime(2026, 11, 28, 11, 0, tzinfo=TOKYO)
    text = all_text(money.refund(make_ctx(Intent.REFUND, now=saturday)))
    assert "次の受付開始: 11月30日（月）8:30" in text
