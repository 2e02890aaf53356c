"""The slash command /madoguchi: help, menu, the language switch and a question, answered in the
student's direct messages with the app wherever the command was typed."""

import pytest

from tests.channels.slack import payloads
from tests.channels.slack.payloads import DM, PUBLIC, STUDENT
from tests.channels.slack.shown import buttons, texts


def test_help_is_acknowledged_at_once_and_answered_in_the_dm(slack_server):
    response = slack_server.send_form(payloads.slash_command("help"))

    assert response.status_code == 200 and response.text == ""
    [event] = slack_server.events()
    assert event.event_id.startswith("command:")
    [post] = slack_server.deliver()
    assert post.params["channel"] == STUDENT  # posting to a user id posts to the app's DM with them
    assert "/madoguchi menu" in texts(post) and "/madoguchi en" in texts(post)
    assert set(buttons(post).values()) == {"intent:greet", "lang:en"}


def test_the_bare_command_shows_the_help_too(slack_server):
    slack_server.send_form(payloads.slash_command(""))
    [post] = slack_server.deliver()
    assert "/madoguchi help" in texts(post)


def test_help_uses_the_command_name_the_workspace_gave_it(slack_server):
    slack_server.send_form(payloads.slash_command("help", command="/certificates"))
    [post] = slack_server.deliver()
    assert "/certificates menu" in texts(post) and "/madoguchi" not in texts(post)


def test_a_command_typed_in_a_channel_says_where_the_answer_goes(slack_server):
    response = slack_server.send_form(payloads.slash_command("help", channel=PUBLIC))

    assert response.status_code == 200
    assert "ダイレクトメッセージでお答えします" in response.text and "direct message" in response.text
    [post] = slack_server.deliver()
    assert post.params["channel"] == STUDENT


@pytest.mark.parametrize("word", ["menu", "Menu", "ｍｅｎｕ", "メニュー"])
def test_menu_shows_the_main_menu(slack_server, word):
    slack_server.send_form(payloads.slash_command(word))
    [post] = slack_server.deliver()
    offered = buttons(post)
    assert offered["支払い方法"] == "intent:payment_methods" and offered["English"] == "lang:en"


def test_the_language_switch_holds_for_the_next_messages_and_the_help(slack_server):
    slack_server.send_form(payloads.slash_command("en"))
    [switched] = slack_server.deliver()
    assert "I'll answer in English from now on." in texts(switched)

    slack_server.send_event(payloads.im_message("支払い方法を教えて"))
    assert "credit card" in texts(slack_server.deliver()[0]).lower()

    slack_server.send_form(payloads.slash_command("help"))
    [help_in_english] = slack_server.deliver()
    assert "/madoguchi ja" in texts(help_in_english) and "menu" in texts(help_in_english)
    assert set(buttons(help_in_english).values()) == {"intent:greet", "lang:ja"}

    slack_server.send_form(payloads.slash_command("ja"))
    assert "日本語でご案内します" in texts(slack_server.deliver()[0])


def test_a_question_after_the_command_is_answered(slack_server):
    slack_server.send_form(payloads.slash_command("支払い方法を教えて"))
    posts = slack_server.deliver()
    assert "クレジットカード" in texts(posts[0])


def test_the_command_shares_the_dm_conversation(slack_server):
    slack_server.send_form(payloads.slash_command("en"))
    slack_server.deliver()
    slack_server.send_event(payloads.im_message("こんにちは", channel=DM))
    assert "Hello" in texts(slack_server.deliver()[0])


def test_a_replayed_command_is_answered_once(slack_server):
    form = payloads.slash_command("menu")
    assert [slack_server.send_form(form).status_code for _ in range(2)] == [200, 200]
    assert len(slack_server.events()) == 1 and len(slack_server.deliver()) == 1
