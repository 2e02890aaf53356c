"""The fake Slack Web API catches what real Slack would refuse, so a clean run of the other tests means
something: each kind of violation below is recorded, and a correct call records none."""

import json
from contextlib import suppress

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.channels.slack.fake_slack_api import FakeSlackApi
from tests.channels.slack.payloads import BOT_TOKEN, DM, STUDENT

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}


@pytest.fixture
def web(fake_slack: FakeSlackApi) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=fake_slack.base_url, retry_handlers=[])


def post(web: WebClient, **fields: str) -> None:
    with suppress(SlackApiError):  # the answer is not the point here; the recorded violations are
        web.api_call("chat.postMessage", data=fields)


def take_violations(fake: FakeSlackApi) -> list[str]:
    found, fake.violations[:] = list(fake.violations), []
    return found


def test_a_correct_message_records_no_violation(web, fake_slack):
    post(web, channel=DM, text="hello", blocks=json.dumps([SECTION]), unfurl_links="false")
    assert fake_slack.violations == []
    assert fake_slack.posts()[0].blocks == [SECTION]


@pytest.mark.parametrize(("fields", "expected"), [
    ({"text": "no channel"}, "'channel' is a required property"),
    ({"channel": DM, "text": "x", "unfurl_links": "perhaps"}, "boolean"),
    ({"channel": DM, "text": "x", "colour": "red"}, "arguments the spec does not list: ['colour']"),
    ({"channel": DM, "blocks": json.dumps([SECTION])}, "without a fallback text"),
    ({"channel": DM, "text": "x", "blocks": "[{"}, "blocks is not JSON"),
    ({"channel": DM, "text": "x", "blocks": json.dumps([{"type": "header", "text": {"type": "plain_text",
                                                                                     "text": "x" * 151}}])},
     "cannot exceed 150 characters"),
    ({"channel": DM, "text": "x", "blocks": json.dumps([{"type": "section", "fields": [SECTION["text"]] * 11}])},
     "cannot exceed 10 items"),
    ({"channel": DM, "text": "x", "blocks": json.dumps([{"type": "actions", "elements": [
        {"type": "button", "action_id": "a", "value": "v", "text": {"type": "plain_text", "text": "x" * 76}}]}])},
     "cannot exceed 75 characters"),
    ({"channel": DM, "text": "x", "blocks": json.dumps([{"type": "hologram"}])}, "not a known Block Kit block"),
    ({"channel": DM, "text": "x", "blocks": json.dumps([{**SECTION, "colour": "red"}])},
     "keys Block Kit does not know"),
    ({"channel": DM, "text": "x", "blocks": json.dumps([SECTION] * 51)}, "at most 50"),
], ids=["missing-channel", "bad-boolean", "unknown-argument", "no-fallback", "bad-json", "long-header",
        "eleven-fields", "long-button", "unknown-block", "unknown-key", "too-many-blocks"])
def test_each_kind_of_violation_is_recorded(web, fake_slack, fields, expected):
    post(web, **fields)
    assert any(expected in violation for violation in take_violations(fake_slack)), fields


def test_a_wrong_token_is_refused_and_recorded(fake_slack):
    web = WebClient(token="xoxb-not-the-bot", base_url=fake_slack.base_url, retry_handlers=[])
    with pytest.raises(SlackApiError, match="invalid_auth"):
        web.api_call("chat.postMessage", data={"channel": DM, "text": "x"})
    assert take_violations(fake_slack) == ["chat.postMessage: not the bot token"]


def test_a_method_missing_from_the_spec_is_recorded(web, fake_slack):
    web.api_call("chat.sendTelegram", data={"channel": DM})
    assert take_violations(fake_slack) == ["chat.sendTelegram: chat.sendTelegram is not a Web API method in the spec"]


def test_the_fake_answers_as_the_spec_says_and_can_be_told_to_fail(web, fake_slack):
    fake_slack.fail_next(1, status=429, retry_after=7)
    fake_slack.fail_next(1, status=500)
    with pytest.raises(SlackApiError) as limited:
        web.api_call("chat.postMessage", data={"channel": DM, "text": "x"})
    assert limited.value.response.status_code == 429 and limited.value.response.headers["retry-after"] == "7"
    with pytest.raises(SlackApiError) as broken:
        web.api_call("chat.postMessage", data={"channel": DM, "text": "x"})
    assert broken.value.response.status_code == 500
    answer = web.api_call("chat.postMessage", data={"channel": DM, "text": "x"})
    assert answer["ok"] and answer["channel"] == DM and answer["message"]["text"] == "x"
    assert [call.status for call in fake_slack.attempts()] == [429, 500, 200]
    assert fake_slack.violations == []


def test_users_info_answers_the_profile_a_test_sets_as_the_spec_says(web, fake_slack):
    assert web.users_info(user=STUDENT)["user"]["profile"]["email"] == "u0student01@people.example.com"
    fake_slack.set_profile(STUDENT, "taro.yamada@students.example.ac.jp")
    assert web.users_info(user=STUDENT)["user"]["profile"]["email"] == "taro.yamada@students.example.ac.jp"
    fake_slack.set_profile(STUDENT, None)  # as Slack answers an app without users:read.email
    assert "email" not in web.users_info(user=STUDENT)["user"]["profile"]
    fake_slack.fail_next(1, status=200, error="user_not_found", method="users.info")
    with pytest.raises(SlackApiError, match="user_not_found"):
        web.users_info(user=STUDENT)
    assert [call.params for call in fake_slack.attempts("users.info")] == [{"user": STUDENT}] * 4
    assert fake_slack.violations == []


def test_users_info_calls_and_answers_that_break_the_spec_are_recorded(web, fake_slack):
    web.api_call("users.info", data={"user": STUDENT, "colour": "red"})
    assert take_violations(fake_slack) == ["users.info: arguments the spec does not list: ['colour']"]
    web.users_info(user="U1")  # the spec's user ids have at least two characters after the U
    assert any("users.info answer breaks the spec at ['user']" in found for found in take_violations(fake_slack))


HOME = {"type": "home", "callback_id": "madoguchi.home", "private_metadata": "{}", "blocks": [SECTION]}


def publish(web: WebClient, **fields: str) -> dict | None:
    try:
        return web.api_call("views.publish", data=fields).data  # type: ignore[return-value]
    except SlackApiError:
        return None


def test_views_publish_answers_the_view_as_slack_stores_it_and_keeps_it_as_the_users_home(web, fake_slack):
    first = publish(web, user_id=STUDENT, view=json.dumps(HOME))
    second = publish(web, user_id=STUDENT, view=json.dumps(HOME))

    assert fake_slack.violations == []
    assert first["ok"] and first["view"]["type"] == "home" and first["view"]["private_metadata"] == "{}"
    assert first["view"]["id"] == second["view"]["id"] and first["view"]["hash"] != second["view"]["hash"]
    assert all(block["block_id"] for block in second["view"]["blocks"])  # Slack names each block
    assert fake_slack.home(STUDENT) == second["view"] and len(fake_slack.publishes()) == 2
    assert fake_slack.publishes()[0].blocks == [SECTION]


@pytest.mark.parametrize(("fields", "expected"), [
    ({"view": json.dumps(HOME)}, "'user_id' is a required property"),
    ({"user_id": STUDENT, "view": "{"}, "view is not JSON"),
    ({"user_id": STUDENT, "view": json.dumps({**HOME, "type": "modal"})}, "takes a home view"),
    ({"user_id": STUDENT, "view": json.dumps({**HOME, "blocks": [SECTION] * 101})}, "a Home view holds at most 100"),
    ({"user_id": STUDENT, "view": json.dumps({**HOME, "colour": "red"})}, "keys a view does not know: ['colour']"),
    ({"user_id": STUDENT, "view": json.dumps({**HOME, "private_metadata": "x" * 3001})}, "private_metadata"),
    ({"user_id": STUDENT, "view": json.dumps({**HOME, "blocks": [{**SECTION, "colour": "red"}]})},
     "keys Block Kit does not know"),
], ids=["no-user", "bad-json", "modal", "too-many-blocks", "unknown-view-key", "long-metadata", "bad-block"])
def test_each_kind_of_views_publish_violation_is_recorded_and_refused(web, fake_slack, fields, expected):
    answer = publish(web, **fields)
    assert any(expected in violation for violation in take_violations(fake_slack)), fields
    assert answer is None and fake_slack.home(STUDENT) is None
