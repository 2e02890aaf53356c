"""Forgotten second password: the guide's steps, and the reset form that never tells who exists."""

import pytest

from core.enums import Language
from handlers.forms import CANCEL, start_payload
from handlers.replies import Text
from handlers.reset import RESET, second_password_reset
from intents.types import EntityType, Intent
from tests.handlers.test_forms_support import Chat, add_students, all_text, entity, payloads


@pytest.fixture
def chat(make_ctx, core):
    add_students(core)
    return Chat(make_ctx)


def test_the_handler_explains_the_services_own_steps(make_ctx):
    replies = second_password_reset(make_ctx(Intent.SECOND_PASSWORD_RESET, text="第2パスワードを忘れました"))
    text = all_text(replies)
    for words in ("在学生ログイン", "「第2パスワードを忘れた場合」", "メールアドレス", "ワンタイムURL", "30分",
                  "「確認」欄", "8文字以上"):
        assert words in text, words
    assert payloads(replies)[0] == start_payload(RESET)
    assert "intent:second_password_rules" in payloads(replies)


def test_the_handler_in_english(make_ctx):
    text = all_text(second_password_reset(make_ctx(Intent.SECOND_PASSWORD_RESET, lang=Language.EN)))
    assert "第2パスワードを忘れた場合" in text and "30 minutes" in text and "one-time URL" in text


def test_a_password_in_the_question_is_warned_about_and_not_repeated(make_ctx):
    ctx = make_ctx(Intent.SECOND_PASSWORD_RESET, text="第2パスワードを忘れました。前のはAbcd1234xです")
    text = all_text(second_password_reset(ctx))
    assert "必要ありません" in text and "Abcd1234x" not in text


def test_the_form_asks_for_the_student_number(chat):
    replies = chat.tap(start_payload(RESET))
    assert chat.state.form == RESET
    assert "学籍番号" in all_text(replies) and payloads(replies) == [CANCEL]


def test_the_reply_is_the_same_for_a_student_and_for_an_unknown_number(make_ctx, core, inbox):
    add_students(core, "24M1001")
    known, unknown = Chat(make_ctx), Chat(make_ctx)
    known.tap(start_payload(RESET))
    unknown.tap(start_payload(RESET))
    known_reply = known.say("24M1001", Intent.OUT_OF_SCOPE, entity(EntityType.STUDENT_NUMBER, "24M1001"))
    assert len(inbox.messages) == 1 and inbox.messages[0]["To"] == "taro.yamada@students.example.ac.jp"
    unknown_reply = unknown.say("99Z9999", Intent.OUT_OF_SCOPE, entity(EntityType.STUDENT_NUMBER, "99Z9999"))
    assert len(inbox.messages) == 1
    assert all_text(known_reply) == all_text(unknown_reply)
    assert "30分" in all_text(known_reply)
    assert "24M1001" not in all_text(known_reply) and "99Z9999" not in all_text(unknown_reply)
    assert known.state.form is None and unknown.state.form is None
    assert known.state.student_id is None  # asking for a reset identifies no one


def test_a_student_without_an_email_gets_the_same_reply(chat, inbox):
    chat.tap(start_payload(RESET))
    replies = chat.say("25M1002", Intent.OUT_OF_SCOPE, entity(EntityType.STUDENT_NUMBER, "25M1002"))
    assert "ワンタイムURL" in all_text(replies) and inbox.messages == []


def test_a_number_typed_full_width_with_a_hyphen_is_normalized(chat, inbox):
    chat.tap(start_payload(RESET))
    chat.say("２４ｍ－１００１")
    assert len(inbox.messages) == 1


def test_a_pasted_password_is_refused_and_not_repeated(chat, inbox):
    chat.tap(start_payload(RESET))
    replies = chat.say("24M1001 Abcd1234x", Intent.OUT_OF_SCOPE, entity(EntityType.STUDENT_NUMBER, "24M1001"))
    text = all_text(replies)
    assert "必要ありません" in text and "Abcd1234x" not in text
    assert chat.state.form == RESET and inbox.messages == []


def test_something_else_is_not_taken_for_a_number(chat, inbox):
    chat.tap(start_payload(RESET))
    replies = chat.say("12345")
    assert "24M1001" in all_text(replies) and chat.state.form == RESET and inbox.messages == []


def test_an_identified_student_is_not_asked(chat, core, inbox):
    chat.sign_in("24M1001")
    replies = chat.tap(start_payload(RESET))
    assert chat.state.form is None and len(inbox.messages) == 1
    assert isinstance(replies[0], Text) and "ワンタイムURL" in replies[0].text


def test_the_reset_request_in_english(make_ctx, core, inbox):
    add_students(core, "22N2002")
    chat = Chat(make_ctx, lang=Language.EN)
    assert "student number" in all_text(chat.tap(start_payload(RESET)))
    replies = chat.say("My student number is 22N2002", Intent.OUT_OF_SCOPE,
                       entity(EntityType.STUDENT_NUMBER, "22N2002"))
    assert "one-time URL" in all_text(replies) and len(inbox.messages) == 1


def test_a_question_mid_form_is_a_detour(chat):
    chat.tap(start_payload(RESET))
    replies = chat.say("問い合わせ先は？", Intent.CONTACT)
    assert "[answer about contact]" in all_text(replies) and chat.state.form == RESET
