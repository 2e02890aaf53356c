"""Small talk, the main menu and the contacts, called directly (layer 1)."""

from datetime import datetime

import pytest

from core.clock import TOKYO
from core.enums import Language
from handlers import basic, email, handoff, info, login, money, pickup, rules
from handlers.registry import HandlerRegistry
from handlers.replies import intent_payload
from intents.types import Intent
from tests.handlers.conftest import all_text, payloads

TOPIC_MODULES = (basic, login, rules, email, money, pickup, info, handoff)
# Intents answered by the lead's forms (order_certificate, fee_items, second_password_reset, order_status).
FORM_INTENTS = {Intent.ORDER_CERTIFICATE, Intent.FEE_ITEMS, Intent.SECOND_PASSWORD_RESET, Intent.ORDER_STATUS}


def topic_registry() -> HandlerRegistry:
    registry = HandlerRegistry()
    for module in TOPIC_MODULES:
        module.register(registry)
    return registry


def test_the_topic_modules_register_without_clashing_and_cover_every_other_intent():
    handled = topic_registry().intents()
    assert handled == set(Intent) - FORM_INTENTS - {Intent.OUT_OF_SCOPE}


def test_every_main_menu_button_not_answered_by_a_form_has_a_topic_handler():
    handled = topic_registry().intents()
    assert set(basic.MENU_INTENTS) - FORM_INTENTS <= handled


@pytest.mark.parametrize("lang", list(Language))
def test_greeting_shows_the_menu_with_every_topic_and_the_language_switch(make_ctx, lang):
    replies = basic.greet(make_ctx(Intent.GREET, lang=lang))
    offered = payloads(replies)
    assert [intent_payload(intent) for intent in basic.MENU_INTENTS] == offered[:-1]
    assert offered[-1] == basic.lang_payload(basic.other_language(lang))
    assert ("証明書発行サービス" if lang is Language.JA else "Certificate Issuance Service") in all_text(replies)


@pytest.mark.parametrize("lang", list(Language))
def test_menu_labels_are_short_distinct_and_in_the_right_language(lang):
    labels = [button.label for button in basic.main_menu(lang)]
    assert len(labels) == len(set(labels)) and all(0 < len(label) <= 24 for label in labels)
    assert labels[-1] == ("English" if lang is Language.JA else "日本語")


def test_the_menu_button_shows_the_menu_without_a_second_welcome(make_ctx):
    replies = basic.greet(make_ctx(Intent.GREET, payload="intent:greet"))
    assert "こんにちは" not in all_text(replies) and "メニュー" in all_text(replies)
    assert intent_payload(Intent.CONTACT) in payloads(replies)


@pytest.mark.parametrize(("handler", "ja", "en"), [
    (basic.thanks, "どういたしまして", "You're welcome"),
    (basic.goodbye, "ありがとうございました", "Thank you"),
])
def test_small_talk_in_both_languages(make_ctx, handler, ja, en):
    assert ja in all_text(handler(make_ctx(lang=Language.JA)))
    assert en in all_text(handler(make_ctx(lang=Language.EN)))


def test_contacts_give_both_offices_with_phones_hours_and_open_now(make_ctx, core):
    text = all_text(basic.contact(make_ctx(Intent.CONTACT)))
    for service in basic.OFFICES:
        assert core.profile.contact(service).phone in text
    assert "gakusei@mbox.pub.uoeh-u.ac.jp" in text
    assert "08:30–17:00" in text and "09:00–17:00" in text
    assert text.count("ただいま受付中です") == 2
    assert "チャットサポート" in text and "24時間" in text


def test_contacts_after_hours_give_the_next_opening_skipping_the_holiday(make_ctx):
    friday_evening = datetime(2026, 11, 20, 17, 30, tzinfo=TOKYO)  # Monday 11/23 is 勤労感謝の日
    text = all_text(basic.contact(make_ctx(Intent.CONTACT, lang=Language.EN, now=friday_evening)))
    assert "opens Tue, Nov 24, 8:30" in text and "opens Tue, Nov 24, 9:00" in text
    assert "24 hours a day" in text


def test_fallback_offers_the_menu_and_the_contacts(make_ctx):
    replies = basic.fallback(make_ctx())
    assert "082-207-4262" in all_text(replies) and intent_payload(Intent.LOGIN_HELP) in payloads(replies)
