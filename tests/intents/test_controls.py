"""Typed steering words (intents.controls): only a message that says nothing else is one."""

import pytest

from intents.controls import Control, back_to_the_bot, control_word
from intents.normalize import normalize


@pytest.mark.parametrize(("text", "control"), [
    ("やっぱりやめます", Control.CANCEL), ("キャンセルで", Control.CANCEL), ("cancel", Control.CANCEL),
    ("stop", Control.CANCEL), ("Cancel.", Control.CANCEL), ("cancel the order", Control.CANCEL),
    ("やっぱりいいです", Control.CANCEL), ("取り消してください", Control.CANCEL), ("never mind", Control.CANCEL),
    ("はい", Control.YES), ("はい、お願いします", Control.YES), ("yes please send the link", Control.YES),
    ("再設定リンクを送ってください", Control.YES), ("Yes, apply", Control.YES), ("ok", Control.YES),
    ("いいえ", Control.NO), ("違います", Control.NO), ("nope", Control.NO), ("no", Control.NO),
    ("戻る", Control.BACK), ("go back", Control.BACK), ("前の質問に戻って", Control.BACK),
    ("変更したい", Control.CHANGE), ("I want to change something", Control.CHANGE),
    ("続ける", Control.CONTINUE), ("そのまま続けて", Control.CONTINUE), ("continue please", Control.CONTINUE),
])
def test_steering_words_in_both_languages(text, control):
    assert control_word(normalize(text)) is control


@pytest.mark.parametrize("text", [
    "支払い後にキャンセルしたい", "支払い方法を変更したい", "24M1001", "PayPay", "2通", "stop reminders",
    "郵送で", "in english please", "学生証", "キャンセルしたら返金されますか", "a" * 39, "はい" * 30,
])
def test_a_message_that_says_more_is_no_steering_word(text):
    assert control_word(normalize(text)) is None


@pytest.mark.parametrize(("text", "control"), [
    ("そっか、じゃあやめます", Control.CANCEL), ("番号わからないのでやめておきます", Control.CANCEL),
    ("やっぱりキャンセルで。もう少し考えます", Control.CANCEL),
    ("cancel it. I'll talk to my parents first", Control.CANCEL),
    ("一つ前に戻って、部数を間違えた", Control.BACK),
])
def test_a_steering_word_with_its_reason(text, control):
    assert control_word(normalize(text)) is control


@pytest.mark.parametrize("text", ["もう払ったからキャンセルしたい", "もういい、電話するから番号教えて",
                                  "やめます、返金はどうなりますか"])
def test_a_reason_that_asks_something_is_no_steering_word(text):
    assert control_word(normalize(text)) is None


@pytest.mark.parametrize("text", ["ボットに戻る", "やっぱりボットに戻してください",
                                  "あ、やっぱり大丈夫です。ボットに戻してください", "ぼっとにもどる", "待つのやめます",
                                  "もう待たなくていいです", "担当者はもういいです",
                                  "back to the bot", "Never mind, take me back to the bot", "I'll stop waiting",
                                  "I don't need a person anymore"])
def test_asking_to_stop_waiting_for_a_person_is_read(text):
    assert back_to_the_bot(normalize(text))


@pytest.mark.parametrize("text", ["ボットに戻る方法は？", "how do I go back to the bot", "人がいいです", "キャンセル",
                                  "ボットの使い方", "成績証明書の受け取りについて相談したいです",
                                  "待ち時間はどのくらいですか", "cancel my order"])
def test_other_messages_are_not_taken_for_leaving_the_queue(text):
    assert not back_to_the_bot(normalize(text))
