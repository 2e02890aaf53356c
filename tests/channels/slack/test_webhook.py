"""POST /slack/events over real HTTP: Bolt's signature check, bad bodies answered 4xx (never 500), the
url_verification handshake, and events acknowledged without an answer (unknown types, bots, edits)."""

import json
import logging
import time
from urllib.parse import parse_qs, urlencode

import pytest

from core.conversations import transcript
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
    {"type": "block_actions", "actions": [{"action_id": "madoguchi.reply.0"}], "trigger_id": "1.2.3"},
    {"command": "/madoguchi", "trigger_id": "1.2.4"},
], ids=["mention-without-channel", "click-without-user", "command-without-user"])
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


# --- found by tests/fuzz: never a 500, never a stored payload that cannot be finished --------------------------

@pytest.mark.parametrize("stamp", ["abc", "", "1_700_000_000", "1e9", "١٧٠٠٠٠٠٠٠٠".encode(), "-1", "9" * 40],
                         ids=["letters", "empty", "underscores", "exponent", "arabic-digits", "negative", "huge"])
def test_an_unreadable_timestamp_is_a_401_before_anything_else(slack_server, stamp):
    raw = json.dumps(payloads.im_message("こんにちは")).encode()
    headers = signed_headers(raw) | {"x-slack-request-timestamp": stamp}
    assert slack_server.post(raw, headers).status_code == 401
    garbage = b"[" * 10_000  # the body is not even looked at
    assert slack_server.post(garbage, {"content-type": "application/json", "x-slack-request-timestamp": stamp,
                                       "x-slack-signature": "v0=0"}).status_code == 401
    assert slack_server.events() == []


def test_an_unsigned_body_is_a_401_whatever_it_holds(slack_server):
    for raw in (b"[" * 10_000, b'{"event": ' * 1000, b"\xff\xfe"):
        headers = signed_headers(raw) | {"x-slack-signature": "v0=" + "0" * 64}
        assert slack_server.post(raw, headers).status_code == 401


def test_a_signature_with_non_ascii_characters_is_a_401_not_a_500(slack_server):
    raw = json.dumps(payloads.im_message("こんにちは")).encode()
    headers = {**signed_headers(raw), "x-slack-signature": "v0=é".encode("latin-1")}
    assert slack_server.post(raw, headers).status_code == 401


@pytest.mark.parametrize(("raw", "content_type", "field"), [
    (b'{"type": "event_callback", "event": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json",
     "nested deeper"),
    (b"payload=" + b"%5B" * 5000 + b"%5D" * 5000, FORM, "nested deeper"),
    (b'{"type": "event_callback", "event": {"type": "message"}, "event_id": ["Ev0BROKEN2"]}', "application/json",
     "event_id is not a string"),
    (b'{"type": "event_callback", "event": {"type": "message", "channel_type": "im", "subtype": {"a": 1}},'
     b' "event_id": "Ev1"}', "application/json", "event.subtype is not a string"),
    (b'{"type": "event_callback", "event": {"type": "app_mention", "user": ["U1"]}, "event_id": "Ev1"}',
     "application/json", "event.user is not a string"),
    (b'{"type": "event_callback", "event": {"type": "message", "user": "' + b"U" * 65 + b'"}, "event_id": "Ev1"}',
     "application/json", "event.user is not a Slack id"),
    (b'{"type": 1, "team_id": "T1"}', "application/json", "type is not a string"),
    (b'{"type": "event_callback", "authorizations": [{"is_bot": "yes"}]}', "application/json",
     "authorizations[0].is_bot"),
    (b'payload={"type": "block_actions", "actions": null}', FORM, "actions is not a non-empty list"),
    (b'payload={"type": "block_actions", "actions": []}', FORM, "actions is not a non-empty list"),
    (b'{"type": "event_callback", "event": null, "event_id": "Ev1"}', "application/json",
     "event is not an object"),
    (b'{"type": "event_callback", "event": {"type": "function_executed", "function": null}, "event_id": "Ev1"}',
     "application/json", "event.function is not an object"),
], ids=["deep-json", "deep-payload", "event-id-list", "subtype-object", "user-list", "user-too-long",
        "type-number", "is-bot-string", "actions-null", "actions-empty", "event-null", "function-null"])
def test_a_signed_body_with_a_field_of_the_wrong_shape_is_a_400_naming_it(slack_server, raw, content_type, field):
    response = slack_server.post(raw, signed_headers(raw, content_type=content_type))
    assert response.status_code == 400 and field in response.text, response.text
    assert slack_server.events() == []


def test_a_button_whose_value_is_not_a_string_is_a_400(slack_server):
    form = payloads.button_click("intent:greet")
    payload = json.loads(parse_qs(form)["payload"][0])
    payload["actions"][0]["value"] = {"intent": "greet"}
    response = slack_server.send_form(urlencode({"payload": json.dumps(payload)}))
    assert response.status_code == 400 and "actions[0].value" in response.text


def _conversation_texts(slack_server) -> list[str]:
    with slack_server.core.transaction() as session:
        return [entry.text for entry in transcript(session, f"slack:{payloads.TEAM}:{payloads.STUDENT}")]


@pytest.mark.parametrize(("typed", "kept"), [
    ("支払い方法を教えて\ud800", "支払い方法を教えて\ufffd"),
    ("支払い\x00方法を教えて", "支払い方法を教えて"),
], ids=["lone-surrogate", "nul"])
def test_a_message_no_database_could_store_is_made_storable_answered_and_saved(slack_server, typed, kept):
    raw = json.dumps(payloads.im_message(typed)).encode()  # ASCII escapes: "\ud800" and "\u0000" on the wire
    assert slack_server.post(raw, signed_headers(raw)).status_code == 200
    assert slack_server.deliver()
    [event] = slack_server.events()
    assert event.status == "done" and "\\ud800" not in event.payload and "\\u0000" not in event.payload
    assert kept in _conversation_texts(slack_server)


def test_a_slash_command_with_nul_and_a_button_with_a_lone_surrogate_are_answered(slack_server):
    assert slack_server.send_form(payloads.slash_command("支払い\x00方法を教えて")).status_code == 200
    form = payloads.button_click("intent:greet")
    payload = json.loads(parse_qs(form)["payload"][0])
    payload["actions"][0]["value"] = "intent:greet\ud800"
    assert slack_server.send_form(urlencode({"payload": json.dumps(payload)})).status_code == 200
    assert len(slack_server.deliver()) >= 2
    assert [event.status for event in slack_server.events()] == ["done", "done"]
    assert "支払い方法を教えて" in _conversation_texts(slack_server)


def test_a_slash_command_whose_text_says_payload_is_answered(slack_server):
    # Bolt reads any form holding the word "payload" as an interaction's payload field, and finds none.
    assert slack_server.send_form(payloads.slash_command("payload とは")).status_code == 200
    assert slack_server.deliver()
    [event] = slack_server.events()
    assert event.event_id.startswith("command:") and event.status == "done"


@pytest.mark.parametrize("field", ["user_id", "channel_id", "team_id"])
def test_a_slash_command_whose_ids_are_not_slack_ids_is_a_400(slack_server, field):
    form = parse_qs(payloads.slash_command("help"))
    response = slack_server.send_form(urlencode({**{k: v[0] for k, v in form.items()}, field: "u1\nx"}))
    assert response.status_code == 400 and f"{field} is not a Slack id" in response.text
    assert slack_server.events() == []


def test_a_button_under_a_message_whose_thread_ts_is_not_a_slack_ts_is_a_400(slack_server):
    payload = json.loads(parse_qs(payloads.button_click("intent:greet"))["payload"][0])
    payload["message"]["thread_ts"] = "ab"  # it would be posted back to Slack as the answer's thread
    response = slack_server.send_form(urlencode({"payload": json.dumps(payload)}))
    assert response.status_code == 400 and "message.thread_ts is not a Slack message ts" in response.text


def test_a_command_from_a_user_id_too_short_for_slack_is_a_400_and_nobody_is_looked_up(slack_server):
    form = parse_qs(payloads.slash_command("help"))
    response = slack_server.send_form(urlencode({**{k: v[0] for k, v in form.items()}, "user_id": "W"}))
    assert response.status_code == 400 and "user_id is not a Slack id" in response.text
    assert slack_server.fake.calls == []
