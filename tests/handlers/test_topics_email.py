"""Registering and changing the email address, and the checklist when no mail arrives (layer 1)."""

from dataclasses import replace

import pytest

from core.enums import Language
from handlers import email
from intents.types import Intent
from tests.handlers.conftest import all_text, payloads

JA_CHECKS = ["メールアドレスの入力が正しいか", "余分なスペース", "半角英数文字", "許可リスト", "フリーメールアドレス"]
EN_CHECKS = ["typed correctly", "extra spaces", "half-width letters and digits", "allow list", "Free-mail"]


@pytest.mark.parametrize(("lang", "wanted"), [
    (Language.JA, ["初回ログイン時", "「メールアドレス」欄と「確認」欄", "ワンタイムURL", "30分",
                   "ログインページへ移動", *JA_CHECKS, "082-207-4262"]),
    (Language.EN, ["first login", "one-time URL", "30 minutes", "ログインページへ移動", *EN_CHECKS, "082-207-4262"]),
])
def test_registration_steps_the_one_time_url_and_the_checklist(make_ctx, lang, wanted):
    replies = email.email_registration(make_ctx(Intent.EMAIL_REGISTRATION, text="email", lang=lang))
    text = all_text(replies)
    for word in wanted:
        assert word in text, word
    assert "intent:second_password_rules" in payloads(replies)


@pytest.mark.parametrize(("lang", "wanted"), [
    (Language.JA, ["画面右上のメニューボタン", "「メールアドレス変更」", "「新しいメールアドレス」欄", "30分",
                   *JA_CHECKS]),
    (Language.EN, ["menu button at the top right", "メールアドレス変更", "30 minutes", *EN_CHECKS]),
])
def test_change_steps_from_the_menu(make_ctx, lang, wanted):
    text = all_text(email.email_change(make_ctx(Intent.EMAIL_CHANGE, text="change", lang=lang)))
    for word in wanted:
        assert word in text, word


@pytest.mark.parametrize(("text", "lang"), [("確認メールが届かない", Language.JA),
                                            ("the confirmation email never came", Language.EN)])
def test_a_missing_mail_gets_the_checklist_first(make_ctx, text, lang):
    replies = email.email_registration(make_ctx(Intent.EMAIL_REGISTRATION, text=text, lang=lang))
    first = all_text(replies[:1])
    assert "082-207-4262" in first and (JA_CHECKS[0] if lang is Language.JA else EN_CHECKS[0]) in first


def test_the_minutes_come_from_the_profile(make_ctx, core):
    ctx = make_ctx(Intent.EMAIL_REGISTRATION, text="email")
    profile = core.profile.model_copy(update={"one_time_link_minutes": 45})
    text = all_text(email.email_registration(replace(ctx, core=replace(core, profile=profile))))
    assert "45分" in text and "30分" not in text
