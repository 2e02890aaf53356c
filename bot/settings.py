"""Channel settings: LINE and Slack credentials and API hosts, read once at start-up like core's settings."""

from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# LINE's limit on pushes for a channel, in any second
# (https://developers.line.biz/en/reference/messaging-api/#rate-limits).
LINE_PUSH_LIMIT = 2_000
# What the bot paces its pushes to by default: requests bunch up on their way (threads, the network) and LINE counts
# them as they arrive. Paced at exactly 2,000 a second, 1 to 3 in 10,000 went over and were refused, and each 429
# holds the process's pushes back for its Retry-After (a second).
LINE_PUSH_PACE = 1_900


class ChannelSettings(BaseSettings):
    """LINE and Slack settings; a channel whose credentials are unset is simply not served."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    line_channel_secret: SecretStr | None = None
    line_channel_access_token: SecretStr | None = None
    line_api_base_url: str = Field("https://api.line.me", description="Messaging API host (tests: a fake)")
    line_access_base_url: str = Field("https://access.line.me", description="Where account linking ends")
    line_pushes_per_second: int = Field(
        LINE_PUSH_PACE, ge=0, le=LINE_PUSH_LIMIT,
        description="This process's pushes a second at most: its share of LINE's limit (0: not paced)")
    line_data_api_base_url: str = Field("https://api-data.line.me",
                                        description="Messaging API data host: rich menu images (tests: a fake)")

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = Field(None, description="xapp-… token: Socket Mode for local development")
    slack_api_base_url: str = Field("https://slack.com/api/", description="Web API host (tests: a fake)")
    slack_agent_channel: str | None = Field(None, pattern=r"^[CG][A-Z0-9]{2,30}$",
                                            description="ID of the agents' Slack channel (handoff tickets)")
    agent_lang: str = Field("ja", pattern="^(ja|en)$", description="Language of the agents' side of Slack")

    # How long a worker holds a claimed event before another may take it up: the worker renews it while it
    # works, so this only bounds how long a dead worker's events wait (a clean stop gives them back at once).
    inbox_lease_seconds: int = Field(120, ge=1, le=3600, description="Seconds a dead worker's events wait")

    # Single sign-on with the university's OpenID provider (bot/web/oidc.py); unset: sign-in by mailed link only.
    oidc_issuer: str | None = Field(None, description="The provider's issuer URL (its discovery document's base)")
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scope: str = Field("openid email", pattern=r"^openid( [A-Za-z0-9_:./-]+)*$",
                            description="Scopes to ask for; add the provider's scope that carries the student number")
    oidc_claim: str = Field("student_number", pattern=r"^(student_number|email|[a-z_][a-z0-9_:.-]{0,63})$",
                            description="The claim that names the student: a student number, or `email` (verified)")

    @field_validator("line_api_base_url", "line_access_base_url", "line_data_api_base_url", "slack_api_base_url",
                     "oidc_issuer")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http:// or https:// URL")
        return value

    @property
    def line_enabled(self) -> bool:
        """True when both LINE credentials are set."""
        return bool(self.line_channel_secret and self.line_channel_access_token)

    @property
    def oidc_enabled(self) -> bool:
        """True when the OpenID provider, client id and secret are set."""
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_client_secret)

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
