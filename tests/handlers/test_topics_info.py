"""Switching languages and asking for a person, called directly (layer 1)."""


import pytest

from core.enums import Language
from handlers import info
from intents.types import Intent
from tests.handlers.conftest import all_text, payloads


@pytest.mark.parametrize(("text", "payload", "before", "after"), [
    ("English please", None, Language.JA, Language.EN),
    ("英語で説明してください", None, Language.JA, Language.EN),
    ("日本語以外で使える？", None, Language.JA, Language.EN),
    ("i can't read japanese", None, Language.JA, Language.EN),
    ("日本語でお願いします", None, Language.EN, Language.JA),
    ("back to japanese", None, Language.EN, Language.JA),
    ("the screen turned english, i want japanese", None, Language.EN, Language.JA),
    ("", "lang:en", Language.JA, Language.EN),
    ("", "lang:ja", Language.EN, Language.JA),
])
def test_the_chat_switches_and_answers_in_the_new_language(make_ctx, text, payload, before, after):
    ctx = make_ctx(Intent.LANGUAGE, text=text, payload=payload, lang=before)
    replies = info.language(ctx)
    assert ctx.state.lang is after
    answer = all_text(replies)
    assert ("日本語でご案内します" if after is Language.JA else "answer in English") in answer
    assert ("lang:en" if after is Language.JA else "lang:ja") in payloads(replies)  # the way back


@pytest.mark.parametrize("lang", list(Language))
def test_the_service_screens_switch_only_on_the_login_and_print_destination_screens(make_ctx, lang):
    text = all_text(info.language(make_ctx(Intent.LANGUAGE, text="language", lang=lang)))
    wanted = (["ログイン画面", "印刷先選択画面", "ログアウト"] if lang is Language.JA else
              ["login screen", "print destination screen", "log out"])
    assert all(word in text for word in wanted)


def test_another_language_is_not_promised_and_both_are_offered(make_ctx):
    ctx = make_ctx(Intent.LANGUAGE, text="中国語はありますか")
    replies = info.language(ctx)
    assert ctx.state.lang is None
    assert "日本語と英語" in all_text(replies)
    assert {"lang:ja", "lang:en"} <= set(payloads(replies))
