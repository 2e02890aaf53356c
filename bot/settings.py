"""Channel settings: LINE and Slack credentials and API hosts, read once at start-up like core's settings."""

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ChannelSettings(BaseSettings):
    """LINE and Slack settings; a channel whose credentials are unset is simply not served."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    line_channel_secret: str | None = None
    line_channel_access_token: str | None = None
    line_api_base_url: str = Field("https://api.line.me", description="Messaging API host (tests: a fake)")
    line_access_base_url: str = Field("https://access.line.me", description="Where account linking ends")

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = Field(None, description="xapp-… token: Socket Mode for local development")
    slack_api_base_url: str = Field("https://slack.com/api/", description="Web API host (tests: a fake)")
    slack_agent_channel: str | None = Field(None, pattern=r"^[CG][A-Z0-9]{2,30}$",
                                            description="ID of the agents' Slack channel (handoff tickets)")
    agent_lang: str = Field("ja", pattern="^(ja|en)$", description="Language of the agents' side of Slack")

    @field_validator("line_api_base_url", "line_access_base_url", "slack_api_base_url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http:// or https:// URL")
        return value

    @property
    def line_enabled(self) -> bool:
        """True when both LINE credentials are set."""
        return bool(self.line_channel_secret and self.line_channel_access_token)

    @property
    def slack_enabled(self) -> bool:
        """True when both Slack credentials are set."""
        return bool(self.slack_bot_token and self.slack_signing_secret)

    @property
    def agents_enabled(self) -> bool:
        """True when handoff tickets go to an agents' Slack channel."""
        return self.slack_enabled and bool(self.slack_agent_channel)


@lru_cache(maxsize=1)
def get_channel_settings() -> ChannelSettings:
    """The process's channel settings, read on first use."""
    return ChannelSettings()
