"""Sending through the inbox worker: Slack's 429 and Retry-After, 5xx retried with backoff, permanent
errors, and one post per second in each conversation. The clock is moved; nothing sleeps."""

import logging

from tests.channels.slack import payloads
from tests.channels.slack.payloads import DM, OTHER_DM, OTHER_STUDENT


def ask(slack_server, text: str = "問い合わせ先を教えて", **where) -> None:
    assert slack_server.send_event(payloads.im_message(text, **where)).status_code == 200


def test_a_429_is_retried_after_the_seconds_slack_asks_for(slack_server):
    fake, clock = slack_server.fake, slack_server.clock
    fake.fail_next(1, status=429, retry_after=3)
    ask(slack_server)

    slack_server.inbox.drain()
    assert [call.status for call in fake.attempts()] == [429] and fake.posts() == []
    [event] = slack_server.events()
    assert event.status == "pending" and event.attempts == 0  # a wait asked for is not a failure

    clock.advance(seconds=2)
    slack_server.inbox.drain()
    assert len(fake.attempts()) == 1  # not before Retry-After has passed

    clock.advance(seconds=1)
    slack_server.inbox.drain()
    assert len(fake.posts()) == 1
    slack_server.deliver()  # any further parts of the answer
    assert [call.status for call in fake.attempts()][:2] == [429, 200]
    assert slack_server.events("done")


def test_a_429_holds_every_conversation_not_only_the_one_that_hit_it(slack_server):
    fake = slack_server.fake
    fake.fail_next(1, status=429, retry_after=5)
    ask(slack_server)
    ask(slack_server, user=OTHER_STUDENT, channel=OTHER_DM)

    slack_server.inbox.drain()

    assert [call.status for call in fake.attempts()] == [429]  # the second conversation did not try
    slack_server.clock.advance(seconds=5)
    posts = slack_server.deliver()
    assert {post.params["channel"] for post in posts} == {DM, OTHER_DM}


def test_a_500_is_retried_with_backoff_and_nothing_is_lost_or_sent_twice(slack_server):
    fake, clock = slack_server.fake, slack_server.clock
    fake.fail_next(2, status=500)
    ask(slack_server)

    slack_server.inbox.drain()
    [event] = slack_server.events()
    assert (event.status, event.attempts) == ("pending", 1) and "HTTP 500" in event.last_error

    clock.advance(seconds=1)
    slack_server.inbox.drain()
    assert len(fake.attempts()) == 1  # backoff: 2 s after the first failure

    clock.advance(seconds=1)
    slack_server.inbox.drain()
    assert len(fake.attempts()) == 2 and slack_server.events()[0].attempts == 2

    clock.advance(seconds=4)  # 4 s after the second
    posts = slack_server.deliver()
    assert [call.status for call in fake.attempts()][:3] == [500, 500, 200]
    texts = [post.params["text"] for post in posts]
    assert len(texts) == len(set(texts))  # each part once
    assert slack_server.events("done")


def test_a_failure_in_the_middle_of_an_answer_resends_only_the_rest(slack_server):
    fake, clock = slack_server.fake, slack_server.clock
    ask(slack_server, "支払い方法を教えて")  # answered in two messages

    slack_server.inbox.drain()
    assert len(fake.posts()) == 1  # the second part waits for its second
    fake.fail_next(1, status=500)
    clock.advance(seconds=1)
    slack_server.inbox.drain()
    assert [call.status for call in fake.attempts()] == [200, 500]

    clock.advance(seconds=2)
    slack_server.inbox.drain()

    first, second = fake.posts()
    assert first.params["text"] != second.params["text"]
    assert [call.status for call in fake.attempts()] == [200, 500, 200]
    [event] = slack_server.events()
    assert (event.status, event.sent_parts) == ("done", 2)


def test_a_permanent_error_marks_the_event_failed_and_is_not_retried(slack_server, caplog):
    caplog.set_level(logging.ERROR, logger="bot.delivery.inbox")
    slack_server.fake.fail_next(1, status=200, error="channel_not_found")
    ask(slack_server)

    slack_server.inbox.drain()
    slack_server.clock.advance(minutes=10)
    slack_server.inbox.drain()

    [event] = slack_server.events()
    assert event.status == "failed" and "channel_not_found" in event.last_error
    assert len(slack_server.fake.attempts()) == 1
    assert any("channel_not_found" in record.getMessage() for record in caplog.records)


def test_two_quick_answers_in_one_conversation_are_a_second_apart(slack_server):
    fake, clock = slack_server.fake, slack_server.clock
    ask(slack_server, "問い合わせ先を教えて")  # answered in one message
    ask(slack_server, "支払い方法を教えて")  # answered in two

    slack_server.inbox.drain()
    posted = [len(fake.posts())]
    for _ in range(5):
        clock.advance(seconds=0.5)
        slack_server.inbox.drain()
        posted.append(len(fake.posts()))

    assert posted == [1, 1, 2, 2, 3, 3]  # one post per whole second, never two within one
    assert len(fake.attempts()) == 3  # and the waiting cost Slack no calls


def test_different_conversations_are_not_paced_against_each_other(slack_server):
    ask(slack_server)
    ask(slack_server, user=OTHER_STUDENT, channel=OTHER_DM)

    slack_server.inbox.drain()

    assert {post.params["channel"] for post in slack_server.fake.posts()} == {DM, OTHER_DM}


def test_a_stored_payload_that_cannot_be_answered_fails_without_a_call(slack_server):
    slack_server.inbox.accept("slack", "Ev0UNANSWERABLE", {"type": "event_callback", "event": {"type": "pin_added"}})

    slack_server.inbox.drain()

    [event] = slack_server.events()
    assert event.status == "failed" and "not an answerable Slack payload" in event.last_error
    assert slack_server.fake.calls == []
