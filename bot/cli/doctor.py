"""`madoguchi doctor`'s checks: settings, profile, database, mail, LINE and Slack, each a result in plain words."""

import os
import smtplib
import socket
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import httpx
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from bot.runtime import StartupError, load_channel_settings, load_settings
from bot.settings import ChannelSettings
from bot.web.oidc import SignOnFailed, discover
from core import migrate
from core.db import make_engine
from core.masking import mask_token
from core.profile import ProfileError, load_profile
from core.settings import Settings, secret_value

TIMEOUT_SECONDS = 5.0  # each network check gives up after this long: the doctor answers quickly


class Outcome(StrEnum):
    """How one check went."""

    OK = "ok"
    PROBLEM = "PROBLEM"
    SKIPPED = "skipped"  # not configured (a channel left unset), or depends on a check that failed


@dataclass(frozen=True)
class Result:
    """One check's outcome, in words an operator can act on (never a secret)."""

    name: str
    outcome: Outcome
    detail: str

    @property
    def line(self) -> str:
        """The line `madoguchi doctor` prints."""
        if self.outcome is Outcome.PROBLEM:
            return f"{self.name}: PROBLEM: {self.detail}"
        return f"{self.name}: {self.outcome.value}{f' ({self.detail})' if self.detail else ''}"


def ok(name: str, detail: str = "") -> Result:
    """A passed check."""
    return Result(name, Outcome.OK, detail)


def problem(name: str, detail: str) -> Result:
    """A failed check: `detail` says what is wrong and how to fix it."""
    return Result(name, Outcome.PROBLEM, detail)


def skipped(name: str, detail: str) -> Result:
    """A check not run, and why."""
    return Result(name, Outcome.SKIPPED, detail)


# --- the checks -----------------------------------------------------------------------------------------


def check_settings() -> tuple[Result, Settings | None]:
    """The core settings from the environment and .env; the settings when they are valid."""
    try:
        settings = load_settings()
    except StartupError as error:
        return problem("settings", f"{error} (fix the environment variable(s) or .env)"), None
    return ok("settings"), settings


def check_channel_settings() -> tuple[Result, ChannelSettings | None]:
    """The LINE and Slack settings; the settings when they are valid."""
    try:
        settings = load_channel_settings()
    except StartupError as error:
        return problem("channel settings", f"{error} (fix the environment variable(s) or .env)"), None
    return ok("channel settings"), settings


def check_profile(settings: Settings) -> Result:
    """The university profile (UNIVERSITY_PROFILE, or the shipped one) reads and validates."""
    try:
        profile = load_profile(settings.university_profile)
    except ProfileError as error:
        return problem("profile", f"{error} (fix the file, or unset UNIVERSITY_PROFILE to use the shipped one)")
    unconfirmed = len(profile.to_confirm())
    return ok("profile", f"{profile.id}, chats kept {profile.retention_days} days"
                         + (f", {unconfirmed} values to confirm (below)" if unconfirmed else ""))


def values_to_confirm() -> tuple[Path | None, list[str]]:
    """The profile's values still marked as examples or assumptions (`UniversityProfile.to_confirm`), with the
    profile's file; none when the settings or the profile do not load (their checks say why)."""
    try:
        settings = load_settings()
        return settings.university_profile, load_profile(settings.university_profile).to_confirm()
    except (StartupError, ProfileError):
        return None, []


def check_database(settings: Settings) -> Result:
    """The database answers and is at the code's newest migration."""
    url = settings.effective_database_url
    try:
        file = make_url(url).database if url.startswith("sqlite") else None
    except ArgumentError:
        file = None
    if file and file != ":memory:" and not Path(file).exists():  # connecting would create an empty file
        return problem("database", f"no database at {file} yet: run `madoguchi db upgrade` "
                                   "(on SQLite `madoguchi serve` also creates it)")
    try:
        engine = make_engine(url, **({} if url.startswith("sqlite") else {"connect_args": {"connect_timeout": 5}}))
    except (SQLAlchemyError, ValueError, ImportError) as error:
        return problem("database", f"DATABASE_URL is not a usable database URL ({type(error).__name__}); "
                                   "expected e.g. postgresql+psycopg://user:password@host:5432/name")
    shown = engine.url.render_as_string(hide_password=True)
    try:
        current = migrate.current_revision(engine)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0][:200] if str(error) else "no answer"
        return problem("database", f"cannot connect to {shown}: {reason} (check DATABASE_URL and that the "
                                   "server is running)")
    finally:
        engine.dispose()
    head = migrate.head_revision()
    if current == head:
        return ok("database", f"{shown}, migration {current}")
    if current is None:
        return problem("database", f"{shown} has no tables yet: run `madoguchi db upgrade`")
    if current in _known_revisions():
        return problem("database", f"{shown} is at migration {current}, the code needs {head}: "
                                   "run `madoguchi db upgrade`")
    return problem("database", f"{shown} is at migration {current}, which this code does not know (newer code "
                               "migrated it?): deploy the matching release")


def _known_revisions() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


def check_mail(settings: Settings, *, timeout: float = TIMEOUT_SECONDS,
               tls_context: ssl.SSLContext | None = None) -> Result:
    """SMTP_HOST answers (EHLO, STARTTLS and login as configured); without it, the outbox folder is writable."""
    if not settings.smtp_host:
        return _check_outbox(settings.outbox_dir)
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                if not smtp.has_extn("starttls"):
                    return problem("mail", f"the SMTP server {where} does not offer STARTTLS: unset SMTP_STARTTLS "
                                           "or use the server's submission port")
                smtp.starttls(context=tls_context or ssl.create_default_context())
                smtp.ehlo()
            if settings.smtp_username:
                if not smtp.has_extn("auth"):
                    return problem("mail", f"the SMTP server {where} does not offer login (AUTH): unset "
                                           "SMTP_USERNAME, or turn on SMTP_STARTTLS if it offers AUTH only after it")
                smtp.login(settings.smtp_username, secret_value(settings.smtp_password))
    except smtplib.SMTPAuthenticationError:
        return problem("mail", f"the SMTP server {where} refused SMTP_USERNAME/SMTP_PASSWORD: check them")
    except ssl.SSLError as error:
        return problem("mail", f"STARTTLS with {where} failed ({error.reason or 'TLS error'}): check the server's "
                               "certificate and SMTP_HOST (it must match the certificate's name)")
    except TimeoutError:
        return problem("mail", f"the SMTP server {where} did not answer within {timeout:g} s: check SMTP_HOST, "
                               "SMTP_PORT and the firewall")
    except ConnectionRefusedError:
        return problem("mail", f"nothing listens at {where}: check SMTP_HOST and SMTP_PORT")
    except socket.gaierror:
        return problem("mail", f"the host name {settings.smtp_host!r} does not resolve: check SMTP_HOST")
    except (OSError, smtplib.SMTPException) as error:
        return problem("mail", f"the SMTP server {where} failed: {type(error).__name__}: {error}")
    login = f", signed in as {settings.smtp_username}" if settings.smtp_username else ""
    return ok("mail", f"SMTP {where}{', STARTTLS' if settings.smtp_starttls else ''}{login}")


def _check_outbox(outbox: Path) -> Result:
    folder = outbox
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the outbox is created on the first mail: its nearest existing parent must allow it
    try:
        if not folder.is_dir():
            raise NotADirectoryError(str(folder))
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        return problem("mail", f"no SMTP_HOST, and the mail outbox {outbox} is not writable ({reason}): fix its "
                               "permissions or DATA_DIR, or set SMTP_HOST")
    return ok("mail", f"no SMTP_HOST: mail is written to {outbox}")


def check_line(settings: ChannelSettings, *, timeout: float = TIMEOUT_SECONDS) -> Result:
    """The channel access token is accepted by LINE (the bot's info is fetched with it)."""
    from linebot.v3.messaging import ApiClient, ApiException, Configuration, MessagingApi

    if not (settings.line_channel_secret or settings.line_channel_access_token):
        return skipped("LINE", "not configured")
    if not settings.line_enabled:
        missing = "LINE_CHANNEL_ACCESS_TOKEN" if settings.line_channel_secret else "LINE_CHANNEL_SECRET"
        return problem("LINE", f"{missing} is not set: LINE needs both the channel secret and the access token")
    token = mask_token(secret_value(settings.line_channel_access_token))
    configuration = Configuration(host=settings.line_api_base_url.rstrip("/"),
                                  access_token=secret_value(settings.line_channel_access_token))
    try:
        with ApiClient(configuration) as client:
            info = MessagingApi(client).get_bot_info(_request_timeout=timeout)
    except ApiException as error:
        if error.status in (401, 403):
            return problem("LINE", f"LINE refused the channel access token ({token}): it is wrong, expired or "
                                   "revoked; issue a long-lived token in the LINE Developers Console (Messaging API "
                                   "tab) and set LINE_CHANNEL_ACCESS_TOKEN")
        return problem("LINE", f"the LINE API at {settings.line_api_base_url} answered HTTP {error.status}: "
                               "try again later, or check LINE_API_BASE_URL")
    except Exception as error:  # urllib3's connection and timeout errors, under several names
        return problem("LINE", f"cannot reach the LINE API at {settings.line_api_base_url} "
                               f"({type(error).__name__}): check the network, or LINE_API_BASE_URL")
    return ok("LINE", f"bot {info.display_name} ({info.basic_id}), token {token}")


def check_rich_menu(settings: ChannelSettings) -> Result:
    """LINE has a default rich menu (the Japanese one `madoguchi line richmenu deploy` sets)."""
    from bot.channels.line.richmenu_api import RichMenuAdmin, RichMenuError

    admin = RichMenuAdmin(settings)
    try:
        default = admin.default_menu()
    except RichMenuError as error:
        return problem("LINE rich menu", f"{error}")
    finally:
        admin.close()
    if default is None:
        return problem("LINE rich menu", "no default rich menu: students on LINE see no menu under the chat; run "
                                         "`madoguchi line richmenu deploy`")
    return ok("LINE rich menu", f"default {default}")


def _rich_menu_after(line: Result, channels: ChannelSettings | None) -> Result:
    """The rich menu check, when the LINE check passed (it needs a working token)."""
    if channels is None or line.outcome is not Outcome.OK:
        return skipped("LINE rich menu", line.detail if line.outcome is Outcome.SKIPPED else "fix LINE first")
    return check_rich_menu(channels)


def check_slack(settings: ChannelSettings, *, timeout: float = TIMEOUT_SECONDS) -> Result:
    """The bot token is accepted by Slack (auth.test)."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    if not (settings.slack_bot_token or settings.slack_signing_secret):
        return skipped("Slack", "not configured")
    if not settings.slack_enabled:
        missing = "SLACK_SIGNING_SECRET" if settings.slack_bot_token else "SLACK_BOT_TOKEN"
        return problem("Slack", f"{missing} is not set: Slack needs both the bot token and the signing secret")
    token = mask_token(secret_value(settings.slack_bot_token))
    client = WebClient(token=secret_value(settings.slack_bot_token), base_url=settings.slack_api_base_url,
                       timeout=int(timeout) or 1)
    try:
        answer = client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error") if isinstance(error.response.data, dict) else None
        if code in {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}:
            return problem("Slack", f"Slack refused SLACK_BOT_TOKEN ({token}): {code}; copy the Bot User OAuth "
                                    "Token (xoxb-…) from the app's OAuth & Permissions page")
        return problem("Slack", f"Slack's auth.test failed ({code or f'HTTP {error.response.status_code}'}): "
                                "try again later")
    except Exception as error:  # connection refused, timeouts, DNS: under several names
        return problem("Slack", f"cannot reach the Slack API at {settings.slack_api_base_url} "
                                f"({type(error).__name__}): check the network, or SLACK_API_BASE_URL")
    if not token.startswith("xoxb"):
        return problem("Slack", f"SLACK_BOT_TOKEN ({token}) works but is not a bot token (xoxb-…): use the Bot "
                                "User OAuth Token")
    agents = f", agents' channel {settings.slack_agent_channel}" if settings.slack_agent_channel else ""
    return ok("Slack", f"workspace {answer.get('team')}, bot user {answer.get('user')}{agents}")


# --- all of them ----------------------------------------------------------------------------------------


def check_sign_on(settings: ChannelSettings, *, timeout: float = TIMEOUT_SECONDS) -> Result:
    """The OpenID provider's discovery document can be read, and its token endpoint accepts the client: a bogus
    code is refused as `invalid_grant` (the client was accepted), never as `invalid_client`."""
    if not (settings.oidc_issuer or settings.oidc_client_id or settings.oidc_client_secret):
        return skipped("single sign-on", "not configured (students sign in by a mailed link)")
    if not settings.oidc_enabled:
        missing = [name for name, value in (("OIDC_ISSUER", settings.oidc_issuer),
                                            ("OIDC_CLIENT_ID", settings.oidc_client_id),
                                            ("OIDC_CLIENT_SECRET", settings.oidc_client_secret)) if not value]
        return problem("single sign-on", f"{', '.join(missing)} not set: single sign-on needs all three")
    try:
        provider = discover(settings)
    except SignOnFailed as failed:
        return problem("single sign-on", f"cannot read {settings.oidc_issuer}/.well-known/openid-configuration "
                                         f"({failed}): check OIDC_ISSUER")
    try:
        answer = httpx.post(provider.token_endpoint, timeout=timeout,
                            auth=(settings.oidc_client_id or "", secret_value(settings.oidc_client_secret)),
                            data={"grant_type": "authorization_code", "code": "madoguchi-doctor-check",
                                  "redirect_uri": "https://madoguchi.invalid/doctor"})
        error = answer.json().get("error")
    except (httpx.HTTPError, ValueError) as failure:
        return problem("single sign-on", f"the token endpoint {provider.token_endpoint} failed: {failure}")
    if error == "invalid_client":
        return problem("single sign-on", "the provider refused OIDC_CLIENT_ID/OIDC_CLIENT_SECRET: check them")
    return ok("single sign-on", f"{provider.issuer}, client accepted, the student from claim "
                                f"{settings.oidc_claim!r}")


def check_handoff(settings: Settings, channels: ChannelSettings) -> Result:
    """A student who asks for a person reaches someone: Slack's agents' channel, or staff accounts that may
    answer in the web inbox (/admin/inbox)."""
    from core import staff

    slack = f"Slack's agents' channel {channels.slack_agent_channel}" if channels.agents_enabled else ""
    engine = make_engine(settings.effective_database_url)
    try:
        with Session(engine) as session:
            counts = staff.enabled_by_role(session)
    except SQLAlchemyError:
        return skipped("handoff desk", "fix the database first")
    finally:
        engine.dispose()
    web = (f"web inbox: {counts.get(staff.Role.AGENT.value, 0)} agent(s), {counts.get(staff.Role.ADMIN.value, 0)} "
           f"admin(s)" if counts else "")
    if channels.slack_agent_channel and not channels.slack_enabled:
        return problem("handoff desk", "SLACK_AGENT_CHANNEL is set but Slack is not (SLACK_BOT_TOKEN and "
                                       "SLACK_SIGNING_SECRET): tickets cannot reach it")
    if not slack and not web:
        return problem("handoff desk", "no one can take a student's request for a person: no agents' Slack channel "
                                       "(SLACK_AGENT_CHANNEL) and no staff account for the web inbox; add one with "
                                       "`madoguchi staff add EMAIL --role agent --name NAME` (until then students "
                                       "who ask are told to call)")
    if not counts.get(staff.Role.AGENT.value) and not slack:
        return ok("handoff desk", f"{web}; no account has the agent role, so only admins answer at /admin/inbox")
    return ok("handoff desk", "; ".join(part for part in (slack, web) if part))


def run_checks(*, mail_timeout: float = TIMEOUT_SECONDS) -> list[Result]:
    """Every check in order; those that need valid settings are skipped when the settings are not."""
    results: list[Result] = []
    settings_result, settings = check_settings()
    results.append(settings_result)
    channel_result, channels = check_channel_settings()
    results.append(channel_result)
    core_checks: list[tuple[str, Callable[[Settings], Result]]] = [
        ("profile", check_profile), ("database", check_database),
        ("mail", lambda s: check_mail(s, timeout=mail_timeout))]
    for name, check in core_checks:
        results.append(check(settings) if settings else skipped(name, "fix the settings first"))
    for name, channel_check in (("LINE", check_line), ("Slack", check_slack), ("single sign-on", check_sign_on)):
        results.append(channel_check(channels) if channels else skipped(name, "fix the channel settings first"))
        if name == "LINE":
            results.append(_rich_menu_after(results[-1], channels))
    database_ok = any(result.name == "database" and result.outcome is Outcome.OK for result in results)
    results.append(check_handoff(settings, channels) if settings and channels and database_ok
                   else skipped("handoff desk", "fix the settings and the database first"))
    return results


def environment_hint() -> str:
    """Where the settings were read from, for the report's first line."""
    env_file = Path(".env")
    return f"settings from the environment{' and ' + str(env_file.resolve()) if env_file.exists() else ''}" \
           f" (in {os.getcwd()})"
