"""`madoguchi doctor`: every check against the real thing on loopback (the test database, aiosmtpd, the fake
LINE and Slack APIs), a line per check saying what is wrong and how to fix it, no secret printed, exit 1 on
any problem."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from alembic.config import Config
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from bot.cli.commands import main
from bot.cli.doctor import Outcome, check_database, check_mail, run_checks
from bot.cli.ops import doctor
from bot.settings import ChannelSettings
from core import migrate, staff
from core.db import make_engine
from core.settings import Settings
from tests.channels.conftest import served
from tests.channels.line.fake_line_api import FakeLineApi
from tests.channels.slack.fake_slack_api import FakeSlackApi, running
from tests.channels.slack.payloads import BOT_TOKEN, SIGNING_SECRET
from tests.conftest import Inbox, free_port

LINE_TOKEN = "line-channel-access-token-0123456789abcdef"
LINE_SECRET = "0123456789abcdef0123456789abcdef"
SMTP_PASSWORD = "smtp-password-9876"
STAFF_PASSWORD = "correct horse battery"
AGENT_CHANNEL = "C0AGENTS01"
SETTING_NAMES = {name.upper() for kind in (Settings, ChannelSettings) for name in kind.model_fields}


@pytest.fixture(scope="module")
def fake_line() -> Iterator[FakeLineApi]:
    """The fake LINE platform, accepting only LINE_TOKEN."""
    fake = FakeLineApi()
    with served(fake.app) as url:
        fake.bind(url)
        yield fake


@pytest.fixture
def line_api(fake_line: FakeLineApi) -> Iterator[FakeLineApi]:
    fake_line.reset()
    fake_line.access_token = LINE_TOKEN
    yield fake_line
    assert fake_line.violations == [], "\n".join(fake_line.violations)


@pytest.fixture
def slack_api() -> Iterator[FakeSlackApi]:
    with running(BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine, smtp_server):
    """A clean environment (no .env, no inherited settings) pointing at the test database and SMTP server;
    tests add or change variables with `set`."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    controller, _ = smtp_server
    values = {"DATA_DIR": str(tmp_path / "var"), "DATABASE_URL": engine.url.render_as_string(hide_password=False),
              "SMTP_HOST": controller.hostname, "SMTP_PORT": str(controller.port)}

    class Env:
        def set(self, **changes: str | None) -> None:
            for name, value in changes.items():
                if value is None:
                    monkeypatch.delenv(name, raising=False)
                else:
                    monkeypatch.setenv(name, value)

    env = Env()
    env.set(**values)
    return env


@pytest.fixture
def web_agent(core) -> None:
    """An agent account for the web inbox (/admin/inbox): someone can take a handoff, without Slack. The core
    fixture empties the tables after the test."""
    with core.transaction() as session:
        staff.create_account(session, "yamada@example.ac.jp", STAFF_PASSWORD, core.now(), role=staff.Role.AGENT,
                             display_name="山田")


def doctor_output() -> tuple[int, dict[str, str], str]:
    """Run `madoguchi doctor`; its exit code, its lines by check name, and the whole output."""
    result = CliRunner().invoke(doctor, [])
    lines = {}
    for line in result.output.splitlines()[1:-1]:
        if line.startswith(("to confirm with the university", "  - ")):
            continue  # the profile's values to confirm: not checks (test_the_values_to_confirm_are_listed)
        name, _, rest = line.partition(": ")
        lines[name] = rest
    return result.exit_code, lines, result.output


def channels(env, line: FakeLineApi, slack: FakeSlackApi, *, rich_menu: bool = True) -> None:
    """LINE and Slack pointed at their fakes; LINE with a default rich menu unless `rich_menu` is False."""
    env.set(LINE_CHANNEL_SECRET=LINE_SECRET, LINE_CHANNEL_ACCESS_TOKEN=LINE_TOKEN, LINE_API_BASE_URL=line.url,
            LINE_DATA_API_BASE_URL=line.data_url,
            SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_BASE_URL=slack.base_url)
    if rich_menu:
        line.richmenus.default = line.richmenus.add({"name": "madoguchi-ja-0", "size": {"width": 2500, "height": 843}})


def test_all_ok_exits_0_with_a_line_per_check_and_no_secret(environment, line_api, slack_api, web_agent):
    channels(environment, line_api, slack_api, rich_menu=False)
    deployed = CliRunner().invoke(main, ["line", "richmenu", "deploy"])
    assert deployed.exit_code == 0, deployed.output
    code, lines, output = doctor_output()

    assert code == 0, output
    assert set(lines) == {"settings", "channel settings", "profile", "database", "mail", "LINE", "LINE rich menu",
                          "Slack", "single sign-on", "handoff desk"}
    assert lines.pop("single sign-on").startswith("skipped")  # not configured: students sign in by mailed link
    assert all(line.startswith("ok") for line in lines.values()), output
    assert output.rstrip().endswith("all good")
    assert f"migration {migrate.head_revision()}" in lines["database"]
    assert "uoeh, chats kept 180 days" in lines["profile"]
    assert "窓口 (fake)" in lines["LINE"] and "line…" in lines["LINE"]
    assert lines["LINE rich menu"] == f"ok (default {line_api.richmenus.default})"
    assert "bot user madoguchi" in lines["Slack"]
    for secret in (LINE_TOKEN, LINE_SECRET, BOT_TOKEN, SIGNING_SECRET):
        assert secret not in output
    [info] = line_api.calls_to("/v2/bot/info")
    assert len(line_api.calls_to("/v2/bot/user/all/richmenu")) == 2  # the deploy's look, and the doctor's
    assert info.headers["authorization"] == f"Bearer {LINE_TOKEN}"
    assert [call.method for call in slack_api.calls] == ["auth.test"] and not slack_api.violations


def test_unset_channels_are_skipped_not_problems(environment, web_agent):
    code, lines, output = doctor_output()
    assert code == 0, output
    assert lines["LINE"] == "skipped (not configured)" and lines["Slack"] == "skipped (not configured)"
    assert lines["LINE rich menu"] == "skipped (not configured)"


def test_a_bad_setting_is_named_and_the_checks_that_need_it_are_skipped(environment):
    environment.set(SMTP_PORT="seventy")
    code, lines, output = doctor_output()
    assert code == 1
    assert lines["settings"].startswith("PROBLEM: bad setting(s): SMTP_PORT:")
    assert lines["database"] == "skipped (fix the settings first)"
    assert lines["handoff desk"] == "skipped (fix the settings and the database first)"
    assert output.rstrip().endswith("1 problem(s) to fix")


def test_a_bad_channel_setting_is_named(environment):
    environment.set(SLACK_AGENT_CHANNEL="#agents")
    code, lines, _ = doctor_output()
    assert code == 1 and "SLACK_AGENT_CHANNEL" in lines["channel settings"]
    assert lines["LINE"] == "skipped (fix the channel settings first)"


def test_a_bad_profile_is_named_with_its_file_and_key(environment, tmp_path):
    from core.profile import SHIPPED_PROFILE

    profile = tmp_path / "profile.yaml"
    profile.write_text(SHIPPED_PROFILE.read_text(encoding="utf-8").replace("retention_days: 180", "retention_days: 0"),
                       encoding="utf-8")
    environment.set(UNIVERSITY_PROFILE=str(profile))
    code, lines, _ = doctor_output()
    assert code == 1 and str(profile) in lines["profile"] and "retention_days" in lines["profile"]


# --- the database -------------------------------------------------------------------------------------


def previous_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    revision = ScriptDirectory.from_config(config).get_revision(migrate.head_revision())
    assert revision is not None and isinstance(revision.down_revision, str)
    return revision.down_revision


def test_a_database_one_migration_behind_is_told_to_upgrade(environment, tmp_path):
    behind = previous_revision()
    engine = make_engine(f"sqlite:///{tmp_path / 'behind.sqlite3'}")
    migrate.upgrade(engine, behind)
    engine.dispose()
    environment.set(DATABASE_URL=f"sqlite:///{tmp_path / 'behind.sqlite3'}")
    code, lines, _ = doctor_output()
    assert code == 1
    assert lines["database"] == (f"PROBLEM: sqlite:///{tmp_path / 'behind.sqlite3'} is at migration {behind}, the "
                                 f"code needs {migrate.head_revision()}: run `madoguchi db upgrade`")
    assert lines["handoff desk"] == "skipped (fix the settings and the database first)"


def test_a_missing_sqlite_database_is_not_created_by_the_doctor(tmp_path):
    settings = Settings(data_dir=tmp_path / "var", _env_file=None)  # type: ignore[call-arg]
    result = check_database(settings)
    assert result.outcome is Outcome.PROBLEM and "run `madoguchi db upgrade`" in result.detail
    assert not (tmp_path / "var" / "madoguchi.sqlite3").exists()


def test_an_unreachable_database_is_reported_without_its_password(tmp_path):
    url = f"postgresql+psycopg://madoguchi:db-secret-123@127.0.0.1:{free_port()}/madoguchi"
    settings = Settings(data_dir=tmp_path, database_url=url, _env_file=None)  # type: ignore[call-arg]
    result = check_database(settings)
    assert result.outcome is Outcome.PROBLEM
    assert result.detail.startswith("cannot connect to postgresql+psycopg://madoguchi:***@127.0.0.1:")
    assert "db-secret-123" not in result.detail and "check DATABASE_URL" in result.detail


# --- mail ---------------------------------------------------------------------------------------------


def test_an_unreachable_smtp_port_is_a_problem(environment):
    environment.set(SMTP_PORT=str(free_port()))
    code, lines, _ = doctor_output()
    assert code == 1
    assert lines["mail"].startswith("PROBLEM: nothing listens at 127.0.0.1:") and "SMTP_PORT" in lines["mail"]


@pytest.fixture
def smtp_with_login() -> Iterator[Controller]:
    """aiosmtpd asking for a login (allowed without TLS here: loopback only)."""

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 on a failure

    controller = Controller(Inbox(), hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    yield controller
    controller.stop()


@pytest.mark.parametrize(("password", "fine"), [(SMTP_PASSWORD, True), ("wrong-password", False)])
def test_smtp_login_is_tried(tmp_path, smtp_with_login, password, fine):
    settings = Settings(data_dir=tmp_path, smtp_host=smtp_with_login.hostname, smtp_port=smtp_with_login.port,  # type: ignore[call-arg]
                        smtp_username="madoguchi", smtp_password=password, _env_file=None)
    result = check_mail(settings)
    assert (result.outcome is Outcome.OK) is fine, result.line
    assert password not in result.line
    if not fine:
        assert result.detail.endswith("refused SMTP_USERNAME/SMTP_PASSWORD: check them")


def test_starttls_asked_of_a_server_without_it_is_a_problem(tmp_path, smtp_server):
    controller, _ = smtp_server
    settings = Settings(data_dir=tmp_path, smtp_host=controller.hostname, smtp_port=controller.port,  # type: ignore[call-arg]
                        smtp_starttls=True, _env_file=None)
    result = check_mail(settings)
    assert result.outcome is Outcome.PROBLEM and "does not offer STARTTLS" in result.detail


def test_without_smtp_the_outbox_must_be_writable(tmp_path):
    writable = check_mail(Settings(data_dir=tmp_path / "new" / "var", _env_file=None))  # type: ignore[call-arg]
    assert writable.outcome is Outcome.OK and "mail is written to" in writable.detail
    assert not (tmp_path / "new").exists(), "the check creates nothing"
    (tmp_path / "a-file").write_text("not a folder")
    blocked = check_mail(Settings(data_dir=tmp_path / "a-file" / "var", _env_file=None))  # type: ignore[call-arg]
    assert blocked.outcome is Outcome.PROBLEM and "not writable" in blocked.detail


# --- LINE and Slack -----------------------------------------------------------------------------------


def test_a_wrong_line_token_is_reported_in_plain_words_masked(environment, line_api):
    environment.set(LINE_CHANNEL_SECRET=LINE_SECRET, LINE_CHANNEL_ACCESS_TOKEN="revoked-token-abcdefghijkl",
                    LINE_API_BASE_URL=line_api.url)
    code, lines, output = doctor_output()
    assert code == 1
    assert lines["LINE"].startswith("PROBLEM: LINE refused the channel access token (revo…): it is wrong, expired")
    assert "LINE_CHANNEL_ACCESS_TOKEN" in lines["LINE"] and "revoked-token-abcdefghijkl" not in output


def test_a_missing_default_rich_menu_is_a_problem_naming_the_command(environment, line_api, slack_api, web_agent):
    channels(environment, line_api, slack_api, rich_menu=False)
    code, lines, output = doctor_output()
    assert code == 1, output
    assert lines["LINE"].startswith("ok")
    assert lines["LINE rich menu"] == ("PROBLEM: no default rich menu: students on LINE see no menu under the chat; "
                                       "run `madoguchi line richmenu deploy`")


def test_the_rich_menu_is_not_checked_without_a_working_line(environment, line_api):
    environment.set(LINE_CHANNEL_SECRET=LINE_SECRET, LINE_CHANNEL_ACCESS_TOKEN="revoked-token-abcdefghijkl",
                    LINE_API_BASE_URL=line_api.url)
    _, lines, _ = doctor_output()
    assert lines["LINE rich menu"] == "skipped (fix LINE first)"
    assert line_api.calls_to("/v2/bot/user/all/richmenu") == []


def test_half_set_line_credentials_name_the_missing_one(environment):
    environment.set(LINE_CHANNEL_SECRET=LINE_SECRET)
    code, lines, _ = doctor_output()
    assert code == 1 and lines["LINE"].startswith("PROBLEM: LINE_CHANNEL_ACCESS_TOKEN is not set")
    assert lines["LINE rich menu"] == "skipped (fix LINE first)"


def test_an_unreachable_line_api_is_a_problem(environment):
    environment.set(LINE_CHANNEL_SECRET=LINE_SECRET, LINE_CHANNEL_ACCESS_TOKEN=LINE_TOKEN,
                    LINE_API_BASE_URL=f"http://127.0.0.1:{free_port()}")
    code, lines, _ = doctor_output()
    assert code == 1 and lines["LINE"].startswith("PROBLEM: cannot reach the LINE API at http://127.0.0.1:")


def test_a_wrong_slack_token_is_reported_in_plain_words_masked(environment, slack_api):
    wrong = "xoxb-1111-2222-notTheBotsTokenAtAll"
    environment.set(SLACK_BOT_TOKEN=wrong, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                    SLACK_API_BASE_URL=slack_api.base_url)
    code, lines, output = doctor_output()
    assert code == 1
    assert lines["Slack"] == ("PROBLEM: Slack refused SLACK_BOT_TOKEN (xoxb…): invalid_auth; copy the Bot User OAuth "
                              "Token (xoxb-…) from the app's OAuth & Permissions page")
    assert wrong not in output
    assert slack_api.violations == ["auth.test: not the bot token"], "the call was otherwise as the spec wants"


def test_an_unreachable_slack_api_is_a_problem(environment):
    environment.set(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                    SLACK_API_BASE_URL=f"http://127.0.0.1:{free_port()}/api/")
    code, lines, _ = doctor_output()
    assert code == 1 and lines["Slack"].startswith("PROBLEM: cannot reach the Slack API at http://127.0.0.1:")


def test_the_values_to_confirm_are_listed_without_being_problems(environment, line_api, slack_api, web_agent):
    channels(environment, line_api, slack_api)
    code, lines, output = doctor_output()
    assert code == 0 and "values to confirm (below)" in lines["profile"]
    listed = [line[4:] for line in output.splitlines() if line.startswith("  - ")]
    assert "catalog expected_graduation_certificate: final_year_only True is an assumption" in listed
    assert "catalog parking_fee: deliveries window_pickup is an assumption" in listed
    assert "catalog transcript: price_yen 200 is an example" in listed
    assert not any("enrollment_certificate: deliveries" in line for line in listed)  # the guide's


def test_run_checks_returns_results_in_order(environment):
    assert [result.name for result in run_checks()] == ["settings", "channel settings", "profile", "database",
                                                        "mail", "LINE", "LINE rich menu", "Slack", "single sign-on",
                                                        "handoff desk"]


def test_the_madoguchi_command_exits_1_on_a_problem(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "var"), "SMTP_PORT": "seventy"}
    result = subprocess.run([str(Path(sys.executable).parent / "madoguchi"), "doctor"], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    assert "settings: PROBLEM: bad setting(s): SMTP_PORT" in result.stdout


# --- the handoff desk ---------------------------------------------------------------------------------------


def test_no_agents_channel_and_no_staff_account_is_a_problem_naming_staff_add(environment):
    code, lines, output = doctor_output()
    assert code == 1, output
    assert lines["handoff desk"].startswith("PROBLEM: no one can take a student's request for a person")
    assert "`madoguchi staff add EMAIL --role agent --name NAME`" in lines["handoff desk"]
    assert output.rstrip().endswith("1 problem(s) to fix")


def test_a_disabled_account_is_no_desk(environment, core):
    with core.transaction() as session:
        staff.create_account(session, "yamada@example.ac.jp", STAFF_PASSWORD, core.now(), role=staff.Role.AGENT,
                             display_name="山田")
        staff.disable_account(session, "yamada@example.ac.jp", core.now())
    code, lines, _ = doctor_output()
    assert code == 1 and lines["handoff desk"].startswith("PROBLEM: no one can take")


def test_an_agents_channel_without_slacks_credentials_is_a_problem(environment, web_agent):
    environment.set(SLACK_AGENT_CHANNEL=AGENT_CHANNEL)
    code, lines, output = doctor_output()
    assert code == 1, output
    assert lines["channel settings"].startswith("ok"), "the channel ID itself is well formed"
    assert lines["handoff desk"].startswith("PROBLEM: SLACK_AGENT_CHANNEL is set but Slack is not")
    assert "SLACK_BOT_TOKEN" in lines["handoff desk"] and "SLACK_SIGNING_SECRET" in lines["handoff desk"]


def test_slacks_agents_channel_is_a_desk_without_any_staff_account(environment, line_api, slack_api):
    channels(environment, line_api, slack_api)
    environment.set(SLACK_AGENT_CHANNEL=AGENT_CHANNEL)
    code, lines, output = doctor_output()
    assert code == 0, output
    assert lines["handoff desk"] == f"ok (Slack's agents' channel {AGENT_CHANNEL})"
    assert BOT_TOKEN not in output and SIGNING_SECRET not in output


def test_slack_and_the_web_inbox_are_both_named(environment, line_api, slack_api, web_agent):
    channels(environment, line_api, slack_api)
    environment.set(SLACK_AGENT_CHANNEL=AGENT_CHANNEL)
    code, lines, output = doctor_output()
    assert code == 0, output
    assert lines["handoff desk"] == (f"ok (Slack's agents' channel {AGENT_CHANNEL}; web inbox: 1 agent(s), "
                                     "0 admin(s))")


def test_an_agent_account_is_a_desk(environment, web_agent):
    code, lines, output = doctor_output()
    assert code == 0, output
    assert lines["handoff desk"] == "ok (web inbox: 1 agent(s), 0 admin(s))"
    assert "yamada@" not in output, "no staff email in the doctor's report"


def test_only_admins_are_a_desk_but_the_doctor_says_so(environment, core):
    with core.transaction() as session:
        for email in ("sato@example.ac.jp", "suzuki@example.ac.jp"):
            staff.create_account(session, email, STAFF_PASSWORD, core.now())
    code, lines, output = doctor_output()
    assert code == 0, output
    assert lines["handoff desk"].startswith("ok (web inbox: 0 agent(s), 2 admin(s); no account has the agent role")
    assert "only admins answer at /admin/inbox" in lines["handoff desk"]


# --- madoguchi staff add --role agent --------------------------------------------------------------------------


def cli_env(core, tmp_path) -> dict[str, str]:
    return {"DATA_DIR": str(tmp_path), "DATABASE_URL": core.engine.url.render_as_string(hide_password=False),
            "DEMO_DATA": "false", "BASE_URL": "https://madoguchi.example.ac.jp"}


def accounts(core) -> list[tuple[str, str, str | None]]:
    with core.transaction() as session:
        return [(a.email, a.role, a.display_name) for a in staff.list_accounts(session)]


def test_staff_add_an_agent_with_a_name_then_list_shows_role_and_name(environment, core, tmp_path):
    env, runner = cli_env(core, tmp_path), CliRunner()
    added = runner.invoke(main, ["staff", "add", "Yamada@example.ac.jp", "--role", "agent", "--name", "山田"],
                          input=f"{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n", env=env)
    assert added.exit_code == 0, added.output
    assert "staff account yamada@example.ac.jp (agent) created" in added.output
    assert STAFF_PASSWORD not in added.output and "Display name" not in added.output, "the name was given"
    admin = runner.invoke(main, ["staff", "add", "sato@example.ac.jp"], input=f"{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n",
                          env=env)
    assert admin.exit_code == 0 and "(admin) created" in admin.output
    assert accounts(core) == [("sato@example.ac.jp", "admin", None), ("yamada@example.ac.jp", "agent", "山田")]

    listing = runner.invoke(main, ["staff", "list"], env=env)
    assert listing.exit_code == 0, listing.output
    header, *rows = listing.output.splitlines()
    assert header.split()[:3] == ["email", "role", "name"]
    assert [row.split()[:3] for row in rows] == [["sato@example.ac.jp", "admin", "-"],
                                                 ["yamada@example.ac.jp", "agent", "山田"]]

    code, lines, _ = doctor_output()
    assert code == 0 and lines["handoff desk"] == "ok (web inbox: 1 agent(s), 1 admin(s))"


def test_staff_add_an_agent_without_a_name_asks_for_one(environment, core, tmp_path):
    result = CliRunner().invoke(main, ["staff", "add", "yamada@example.ac.jp", "--role", "agent"],
                                input=f"山田 太郎\n{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n", env=cli_env(core, tmp_path))
    assert result.exit_code == 0, result.output
    assert "Display name shown to students (not the email): " in result.output
    assert accounts(core) == [("yamada@example.ac.jp", "agent", "山田 太郎")]


@pytest.mark.parametrize("how", ["option", "prompt"])
def test_a_display_name_that_is_an_email_is_refused(environment, core, tmp_path, how):
    args = ["staff", "add", "yamada@example.ac.jp", "--role", "agent"]
    typed = f"{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n"
    if how == "option":
        args += ["--name", "yamada@example.ac.jp"]
    else:
        typed = "yamada@example.ac.jp\n" + typed
    result = CliRunner().invoke(main, args, input=typed, env=cli_env(core, tmp_path))
    assert result.exit_code == 1, result.output
    assert "display name must not be an email address" in result.output and "No account was created" in result.output
    assert accounts(core) == []


def test_an_unknown_role_is_refused_by_the_command(environment, core, tmp_path):
    result = CliRunner().invoke(main, ["staff", "add", "yamada@example.ac.jp", "--role", "boss", "--name", "山田"],
                                input=f"{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n", env=cli_env(core, tmp_path))
    assert result.exit_code == 2 and "'boss' is not one of 'admin', 'agent'" in result.output
    assert accounts(core) == []
