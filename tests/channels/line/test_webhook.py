"""POST /line/webhook over real HTTP: signatures checked before anything is read, every handled event
stored before the 200, duplicates and redeliveries answered once, anything else acknowledged."""

import json
import logging
from pathlib import Path

from bot.channels.line import LineChannel
from bot.inbox import Inbox
from tests.channels.line.conftest import CHANNEL_SECRET, line_settings
from tests.channels.line.fake_line_api import LOADING, PUSH, REPLY
from tests.channels.line.webhooks import sign, user_id, validate_callback

PAYLOADS = Path(__file__).parent / "payloads"


def test_a_missing_signature_is_refused_and_nothing_is_stored(line):
    body = line.events.body(line.events.text(user_id(), "支払い方法を教えて"))
    assert line.post_body(body, signature=None).status_code == 400
    assert line.stored() == 0


def test_a_wrong_signature_is_refused_and_nothing_is_stored(line):
    body = line.events.body(line.events.text(user_id(), "支払い方法を教えて"))
    assert line.post_body(body, signature=sign("another-secret", body)).status_code == 400
    assert line.post_body(body, signature="not base64 at all").status_code == 400
    tampered = body.replace("支払い".encode(), "返金".encode())
    assert line.post_body(tampered, signature=sign(CHANNEL_SECRET, body)).status_code == 400
    assert line.stored() == 0
    assert line.inbox.drain() == 0 and line.fake.calls == []


def test_malformed_json_is_a_400_even_when_signed(line):
    for body in (b'{"destination": "U1", "events": [', b"[1, 2]", b'{"destination": "U1"}', b"\xff\xfe"):
        assert line.post_body(body).status_code == 400, body
    assert line.stored() == 0


def test_the_consoles_verify_call_with_no_events_gets_200(line):
    response = line.post_body(line.events.body())
    assert response.status_code == 200
    assert line.stored() == 0


def test_unknown_event_types_are_logged_and_acknowledged_without_a_reply(line, caplog):
    caplog.set_level(logging.INFO, logger="bot.channels.line")
    user = user_id()
    beacon, video = line.events.beacon(user), line.events.video_play_complete(user)
    future = {**line.events.text(user, "x"), "type": "somethingNew"}  # a type LINE may add later
    body = json.dumps({"destination": "U" + "0" * 32, "events": [beacon, video, future]}).encode()
    assert line.post_body(body).status_code == 200
    assert line.stored() == 0
    assert line.inbox.drain() == 0 and line.fake.calls == []
    logged = caplog.text
    assert "beacon event" in logged and "videoPlayComplete event" in logged and "somethingNew event" in logged


def test_the_webhook_only_stores_the_work_happens_in_the_worker(line):
    response = line.post(line.events.text(user_id(), "支払い方法を教えて"))
    assert response.elapsed.total_seconds() < 1, "LINE wants the 200 within a second"
    assert line.stored() == 1
    assert line.fake.calls == [], "the webhook must answer before any call to LINE"
    assert line.inbox.drain() == 1
    assert [call.path for call in line.fake.calls] == [LOADING, REPLY]
    assert "PayPay" in line.fake.delivered_texts()[0]


def test_an_accepted_event_survives_a_process_that_dies_after_the_200(line, pipeline_for):
    line.post(line.events.text(user_id(), "問い合わせ先を教えて"))
    # A new process: a new inbox and channel over the same database; the old ones are never used again.
    settings = line_settings(line.fake)
    reborn = Inbox(line.core)
    reborn.register(LineChannel(line.core, pipeline_for(line.core), settings))
    assert reborn.drain() == 1
    assert len(line.fake.deliveries()) == 1
    assert line.statuses() == ["done"]


def test_the_same_event_three_times_one_a_redelivery_gets_one_reply(line):
    event = line.events.text(user_id(), "支払い方法を教えて")
    redelivered = {**event, "deliveryContext": {"isRedelivery": True}}
    line.post(event)
    line.post(event)  # LINE may send a duplicate even without a redelivery
    line.post(redelivered)
    assert line.stored() == 1
    assert line.inbox.drain() == 1
    assert line.inbox.drain() == 0
    assert len(line.fake.deliveries()) == 1


def test_several_events_in_one_body_are_each_answered(line):
    first, second = user_id(), user_id()
    line.post(line.events.text(first, "支払い方法を教えて"), line.events.sticker(second))
    assert line.inbox.drain() == 2
    replies = line.fake.calls_to(REPLY)
    assert len(replies) == 2 and not line.fake.calls_to(PUSH)


def test_a_recorded_payload_with_a_line_emoji_is_answered_by_push_when_its_token_is_old(line):
    body = (PAYLOADS / "text_with_line_emoji.json").read_bytes()
    validate_callback(body)
    assert line.post_body(body).status_code == 200
    line.inbox.drain()
    [push] = line.fake.deliveries()  # the recorded event is from 2016: far too old for its reply token
    assert push.path == PUSH and push.body["to"] == "U4af4980629a1b2c3d4e5f60718293a4b"
    assert "PayPay" in "\n".join(line.fake.delivered_texts())
