"""How the understander reads real students' messages: openers set aside, two questions found, the kinds of
out_of_scope, steering words and romaji. Sentences written for these tests (none is a training example or a
line of an evaluation set: checked below)."""

import pytest

from core.enums import Language
from intents import Intent, OutOfScopeKind, Understander
from intents.controls import Control
from intents.data import load_examples
from intents.normalize import normalize
from tests.intents.conftest import NOW

OPENERS = [
    ("すみません、学生証を落としてしまいました。再発行をお願いしたいです", Intent.FEE_ITEMS),
    ("こんばんは！支払いってどんな方法が使えますか", Intent.PAYMENT_METHODS),
    ("お疲れさまです。看護学科4年の者です。成績証明書の申し込み方を教えてください", Intent.ORDER_CERTIFICATE),
    ("hey there! quick question - how do I pay the fee?", Intent.PAYMENT_METHODS),
    ("Hello, I'm a first-year grad student. I forgot my second password", Intent.SECOND_PASSWORD_RESET),
    ("ありがとうございます！あと、問い合わせの電話番号も知りたいです", Intent.CONTACT),
]


@pytest.mark.parametrize(("text", "intent"), OPENERS)
def test_an_opener_never_hides_the_question(nlu: Understander, text, intent):
    understanding = nlu.understand(text, now=NOW)
    assert understanding.intent is intent, understanding.candidates


@pytest.mark.parametrize("text", ["すみません、いま大丈夫ですか", "お疲れ様です。よろしくお願いします",
                                  "hello there, anyone?"])
def test_openers_alone_are_a_greeting(nlu: Understander, text):
    assert nlu.understand(text, now=NOW).intent is Intent.GREET


TWO_QUESTIONS = [
    ("支払いの方法と、コールセンターの受付時間を教えてください", [Intent.PAYMENT_METHODS, Intent.CONTACT]),
    ("メアドの変更ってどうやるの？あと第2パスワードの文字数の決まりは？",
     [Intent.EMAIL_CHANGE, Intent.SECOND_PASSWORD_RULES]),
    ("when is student support open, and can I use PayPay for the fee?", [Intent.CONTACT, Intent.PAYMENT_METHODS]),
]


@pytest.mark.parametrize(("text", "intents"), TWO_QUESTIONS)
def test_two_questions_are_two_topics_in_order(nlu: Understander, text, intents):
    understanding = nlu.understand(text, now=NOW)
    assert [topic.intent for topic in understanding.topics] == intents
    assert understanding.intent is intents[0]
    for topic in understanding.topics:
        assert 0 <= topic.start < topic.end <= len(text)


@pytest.mark.parametrize("text", [
    "学生証をなくしてしまいました。再発行したいです",  # what happened, then the request: one question
    "入学式は4月3日でした。何日から使えますか？",
    "成績証明書を3通、郵送でお願いします",
])
def test_context_and_one_request_are_one_topic(nlu: Understander, text):
    assert nlu.understand(text, now=NOW).topics == ()


@pytest.mark.parametrize(("text", "kind"), [
    ("奨学金の申請ってどこでやるんですか", OutOfScopeKind.CAMPUS),
    ("where do I register for next semester's classes?", OutOfScopeKind.CAMPUS),
    ("来週の天気を教えて", OutOfScopeKind.OTHER),
    ("このポンコツボット、ほんと使えねえ", OutOfScopeKind.ABUSE),
    ("this bot is fucking useless", OutOfScopeKind.ABUSE),
])
def test_out_of_scope_messages_have_their_kind(nlu: Understander, text, kind):
    understanding = nlu.understand(text, now=NOW)
    assert (understanding.intent, understanding.out_of_scope_kind) == (Intent.OUT_OF_SCOPE, kind)


@pytest.mark.parametrize("text", ["ぬふぁ なにゅ", "xqz plorf", "ふがふが"])
def test_an_unreadable_message_has_no_kind(nlu: Understander, text):
    understanding = nlu.understand(text, now=NOW)
    assert understanding.intent is Intent.OUT_OF_SCOPE and understanding.out_of_scope_kind is None


def test_a_question_with_an_insult_is_still_answered(nlu: Understander):
    understanding = nlu.understand("クソ、ログインができないんだけど", now=NOW)
    assert understanding.intent is Intent.LOGIN_HELP and understanding.out_of_scope_kind is None


@pytest.mark.parametrize(("text", "intent"), [
    ("しはらいは なにが つかえますか", Intent.PAYMENT_METHODS),
    ("めーるあどれすを かえたい", Intent.EMAIL_CHANGE),
    ("shiharai houhou wa nani ga arimasu ka", Intent.PAYMENT_METHODS),
    ("zaigaku shoumeisho wo moushikomitai", Intent.ORDER_CERTIFICATE),
    ("gakuseisho wo nakushimashita", Intent.FEE_ITEMS),
])
def test_hiragana_and_romaji_meet_kanji(nlu: Understander, text, intent):
    assert nlu.understand(text, now=NOW).intent is intent


def test_romaji_is_read_as_japanese(nlu: Understander):
    assert nlu.understand("zaigaku shoumeisho wo moushikomitai", now=NOW).lang is Language.JA
    assert nlu.understand("can I apply for a certificate", now=NOW).lang is Language.EN


def test_steering_words_reach_the_understanding(nlu: Understander):
    assert nlu.understand("やっぱりやめます", now=NOW).control is Control.CANCEL
    assert nlu.understand("成績証明書を申請したい", now=NOW).control is None


WISHES = [
    ("在学証明書をアパートに郵送してもらいたいんですが", Intent.ORDER_CERTIFICATE),
    ("I need my enrollment certificate posted to my dorm", Intent.ORDER_CERTIFICATE),
    ("在学証明書ってアパートに郵送してもらえますか？", Intent.DELIVERY_OPTIONS),
    ("can my enrollment certificate be posted to my dorm?", Intent.DELIVERY_OPTIONS),
    ("在学証明書をコンビニで印刷したいけど、どうやるの", Intent.DELIVERY_OPTIONS),
]


@pytest.mark.parametrize(("text", "intent"), WISHES)
def test_a_wish_for_an_item_applies_and_a_question_asks(nlu: Understander, text, intent):
    """Naming how to receive it, a wish for a named certificate is an application; a question stays one."""
    assert nlu.understand(text, now=NOW).intent is intent


def test_a_short_english_clause_pointing_back_asks_nothing_new(nlu: Understander):
    """"when does it close" after "where is the gym" is about the gym, not about pickup times."""
    understanding = nlu.understand("where is the gym and when does it close?", now=NOW)
    assert understanding.topics == ()
    assert understanding.intent is Intent.OUT_OF_SCOPE


def test_an_order_number_given_beside_the_question_is_a_detail(nlu: Understander):
    understanding = nlu.understand("could you look up my order please? the number is 7KQM-P2XA", now=NOW)
    assert understanding.intent is Intent.ORDER_STATUS and understanding.topics == ()


def test_these_sentences_are_not_training_examples():
    training = {normalize(example.text) for example in load_examples()}
    written = [text for text, _ in OPENERS + TWO_QUESTIONS + WISHES]
    assert [text for text in written if normalize(text) in training] == []
