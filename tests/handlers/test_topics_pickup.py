"""Pickup timing, window pickup and delivery options, called directly (layer 1)."""

from datetime import datetime

import pytest

from core.clock import TOKYO
from core.enums import DeliveryMethod, Language
from handlers import pickup
from handlers.replies import Card
from intents.types import Entity, EntityType, Intent, ItemCode
from tests.handlers.conftest import all_text, payloads

FRIDAY_BEFORE_HOLIDAYS = datetime(2026, 9, 18, 16, 10, tzinfo=TOKYO)  # 9/21 敬老の日, 9/22 国民の休日, 9/23 秋分の日


def card_of(replies) -> Card:
    return next(reply for reply in replies if isinstance(reply, Card))


def test_friday_after_the_cutoff_before_three_holidays(make_ctx):
    replies = pickup.pickup_timing(make_ctx(Intent.PICKUP_TIMING, now=FRIDAY_BEFORE_HOLIDAYS))
    card = card_of(replies)
    fields = dict(card.fields)
    assert fields["申請"] == "9月18日（金）16:10（今）"
    assert fields["受取開始"] == "9月24日（木）13:00から"
    assert fields["遅い場合（15:00以降の申請のため）"] == "9月25日（金）13:00から"
    assert "敬老の日" in card.footer and "国民の休日" in card.footer and "秋分の日" in card.footer
    assert "9月21日（月）" in card.footer and "土曜日・日曜日" in card.footer


def test_friday_before_the_holidays_in_english(make_ctx):
    card = card_of(pickup.pickup_timing(make_ctx(Intent.PICKUP_TIMING, lang=Language.EN, now=FRIDAY_BEFORE_HOLIDAYS)))
    text = all_text([card])
    assert "Ready from: Thu, Sep 24, 13:00" in text and "Fri, Sep 25, 13:00" in text
    assert "national holidays: Mon, Sep 21, Tue, Sep 22, Wed, Sep 23" in text


def test_a_weekday_morning_is_ready_the_next_afternoon(make_ctx):
    replies = pickup.pickup_timing(make_ctx(Intent.PICKUP_TIMING))  # Tue 2026-11-24 10:00
    card = card_of(replies)
    assert dict(card.fields)["受取開始"] == "11月25日（水）13:00から"
    assert len(card.fields) == 2 and card.footer == ""
    text = all_text(replies)
    assert "学生証" in text and "郵送対応完了" in text and "受取り可能" in text
    assert "intent:window_pickup_howto" in payloads(replies)


def test_a_time_in_the_message_is_used_instead_of_now(make_ctx):
    when = Entity(EntityType.DATETIME, "2026-09-18T16:10:00+09:00", 0, 5, "金曜の16時10分")
    card = card_of(pickup.pickup_timing(make_ctx(Intent.PICKUP_TIMING, entities=(when,))))
    assert dict(card.fields)["申請"] == "9月18日（金）16:10"
    assert dict(card.fields)["受取開始"] == "9月24日（木）13:00から"
    assert "すでに過ぎています" in card.footer  # the clock stands at 2026-11-24


def test_a_date_without_a_time_gives_both_sides_of_the_cutoff(make_ctx):
    day = Entity(EntityType.DATETIME, "2026-11-27", 0, 2, "金曜")
    card = card_of(pickup.pickup_timing(make_ctx(Intent.PICKUP_TIMING, lang=Language.EN, entities=(day,))))
    fields = dict(card.fields)
    assert fields["Application date"] == "Fri, Nov 27"
    assert fields["If applied before 15:00"] == "Mon, Nov 30, 13:00 (Japan time)"
    assert fields["If applied at or after 15:00"].endswith("or at the latest Tue, Dec 1, 13:00 (Japan time)")


def test_year_end_closure_days_are_named(make_ctx):
    when = Entity(EntityType.DATETIME, "2026-12-28T11:00:00+09:00", 0, 1, "x")
    card = card_of(pickup.pickup_timing(make_ctx(Intent.PICKUP_TIMING, entities=(when,))))
    assert dict(card.fields)["受取開始"] == "1月4日（月）13:00から"
    assert "元日" in card.footer and "大学の休業日" in card.footer


def test_a_printed_certificate_is_not_a_window_item(make_ctx):
    item = Entity(EntityType.ITEM, ItemCode.TRANSCRIPT, 0, 1, "成績証明書")
    replies = pickup.pickup_timing(make_ctx(Intent.PICKUP_TIMING, entities=(item,)))
    assert "成績証明書は窓口で受け取る項目ではありません" in all_text(replies[:1])


@pytest.mark.parametrize(("lang", "wanted"), [
    (Language.JA, ["「郵送」", "「コンビニ」を選択しても項目は表示されません", "「1部」", "「大学窓口で受取り」",
                   "「窓口受取り」", "郵便番号は入力不要", "学生証", "郵送対応完了", "11月25日（水）13:00"]),
    (Language.EN, ["「郵送」", "「コンビニ」", "1 copy", "「大学窓口で受取り」", "「窓口受取り」", "No postal code",
                   "student ID card", "郵送対応完了", "Wed, Nov 25, 13:00"]),
])
def test_window_pickup_steps(make_ctx, lang, wanted):
    replies = pickup.window_pickup_howto(make_ctx(Intent.WINDOW_PICKUP_HOWTO, lang=lang))
    text = all_text(replies)
    for word in wanted:
        assert word in text, word
    assert "intent:pickup_timing" in payloads(replies)


def test_window_pickup_names_the_window_items_of_the_catalog(make_ctx, core):
    text = all_text(pickup.window_pickup_howto(make_ctx(Intent.WINDOW_PICKUP_HOWTO)))
    for item in core.profile.catalog.items:
        assert (item.name("ja") in text) == (DeliveryMethod.WINDOW_PICKUP in item.deliveries)


@pytest.mark.parametrize("lang", list(Language))
def test_delivery_options_list_every_method_and_which_items_allow_it(make_ctx, core, lang):
    replies = pickup.delivery_options(make_ctx(Intent.DELIVERY_OPTIONS, lang=lang))
    text = all_text(replies)
    for wanted in (["学内印刷機", "マルチコピー機", "郵送", "学生支援課窓口", "学割証明書", "番号", "有効期限"]
                   if lang is Language.JA else
                   ["campus printer", "multi-copy machine", "By mail", "Student Support Division", "学割証明書",
                    "number", "expires"]):
        assert wanted in text, wanted
    for item in core.profile.catalog.items:
        assert item.name(lang) in text
    assert "082-207-4262" in text


def test_an_item_and_a_method_get_a_direct_answer(make_ctx):
    transcript = Entity(EntityType.ITEM, ItemCode.TRANSCRIPT, 0, 1, "x")
    store = Entity(EntityType.DELIVERY_METHOD, DeliveryMethod.CONVENIENCE_STORE, 0, 1, "x")
    text = all_text(pickup.delivery_options(make_ctx(Intent.DELIVERY_OPTIONS, entities=(transcript, store))))
    assert text.startswith("はい、成績証明書は「コンビニのマルチコピー機で印刷」で受け取れます")
    student_id = Entity(EntityType.ITEM, ItemCode.STUDENT_ID_REISSUE, 0, 1, "x")
    text = all_text(pickup.delivery_options(
        make_ctx(Intent.DELIVERY_OPTIONS, lang=Language.EN, entities=(student_id, store))))
    assert text.startswith("I'm sorry, Student ID card reissue fee cannot be received by")
