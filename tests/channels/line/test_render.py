"""The LINE renderer: LINE's limits on texts, messages per call, quick replies and Flex, every reply kind,
and the output valid by the Messaging API spec."""

import json

import pytest
from openapi_core.testing import MockRequest

from bot.channels.line_render import clip, render, split_text, to_parts, utf16_units
from handlers.replies import REPLY_KINDS, Card, Link, QuickReply, Text
from tests.channels.line.fake_line_api import MESSAGING_SPEC, limit_violations, load_openapi

HOST = "https://api.line.invalid"


@pytest.fixture(scope="module")
def messaging_api():
    return load_openapi(MESSAGING_SPEC, HOST)


def assert_valid_reply(api, messages):
    """Each call's body is a valid ReplyMessageRequest and within LINE's documented limits."""
    body = {"replyToken": "x" * 32, "messages": messages}
    request = MockRequest(HOST, "post", "/v2/bot/message/reply", data=json.dumps(body).encode(),
                          headers={"Authorization": "Bearer t", "Content-Type": "application/json"})
    api.validate_request(request)
    assert limit_violations(body) == []


def long_answer(units: int) -> str:
    line = "証明書の受け取りについてのご案内です。窓口の受付時間は平日の8時30分から17時までです。"
    lines = []
    while sum(len(text) + 1 for text in lines) < units:
        lines.append(f"{len(lines) + 1}. {line}")
    return "\n".join(lines)[:units]


def test_a_12000_character_answer_becomes_at_most_five_texts_of_at_most_5000_units(messaging_api):
    text = long_answer(12_000)
    assert len(text) == 12_000
    parts = to_parts([Text(text)])
    assert len(parts) == 1
    messages = parts[0]["messages"]
    assert 3 <= len(messages) <= 5
    assert all(utf16_units(message["text"]) <= 5000 for message in messages)
    # Cut between lines, and nothing lost: the chunks joined by the newlines they were cut at are the text.
    assert "\n".join(message["text"] for message in messages) == text
    assert_valid_reply(messaging_api, messages)


def test_texts_are_measured_in_utf16_units_and_never_cut_inside_an_emoji():
    text = "😀" * 3000  # 6,000 UTF-16 units on one line
    chunks = split_text(text)
    assert [utf16_units(chunk) for chunk in chunks] == [5000, 1000]
    assert "".join(chunks) == text


def test_an_empty_or_blank_text_sends_nothing():
    assert split_text("") == [] and split_text(" \n \n") == []
    assert render([Text("  ")]) == []


def test_fourteen_buttons_become_thirteen_postback_quick_replies_showing_their_labels(messaging_api):
    buttons = tuple(QuickReply(f"話題{number}", f"intent:topic_{number}") for number in range(1, 15))
    [message] = render([Text("どれにしますか？", buttons)])
    items = message["quickReply"]["items"]
    assert len(items) == 13
    assert [item["action"]["data"] for item in items] == [f"intent:topic_{number}" for number in range(1, 14)]
    assert all(item["action"]["type"] == "postback" for item in items)
    assert all(item["action"]["displayText"] == item["action"]["label"] for item in items)
    assert_valid_reply(messaging_api, [message])


def test_a_long_label_is_clipped_on_the_button_and_shown_whole_in_the_chat(messaging_api):
    label = "Apply for a certificate of enrolment"
    [message] = render([Text("Menu", (QuickReply(label, "intent:order_certificate"),))])
    action = message["quickReply"]["items"][0]["action"]
    assert action["label"] == "Apply for a certifi…" and utf16_units(action["label"]) == 20
    assert action["displayText"] == label
    assert_valid_reply(messaging_api, [message])


def test_a_payload_longer_than_line_takes_is_dropped_not_cut():
    [message] = render([Text("x", (QuickReply("ok", "a" * 301), QuickReply("fine", "intent:greet")))])
    assert [item["action"]["data"] for item in message["quickReply"]["items"]] == ["intent:greet"]


def test_the_last_buttons_offered_go_on_the_last_message():
    replies = [Text("first", (QuickReply("A", "a"),)), Link("Pay", "https://pay.example/1", "Pay here"),
               Text("after")]
    messages = render(replies)
    assert "quickReply" not in messages[0] and "quickReply" not in messages[1]
    assert [item["action"]["data"] for item in messages[2]["quickReply"]["items"]] == ["a"]


def test_more_than_five_messages_make_several_calls_in_order(messaging_api):
    replies = [Text(f"answer {number}") for number in range(1, 8)]
    parts = to_parts(replies)
    assert [len(part["messages"]) for part in parts] == [5, 2]
    assert [message["text"] for part in parts for message in part["messages"]] == [f"answer {n}" for n in range(1, 8)]
    for part in parts:
        assert_valid_reply(messaging_api, part["messages"])
    assert to_parts([]) == []


def test_an_order_summary_card_is_a_flex_bubble_with_a_text_alt(messaging_api):
    card = Card("お申し込み内容の確認", (("証明書", "成績証明書"), ("部数", "2通"), ("合計", "400円（例）")),
                "お支払い後の返金はできません。", (QuickReply("申し込む", "form:set:confirm:yes"),))
    [message] = render([card])
    assert message["type"] == "flex"
    assert message["altText"].startswith("お申し込み内容の確認\n証明書: 成績証明書")
    bubble = message["contents"]
    assert bubble["type"] == "bubble"
    assert bubble["header"]["contents"][0]["text"] == "お申し込み内容の確認"
    rows = bubble["body"]["contents"]
    assert [[cell["text"] for cell in row["contents"]] for row in rows][2] == ["合計", "400円（例）"]
    assert bubble["footer"]["contents"][0]["text"] == "お支払い後の返金はできません。"
    assert len(json.dumps(bubble, ensure_ascii=False).encode()) <= 30_000
    assert message["quickReply"]["items"][0]["action"]["data"] == "form:set:confirm:yes"
    assert_valid_reply(messaging_api, [message])


def test_a_card_too_big_for_flex_is_sent_as_text(messaging_api):
    card = Card("Huge", tuple((f"row {n}", "x" * 200) for n in range(200)))
    [message] = render([card])
    assert message["type"] == "text" and message["text"].startswith("Huge\nrow 0: ")
    assert_valid_reply(messaging_api, [message])


def test_a_link_is_a_flex_bubble_with_a_uri_button(messaging_api):
    [message] = render([Link("お支払いページを開く", "https://pay.example/p/abc?x=1", "こちらからお支払いください。")])
    assert message["type"] == "flex" and "https://pay.example/p/abc?x=1" in message["altText"]
    button = message["contents"]["footer"]["contents"][0]
    assert button["action"] == {"type": "uri", "label": "お支払いページを開く", "uri": "https://pay.example/p/abc?x=1"}
    assert_valid_reply(messaging_api, [message])


def test_a_link_line_cannot_open_as_a_button_is_sent_as_text(messaging_api):
    [message] = render([Link("Guide", "https://example.ac.jp/" + "a" * 1000, "Read the guide")])
    assert message["type"] == "text" and message["text"].startswith("Read the guide\nGuide: https://")
    assert_valid_reply(messaging_api, [message])


def test_every_reply_kind_renders_and_an_unknown_kind_is_an_error():
    samples = [Text("hello", (QuickReply("A", "intent:contact"),)), Link("Pay", "https://example.invalid/pay"),
               Card("Order", (("Total", "¥400"),), "no refunds", (QuickReply("OK", "yes"),))]
    assert {type(sample) for sample in samples} == set(REPLY_KINDS)
    for sample in samples:
        assert render([sample])
    with pytest.raises(TypeError):
        render(["not a reply"])  # type: ignore[list-item]


def test_clip_counts_utf16_units():
    assert clip("abc", 5) == "abc"
    assert clip("abcdefgh", 5) == "abcd…"
    assert clip("😀😀😀", 5) == "😀😀…"
