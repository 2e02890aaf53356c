"""Conversations over Slack, end to end: a signed request in, the inbox worker, spec-valid Block Kit out.
Direct messages, Slack's retries, mentions in a channel, button clicks, and a whole order (by a student
known from their Slack profile's email) ending in the summary card and the payment link."""

from core.conversations import transcript
from core.students import load_demo_students
from tests.channels.slack import payloads
from tests.channels.slack.payloads import BOT_USER, DM, PUBLIC, STUDENT, TEAM
from tests.channels.slack.shown import buttons, texts


def test_a_direct_message_is_answered_in_the_dm_in_block_kit(slack_server):
    assert slack_server.send_event(payloads.im_message("支払い方法を教えて")).status_code == 200

    posts = slack_server.deliver()

    assert posts and all(post.params["channel"] == DM and "thread_ts" not in post.params for post in posts)
    assert "クレジットカード" in texts(posts[0])
    assert posts[0].params["text"].startswith("ご利用いただける支払い方法")  # the notification's fallback
    assert posts[0].params["unfurl_links"] == "false"
    with slack_server.core.transaction() as session:
        said = [entry.text for entry in transcript(session, f"slack:{TEAM}:{STUDENT}")]
    assert said[0] == "支払い方法を教えて"


def test_slack_retries_of_one_event_are_answered_once(slack_server):
    body = payloads.im_message("支払い方法を教えて")

    responses = [slack_server.send_event(body), slack_server.send_event(body, retry_num=1),
                 slack_server.send_event(body, retry_num=2)]

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert len(slack_server.events()) == 1
    first = slack_server.deliver()
    assert first and slack_server.deliver() == []
    assert len(slack_server.fake.attempts()) == len(first)


def test_a_retry_arriving_after_the_answer_is_not_answered_again(slack_server):
    body = payloads.im_message("支払い方法を教えて")
    slack_server.send_event(body)
    answered = slack_server.deliver()

    assert slack_server.send_event(body, retry_num=1).status_code == 200
    assert slack_server.deliver() == [] and len(slack_server.fake.posts()) == len(answered)


def test_a_mention_is_answered_in_its_thread_without_the_mention(slack_server):
    body = payloads.app_mention(f"<@{BOT_USER}> 支払い方法を教えて")

    assert slack_server.send_event(body).status_code == 200
    posts = slack_server.deliver()

    assert posts and all(post.params["channel"] == PUBLIC for post in posts)
    assert {post.params["thread_ts"] for post in posts} == {body["event"]["ts"]}
    assert "クレジットカード" in texts(posts[0])
    with slack_server.core.transaction() as session:  # a channel thread is a conversation of its own
        said = [entry.text for entry in transcript(session, f"slack:{TEAM}:{PUBLIC}:{STUDENT}")]
    assert said[0] == "支払い方法を教えて"


def test_a_mention_without_authorizations_drops_the_leading_mention(slack_server):
    body = payloads.app_mention(f"<@{BOT_USER}> How can I pay?", with_authorizations=False)
    slack_server.send_event(body)
    posts = slack_server.deliver()
    assert "credit card" in texts(posts[0]).lower()
    with slack_server.core.transaction() as session:
        said = [entry.text for entry in transcript(session, f"slack:{TEAM}:{PUBLIC}:{STUDENT}")]
    assert said[0] == "How can I pay?"


def test_a_dm_that_mentions_the_app_is_answered_once_without_the_mention(slack_server):
    text = f"<@{BOT_USER}> 支払い方法を教えて"
    slack_server.send_event(payloads.im_message(text))
    slack_server.send_event(payloads.app_mention(text, channel=DM))  # in case Slack sends both

    posts = slack_server.deliver()

    assert len(slack_server.events()) == 1 and {post.params["channel"] for post in posts} == {DM}
    with slack_server.core.transaction() as session:
        said = [entry.text for entry in transcript(session, f"slack:{TEAM}:{STUDENT}")]
    assert said[0] == "支払い方法を教えて"


def test_a_file_shared_with_a_question_is_answered_for_its_words(slack_server):
    slack_server.send_event(payloads.im_message("支払い方法を教えて", subtype="file_share",
                                                files=[{"id": "F0SCREEN01", "name": "screen.png"}]))
    assert "クレジットカード" in texts(slack_server.deliver()[0])


def test_a_mention_inside_a_thread_is_answered_in_that_thread(slack_server):
    body = payloads.app_mention(f"<@{BOT_USER}> 問い合わせ先は？", thread_ts="1795000000.000001")
    slack_server.send_event(body)
    assert {post.params["thread_ts"] for post in slack_server.deliver()} == {"1795000000.000001"}


def test_a_quick_reply_click_sends_its_payload_to_the_pipeline(slack_server):
    slack_server.send_event(payloads.im_message("こんにちは"))
    [menu] = slack_server.deliver()
    payment = buttons(menu)["支払い方法"]
    assert payment == "intent:payment_methods"

    assert slack_server.send_form(payloads.button_click(payment)).status_code == 200
    posts = slack_server.deliver()

    assert posts and posts[0].params["channel"] == DM
    assert "クレジットカード" in texts(posts[0])


def test_a_click_in_a_mention_thread_is_answered_in_that_thread(slack_server):
    form = payloads.button_click("intent:contact", channel=PUBLIC, thread_ts="1795000000.000002")
    slack_server.send_form(form)
    posts = slack_server.deliver()
    assert posts and {post.params["thread_ts"] for post in posts} == {"1795000000.000002"}
    assert {post.params["channel"] for post in posts} == {PUBLIC}


def test_an_order_ends_in_the_summary_card_and_the_payment_link(slack_server):
    with slack_server.core.transaction() as session:
        load_demo_students(session, slack_server.core.profile, slack_server.core.now())
    slack_server.fake.set_profile(STUDENT, "taro.yamada@students.example.ac.jp")  # 24M1001's verified email
    for text in ("成績証明書を申請したい", "2通"):
        slack_server.send_event(payloads.im_message(text))
        slack_server.deliver()
    slack_server.send_form(payloads.button_click("form:set:delivery:mail"))
    slack_server.deliver()
    for text in ("807-8555", "1-1 医生ケ丘ハイツ203", "山田 太郎", "090-1234-5678"):  # the address for mail
        slack_server.send_event(payloads.im_message(text))
        slack_server.deliver()
    slack_server.send_form(payloads.button_click("form:set:payment:credit_card"))
    posts = slack_server.deliver()

    [card] = [post for post in posts if post.blocks[0]["type"] == "header"]
    header, *rest = card.blocks
    assert header["text"]["text"] == "お申し込み内容の確認"
    fields = [field["text"] for block in rest if block["type"] == "section" for field in block["fields"]]
    assert "*項目*\n成績証明書" in fields and "*部数*\n2通" in fields and "*合計*\n400円（例）" in fields
    [mail_to] = [field for field in fields if field.startswith("*郵送先*")]
    assert "〒807-8555 福岡県北九州市八幡西区医生ケ丘 1-1 医生ケ丘ハイツ203" in mail_to and "山田 太郎 様" in mail_to
    [context] = [block for block in rest if block["type"] == "context"]
    assert "返金できません" in context["elements"][0]["text"]
    confirm = buttons(card)
    assert "form:set:confirm:yes" in confirm.values()

    slack_server.send_form(payloads.button_click("form:set:confirm:yes"))
    posts = slack_server.deliver()

    [link] = [block for post in posts for block in post.blocks if "accessory" in block]
    assert link["accessory"]["type"] == "button" and link["accessory"]["action_id"] == "madoguchi.link"
    assert "/sandbox/pay/" in link["accessory"]["url"]
    assert "ご注文番号" in "\n".join(texts(post) for post in posts)


def test_slack_markup_reaches_the_pipeline_as_plain_text(slack_server):
    body = payloads.im_message("メールは <mailto:student@example.ac.jp|student@example.ac.jp> で &amp; 登録済みです")
    slack_server.send_event(body)
    slack_server.deliver()
    with slack_server.core.transaction() as session:
        said = [entry.text for entry in transcript(session, f"slack:{TEAM}:{STUDENT}")]
    assert "<mailto:" not in said[0] and "&amp;" not in said[0] and " & " in said[0]
