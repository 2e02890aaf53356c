"""POST /api/chat over real HTTP: answers through the pipeline, and refuses bad bodies with a 4xx."""

import re

import pytest

from core.clock import TOKYO
from core.students import load_demo_students


def chat(server, **body):
    return server.client.post("/api/chat", json=body)


def test_greeting_gets_the_welcome_and_the_main_menu(chat_server):
    response = chat(chat_server, user="u1", text="こんにちは")
    assert response.status_code == 200
    replies = response.json()["replies"]
    assert "証明書発行サービス" in replies[0]["text"]
    payloads = [button["payload"] for button in replies[0]["quick_replies"]]
    assert "intent:payment_methods" in payloads and "intent:contact" in payloads
    assert all(button["label"] for button in replies[0]["quick_replies"])


def test_tapping_a_menu_button_answers_that_topic_in_the_chosen_language(chat_server):
    response = chat(chat_server, user="u1", payload="intent:payment_methods", lang="en")
    text = response.json()["replies"][0]["text"]
    assert "PayPay" in text and "Lawson" in text
    assert "cash" in text.lower() and "refund" in text.lower()


def test_a_sentence_typed_in_the_other_language_is_answered_in_it(chat_server):
    """The page's language is the screen's: a Japanese sentence on the English page gets Japanese, while a
    student number or a tap follows the page."""
    japanese = chat(chat_server, user="u1b", text="コールセンターの電話番号を教えてください", lang="en")
    text = japanese.json()["replies"][0]["text"]
    assert "コールセンター" in text and "Tel." not in text
    tapped = chat(chat_server, user="u1b", payload="intent:payment_methods", lang="en")
    assert "You can pay with" in tapped.json()["replies"][0]["text"]
    english = chat(chat_server, user="u1c", text="what is the call center's phone number?", lang="ja")
    assert "Call Center" in english.json()["replies"][0]["text"]
    named = chat(chat_server, user="u1c", text="学生支援課", lang="en")  # a name copied from the screen
    assert "Student Support" in named.json()["replies"][0]["text"]


def sign_in(server, inbox, user: str, number: str) -> str:
    """Type the student number, open the mailed link and press Sign in, as a browser does; what the chat says
    when the page comes back signed in."""
    asked = chat(server, user=user, text=number).json()["replies"][0]["text"]
    assert "サインイン用のワンタイムURLをお送りしました" in asked
    server.core.settle()  # the link is mailed after the answer
    path = re.search(r"https?://[^/\s]+(/links/[A-Za-z0-9_-]+)", inbox.body(inbox.messages[-1])).group(1)
    page = server.client.get(path)
    assert page.status_code == 200 and "サインイン" in page.text
    signed = server.client.post(path)
    assert signed.status_code == 303 and signed.headers["location"].startswith("/?signed_in=1")
    assert "HttpOnly" in signed.headers["set-cookie"] and "SameSite=lax" in signed.headers["set-cookie"]
    back = chat(server, user=user, payload="signin:done")  # the page, back signed in, tells the chat
    return "\n".join(reply["text"] for reply in back.json()["replies"])


def test_a_mail_order_looks_its_postal_codes_up_in_the_apps_worker_threads(chat_server, inbox):
    """Japan Post's data is read in whichever worker thread answers (a connection shared across threads fails)."""
    with chat_server.core.transaction() as session:
        load_demo_students(session, chat_server.core.profile, chat_server.core.now())
    assert "郵便番号" not in chat(chat_server, user="mail-student", text="成績証明書を郵送で1通").text
    assert "郵便番号" in sign_in(chat_server, inbox, "mail-student", "24M1001")
    said = []
    # A code no other test looks up: the first lookup of it happens here, in a worker thread (not a cached one).
    for text in ("９８０－０８１１", "1-1", "山田 太郎", "090-1234-5678", "PayPayで"):
        response = chat(chat_server, user="mail-student", text=text)
        assert response.status_code == 200
        said.append("\n".join(reply["text"] for reply in response.json()["replies"]))
    assert "宮城県仙台市青葉区一番町" in said[0] and "お申し込み内容の確認" in said[-1]


def test_payment_methods_in_japanese_quote_the_guide(chat_server):
    text = chat(chat_server, user="u2", text="支払い方法は何がありますか")
    text = text.json()["replies"][0]["text"]
    for method in ("クレジットカード", "PayPay", "メルペイ", "ローソン", "現金支払いのみ"):
        assert method in text
    assert "返金できません" in text


def test_contacts_say_whether_the_office_is_open_now(chat_server, clock):
    clock.set(clock.now().replace(hour=10))  # Tuesday 10:00: both offices open
    text = chat(chat_server, user="u3", payload="intent:contact").json()["replies"][0]["text"]
    assert "093-691-7211" in text and "082-207-4262" in text
    assert text.count("ただいま受付中です") == 2
    from datetime import datetime
    clock.set(datetime(2026, 11, 20, 17, 30, tzinfo=TOKYO))  # Friday after hours; Monday 11/23 is a holiday
    text = chat(chat_server, user="u3", payload="intent:contact", lang="en").json()["replies"][0]["text"]
    assert "opens Tue, Nov 24, 9:00" in text and "opens Tue, Nov 24, 8:30" in text


def test_an_unrelated_question_is_told_what_the_desk_is_for(chat_server):
    text = chat(chat_server, user="u4", text="明日の天気はどうですか").json()["replies"][0]["text"]
    assert "お答えできません" in text and "証明書発行サービス" in text


def test_an_unreadable_message_gets_an_honest_fallback_with_contacts(chat_server):
    text = chat(chat_server, user="u4b", text="ぬふぁ なにゅ").json()["replies"][0]["text"]
    assert "理解できませんでした" in text and "082-207-4262" in text


def test_empty_text_gets_a_polite_reply(chat_server):
    response = chat(chat_server, user="u5", text="   ")
    assert response.status_code == 200
    assert "空" in response.json()["replies"][0]["text"]


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"text": "hi"}, 422, "user"),
    ({"user": "", "text": "hi"}, 422, "user"),
    ({"user": "u"}, 422, "text"),
    ({"user": "u", "text": 5}, 422, "text"),
    ({"user": "u", "text": "x" * 2001}, 422, "text"),
    ({"user": "u", "text": "hi", "lang": "fr"}, 422, "lang"),
    (["not", "an", "object"], 422, "body"),
])
def test_bad_bodies_are_refused_naming_the_field(chat_server, body, status, field):
    response = chat_server.client.post("/api/chat", json=body)
    assert response.status_code == status
    assert response.json()["field"] == field


def test_malformed_json_is_a_400(chat_server):
    response = chat_server.client.post("/api/chat", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_an_oversized_body_is_a_413(chat_server):
    response = chat_server.client.post("/api/chat", content=b"{" + b" " * 20_000 + b"}",
                                       headers={"content-type": "application/json"})
    assert response.status_code == 413
