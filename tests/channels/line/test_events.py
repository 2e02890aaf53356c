"""Each LINE event type through the real pipeline: follow, unfollow, text, stickers and media, postbacks,
standby, unsend, and groups."""

from sqlalchemy import select

from core.conversations import UNSENT, transcript
from core.models import ChannelAccount, InboundEvent
from tests.channels.line.fake_line_api import LOADING, PUSH, REPLY
from tests.channels.line.webhooks import user_id


def account(line, user):
    with line.core.transaction() as session:
        row = session.scalars(select(ChannelAccount).where(ChannelAccount.external_id == user)).one_or_none()
        return None if row is None else (row.channel, row.following, row.student_id)


def quick_reply_data(message):
    return [item["action"]["data"] for item in message.get("quickReply", {}).get("items", [])]


def test_follow_gets_the_welcome_and_the_main_menu_and_records_the_account(line):
    user = user_id()
    event = line.events.follow(user)
    line.deliver(event)
    [reply] = line.fake.deliveries()
    assert reply.path == REPLY and reply.body["replyToken"] == event["replyToken"]
    welcome, menu = reply.messages
    assert "友だち追加ありがとうございます" in welcome["text"] and "証明書発行サービス" in welcome["text"]
    data = quick_reply_data(menu)
    assert "intent:payment_methods" in data and "intent:contact" in data and "lang:en" in data
    assert data[-1] == "link:start", "an unlinked student is offered account linking"
    assert account(line, user) == ("line", True, None)


def test_unfollow_marks_the_account_not_following_and_sends_nothing(line):
    user = user_id()
    line.deliver(line.events.follow(user))
    line.fake.reset()
    line.deliver(line.events.unfollow(user))
    assert line.fake.calls == []
    assert account(line, user) == ("line", False, None)
    line.deliver(line.events.follow(user))  # unblocked again
    assert account(line, user) == ("line", True, None)


def test_an_unfollow_from_an_unknown_user_still_records_them_as_not_following(line):
    user = user_id()
    line.deliver(line.events.unfollow(user))
    assert account(line, user) == ("line", False, None) and line.statuses() == ["done"]


def test_a_text_message_is_answered_by_the_pipeline(line):
    user = user_id()
    line.deliver(line.events.text(user, "支払い方法を教えて"))
    assert [call.path for call in line.fake.calls] == [REPLY]
    text = "\n".join(line.fake.delivered_texts())
    assert "PayPay" in text and "返金できません" in text


def test_a_sticker_gets_a_polite_text_and_the_menu(line):
    line.deliver(line.events.sticker(user_id()))
    [message] = line.fake.delivered_messages()
    assert message["type"] == "text" and "スタンプ" in message["text"] and "文字で入力" in message["text"]
    assert "intent:contact" in quick_reply_data(message)
    assert line.fake.calls_to(LOADING) == []


def test_an_image_gets_the_same_polite_text_in_the_conversations_language(line):
    user = user_id()
    line.deliver(line.events.text(user, "What payment methods can I use?"))
    line.fake.reset()
    line.deliver(line.events.image(user))
    [message] = line.fake.delivered_messages()
    assert "cannot read stickers, images" in message["text"]


def test_a_postback_is_answered_as_its_payload(line):
    user = user_id()
    line.deliver(line.events.postback(user, "intent:contact"))
    [text] = line.fake.delivered_texts()
    assert "093-691-7211" in text


def test_a_quick_reply_tap_continues_the_conversation(line):
    user = user_id()
    line.deliver(line.events.text(user, "こんにちは"))
    [menu] = line.fake.delivered_messages()
    assert "intent:payment_methods" in quick_reply_data(menu)
    line.fake.reset()
    line.deliver(line.events.postback(user, "intent:payment_methods"))
    assert "PayPay" in line.fake.delivered_texts()[0]


def test_in_standby_mode_nothing_is_sent_and_the_event_is_handled(line):
    user = user_id()
    line.deliver(line.events.text(user, "支払い方法を教えて", mode="standby"),
                 line.events.postback(user, "intent:contact", mode="standby"),
                 line.events.follow(user, mode="standby"))
    assert line.fake.calls == []
    assert line.statuses() == ["done", "done", "done"]
    assert account(line, user) == ("line", True, None)


def stored_texts(line, user):
    """The transcript lines of the user's conversation and every stored webhook payload, as text."""
    with line.core.transaction() as session:
        lines = [entry.text for entry in transcript(session, f"line:{user}")]
        payloads = list(session.scalars(select(InboundEvent.payload).where(InboundEvent.channel == "line")))
    return lines, payloads


def test_unsend_hides_the_message_in_the_transcript_and_the_stored_event_and_sends_nothing(line):
    user = user_id()
    message = line.events.text(user, "支払い方法を教えてください、電話番号は090-1234-5678です")
    kept = line.events.text(user, "受け取りはいつですか")
    line.deliver(message, kept)
    assert "090-1234-5678" in " ".join(stored_texts(line, user)[0])
    line.fake.reset()
    line.deliver(line.events.unsend(user, message["message"]["id"]))
    assert line.fake.calls == []
    lines, payloads = stored_texts(line, user)
    assert UNSENT in lines and "受け取りはいつですか" in lines
    assert not any("090-1234-5678" in text for text in lines + payloads)
    assert any("支払い方法" in entry for entry in lines[1:]), "the bot's answer stays"
    assert line.statuses() == ["done"] * 3


def test_unsend_of_a_message_never_seen_changes_nothing(line):
    user = user_id()
    line.deliver(line.events.text(user, "支払い方法を教えて"))
    line.deliver(line.events.unsend(user, "999999999999"))
    lines, _ = stored_texts(line, user)
    assert UNSENT not in lines and "支払い方法を教えて" in lines


def test_a_message_in_a_group_gets_a_one_to_one_only_answer(line):
    group = {"type": "group", "groupId": "C" + "1" * 32, "userId": user_id()}
    line.deliver(line.events.text("", "支払い方法を教えて", source=group))
    [message] = line.fake.delivered_messages()
    assert "1対1のトーク" in message["text"] and "one-on-one chat" in message["text"]


def test_a_late_group_answer_is_pushed_to_the_group(line):
    group_id = "C" + "2" * 32
    line.post(line.events.sticker("", source={"type": "group", "groupId": group_id}))
    line.clock.advance(minutes=2)
    line.inbox.drain()
    [push] = line.fake.calls_to(PUSH)
    assert push.body["to"] == group_id
