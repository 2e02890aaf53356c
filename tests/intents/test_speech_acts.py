"""Requests and questions: what a student wants done versus what a student asks about."""

import pytest

from intents.normalize import normalize
from intents.speech_acts import asks_how, is_question, is_request


@pytest.mark.parametrize("text", ["成績証明書を郵送してほしいです", "在学証明書を2通お願いします",
                                  "卒業見込み証明書が必要なんですけど", "I need a transcript",
                                  "could you send me an enrollment certificate", "申し込めますか"])
def test_requests(text):
    assert is_request(normalize(text))


@pytest.mark.parametrize("text", ["駐車場の使用料はここで払うんですか", "保険の継続手続きもこのサービスでやるの",
                                  "学生証が割れたら再発行もここ", "is the parking fee paid here?",
                                  "受取方法を教えてください", "tell me the delivery options"])
def test_questions(text):
    assert is_question(normalize(text))


@pytest.mark.parametrize("text", ["成績証明書を実家に郵送してもらいたいんですけど", "I need my transcript mailed home"])
def test_a_wish_is_no_question(text):
    assert is_request(normalize(text)) and not is_question(normalize(text))


def test_asking_how_beside_a_wish():
    assert asks_how(normalize("コンビニで印刷したいけど、どうすればいい"))
    assert asks_how(normalize("I want it printed, how do I do that"))
    assert not asks_how(normalize("成績証明書を郵送してほしい"))
