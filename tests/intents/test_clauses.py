"""Clauses, openers, closers, self-introductions and abusive words (intents.clauses)."""

import pytest

from intents.clauses import Clause, is_abusive, is_closer, is_self_introduction, split_clauses, strip_opener
from intents.normalize import normalize


def texts(message: str) -> list[str]:
    return [clause.text for clause in split_clauses(normalize(message))]


@pytest.mark.parametrize(("message", "clauses"), [
    ("支払い方法を教えて", ["支払い方法を教えて"]),
    ("すみません、学生証をなくしました。再発行したいです", ["すみません、学生証をなくしました", "再発行したいです"]),
    ("支払い方法と、学生支援課の電話番号を教えて", ["支払い方法", "学生支援課の電話番号を教えて"]),
    ("what time does the call center open, and can I pay at Lawson?",
     ["what time does the call center open", "can i pay at lawson"]),
    ("Hi! quick question: how do I pay?", ["hi", "quick question", "how do i pay"]),
    ("ありがとうございます。あと、支払い方法も教えて", ["ありがとうございます", "支払い方法も教えて"]),
    ("第2パスワードは何文字？あとメアドの変更は", ["第2パスワードは何文字", "メアドの変更は"]),
    ("ろぐいんできない あと でんわばんごう おしえて", ["ろぐいんできない", "でんわばんごう おしえて"]),
    ("I lost my ID. how much is it and when can I pick it up", ["i lost my id", "how much is it",
                                                                "when can i pick it up"]),
])
def test_a_message_is_cut_where_a_new_question_begins(message, clauses):
    assert texts(message) == clauses


@pytest.mark.parametrize("message", [
    "applied at 3:30pm today", "Jan. 8 at 4pm", "e.g. the transcript", "またね", "あとどれくらいで届きますか",
    "ログインするとエラーになる", "あと何日かかりますか",
])
def test_times_abbreviations_and_words_that_only_look_like_boundaries_stay_whole(message):
    assert texts(message) == [normalize(message)] or texts(message)[0].startswith(normalize(message)[:4])
    assert len(texts(message)) == 1


def test_clause_spans_index_the_normalized_text():
    normalized = normalize("こんにちは。支払い方法と、電話番号を教えて")
    for clause in split_clauses(normalized):
        assert normalized[clause.start:clause.end] == clause.text


@pytest.mark.parametrize(("clause", "rest"), [
    ("すみません、学生証をなくしました", "学生証をなくしました"),
    ("hi there, how do i pay", "how do i pay"),
    ("お疲れ様です!質問です", None),
    ("hello", None),
    ("so long", "so long"),  # a goodbye, not an opener
    ("hiya", None),
    ("どうもです", None),
    ("支払い方法を教えて", "支払い方法を教えて"),
    ("2点お聞きしたいことがあります", None),
])
def test_openers_are_cut_off_the_start(clause, rest):
    text = normalize(clause)
    stripped = strip_opener(Clause(0, len(text), text))
    assert (stripped.text if stripped else None) == rest
    if stripped is not None:
        assert text[stripped.start:stripped.end] == stripped.text


@pytest.mark.parametrize(("text", "closer"), [
    ("よろしくお願いいたします", True), ("thanks in advance", True), ("ありがとうございます", True),
    ("支払い方法を教えてください", False), ("成績証明書2通お願いします", False),
    ("お手数ですが、よろしくお願いいたします", True), ("恐れ入りますが、何卒よろしくお願いします", True),
])
def test_closers_stand_alone(text, closer):
    normalized = normalize(text)
    assert is_closer(Clause(0, len(normalized), normalized)) is closer


@pytest.mark.parametrize(("text", "introduction"), [
    ("医学科3年の者です", True), ("看護学科2年の山田です", True), ("i'm a 2nd year nursing student", True),
    ("this is ken, an exchange student from korea", True), ("大学院生です", True),
    ("看護学科4年の佐藤と申します", True),
    ("i'm locked out", False), ("ログインできません", False), ("学生証をなくしました", False),
])
def test_self_introductions(text, introduction):
    normalized = normalize(text)
    assert is_self_introduction(Clause(0, len(normalized), normalized)) is introduction


@pytest.mark.parametrize(("text", "asks"), [
    ("学生証をなくしました", False), ("入学式は4月5日でした", False), ("何日から使えますか", True),
    ("ログインできません", True), ("成績証明書を申し込みたいんですが", True), ("i lost my student id", False),
    ("i paid yesterday", False), ("i paid but can't see the order", True), ("forgot my second pw", True),
    ("電話番号は090-1234-5678です", False), ("注文番号は8KQ2-MX7Pです", False), ("迷惑メールにもないです", False),
    ("何回もやったけどダメでした", False), ("全部確認したし", False),
])
def test_narration_and_details_are_context_not_a_question(text, asks):
    normalized = normalize(text)
    assert Clause(0, len(normalized), normalized).asks() is asks


@pytest.mark.parametrize(("text", "abusive"), [
    ("このクソボット使えねーな、死ね", True), ("fuck you stupid bot", True), ("you are useless", True),
    ("なんだこのポンコツ", True), ("ふがふが", False), ("支払い方法を教えて", False), ("生かす", False),
    ("I can't use PayPay", False), ("Sussex", False),
])
def test_abusive_words(text, abusive):
    assert is_abusive(normalize(text)) is abusive


def test_a_numbered_list_is_one_question_an_item():
    clauses = split_clauses(normalize("質問が2つあります。\n1. 支払い方法は？\n2) 受付時間は？"))
    assert [clause.text for clause in clauses][1:] == ["支払い方法は", "受付時間は"]
    assert all(clause.conjoined for clause in clauses[1:])
