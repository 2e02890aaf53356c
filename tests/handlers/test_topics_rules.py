"""The second password's rules and the check of a pasted password that never repeats it (layer 1)."""

import pytest

from core.enums import Language
from handlers import rules
from intents.types import Intent
from tests.handlers.conftest import all_text, payloads


@pytest.mark.parametrize(("lang", "wanted"), [
    (Language.JA, ["8文字以上", "半角英大文字（A-Z）", "半角英小文字（a-z）", "半角数字（0-9）",
                   "半角英数字以外", "確認"]),
    (Language.EN, ["at least 8 characters", "upper-case letter (A-Z)", "lower-case letter (a-z)", "digit (0-9)",
                   "only half-width letters and digits"]),
])
def test_the_guides_five_rules(make_ctx, lang, wanted):
    replies = rules.second_password_rules(make_ctx(Intent.SECOND_PASSWORD_RULES, text="rules", lang=lang))
    text = all_text(replies)
    assert all(word in text for word in wanted)
    assert "intent:second_password_reset" in payloads(replies)


@pytest.mark.parametrize("lang", list(Language))
def test_a_valid_pasted_password_is_checked_but_never_shown(make_ctx, lang):
    replies = rules.second_password_rules(
        make_ctx(Intent.SECOND_PASSWORD_RULES, text="第2パスワードは Tk4mPq9z で大丈夫？", lang=lang))
    text = all_text(replies)
    assert "Tk4mPq9z" not in text
    assert ("ルールはすべて満たしています" if lang is Language.JA else "meets all the rules") in text
    assert ("誰にも教えないでください" if lang is Language.JA else "never share a password") in text


def test_a_pasted_password_breaking_rules_names_the_rules_not_the_password(make_ctx):
    replies = rules.second_password_rules(make_ctx(Intent.SECOND_PASSWORD_RULES, text="abcdefg1 は使える？"))
    text = all_text(replies)
    assert "abcdefg1" not in text
    assert "満たしていません" in text and "半角英大文字（A-Z）を1文字以上含めてください" in text


def test_symbols_are_reported_as_invalid_characters(make_ctx):
    text = all_text(rules.second_password_rules(
        make_ctx(Intent.SECOND_PASSWORD_RULES, text="is Abcd!2345 ok?", lang=Language.EN)))
    assert "Abcd!2345" not in text and "no full-width characters, symbols or spaces" in text


def test_several_pasted_passwords_are_named_by_position_only(make_ctx):
    text = all_text(rules.second_password_rules(
        make_ctx(Intent.SECOND_PASSWORD_RULES, text="Tk4mPq9z or lowercase9x?", lang=Language.EN)))
    assert "Tk4mPq9z" not in text and "lowercase9x" not in text
    assert "No. 1: It meets all the rules." in text and "No. 2: It does not meet" in text


def test_without_a_password_there_is_no_warning(make_ctx):
    text = all_text(rules.second_password_rules(make_ctx(Intent.SECOND_PASSWORD_RULES, text="第2パスワードの条件は")))
    assert "誰にも教えないでください" not in text
