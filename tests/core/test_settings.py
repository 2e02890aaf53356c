"""Settings: read from the environment and an optional .env file; a bad value is refused by name."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings

FIELDS = list(Settings.model_fields)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No setting from the machine running the tests, and no stray .env in the working directory."""
    for name in FIELDS:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def settings(**kwargs) -> Settings:
    return Settings(_env_file=None, **kwargs)  # type: ignore[call-arg]


def test_defaults():
    s = settings()
    assert s.data_dir == Path("var")
    assert s.database_url is None
    assert s.effective_database_url == "sqlite:///var/madoguchi.sqlite3"
    assert s.university_profile is None
    assert s.base_url == "http://127.0.0.1:8000"
    assert (s.smtp_host, s.smtp_port, s.smtp_starttls) == (None, 25, False)
    assert s.smtp_username is None and s.smtp_password is None
    assert s.mail_from == "madoguchi <no-reply@madoguchi.invalid>"
    assert s.payment_gateway == "sandbox"
    assert s.demo_data is True
    assert s.log_level == "INFO"
    assert s.outbox_dir == Path("var") / "outbox"
    assert s.nlu_model_path == Path("var") / "nlu-model.joblib"


def test_database_url_override(monkeypatch):
    url = "postgresql+psycopg://madoguchi:secret@db.example.ac.jp:5432/madoguchi"
    monkeypatch.setenv("DATABASE_URL", url)
    s = settings()
    assert s.database_url == url
    assert s.effective_database_url == url


def test_data_dir_moves_the_default_database_and_outbox(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    s = settings()
    assert s.data_dir == tmp_path / "data"
    assert s.effective_database_url == f"sqlite:///{(tmp_path / 'data' / 'madoguchi.sqlite3').as_posix()}"
    assert s.outbox_dir == tmp_path / "data" / "outbox"


def test_environment_values_are_typed(monkeypatch):
    monkeypatch.setenv("SMTP_HOST", "smtp.example.ac.jp")
    monkeypatch.setenv("SMTP_PORT", "587")
    monkeypatch.setenv("SMTP_STARTTLS", "true")
    monkeypatch.setenv("DEMO_DATA", "false")
    monkeypatch.setenv("UNIVERSITY_PROFILE", "/etc/madoguchi/other.yaml")
    monkeypatch.setenv("BASE_URL", "https://madoguchi.example.ac.jp/")
    s = settings()
    assert s.smtp_host == "smtp.example.ac.jp"
    assert s.smtp_port == 587
    assert s.smtp_starttls is True
    assert s.demo_data is False
    assert s.university_profile == Path("/etc/madoguchi/other.yaml")
    assert s.base_url == "https://madoguchi.example.ac.jp"  # no trailing slash, so links join cleanly


@pytest.mark.parametrize(("variable", "value", "setting"), [
    ("BASE_URL", "madoguchi.example.ac.jp", "base_url"),
    ("BASE_URL", "ftp://madoguchi.example.ac.jp", "base_url"),
    ("BASE_URL", "https://", "base_url"),  # a scheme with no host is no URL
    ("SMTP_PORT", "smtp", "smtp_port"),
    ("SMTP_PORT", "0", "smtp_port"),
    ("SMTP_PORT", "65536", "smtp_port"),
    ("PAYMENT_GATEWAY", "stripe", "payment_gateway"),
    ("PAYMENT_GATEWAY", "", "payment_gateway"),
    ("DEMO_DATA", "perhaps", "demo_data"),
])
def test_bad_value_names_the_setting(monkeypatch, variable, value, setting):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        settings()
    assert setting in str(caught.value)
    assert [error["loc"] for error in caught.value.errors()] == [(setting,)]


def test_every_bad_setting_is_named_at_once(monkeypatch):
    monkeypatch.setenv("BASE_URL", "example")
    monkeypatch.setenv("SMTP_PORT", "-1")
    monkeypatch.setenv("PAYMENT_GATEWAY", "paypal")
    monkeypatch.setenv("FULFILMENT", "netprint")
    with pytest.raises(ValidationError) as caught:
        settings()
    assert {error["loc"] for error in caught.value.errors()} == {("base_url",), ("smtp_port",),
                                                                 ("payment_gateway",), ("fulfilment",)}
    assert "unknown payment gateway 'paypal'" in str(caught.value)
    assert "unknown fulfilment adapter 'netprint'" in str(caught.value)


def test_dotenv_file_is_read(tmp_path):
    env_file = tmp_path / "custom.env"
    env_file.write_text(
        "# deployment settings\n"
        "DATABASE_URL=postgresql+psycopg://u@localhost/madoguchi\n"
        "BASE_URL=https://bot.example.ac.jp\n"
        "SMTP_PORT=2525\n"
        "MAIL_FROM=窓口 <madoguchi@example.ac.jp>\n"
        "SOMETHING_ELSE=ignored\n",
        encoding="utf-8")
    s = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert s.database_url == "postgresql+psycopg://u@localhost/madoguchi"
    assert s.base_url == "https://bot.example.ac.jp"
    assert s.smtp_port == 2525
    assert s.mail_from == "窓口 <madoguchi@example.ac.jp>"


def test_dotenv_in_working_directory_is_read_by_default(tmp_path):
    (tmp_path / ".env").write_text("SMTP_HOST=mail.example.ac.jp\n", encoding="utf-8")
    assert Settings().smtp_host == "mail.example.ac.jp"
    assert Settings(_env_file=None).smtp_host is None  # type: ignore[call-arg]


def test_environment_wins_over_dotenv(monkeypatch, tmp_path):
    env_file = tmp_path / "custom.env"
    env_file.write_text("SMTP_PORT=2525\nLOG_LEVEL=DEBUG\n", encoding="utf-8")
    monkeypatch.setenv("SMTP_PORT", "465")
    s = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert s.smtp_port == 465
    assert s.log_level == "DEBUG"


def test_bad_value_in_dotenv_names_the_setting(tmp_path):
    env_file = tmp_path / "custom.env"
    env_file.write_text("SMTP_PORT=twenty-five\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="smtp_port"):
        Settings(_env_file=env_file)  # type: ignore[call-arg]


def test_missing_dotenv_file_is_not_an_error(tmp_path):
    assert Settings(_env_file=tmp_path / "absent.env").smtp_port == 25  # type: ignore[call-arg]


def test_secrets_never_show_in_the_settings_repr():
    from bot.settings import ChannelSettings

    core_settings = Settings(_env_file=None, smtp_password="smtp-pw-123456", metrics_token="m" * 20)
    channel = ChannelSettings(_env_file=None, oidc_client_secret="oidc-secret-123456",
                              line_channel_secret="line-secret-123456", slack_bot_token="xoxb-token-123456")
    shown = repr(core_settings) + str(core_settings) + repr(channel) + str(channel)
    for secret in ("smtp-pw-123456", "m" * 20, "oidc-secret-123456", "line-secret-123456", "xoxb-token-123456"):
        assert secret not in shown
    assert core_settings.smtp_password.get_secret_value() == "smtp-pw-123456"  # the one call that needs it
