"""The fake LINE platform itself: it catches what the real one would refuse, so a silent fake cannot make
the other tests pass."""

import httpx
import pytest

from tests.channels.line.fake_line_api import LOADING, PUSH, REPLY

AUTH = {"Authorization": "Bearer t"}
GOOD = {"type": "text", "text": "hello"}


@pytest.fixture
def post(fake_line):
    def send(path, body, headers=None):
        return httpx.post(fake_line.url + path, json=body, headers={**AUTH, **(headers or {})})
    return send


@pytest.mark.parametrize(("path", "body", "headers", "expected"), [
    (REPLY, {"replyToken": "r", "messages": [{"type": "text"}]}, {}, "InvalidRequestBody"),
    (REPLY, {"replyToken": "r", "messages": [GOOD] * 6}, {}, "InvalidRequestBody"),
    (REPLY, {"replyToken": "r", "messages": [{"type": "text", "text": "x" * 5001}]}, {}, "UTF-16 units"),
    (REPLY, {"replyToken": "r", "messages": [{**GOOD, "quickReply": {"items": [
        {"type": "action", "action": {"type": "postback", "label": "a" * 21, "data": "d"}}]}}]}, {}, "action label"),
    (REPLY, {"replyToken": "r", "messages": [{"type": "flex", "altText": "a", "contents": {
        "type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [
            {"type": "text", "text": "x", "wrap": "yes"}]}}}]}, {}, "InvalidRequestBody"),
    (PUSH, {"to": "U1", "messages": [GOOD]}, {"X-Line-Retry-Key": "not-a-uuid"}, "X-Line-Retry-Key"),
    (PUSH, {"to": "U1", "messages": [GOOD]}, {"Authorization": ""}, "Security"),
    (LOADING, {"chatId": "U1", "loadingSeconds": 7}, {}, "multiple of 5"),
    ("/v2/bot/message/broadcast-typo", {"messages": [GOOD]}, {}, "does not serve"),
])
def test_the_fake_records_each_kind_of_violation(fake_line, post, path, body, headers, expected):
    post(path, body, headers)
    assert any(expected in violation for violation in fake_line.violations), fake_line.violations
    fake_line.violations.clear()  # expected here; any other test with a violation fails at teardown


def test_a_valid_reply_is_taken_once_per_reply_token(fake_line, post):
    body = {"replyToken": "r1", "messages": [GOOD]}
    assert post(REPLY, body).status_code == 200
    second = post(REPLY, body)
    assert second.status_code == 400 and second.json()["message"] == "Invalid reply token"
    assert len(fake_line.deliveries()) == 1 and fake_line.violations == []


def test_a_push_retry_key_is_accepted_once_then_409(fake_line, post):
    key = {"X-Line-Retry-Key": "123e4567-e89b-12d3-a456-426614174000"}
    assert post(PUSH, {"to": "U1", "messages": [GOOD]}, key).status_code == 200
    assert post(PUSH, {"to": "U1", "messages": [GOOD]}, key).status_code == 409
    assert len(fake_line.deliveries()) == 1 and fake_line.violations == []
