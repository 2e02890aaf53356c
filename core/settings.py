"""Settings: one typed object read once at start-up from the environment and an optional .env file."""

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SchedulerMode(StrEnum):
    """Where `madoguchi serve` runs the reminder scheduler."""

    EMBEDDED = "embedded"  # in the web process (on PostgreSQL, of several processes one leads)
    OFF = "off"  # not here: `madoguchi scheduler` runs it (web workers of a multi-worker deployment)


class LogFormat(StrEnum):
    """How log lines are written to stderr."""

    AUTO = "auto"  # JSON when stderr is not a terminal (a platform collects it), text in a terminal
    JSON = "json"  # one JSON object per line
    TEXT = "text"  # one readable line


def secret_value(secret: SecretStr | None) -> str:
    """A secret setting's value for the one call that needs it ("" when unset); everywhere else, including
    `repr(settings)` and error messages, it shows as `**********`."""
    return secret.get_secret_value() if secret is not None else ""


class Settings(BaseSettings):
    """Every setting madoguchi reads; a missing or bad value stops start-up with its name."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Where the SQLite database, outbox and model live.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite in data_dir.")
    university_profile: Path | None = Field(None, description="Profile YAML; default: the shipped one.")
    base_url: str = Field("http://127.0.0.1:8000", description="Public URL used in links; never the Host header.")

    smtp_host: str | None = None
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "madoguchi <no-reply@madoguchi.invalid>"

    payment_gateway: str = Field("sandbox", description="Which PaymentGateway adapter to use.")
    fulfilment: str = Field("sandbox", description="Which FulfilmentPort adapter gives print numbers.")
    demo_data: bool = Field(True, description="Load demo students into an empty database on first run.")
    log_level: str = "INFO"
    log_format: LogFormat = Field(LogFormat.AUTO, description="json, text, or auto (json unless a terminal).")
    metrics_token: SecretStr | None = Field(None, min_length=16,
                                      description="If set, GET /metrics needs `Authorization: Bearer <it>`.")
    scheduler: SchedulerMode = Field(SchedulerMode.EMBEDDED, description="Run the reminder scheduler in serve.")

    @field_validator("base_url")
    @classmethod
    def _base_url_is_absolute(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL with a host")
        return value.rstrip("/")

    @field_validator("payment_gateway", "fulfilment")
    @classmethod
    def _known_adapter(cls, value: str, info: ValidationInfo) -> str:
        what = "payment gateway" if info.field_name == "payment_gateway" else "fulfilment adapter"
        if value != "sandbox":  # the only adapter of each port that ships
            raise ValueError(f"unknown {what} {value!r}; known: sandbox")
        return value

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or a SQLite file inside data_dir."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'madoguchi.sqlite3').as_posix()}"

    @property
    def outbox_dir(self) -> Path:
        """Folder where mail is written as .eml files when no SMTP host is set."""
        return self.data_dir / "outbox"

    @property
    def nlu_model_path(self) -> Path:
        """Where `madoguchi nlu train` writes the intent model and the service loads it."""
        return self.data_dir / "nlu-model.joblib"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read on first use (never at import time)."""
    return Settings()
