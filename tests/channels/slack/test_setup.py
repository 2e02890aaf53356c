"""The Slack app as configured: the manifest matches what the code serves and answers, the channel
refuses to start without its credentials, and Socket Mode needs its app token."""

from pathlib import Path

import pytest
import yaml

from bot.channels import slack
from bot.channels.slack import DEFAULT_COMMAND, EVENTS_PATH, SlackChannel, run_socket_mode
from bot.channels.slack_payloads import EVENT_FILTERS
from bot.settings import ChannelSettings

MANIFEST = Path(slack.__file__).resolve().parents[1] / "slack_manifest.yaml"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def test_every_request_url_is_the_events_route(manifest):
    settings = manifest["settings"]
    urls = [settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"],
            *(command["url"] for command in manifest["features"]["slash_commands"])]
    assert all(url.startswith("https://") and url.endswith(EVENTS_PATH) for url in urls), urls
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is False  # HTTP in production


def test_the_manifest_subscribes_to_exactly_the_events_answered(manifest):
    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    # message.channels and message.groups carry the agents' thread replies (only that channel is read);
    # app_home_opened asks for the Home tab's view.
    assert subscribed == {"app_mention", "app_home_opened", "message.im", "message.channels", "message.groups"}
    assert {event.split(".")[0] for event in subscribed} == set(EVENT_FILTERS)


def test_the_command_and_the_scopes_match_the_code(manifest):
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == DEFAULT_COMMAND
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read", "chat:write", "commands", "im:history", "im:write", "users:read", "users:read.email",
        "channels:history", "groups:history"}
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True


def test_the_home_tab_is_enabled_and_its_event_subscribed(manifest):
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert "app_home_opened" in EVENT_FILTERS  # answered, not acknowledged and ignored


def test_the_channel_needs_both_credentials(core):
    for missing in ({"slack_bot_token": None}, {"slack_signing_secret": None}):
        settings = ChannelSettings(_env_file=None, **{"slack_bot_token": "xoxb-1", "slack_signing_secret": "s",  # type: ignore[call-arg]
                                                      **missing})
        with pytest.raises(ValueError, match="SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET"):
            SlackChannel(core, pipeline=None, settings=settings)  # type: ignore[arg-type]


def test_socket_mode_needs_the_app_token(core):
    settings = ChannelSettings(_env_file=None, slack_bot_token="xoxb-1", slack_signing_secret="s",  # type: ignore[call-arg]
                               slack_app_token=None)
    channel = SlackChannel(core, pipeline=None, settings=settings)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="SLACK_APP_TOKEN"):
        run_socket_mode(channel, inbox=None)  # type: ignore[arg-type]
