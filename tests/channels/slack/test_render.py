"""Rendering neutral replies as Block Kit (each checked with slack_sdk's block models, as the fake does)
and reading Slack's message markup back as plain text."""

import json

import pytest

from bot.channels.slack_payloads import plain_text
from bot.channels.slack_render import LINK_ACTION, escape, render
from handlers.replies import REPLY_KINDS, Card, Link, QuickReply, Text
from tests.channels.slack.fake_slack_api import block_problems

SAMPLES = {
    Text: Text("hello", (QuickReply("A", "intent:contact"),)),
    Link: Link("Pay", "https://example.invalid/pay", "Pay here"),
    Card: Card("Order", (("Total", "¥400"),), "no refunds", (QuickReply("OK", "yes"),)),
}


def valid(message: dict) -> dict:
    problems = block_problems(json.dumps(message["blocks"]))
    assert problems == [], problems
    assert message["text"], "a fallback text for notifications"
    return message


def test_every_reply_kind_renders_as_valid_blocks():
    assert set(SAMPLES) == set(REPLY_KINDS)
    for reply in SAMPLES.values():
        [message] = render([reply])
        valid(message)


def test_an_unknown_reply_kind_is_an_error_not_a_silent_drop():
    with pytest.raises(TypeError, match="Slack channel cannot render str"):
        render(["not a reply"])  # type: ignore[list-item]


def test_quick_replies_are_buttons_carrying_their_payload_with_one_action_id_each():
    [message] = render([Text("Choose", tuple(QuickReply(f"Topic {n}", f"intent:t{n}") for n in range(3)))])
    [section, actions] = message["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": "Choose"}}
    assert [(button["action_id"], button["value"]) for button in actions["elements"]] == [
        ("madoguchi.reply.0", "intent:t0"), ("madoguchi.reply.1", "intent:t1"), ("madoguchi.reply.2", "intent:t2")]


def test_a_link_is_a_section_with_a_url_button():
    [message] = render([Link("お支払いページを開く", "https://pay.example.invalid/p/1", "お支払いはこちらから")])
    [section] = valid(message)["blocks"]
    assert section["text"]["text"] == "お支払いはこちらから"
    assert section["accessory"] == {"type": "button", "action_id": LINK_ACTION, "url": "https://pay.example.invalid/p/1",
                                    "text": {"type": "plain_text", "text": "お支払いページを開く", "emoji": True}}


def test_a_card_is_a_header_fields_and_a_context_footer():
    card = Card("お申し込み内容の確認", (("項目", "成績証明書"), ("合計", "400円")), "返金できません", ())
    [message] = render([card])
    header, fields, context = valid(message)["blocks"]
    assert header["type"] == "header" and header["text"]["text"] == "お申し込み内容の確認"
    assert [field["text"] for field in fields["fields"]] == ["*項目*\n成績証明書", "*合計*\n400円"]
    assert context == {"type": "context", "elements": [{"type": "mrkdwn", "text": "返金できません"}]}


def test_content_beyond_block_kit_limits_is_split_or_shortened_never_refused():
    long_text = "\n\n".join(["段落" * 700] * 4)  # 4 paragraphs of 1400 characters
    many_buttons = tuple(QuickReply("x" * 90, f"intent:t{n}") for n in range(30))
    card = Card("T" * 200, tuple((f"label {n}", "v" * 2100) for n in range(12)), "f")
    for reply in (Text(long_text, many_buttons), card):
        [message] = render([reply])
        valid(message)
    [text_message] = render([Text(long_text, many_buttons)])
    sections = [block for block in text_message["blocks"] if block["type"] == "section"]
    assert "".join(block["text"]["text"] for block in sections).replace("\n", "") == long_text.replace("\n", "")
    assert [len(block["elements"]) for block in text_message["blocks"] if block["type"] == "actions"] == [25, 5]


def test_text_is_escaped_for_mrkdwn():
    [message] = render([Text("A & B <script> 1 > 0")])
    assert message["blocks"][0]["text"]["text"] == "A &amp; B &lt;script&gt; 1 &gt; 0"
    assert escape("<@U123>") == "&lt;@U123&gt;"  # no one can be pinged through an echoed text


def test_an_empty_text_with_buttons_sends_only_the_buttons():
    [message] = render([Text("", (QuickReply("OK", "yes"),))])
    assert [block["type"] for block in valid(message)["blocks"]] == ["actions"]


@pytest.mark.parametrize(("markup", "plain"), [
    ("<@U0MADOBOT01> 支払い方法", "支払い方法"),
    ("hi <@U0OTHER001> and <@U0MADOBOT01>", "hi @U0OTHER001 and"),
    ("<mailto:a@example.ac.jp|a@example.ac.jp> です", "a@example.ac.jp です"),
    ("see <https://example.ac.jp/guide|the guide>", "see the guide"),
    ("see <https://example.ac.jp/guide>", "see https://example.ac.jp/guide"),
    ("in <#C0HELPDESK1|helpdesk>", "in #helpdesk"),
    ("<!here> help", "@here help"),
    ("A &amp; B &lt;3 &gt;", "A & B <3 >"),
])
def test_slack_markup_is_read_as_plain_text(markup, plain):
    assert plain_text(markup, drop_mention_of="U0MADOBOT01") == plain
