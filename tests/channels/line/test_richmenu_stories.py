"""Stories through the LINE adapter with the rich menu deployed: a student reaches every topic by taps on the menu
alone, in both languages (signed postback webhooks carrying what each area of the live menu carries), and the
language tile switches the conversation and the student's menu (and back); a failed switch is retried without
sending the answer twice."""

import pytest

from bot.channels.line.richmenu_api import RichMenuAdmin
from core.enums import Language
from tests.channels.line.conftest import line_settings
from tests.channels.line.fake_line_api import REPLY
from tests.channels.line.webhooks import user_id

ALIAS_EN = "/v2/bot/richmenu/alias/madoguchi-en"
# What each tap's answer says, by the payload the tapped area carries.
ANSWERS = {
    Language.JA: {
        "intent:login_help": "ログインについてご案内します",
        "intent:second_password_reset": "第2パスワードを忘れた場合",
        "intent:order_certificate": "証明書の申請には", "intent:payment_methods": "支払い方法は次のとおり",
        "intent:pickup_timing": "受取り時期", "intent:order_status": "ご注文番号",
        "intent:contact": "お問い合わせ先は次のとおり", "handoff:asked": "担当者", "lang:en": "I'll answer in English",
    },
    Language.EN: {
        "intent:login_help": "Let me help you log in", "intent:second_password_reset": "forgotten your second password",
        "intent:order_certificate": "To apply for a certificate", "intent:payment_methods": "You can pay with",
        "intent:pickup_timing": "When you can collect it", "intent:order_status": "order number",
        "intent:contact": "Here is who to contact", "handoff:asked": "staff member", "lang:ja": "日本語でご案内します",
    },
}


@pytest.fixture
def deployed(line):
    """The LINE app with both rich menus live on the fake platform (deployed as the operator does)."""
    admin = RichMenuAdmin(line_settings(line.fake))
    try:
        admin.deploy()
    finally:
        admin.close()
    line.fake.calls.clear()
    return line


def areas(line, lang):
    """The live menu's areas of `lang`, as LINE has them."""
    menus = line.fake.richmenus
    return menus.menus[menus.aliases[f"madoguchi-{lang.value}"]].request["areas"]


def tap(line, user, area):
    """The student taps an area: LINE sends its postback; the answer's texts."""
    line.fake.calls.clear()
    line.deliver(line.events.postback(user, area["action"]["data"]))
    return "\n".join(line.fake.delivered_texts())


def shown_menu(line, user):
    menus = line.fake.richmenus
    return menus.users.get(user, menus.default)


@pytest.mark.parametrize("lang", list(Language))
def test_every_topic_is_reached_by_taps_on_the_menu_alone(deployed, lang):
    user = user_id()
    if lang is Language.EN:
        [switch] = [area for area in areas(deployed, Language.JA) if area["action"]["data"] == "lang:en"]
        tap(deployed, user, switch)
    menu = areas(deployed, lang)
    assert shown_menu(deployed, user) == deployed.fake.richmenus.aliases[f"madoguchi-{lang.value}"]
    assert {area["action"]["data"] for area in menu} == set(ANSWERS[lang])
    for area in menu:
        answer = tap(deployed, user, area)
        assert ANSWERS[lang][area["action"]["data"]] in answer, (area["action"], answer)
        assert [call.path for call in deployed.fake.deliveries()] == [REPLY], "answered once, by the reply token"


def test_the_language_tile_switches_the_conversation_and_the_students_menu_and_back(deployed):
    menus, user = deployed.fake.richmenus, user_id()
    [english] = [area for area in areas(deployed, Language.JA) if area["action"]["data"] == "lang:en"]
    assert english["action"]["displayText"] == "English"

    assert "I'll answer in English" in tap(deployed, user, english)
    assert menus.users[user] == menus.aliases["madoguchi-en"]
    paths = [call.path for call in deployed.fake.calls]
    assert paths == [REPLY, ALIAS_EN, f"/v2/bot/user/{user}/richmenu/{menus.aliases['madoguchi-en']}"]
    assert "You can pay with" in tap(deployed, user, areas(deployed, Language.EN)[3]), "the chat goes on in English"

    [japanese] = [area for area in areas(deployed, Language.EN) if area["action"]["data"] == "lang:ja"]
    assert "日本語でご案内します" in tap(deployed, user, japanese)
    assert user not in menus.users and shown_menu(deployed, user) == menus.aliases["madoguchi-ja"], \
        "unlinked: the default (Japanese) menu again"
    assert [call.path for call in deployed.fake.calls][-1] == f"/v2/bot/user/{user}/richmenu"


def test_asking_for_english_in_words_switches_the_menu_too(deployed):
    menus, user = deployed.fake.richmenus, user_id()
    deployed.deliver(deployed.events.text(user, "English please"))
    assert menus.users.get(user) == menus.aliases["madoguchi-en"]
    deployed.deliver(deployed.events.text(user, "日本語でお願いします"))
    assert user not in menus.users


def test_an_ordinary_tap_leaves_the_menu_alone(deployed):
    user = user_id()
    tap(deployed, user, areas(deployed, Language.JA)[0])
    assert not any("richmenu" in call.path for call in deployed.fake.calls)


def test_a_failed_switch_is_retried_without_sending_the_answer_twice(deployed):
    menus, user = deployed.fake.richmenus, user_id()
    link = f"/v2/bot/user/{user}/richmenu/{menus.aliases['madoguchi-en']}"
    deployed.fake.fail_next(link, 500)
    [english] = [area for area in areas(deployed, Language.JA) if area["action"]["data"] == "lang:en"]
    tap(deployed, user, english)
    assert user not in menus.users and len(deployed.fake.deliveries()) == 1
    deployed.clock.advance(seconds=2)
    assert deployed.inbox.drain() == 1
    assert menus.users[user] == menus.aliases["madoguchi-en"]
    assert len(deployed.fake.deliveries()) == 1, "the answer went out once"
    assert deployed.statuses()[-1] == "done"


def test_a_switch_line_refuses_is_skipped_and_the_answer_still_goes(line):
    # No menu deployed: the alias is unknown (404). The answer is sent; the event is done, not failed.
    user = user_id()
    line.deliver(line.events.postback(user, "lang:en"))
    assert "I'll answer in English" in "\n".join(line.fake.delivered_texts())
    assert [call.status for call in line.fake.calls_to(ALIAS_EN)] == [404]
    assert line.statuses() == ["done"]


def test_a_redeployed_menu_is_found_again_by_its_alias(deployed):
    menus, user = deployed.fake.richmenus, user_id()
    [english] = [area for area in areas(deployed, Language.JA) if area["action"]["data"] == "lang:en"]
    tap(deployed, user, english)  # the English menu's id is now cached
    old = menus.aliases["madoguchi-en"]
    replacement = menus.add({**menus.menus[old].request, "name": "madoguchi-en-new"})
    menus.aliases["madoguchi-en"] = replacement
    del menus.menus[old]  # as a redeploy leaves it
    tap(deployed, user, english)
    assert menus.users[user] == replacement


def test_tapping_the_language_already_chosen_puts_a_wrong_menu_right(deployed):
    menus, user = deployed.fake.richmenus, user_id()
    [english] = [area for area in areas(deployed, Language.JA) if area["action"]["data"] == "lang:en"]
    tap(deployed, user, english)
    del menus.users[user]  # the switch was lost (say, LINE failed for longer than the retries)
    tap(deployed, user, english)  # the student, shown the Japanese menu, taps English again
    assert menus.users[user] == menus.aliases["madoguchi-en"]
