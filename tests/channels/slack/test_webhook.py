"""POST /slack/events over real HTTP: Bolt's signature check, bad bodies answered 4xx (never 500), the
url_verification handshake, and events acknowledged without an answer (unknown types, bots, edits)."""

import json
import logging
import time

import pytest

from tests.channels.slack import payloads
from tests.channels.slack.fake_slack_api import FORM
from tests.channels.slack.payloads import signed_headers


def test_a_signed_event_is_stored_before_the_200_and_answered_once_drained(slack_server):
    response = slack_server.send_event(payloads.im_message("支払い方法を教えて"))

    assert response.status_code == 200
    [event] = slack_server.events()  # committed before the acknowledgement left
    assert (event.channel, event.status) == ("slack", "pending")
    assert "verification-token" not in event.payload  # the deprecated token is not kept
    assert slack_server.fake.calls == []  # nothing is sent on the request's path
    assert slack_server.deliver()


@pytest.mark.parametrize("secret", ["a-different-signing-secret", ""])
def test_a_bad_signature_is_rejected_with_401(slack_server, secret):
    raw = json.dumps(payloads.im_message("こんにちは")).encode()
    response = slack_server.post(raw, signed_headers(raw, secret=secret))
    assert response.status_code == 401
    assert slack_server.events() == []


def test_a_body_changed_after_signing_is_rejected(slack_server):
    raw = json.dumps(payloads.im_message("こんにちは"), ensure_ascii=False).encode()
    headers = signed_headers(raw)
    response = slack_server.post(raw.replace("こんにちは".encode(), "さようなら".encode()), headers)
    assert response.status_code == 401
    assert slack_server.events() == []


def test_a_missing_signature_is_rejected_with_401(slack_server):
    raw = json.dumps(payloads.im_message("こんにちは")).encode()
    assert slack_server.post(raw, {"content-type": "application/json"}).status_code == 401
    only_timestamp = {"content-type": "application/json", "x-slack-request-timestamp": str(int(time.time()))}
    assert slack_server.post(raw, only_timestamp).status_code == 401
    assert slack_server.events() == []


def test_a_timestamp_more_than_five_minutes_off_is_rejected(slack_server):
    for offset, expected in ((-301, 401), (301, 401), (-290, 200)):
        raw = json.dumps(payloads.im_message("こんにちは")).encode()
        response = slack_server.post(raw, signed_headers(raw, timestamp=int(time.time()) + offset))
        assert response.status_code == expected, offset
    assert len(slack_server.events()) == 1


@pytest.mark.parametrize(("raw", "content_type"), [
    (b'{"type": "event_callback", "event": ', "application/json"),
    (b"\xff\xfe\x00not utf-8", "application/json"),
    (b"[1, 2, 3]", "application/json"),
    (b"42", "application/json"),
    (b'{"type": "event_callback", "event": "not an object", "event_id": "Ev1"}', "application/json"),
    (b'{"type": "event_callback", "event": {"type": 5}, "event_id": "Ev1"}', "application/json"),
    (b'{"type": "block_actions", "actions": [{"value": "intent:greet"}]}', "application/json"),
    (b"payload=%7Bnot+json", FORM),
    (b"payload=%5B1%2C2%5D", FORM),
    (b"command=5&text=help", FORM),
], ids=["truncated", "not-utf8", "array", "number", "event-not-object", "event-type-not-string",
        "action-without-id", "form-payload-not-json", "form-payload-array", "not-a-form"])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_a_malformed_body_is_a_4xx_never_a_500(slack_server, raw, content_type, signed):
    headers = signed_headers(raw, content_type=content_type) if signed else {"content-type": content_type}
    response = slack_server.post(raw, headers)
    assert 400 <= response.status_code < 500, response.text
    assert slack_server.events() == []


@pytest.mark.parametrize("body", [
    {"type": "event_callback", "event": {"type": "app_mention", "user": payloads.STUDENT}, "event_id": "Ev0BROKEN1"},
    {"type": "event_callback", "event": {"type": "message", "channel_type": "im"}, "event_id": ["Ev0BROKEN2"]},
    {"type": "block_actions", "actions": [{"action_id": "madoguchi.reply.0"}], "trigger_id": "1.2.3"},
    {"command": "/madoguchi", "trigger_id": "1.2.4"},
], ids=["mention-without-channel", "event-id-not-a-string", "click-without-user", "command-without-user"])
def test_a_signed_payload_missing_what_an_answer_needs_is_acknowledged_not_stored(slack_server, body):
    assert slack_server.send_event(body).status_code == 200
    assert slack_server.events() == []


def test_a_body_larger_than_a_megabyte_is_refused(slack_server):
    raw = json.dumps(payloads.im_message("あ" * 400_000)).encode()
    assert slack_server.post(raw, signed_headers(raw)).status_code == 413


def test_only_post_is_served(slack_server):
    assert slack_server.http.get("/slack/events").status_code == 405


def test_url_verification_echoes_the_challenge(slack_server):
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    response = slack_server.send_event(payloads.url_verification(challenge))
    assert response.status_code == 200
    assert response.json() == {"challenge": challenge}
    assert slack_server.events() == []


def test_an_unknown_event_type_is_acknowledged_logged_and_not_answered(slack_server, caplog):
    caplog.set_level(logging.INFO, logger="bot.channels.slack")
    body = payloads.other_event("reaction_added", user=payloads.STUDENT, reaction="thumbsup",
                                item={"type": "message", "channel": payloads.DM, "ts": "1795000000.000100"})

    assert slack_server.send_event(body).status_code == 200

    assert slack_server.events() == [] and slack_server.deliver() == []
    assert any(body["event_id"] in record.getMessage() and "reaction_added" in record.getMessage()
               for record in caplog.records)


@pytest.mark.parametrize("extra", [
    {"bot_id": "B0OTHERBOT1"},
    {"subtype": "message_changed"},
    {"subtype": "bot_message", "bot_id": "B0OTHERBOT1"},
    {"channel_type": "channel", "channel": payloads.PUBLIC},
], ids=["a-bot", "an-edit", "bot_message", "not-a-dm"])
def test_messages_that_are_not_a_persons_dm_are_acknowledged_and_ignored(slack_server, extra):
    assert slack_server.send_event(payloads.im_message("支払い方法を教えて", **extra)).status_code == 200
    assert slack_server.events() == [] and slack_server.deliver() == []


def test_an_unknown_interaction_is_acknowledged_and_ignored(slack_server):
    form = payloads.button_click("anything", action_id="someone.elses.button")
    assert slack_server.send_form(form).status_code == 200
    assert slack_server.events() == []


def test_a_link_button_click_is_acknowledged_only(slack_server):
    form = payloads.button_click("", action_id="madoguchi.link")
    assert slack_server.send_form(form).status_code == 200
    assert slack_server.events() == [] and slack_server.deliver() == []
