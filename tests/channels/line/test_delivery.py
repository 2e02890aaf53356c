"""Sending answers: the reply token while fresh, else push with a fixed retry key; 429 and 5xx retried
by the inbox with the test clock (no sleeps); nothing lost and nothing delivered twice."""

import json
import threading
import uuid

import pytest
from sqlalchemy import update

from bot.channels.line import retry_key
from bot.locks import ConversationLocks
from bot.pipeline import Turn
from core.handoffs import TicketStatus
from core.models import HandoffTicket, InboundEvent
from handlers.replies import QuickReply, Text
from tests.channels.line.fake_line_api import LOADING, PUSH, REPLY
from tests.channels.line.webhooks import user_id


class ScriptedPipeline:
    """Stands in for the conversation pipeline: the same replies to every message, each message kept."""

    def __init__(self, core, replies):
        self.locks = ConversationLocks(core)
        self.replies = replies
        self.messages = []

    def handle(self, message):
        return self.answer(message).replies

    def answer(self, message):
        self.messages.append(message)
        return Turn(list(self.replies), ())


@pytest.fixture
def scripted(make_line):
    def start(*replies):
        return make_line(lambda core: ScriptedPipeline(core, list(replies)))
    return start


def sent_parts(fake):
    """The messages of each delivered call, in order."""
    return [[message.get("text") for message in call.messages] for call in fake.deliveries()]


def test_a_fresh_event_answered_at_once_goes_by_reply_token_without_a_loading_animation(scripted):
    line = scripted(Text("hello", (QuickReply("Menu", "intent:greet"),)))
    user = user_id()
    event = line.events.text(user, "hi")
    line.deliver(event)
    [reply] = line.fake.calls  # the typing animation would only have put a round trip before the answer
    assert reply.path == REPLY and reply.body["replyToken"] == event["replyToken"]
    assert reply.body["messages"][0]["text"] == "hello"
    message = line.pipeline.messages[0]
    assert (message.channel, message.user_id, message.conversation_id) == ("line", user, f"line:{user}")
    assert (message.text, message.event_id, message.raw["replyToken"]) == ("hi", event["webhookEventId"],
                                                                          event["replyToken"])


class SlowPipeline(ScriptedPipeline):
    """A turn that answers only once LINE has been asked for the typing animation (or after `waits` × 10 ms)."""

    def __init__(self, core, replies, fake, waits=1000):
        super().__init__(core, replies)
        self.fake, self.waits = fake, waits

    def answer(self, message):
        for _ in range(self.waits):
            if self.fake.calls_to(LOADING):
                break
            threading.Event().wait(0.01)
        return super().answer(message)


def test_a_slow_turn_shows_the_loading_animation_before_its_answer(make_line, fake_line):
    line = make_line(lambda core: SlowPipeline(core, [Text("at last")], fake_line))
    line.inbox.processor("line").api.loading_after_seconds = 0.05
    user = user_id()
    line.deliver(line.events.text(user, "hi"))
    loading, reply = line.fake.calls
    assert loading.path == LOADING and loading.body == {"chatId": user, "loadingSeconds": 20}
    assert reply.path == REPLY and reply.body["messages"][0]["text"] == "at last"


def test_a_slow_turn_shows_no_loading_animation_while_a_person_has_the_conversation(make_line, fake_line):
    # 0.5 s, ten times the animation's delay: long enough for it to have been asked for, were it wanted.
    line = make_line(lambda core: SlowPipeline(core, [Text("relayed")], fake_line, waits=50))
    line.inbox.processor("line").api.loading_after_seconds = 0.05
    user = user_id()
    with line.core.transaction() as session:
        session.add(HandoffTicket(conversation_id=f"line:{user}", channel="line", user_id=user, lang="ja",
                                  reason="asked", status=TicketStatus.ASSIGNED.value, assignee="staff:1",
                                  opened_at=line.core.now()))
    line.deliver(line.events.text(user, "まだですか"))
    assert [call.path for call in line.fake.calls] == [REPLY]


def test_a_failing_loading_animation_does_not_hold_up_the_answer(make_line, fake_line):
    line = make_line(lambda core: SlowPipeline(core, [Text("hello")], fake_line))
    line.inbox.processor("line").api.loading_after_seconds = 0.05
    line.fake.fail_next(LOADING, 500)
    line.deliver(line.events.text(user_id(), "hi"))
    assert [call.path for call in line.fake.calls] == [LOADING, REPLY]  # the animation asked for, and refused
    assert sent_parts(line.fake) == [["hello"]]
    assert line.statuses() == ["done"]


def test_a_429_waits_for_retry_after_then_sends_once(scripted):
    line = scripted(Text("answer"))
    line.fake.fail_next(REPLY, 429, headers={"Retry-After": "5"}, message="Too many requests")
    line.deliver(line.events.text(user_id(), "hi"))
    assert line.fake.deliveries() == [] and line.statuses() == ["pending"]
    line.clock.advance(seconds=4)
    assert line.inbox.drain() == 0, "retried before Retry-After"
    line.clock.advance(seconds=1)
    assert line.inbox.drain() == 1
    assert [call.status for call in line.fake.calls_to(REPLY)] == [429, 200]
    assert sent_parts(line.fake) == [["answer"]]
    assert line.statuses() == ["done"]
    assert len(line.pipeline.messages) == 1, "the turn ran again on retry"


def test_500s_are_retried_with_backoff_and_delivered_once(scripted):
    line = scripted(Text("answer"))
    line.fake.fail_next(REPLY, 500, times=2)
    line.deliver(line.events.text(user_id(), "hi"))
    line.clock.advance(seconds=2)
    assert line.inbox.drain() == 1  # second failure: the next wait doubles
    line.clock.advance(seconds=2)
    assert line.inbox.drain() == 0
    line.clock.advance(seconds=2)
    assert line.inbox.drain() == 1
    assert [call.status for call in line.fake.calls_to(REPLY)] == [500, 500, 200]
    assert sent_parts(line.fake) == [["answer"]]
    assert len(line.pipeline.messages) == 1


def test_a_reply_token_older_than_a_minute_is_not_used_the_answer_is_pushed_with_a_retry_key(scripted):
    line = scripted(Text("late answer"))
    user = user_id()
    event = line.events.text(user, "hi")
    line.post(event)
    line.clock.advance(seconds=61)  # the worker was down for a minute
    line.inbox.drain()
    assert line.fake.calls_to(REPLY) == [] and line.fake.calls_to(LOADING) == []
    [push] = line.fake.calls_to(PUSH)
    assert push.body["to"] == user and push.body["messages"][0]["text"] == "late answer"
    key = push.headers["x-line-retry-key"]
    assert uuid.UUID(key) and key == retry_key(event["webhookEventId"], 0)


def test_a_retried_push_keeps_its_retry_key(scripted):
    line = scripted(Text("late answer"))
    line.post(line.events.text(user_id(), "hi"))
    line.clock.advance(seconds=90)
    line.fake.fail_next(PUSH, 500)
    line.inbox.drain()
    line.clock.advance(seconds=2)
    line.inbox.drain()
    first, second = line.fake.calls_to(PUSH)
    assert (first.status, second.status) == (500, 200)
    assert first.headers["x-line-retry-key"] == second.headers["x-line-retry-key"]
    assert sent_parts(line.fake) == [["late answer"]]


def test_a_push_whose_answer_was_lost_is_not_sent_twice_409_counts_as_sent(scripted):
    line = scripted(Text("late answer"))
    line.post(line.events.text(user_id(), "hi"))
    line.clock.advance(seconds=90)
    line.fake.fail_next(PUSH, 500, deliver=True)  # LINE took it, the response never arrived
    line.inbox.drain()
    line.clock.advance(seconds=2)
    line.inbox.drain()
    assert [call.status for call in line.fake.calls_to(PUSH)] == [500, 409]
    assert len(line.fake.deliveries()) == 1
    assert line.statuses() == ["done"]


def test_seven_messages_go_as_a_reply_of_five_then_a_push_of_two_and_a_retry_resends_only_the_rest(scripted):
    line = scripted(*(Text(f"answer {number}") for number in range(1, 8)))
    event = line.events.text(user_id(), "hi")
    line.fake.fail_next(PUSH, 500)
    line.deliver(event)
    line.clock.advance(seconds=2)
    line.inbox.drain()
    [reply] = line.fake.calls_to(REPLY)
    assert [message["text"] for message in reply.messages] == [f"answer {n}" for n in range(1, 6)]
    pushes = line.fake.calls_to(PUSH)
    assert [call.status for call in pushes] == [500, 200]
    assert {call.headers["x-line-retry-key"] for call in pushes} == {retry_key(event["webhookEventId"], 1)}
    assert sent_parts(line.fake) == [[f"answer {n}" for n in range(1, 6)], ["answer 6", "answer 7"]]


def test_a_12000_character_answer_is_sent_as_texts_within_lines_limits(scripted):
    text = "\n".join(f"{number:04d} " + "あ" * 95 for number in range(120))[:12_000]
    line = scripted(Text(text))
    line.deliver(line.events.text(user_id(), "hi"))
    [call] = line.fake.deliveries()
    assert 3 <= len(call.messages) <= 5
    assert "\n".join(message["text"] for message in call.messages) == text
    # The fake checks every text against LINE's 5,000-unit limit; a breach fails the test at teardown.


def test_a_used_up_reply_token_falls_back_to_push(scripted):
    line = scripted(Text("answer"))
    line.fake.fail_next(REPLY, 400, message="Invalid reply token")
    line.deliver(line.events.text(user_id(), "hi"))
    assert [call.path for call in line.fake.deliveries()] == [PUSH]
    assert line.statuses() == ["done"]


def test_a_4xx_that_cannot_succeed_fails_the_event_without_retrying(scripted, caplog):
    line = scripted(Text("answer"))
    line.post(line.events.text(user_id(), "hi"))
    line.clock.advance(seconds=90)
    line.fake.fail_next(PUSH, 403, message="Not allowed to send to this user")
    line.inbox.drain()
    line.clock.advance(minutes=10)
    assert line.inbox.drain() == 0
    assert len(line.fake.calls_to(PUSH)) == 1
    assert line.statuses() == ["failed"]
    assert "Not allowed to send" in caplog.text


def test_the_monthly_message_limit_is_not_retried(scripted):
    line = scripted(Text("answer"))
    line.post(line.events.text(user_id(), "hi"))
    line.clock.advance(seconds=90)
    line.fake.fail_next(PUSH, 429, message="You have reached your monthly limit.")
    line.inbox.drain()
    line.clock.advance(minutes=10)
    assert line.inbox.drain() == 0
    assert line.statuses() == ["failed"]


def _as_a_crash_leaves_it(line, event):
    """The event's row as kill -9 leaves it between the reply and its record: claimed, its calls stored, the
    payload not yet masked, the lease run out (what a restarted worker finds)."""
    with line.core.transaction() as session:
        session.execute(update(InboundEvent).values(status="processing", sent_parts=0, payload=json.dumps(event),
                                                    lease_until=line.clock.now()))


def test_a_reply_that_went_out_before_a_crash_is_not_pushed_again(scripted):
    line = scripted(Text("answer"))
    event = line.events.text(user_id(), "hi")
    line.deliver(event)
    assert [call.path for call in line.fake.deliveries()] == [REPLY]
    _as_a_crash_leaves_it(line, event)  # the reply went out; its record did not
    line.clock.advance(seconds=5)
    assert line.inbox.drain() == 1
    assert [call.path for call in line.fake.deliveries()] == [REPLY]  # the refused token was the used one
    assert line.statuses() == ["done"]


def test_a_reply_that_failed_is_sent_by_reply_on_the_resumed_attempt_while_its_token_is_young(scripted):
    line = scripted(Text("answer"))
    line.fake.fail_next(REPLY, 500)  # refused, not delivered: the event waits with its calls stored
    line.deliver(line.events.text(user_id(), "hi"))
    assert line.fake.deliveries() == [] and line.statuses() == ["pending"]
    line.clock.advance(seconds=5)
    line.inbox.drain()
    assert [call.path for call in line.fake.deliveries()] == [REPLY]
    assert line.statuses() == ["done"]
