"""Login troubleshooting by symptom, called directly (layer 1)."""

from dataclasses import replace

import pytest

from core.enums import Language
from handlers import login
from handlers.login import Symptom, symptom_payload
from intents.types import Intent
from tests.handlers.conftest import all_text, payloads


@pytest.mark.parametrize("lang", list(Language))
def test_a_bare_login_question_offers_the_symptoms(make_ctx, lang):
    replies = login.login_help(make_ctx(Intent.LOGIN_HELP, text="ログインできない", lang=lang))
    offered = payloads(replies)
    for payload in ("login:first", "login:which_id", "login:rejected", "login:second_password", "login:logged_out"):
        assert payload in offered
    assert ("学籍番号" if lang is Language.JA else "student number") in all_text(replies)


def test_first_login_uses_the_campus_id_then_email_then_the_second_password(make_ctx, core):
    text = all_text(login.login_help(make_ctx(Intent.LOGIN_HELP, payload="login:first")))
    assert "学内ID・学内パスワード" in text and "学籍番号" in text
    assert text.index("メールアドレス") < text.index("第2パスワード（")
    assert "30分" in text and core.profile.new_students_from("ja") in text


def test_first_login_in_english(make_ctx, core):
    replies = login.login_help(make_ctx(Intent.LOGIN_HELP, payload="login:first", lang=Language.EN))
    text = all_text(replies)
    assert "campus ID and campus password" in text and "30 minutes" in text
    assert core.profile.new_students_from("en") in text
    assert "intent:email_registration" in payloads(replies)


@pytest.mark.parametrize("lang", list(Language))
def test_where_the_id_is_names_every_department(make_ctx, core, lang):
    text = all_text(login.login_help(make_ctx(Intent.LOGIN_HELP, payload="login:which_id", lang=lang)))
    for department in core.profile.departments:
        assert department.name(lang) in text and department.credentials_location(lang) in text
    assert "093-691-7211" in text  # 学生支援課, for graduate students


@pytest.mark.parametrize(("lang", "checks"), [
    (Language.JA, ["パスワードの入力が正しいか", "大文字／小文字", "半角英数文字"]),
    (Language.EN, ["typed correctly", "upper-case and lower-case", "half-width letters and digits"]),
])
def test_rejected_login_gives_the_checklist_browsers_and_the_call_center(make_ctx, lang, checks):
    replies = login.login_help(make_ctx(Intent.LOGIN_HELP, payload="login:rejected", lang=lang))
    text = all_text(replies)
    for check in checks:
        assert check in text
    assert "FireFox" in text and "iPhone: Safari" in text and "Android: Chrome" in text
    assert "082-207-4262" in text
    assert "intent:second_password_reset" in payloads(replies)


def test_second_password_symptom_offers_the_reset(make_ctx):
    replies = login.login_help(make_ctx(Intent.LOGIN_HELP, payload="login:second_password"))
    assert "第2パスワードを忘れた場合" in all_text(replies)
    assert {"intent:second_password_reset", "intent:second_password_rules"} <= set(payloads(replies))


@pytest.mark.parametrize(("lang", "wanted"), [
    (Language.JA, ["自動的にログアウト", "ブラウザも閉じる"]),
    (Language.EN, ["logged out automatically", "close your browser"]),
])
def test_logged_out_explains_the_inactivity_logout(make_ctx, lang, wanted):
    text = all_text(login.login_help(make_ctx(Intent.LOGIN_HELP, payload="login:logged_out", lang=lang)))
    assert all(word in text for word in wanted)


@pytest.mark.parametrize(("text", "symptom"), [
    ("初めてログインするんだけど何を入れるの", Symptom.FIRST),
    ("新入生ですがいつから使えますか", Symptom.FIRST),
    ("IDかパスワードが違いますと表示される", Symptom.REJECTED),
    ("アカウントがロックされた", Symptom.REJECTED),
    ("勝手にログアウトされた", Symptom.LOGGED_OUT),
    ("where do I find my login ID", Symptom.WHICH_ID),
    ("it says my id or password is wrong", Symptom.REJECTED),
    ("i keep getting logged out", Symptom.LOGGED_OUT),
    ("i'm a freshman, when can i start", Symptom.FIRST),
])
def test_a_typed_symptom_is_answered_at_once(make_ctx, text, symptom):
    direct = login.login_help(make_ctx(Intent.LOGIN_HELP, text=text))
    tapped = login.login_help(make_ctx(Intent.LOGIN_HELP, payload=symptom_payload(symptom)))
    assert all_text(direct) == all_text(tapped)


def test_a_named_department_gets_its_board_only(make_ctx):
    text = all_text(login.login_help(make_ctx(Intent.LOGIN_HELP, text="看護学科のログインIDはどこ？")))
    assert text.startswith("【看護学科の方】e-ラーニング→看護学科") and "学籍番号" in text
    assert "医学部" not in text and "■ 看護学科" not in text


def test_a_department_typed_after_the_login_menu_answers_it(make_ctx):
    ctx = make_ctx(Intent.LOGIN_HELP, text="ログインできません")
    login.login_help(ctx)
    assert ctx.state.expect == login.MENU
    answer = make_ctx(Intent.GREET, text="I'm in nursing, 2nd year", lang=Language.EN, state=ctx.state,
                      confidence=0.4)
    text = all_text(login._answer_to_menu(replace(answer, expecting=login.MENU)))
    assert text.startswith("For the Department of Nursing: e-learning")


def test_a_clear_new_question_after_the_login_menu_is_not_taken_as_its_answer(make_ctx):
    answer = make_ctx(Intent.PAYMENT_METHODS, text="看護学科だけど支払い方法は？", confidence=0.9)
    assert login._answer_to_menu(answer) is None


def test_the_entrance_ceremony_day_gives_the_first_afternoon(make_ctx):
    from intents.types import Entity, EntityType

    text = "入学式は4月5日でした。何日から使えますか？"
    ceremony = Entity(EntityType.DATETIME, "2027-04-05", 4, 8, "4月5日")
    replies = login.login_help(make_ctx(Intent.LOGIN_HELP, text=text, entities=(ceremony,)))
    assert "入学式が4月5日（月）の場合、4月6日（火）の午後から" in all_text(replies)


def test_an_unknown_symptom_payload_offers_the_symptoms(make_ctx):
    replies = login.login_help(make_ctx(Intent.LOGIN_HELP, payload="login:nonsense"))
    assert "login:first" in payloads(replies)


def test_a_pasted_password_is_never_repeated_and_the_student_is_warned(make_ctx):
    replies = login.login_help(make_ctx(Intent.LOGIN_HELP, text="パスワードQz8wLp3x でログインできない"))
    text = all_text(replies)
    assert "Qz8wLp3x" not in text and "誰にも教えないでください" in text
