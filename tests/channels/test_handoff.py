"""Handoff to call-center agents end to end: a student on LINE (or the web chat) asks for a person, the ticket
card goes to the agents' Slack channel, agents answer in its thread and press its buttons, and every message
crosses exactly once, through both fake platforms (each call validated against the platform's spec)."""

import uuid
from datetime import datetime, timedelta
from itertools import count
from typing import Any

import pytest
from sqlalchemy import select

from bot.handoff.agents import queue_opening_digest
from core.clock import TOKYO
from core.enums import DeliveryMethod, Language, OrderStatus, PaymentMethod
from core.handoffs import ClosedHow, Reason, TicketStatus, open_ticket, take
from core.models import ChannelAccount, HandoffMessage, HandoffTicket
from core.orders import OrderLine, advance, create_order, find_order
from core.students import create_student
from tests.channels.conftest import AGENT_CHANNEL, Desk, pushes, quick_replies, replies, texts
from tests.channels.line.fake_line_api import PUSH
from tests.channels.line.webhooks import user_id
from tests.channels.slack import payloads
from tests.channels.slack.fake_slack_api import Call
from tests.channels.slack.payloads import TEAM
from tests.conftest import at_once
from tests.samples import SAMPLE_ADDRESS

AGENT = "U0AGENT0001"
OTHER_AGENT = "U0AGENT0002"
ASK_FOR_PERSON = "担当者と話したい"
BUTTONS = {"madoguchi.handoff.take", "madoguchi.handoff.resolve", "madoguchi.handoff.back"}
_ts = count(1)


# --- what agents send ------------------------------------------------------------------------------------------

def agent_reply(text: str, thread_ts: str, *, user: str = AGENT, ts: str | None = None,
                event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """An agent's reply in a ticket's thread, as a message.channels event of the agents' channel."""
    ts = ts or f"{1_796_000_000 + next(_ts)}.000200"
    event = {"type": "message", "user": user, "text": text, "ts": ts, "thread_ts": thread_ts,
             "channel": AGENT_CHANNEL, "channel_type": "channel", "event_ts": ts, "team": TEAM,
             "client_msg_id": f"a9e47000-0000-4000-8000-{next(_ts):012d}", **extra}
    return payloads.event_callback(event, topics=("message.channels",), event_id=event_id)


def press(action: str, ticket_id: int, *, user: str = AGENT, channel: str = AGENT_CHANNEL) -> str:
    """The block_actions form of a ticket card's button."""
    return payloads.button_click(str(ticket_id), action_id=f"madoguchi.handoff.{action}", user=user, channel=channel)


# --- what the platforms saw ------------------------------------------------------------------------------------

def agent_posts(desk: Desk) -> list[Call]:
    """The messages Slack accepted in the agents' channel."""
    return [post for post in desk.slack.posts() if post.params.get("channel") == AGENT_CHANNEL]


def cards(desk: Desk) -> list[Call]:
    return [post for post in agent_posts(desk) if post.blocks and "thread_ts" not in post.params]


def thread(desk: Desk, thread_ts: str) -> list[str]:
    """The texts posted in a ticket's thread, in order."""
    return [post.params["text"] for post in agent_posts(desk) if post.params.get("thread_ts") == thread_ts]


def card_buttons(call: Call) -> dict[str, str]:
    """The action ids of a card's buttons and the ticket id each carries."""
    return {element["action_id"]: element["value"] for block in call.blocks if block["type"] == "actions"
            for element in block["elements"]}


def only_ticket(desk: Desk) -> HandoffTicket:
    with desk.core.transaction() as session:
        [ticket] = session.scalars(select(HandoffTicket)).all()
        session.expunge(ticket)
        return ticket


def relayed(desk: Desk) -> list[tuple[str, str, str]]:
    """Every relayed message (not the tickets' events): direction, text and delivery."""
    with desk.core.transaction() as session:
        return [(m.direction, m.text, m.delivery)
                for m in session.scalars(select(HandoffMessage).where(HandoffMessage.direction != "event")
                                         .order_by(HandoffMessage.id))]


def line_says(desk: Desk, student: str, text: str) -> None:
    desk.line_post(desk.events.text(student, text))
    desk.work()


def asks_for_a_person_on_line(desk: Desk) -> tuple[str, HandoffTicket]:
    """A LINE student asks for a person; the ticket's card is posted. The student and the ticket."""
    student = user_id()
    line_says(desk, student, ASK_FOR_PERSON)
    return student, only_ticket(desk)


# --- 1. the main story -----------------------------------------------------------------------------------------

def test_a_line_student_talks_with_an_agent_in_the_tickets_thread_and_returns_to_the_bot(desk):
    student = user_id()
    line_says(desk, student, ASK_FOR_PERSON)

    [answer] = replies(desk)
    assert "担当者におつなぎします" in texts([answer])[0]
    assert quick_replies(answer) == ["handoff:cancel"]
    [card] = cards(desk)
    ticket = only_ticket(desk)
    assert (ticket.status, ticket.channel, ticket.user_id) == (TicketStatus.WAITING, "line", student)
    assert ticket.thread_ts == card.answer["ts"] and ticket.agent_channel == AGENT_CHANNEL
    assert card_buttons(card) == {action: str(ticket.id) for action in BUTTONS}
    assert f"#{ticket.id}" in card.params["text"] and card.params["channel"] == AGENT_CHANNEL
    assert ASK_FOR_PERSON in str(card.blocks), "the card shows the conversation"

    # An agent answers in the card's thread: the student gets it once, by push with a retry key.
    reply = agent_reply("お問い合わせありがとうございます。ログインの件ですね。", ticket.thread_ts)
    assert desk.slack_event(reply).status_code == 200
    desk.work()
    [push] = pushes(desk)
    assert push.body["to"] == student
    assert texts([push]) == ["【担当者】お問い合わせありがとうございます。ログインの件ですね。"]
    assert uuid.UUID(push.headers["x-line-retry-key"])
    assert only_ticket(desk).status == TicketStatus.ASSIGNED and only_ticket(desk).assignee == AGENT
    assert any("<@U0AGENT0001> さんが担当します" in text for text in thread(desk, ticket.thread_ts))

    # Slack's retry of the same event, and the same message under another event id: nothing more.
    assert desk.slack_event(reply, retry_num=1).status_code == 200
    again = agent_reply(reply["event"]["text"], ticket.thread_ts, ts=reply["event"]["ts"])
    assert again["event_id"] != reply["event_id"]
    assert desk.slack_event(again).status_code == 200
    # The bot's own posts come back as events too (with bot_id): never relayed.
    assert desk.slack_event(agent_reply("学生：…", ticket.thread_ts, user="U0MADOBOT01",
                                        bot_id="B0FAKEBOT01")).status_code == 200
    desk.work()
    assert len(pushes(desk)) == 1
    assert relayed(desk) == [("agent", "お問い合わせありがとうございます。ログインの件ですね。", "sent")]

    # The student answers: it goes to the thread, and the bot says nothing.
    before = len(desk.line.deliveries())
    line_says(desk, student, "第2パスワードを忘れてしまいました")
    assert len(desk.line.deliveries()) == before, "the bot answered during the handoff"
    assert thread(desk, ticket.thread_ts)[-1] == "学生：第2パスワードを忘れてしまいました"

    # The agent resolves: the card is updated, the student gets the closing message with the one-tap question.
    assert desk.slack_form(press("resolve", ticket.id)).status_code == 200
    desk.work()
    update = desk.slack.attempts("chat.update")[-1]
    assert update.params["ts"] == ticket.thread_ts and update.params["channel"] == AGENT_CHANNEL
    assert "actions" not in [block["type"] for block in update.blocks], "a closed card keeps no buttons"
    assert "解決済み" in str(update.blocks)
    closing = pushes(desk)[-1]
    assert "担当者との会話を終了しました" in texts([closing])[0]
    assert quick_replies(closing) == ["handoff:feedback:good", "handoff:feedback:bad"]
    assert len(pushes(desk)) == 2
    closed = only_ticket(desk)
    assert (closed.status, closed.closed_how) == (TicketStatus.RESOLVED, ClosedHow.RESOLVED)

    # A second press on the closed ticket changes nothing; only the agent who pressed is told.
    assert desk.slack_form(press("back", ticket.id, user=OTHER_AGENT)).status_code == 200
    desk.work()
    [ephemeral] = desk.slack.attempts("chat.postEphemeral")
    assert (ephemeral.params["user"], ephemeral.params["text"]) == (OTHER_AGENT, "この引き継ぎは終了しています。")
    assert len(pushes(desk)) == 2 and only_ticket(desk).closed_how == ClosedHow.RESOLVED

    # The next question is the bot's again.
    in_thread = len(thread(desk, ticket.thread_ts))
    line_says(desk, student, "支払い方法を教えて")
    assert "クレジットカード" in texts(replies(desk)[-1:])[0]
    assert len(thread(desk, ticket.thread_ts)) == in_thread, "relayed after the ticket was closed"
    assert not desk.stored("pending", "processing", "failed")


def test_an_agents_slack_formatting_and_a_reply_also_sent_to_the_channel_reach_the_student_as_plain_text(desk):
    _, ticket = asks_for_a_person_on_line(desk)

    # Slack sends what the agent typed with its markup: links in <…>, and &, <, > escaped.
    typed = "手順は <https://www.uoeh-u.ac.jp/guide|こちら> です &amp; 再発行は &lt;学生支援課&gt;"
    desk.slack_event(agent_reply(typed, ticket.thread_ts))
    # "Also send to the channel": a thread_broadcast message is still a reply in the thread.
    desk.slack_event(agent_reply("ほかにご不明な点はありますか", ticket.thread_ts, subtype="thread_broadcast",
                                 root={"ts": ticket.thread_ts, "text": "…", "type": "message"}))
    desk.work()
    assert texts(pushes(desk)) == [
        "【担当者】手順は こちら (https://www.uoeh-u.ac.jp/guide) です & 再発行は <学生支援課>",
        "【担当者】ほかにご不明な点はありますか"]
    # Edits and deletions in the thread are not new replies.
    desk.slack_event(agent_reply("", ticket.thread_ts, subtype="message_deleted", deleted_ts="1796000000.000200"))
    desk.work()
    assert len(pushes(desk)) == 2


def test_a_students_slack_markup_does_not_ping_the_agents_channel(desk):
    student, ticket = asks_for_a_person_on_line(desk)
    line_says(desk, student, "<!channel> 至急お願いします <@U0AGENT0001>")
    assert thread(desk, ticket.thread_ts)[-1] == "学生：&lt;!channel&gt; 至急お願いします &lt;@U0AGENT0001&gt;"


# --- 2. off-hours, and the digest at the opening -----------------------------------------------------------------

def test_off_hours_the_bot_says_when_a_person_answers_and_the_agents_get_one_digest_at_the_opening(desk):
    desk.clock.set(datetime(2026, 11, 20, 17, 30, tzinfo=TOKYO))  # a Friday after 17:00; Monday 23 is a holiday
    student, ticket = asks_for_a_person_on_line(desk)

    [answer] = replies(desk)
    said = texts([answer])[0]
    assert "受付時間外" in said and "11月24日（火）9:00以降" in said
    assert "handoff:cancel" in quick_replies(answer)
    [card] = cards(desk)
    assert ticket.status == TicketStatus.WAITING and ticket.thread_ts == card.answer["ts"]

    line_says(desk, student, "支払い方法を教えて")  # off-hours the bot keeps answering
    assert "クレジットカード" in texts(replies(desk)[-1:])[0]
    assert thread(desk, ticket.thread_ts) == [], "nothing is relayed while the call center is closed"

    posted = len(agent_posts(desk))
    for closed in (datetime(2026, 11, 21, 9, 30, tzinfo=TOKYO), datetime(2026, 11, 23, 9, 30, tzinfo=TOKYO),
                   datetime(2026, 11, 24, 8, 59, tzinfo=TOKYO)):
        desk.clock.set(closed)
        queue_opening_digest(desk.core)
    assert len(agent_posts(desk)) == posted, "a digest before the opening"

    desk.clock.set(datetime(2026, 11, 24, 9, 0, 30, tzinfo=TOKYO))
    queue_opening_digest(desk.core)
    desk.work()
    [digest] = agent_posts(desk)[posted:]
    assert "thread_ts" not in digest.params
    assert digest.params["text"].startswith("受付開始です。時間外にお待ちいただいた引き継ぎが1件あります。")
    assert f"#{ticket.id} [待ち]" in digest.params["text"] and "待ち時間 87時間30分" in digest.params["text"]

    opening = desk.clock.now()
    for minutes in (2, 10, 60):
        desk.clock.set(opening + timedelta(minutes=minutes))
        queue_opening_digest(desk.core)
        desk.work()
    assert agent_posts(desk)[posted:] == [digest], "a second digest for the same opening"


# --- 3. two agents press "take" at once ---------------------------------------------------------------------------




def test_of_two_agents_pressing_take_at_once_exactly_one_wins_and_the_other_is_told_privately(desk):
    student, ticket = asks_for_a_person_on_line(desk)

    first, second = at_once(lambda: desk.slack_form(press("take", ticket.id, user=AGENT)),
                            lambda: desk.slack_form(press("take", ticket.id, user=OTHER_AGENT)))
    assert (first.status_code, second.status_code) == (200, 200)
    desk.work()

    taken = only_ticket(desk)
    assert taken.status == TicketStatus.ASSIGNED and taken.assignee in (AGENT, OTHER_AGENT)
    loser = OTHER_AGENT if taken.assignee == AGENT else AGENT
    [ephemeral] = desk.slack.attempts("chat.postEphemeral")
    assert ephemeral.ok and ephemeral.params["user"] == loser and ephemeral.params["channel"] == AGENT_CHANNEL
    assert ephemeral.params["text"] == f"この引き継ぎはすでに <@{taken.assignee}> さんが担当しています。"
    [update] = desk.slack.attempts("chat.update")
    assert f"<@{taken.assignee}> さんが対応中" in str(update.blocks)
    assert "madoguchi.handoff.take" not in card_buttons(update), "a taken card offers no take button"
    assert thread(desk, ticket.thread_ts) == [
        f"<@{taken.assignee}> さんが担当します。このスレッドへの返信は学生に届きます。"]
    [push] = pushes(desk)  # the student hears once that a person has it
    assert push.body["to"] == student
    assert texts([push]) == ["担当者がお問い合わせを確認しました。このトークでお返事いたします。"]


def test_take_in_two_sessions_at_once_has_exactly_one_winner(core):
    with core.transaction() as session:
        ticket, _ = open_ticket(session, conversation_id="line:U1", channel="line", user_id="U1", student_id=None,
                                lang=Language.JA, reason=Reason.ASKED, topic=None, bot_said=None, now=core.now())
        ticket_id = ticket.id

    def take_as(agent: str) -> Any:
        with core.transaction() as session:
            return take(session, ticket_id, agent, core.now())

    for _ in range(3):
        results = at_once(lambda: take_as(AGENT), lambda: take_as(OTHER_AGENT))
        [winner] = [result for result in results if result.taken]
        with core.transaction() as session:
            ticket = session.get(HandoffTicket, ticket_id)
            assert (ticket.status, ticket.assignee) == (TicketStatus.ASSIGNED, winner.assignee)
            assert {result.assignee for result in results} == {winner.assignee}, "the loser is told who has it"
            ticket.status, ticket.assignee = TicketStatus.WAITING.value, None  # waiting again for the next round


# --- 4. a relay that cannot reach the student --------------------------------------------------------------------

def retry_until_settled(desk: Desk) -> None:
    """Work, and move the clock to each retry the inbox scheduled, until nothing is pending."""
    for _ in range(20):
        desk.work()
        pending = desk.stored("pending")
        if not pending:
            return
        desk.clock.set(max(desk.clock.now(), min(event.next_attempt_at for event in pending)))
    raise AssertionError("retries never ended")


def relay_job(desk: Desk) -> Any:
    """The worker's job delivering the agent's reply to the student."""
    [job] = [job for job in desk.stored(processor="deliver") if '"agent_message"' in job.payload]
    return job


def test_a_relay_line_refuses_every_time_is_retried_with_backoff_then_marked_failed_in_the_thread(desk):
    _, ticket = asks_for_a_person_on_line(desk)
    desk.slack_form(press("take", ticket.id))
    desk.work()
    taken_pushes = len(pushes(desk))
    desk.line.fail_next(PUSH, 500, times=20, message="internal error")

    desk.slack_event(agent_reply("確認します。", ticket.thread_ts))
    desk.work()
    assert (relay_job(desk).status, relay_job(desk).attempts) == ("pending", 1)
    waits = []
    for attempt in range(2, 9):
        job = relay_job(desk)
        waits.append((job.next_attempt_at - desk.clock.now()).total_seconds())
        desk.clock.set(job.next_attempt_at - timedelta(seconds=1))
        desk.inbox.drain()
        assert relay_job(desk).attempts == attempt - 1, "retried before its backoff"
        desk.clock.set(job.next_attempt_at)
        desk.work()
        assert relay_job(desk).attempts == attempt
    assert waits == [2, 4, 8, 16, 32, 64, 128]

    attempts = [call for call in desk.line.calls_to(PUSH) if "確認します" in str(call.body)]
    assert len(attempts) == 8 and len(pushes(desk)) == taken_pushes
    assert len({call.headers["x-line-retry-key"] for call in attempts}) == 1, "every attempt has the same key"
    assert relay_job(desk).status == "failed"
    assert relayed(desk) == [("agent", "確認します。", "failed")]
    note = thread(desk, ticket.thread_ts)[-1]
    assert note.startswith(":warning: このメッセージを学生に届けられませんでした") and "500" in note
    assert not desk.stored("pending", "processing")


@pytest.mark.parametrize("lost_response", [False, True], ids=["refused", "delivered-but-answer-lost"])
def test_a_relay_that_fails_twice_then_succeeds_reaches_the_student_once(desk, lost_response):
    _, ticket = asks_for_a_person_on_line(desk)
    desk.line.fail_next(PUSH, 500, times=2, deliver=lost_response)

    desk.slack_event(agent_reply("確認します。", ticket.thread_ts))
    retry_until_settled(desk)

    attempts = desk.line.calls_to(PUSH)
    assert [call.status for call in attempts] == ([500, 500, 200] if not lost_response else [500, 409])
    [push] = pushes(desk)
    assert texts([push]) == ["【担当者】確認します。"]
    assert len({call.headers["x-line-retry-key"] for call in attempts}) == 1
    assert relayed(desk) == [("agent", "確認します。", "sent")]
    assert not any(":warning:" in text for text in thread(desk, ticket.thread_ts))
    assert not desk.stored("pending", "processing", "failed")


# --- 5. the agents' commands --------------------------------------------------------------------------------------

def command(desk: Desk, text: str, *, channel: str = AGENT_CHANNEL, user: str = AGENT) -> str:
    response = desk.slack_form(payloads.slash_command(text, channel=channel, user=user))
    assert response.status_code == 200, response.text
    return response.text  # Bolt answers a bare text as text/plain; Slack shows it only to who typed it


def test_tickets_lists_the_open_tickets_with_their_wait_only_in_the_agents_channel(desk):
    _, ticket = asks_for_a_person_on_line(desk)
    desk.clock.advance(minutes=25)

    listing = command(desk, "tickets")
    assert listing.splitlines()[0] == "対応中・お待ちの引き継ぎ（1件）"
    assert f"#{ticket.id} [待ち]" in listing and "待ち時間 25分" in listing and "line" in listing

    stored = len(desk.stored())
    for where in (payloads.PUBLIC, payloads.DM):
        refused = command(desk, "tickets", channel=where, user=payloads.STUDENT)
        assert refused == "このコマンドは担当者チャンネルでのみ使えます。"
    assert len(desk.stored()) == stored, "a refused command reached the bot"


def test_ready_marks_the_order_collectable_and_tells_the_linked_line_student(desk):
    student_line, student_number = user_id(), "24M1001"
    now = desk.core.now()
    with desk.core.transaction() as session:
        student = create_student(session, student_number=student_number, department="医学部", year=2, now=now)
        session.add(ChannelAccount(channel="line", external_id=student_line, student_id=student.id, following=True,
                                   linked_at=now, created_at=now, updated_at=now))
        placed = create_order(session, student=student, lines=[OrderLine("student_id_reissue")],
                              delivery=DeliveryMethod.WINDOW_PICKUP, payment=PaymentMethod.CREDIT_CARD,
                              profile=desk.core.profile, gateway=desk.core.payments, now=now, address=SAMPLE_ADDRESS)
        advance(session, placed.order, OrderStatus.PAID, now, "gateway")
        advance(session, placed.order, OrderStatus.PROCESSING, now, "staff:test")
        number = placed.order.number

    answer = command(desk, f"ready {number}")
    assert answer == f"申請 {number} を「受取可能」にし、学生に通知しました（1件の連携アカウント）。"
    desk.work()
    [push] = pushes(desk)
    assert push.body["to"] == student_line and uuid.UUID(push.headers["x-line-retry-key"])
    [text] = texts([push])
    assert "受取可能" in text and number in text and "学生証再発行料" in text
    assert "2026年11月25日（水）13:00から受取可能です" in text

    assert command(desk, f"student {student_number}").splitlines() == [
        f"{student_number}（医学部・2年）の最近の申請：",
        f"• {number} 学生証再発行料×1：窓口で受取可能 2,000円（11月24日（火）10:00）"]
    assert "すでに「受取可能」です" in command(desk, f"ready {number}")  # pressed again: the student is not told twice
    desk.work()
    assert len(pushes(desk)) == 1, "the student was told twice"
    assert command(desk, "ready ZZZZ-ZZZZ") == "申請 ZZZZ-ZZZZ は見つかりませんでした。"


def paid_mail_order(desk: Desk, student_number: str = "24M1001") -> tuple[str, str]:
    """A student with a linked LINE account and a paid 郵送 order; their LINE user id and the order number."""
    student_line, now = user_id(), desk.core.now()
    with desk.core.transaction() as session:
        student = create_student(session, student_number=student_number, department="医学部", year=2, now=now)
        session.add(ChannelAccount(channel="line", external_id=student_line, student_id=student.id, following=True,
                                   linked_at=now, created_at=now, updated_at=now))
        placed = create_order(session, student=student, lines=[OrderLine("transcript", 2)],
                              delivery=DeliveryMethod.MAIL, payment=PaymentMethod.CREDIT_CARD,
                              profile=desk.core.profile, gateway=desk.core.payments, now=now, address=SAMPLE_ADDRESS)
        number = placed.order.number
        reference = placed.payment.reference
    with desk.core.transaction() as session:
        desk.core.record_payment(session, reference)
    return student_line, number


def test_shipped_marks_a_mail_order_sent_and_tells_the_linked_line_student_once(desk):
    student_line, number = paid_mail_order(desk)

    answer = command(desk, f"shipped {number}")
    assert answer == f"申請 {number} を発送済みにし、学生に通知しました（連携アカウント 1 件）。"
    desk.work()
    [push] = pushes(desk)
    [text] = texts([push])
    assert push.body["to"] == student_line and number in text and "郵送しました" in text and "郵送対応完了" in text
    with desk.core.transaction() as session:
        order = find_order(session, number)
        assert order.status is OrderStatus.SHIPPED and order.fulfilment.shipped_at == desk.core.now()
        assert [event.actor for event in order.events][-2:] == [f"agent:{AGENT}", f"agent:{AGENT}"]

    assert command(desk, f"shipped {number}") == f"申請 {number} はすでに発送済みです。"
    desk.work()
    assert len(pushes(desk)) == 1, "the student was told twice"
    assert command(desk, "shipped ZZZZ-ZZZZ") == "申請 ZZZZ-ZZZZ は見つかりませんでした。"


def test_only_a_paid_mail_order_can_be_marked_sent(desk):
    now = desk.core.now()
    with desk.core.transaction() as session:
        student = create_student(session, student_number="24M1001", department="医学部", year=2, now=now)
        unpaid = create_order(session, student=student, lines=[OrderLine("transcript")],
                              delivery=DeliveryMethod.MAIL, payment=PaymentMethod.PAYPAY, profile=desk.core.profile,
                              gateway=desk.core.payments, now=now, address=SAMPLE_ADDRESS).order.number
        printed = create_order(session, student=student, lines=[OrderLine("enrollment_certificate")],
                               delivery=DeliveryMethod.CAMPUS_PRINTER, payment=PaymentMethod.PAYPAY,
                               profile=desk.core.profile, gateway=desk.core.payments, now=now).order.number
    for number in (unpaid, printed):
        assert command(desk, f"shipped {number}").startswith(f"申請 {number} は発送済みにできません：")
    desk.work()
    assert pushes(desk) == []


def test_a_ticket_card_offers_to_mark_its_students_paid_mail_order_sent(desk):
    student_line, number = paid_mail_order(desk, "24M2002")
    line_says(desk, student_line, "支払い方法を教えて")
    command(desk, "takeover 24M2002")
    desk.work()
    ticket = only_ticket(desk)
    [card] = cards(desk)
    buttons = card_buttons(card)
    assert buttons[f"madoguchi.order.shipped.{number}"] == f"{ticket.id}:{number}"
    desk.line.reset()

    click = payloads.button_click(f"{ticket.id}:{number}", action_id=f"madoguchi.order.shipped.{number}",
                                  user=AGENT, channel=AGENT_CHANNEL)
    assert desk.slack_form(click).status_code == 200
    desk.work()
    ticket = only_ticket(desk)
    done = f"申請 {number} を発送済みにし、学生に通知しました（連携アカウント 1 件）。"
    assert done in thread(desk, ticket.thread_ts)
    assert any("郵送しました" in text for text in texts(pushes(desk)))
    with desk.core.transaction() as session:
        assert find_order(session, number).status is OrderStatus.SHIPPED


def test_an_agent_takes_a_linked_students_line_conversation_over_from_the_bot(desk):
    student_line = user_id()
    now = desk.core.now()
    with desk.core.transaction() as session:
        student = create_student(session, student_number="24M2002", department="医学部", year=3, now=now)
        session.add(ChannelAccount(channel="line", external_id=student_line, student_id=student.id, following=True,
                                   linked_at=now, created_at=now, updated_at=now))
    unreachable = "学籍番号 24M2002 の学生には、連携済みのLINE・Slackアカウントでの会話がありません。"
    assert command(desk, "takeover 24M2002") == unreachable
    line_says(desk, student_line, "支払い方法を教えて")
    desk.line.reset()

    answer = command(desk, "takeover 24m2002")
    ticket = only_ticket(desk)
    assert answer.startswith(f"引き継ぎ #{ticket.id} を作成し") and ticket.status == "assigned"
    assert (ticket.reason, ticket.assignee, ticket.conversation_id) == ("agent", AGENT, f"line:{student_line}")
    desk.work()
    assert [card.params["channel"] for card in cards(desk)] == [AGENT_CHANNEL]
    assert any("担当者がお問い合わせを確認しました" in text for text in texts(pushes(desk)))
    desk.line.reset()
    line_says(desk, student_line, "よろしくお願いします")
    assert replies(desk) == [] and relayed(desk)[-1][1] == "よろしくお願いします"
    assert command(desk, "takeover 24M2002", user="U0OTHERAGNT").startswith("この引き継ぎはすでに")


# --- 6. the web chat ----------------------------------------------------------------------------------------------

def test_a_web_chat_student_reads_the_agents_reply_from_the_updates(desk):
    said = desk.web_chat("web-student-1", ASK_FOR_PERSON)
    assert "担当者におつなぎします" in said[0]["text"]
    desk.work()
    ticket = only_ticket(desk)
    assert (ticket.channel, ticket.user_id) == ("web", "web-student-1") and ticket.thread_ts

    desk.slack_event(agent_reply("ご用件をどうぞ。", ticket.thread_ts))
    desk.work()

    response = desk.http.get("/api/chat/updates", params={"user": "web-student-1", "after": "0"})
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    assert [(m["kind"], m["text"]) for m in body["messages"]] == [("agent", "ご用件をどうぞ。")]
    assert body["last"] == body["messages"][0]["id"]
    assert relayed(desk) == [("agent", "ご用件をどうぞ。", "sent")]
    other = desk.http.get("/api/chat/updates", params={"user": "web-student-2", "after": "0"}).json()
    assert other["messages"] == []

    assert desk.web_chat("web-student-1", "第2パスワードは Abcd1234xyz です") == [], "the bot answered"
    desk.work()
    assert thread(desk, ticket.thread_ts)[-1].startswith("学生：第2パスワードは ")
    assert "Abcd1234xyz" not in str(desk.slack.calls), "a password reached the agents"
    later = desk.http.get("/api/chat/updates", params={"user": "web-student-1", "after": str(body["last"])}).json()
    assert later["messages"] == []

    # The agent hands the conversation back: the web page shows why the bot answers again.
    desk.slack_form(press("back", ticket.id))
    desk.work()
    later = desk.http.get("/api/chat/updates", params={"user": "web-student-1", "after": str(body["last"])}).json()
    assert [(m["kind"], m["text"]) for m in later["messages"]] == [
        ("note", "担当者からこのチャットに戻りました。引き続き、ご質問にお答えします。")]
    assert only_ticket(desk).closed_how == ClosedHow.HANDED_BACK
    assert "クレジットカード" in str(desk.web_chat("web-student-1", "支払い方法を教えて"))
