"""Staff accounts: argon2 passwords, sign-in throttled per account and per address, sessions that expire and
end, and the `madoguchi staff` commands."""

from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.cli.commands import main
from core import staff
from core.models import SignInFailure, StaffAccount, StaffSession
from core.staff import LoginOutcome, StaffError

PASSWORD = "correct horse battery"
EMAIL = "hanako.sato@example.ac.jp"


def add(core, email: str = EMAIL, password: str = PASSWORD) -> StaffAccount:
    with core.transaction() as session:
        return staff.create_account(session, email, password, core.now())


def login(core, email: str = EMAIL, password: str = PASSWORD, address: str | None = "192.0.2.1"):
    with core.transaction() as session:
        return staff.login(session, email, password, address, core.now())


def account_of(core, token: str | None) -> StaffAccount | None:
    with core.transaction() as session:
        return staff.session_account(session, token, core.now())


def test_an_account_keeps_the_email_lower_cased_and_only_an_argon2_hash(core):
    account = add(core, email="  Hanako.Sato@Example.AC.JP ")
    assert account.email == EMAIL
    assert account.password_hash.startswith("$argon2id$") and PASSWORD not in account.password_hash
    assert PasswordHasher().verify(account.password_hash, PASSWORD)


def test_a_duplicate_email_a_malformed_email_and_a_weak_password_are_refused(core):
    add(core)
    for email, password, words in ((EMAIL.upper(), PASSWORD, "already exists"),
                                   ("hanako", PASSWORD, "not an email"),
                                   ("taro@example.ac.jp", "short pass1", "at least 12"),
                                   ("taro@example.ac.jp", "1qaz2wsx3edc", "too common")):
        try:
            add(core, email, password)
        except StaffError as error:
            assert words in str(error)
        else:
            raise AssertionError(f"{email} / {password!r} was accepted")
    with core.transaction() as session:
        assert [a.email for a in staff.list_accounts(session)] == [EMAIL]


def test_the_right_password_starts_a_session_stored_only_hashed(core):
    add(core)
    result = login(core, email=EMAIL.upper())
    assert result.outcome is LoginOutcome.OK and result.token and len(result.token) >= 40
    assert account_of(core, result.token).email == EMAIL
    with core.transaction() as session:
        row = session.scalars(select(StaffSession)).one()
        assert row.token_hash != result.token and len(row.token_hash) == 64
        assert session.scalars(select(StaffAccount)).one().last_login_at == core.now()
    assert account_of(core, "not-a-token") is None and account_of(core, None) is None


def test_an_unknown_email_and_a_wrong_password_get_the_same_answer(core):
    add(core)
    wrong, unknown = login(core, password="wrong password!!"), login(core, email="nobody@example.ac.jp")
    assert wrong == unknown == staff.LoginResult(LoginOutcome.INVALID)
    with core.transaction() as session:
        assert session.scalar(select(func.count()).select_from(StaffSession)) == 0


def test_five_failures_lock_the_account_for_fifteen_minutes_even_from_elsewhere(core, clock):
    add(core)
    for attempt in range(5):
        assert login(core, password=f"wrong {attempt}", address=f"198.51.100.{attempt}").outcome is LoginOutcome.INVALID
    assert login(core, address="203.0.113.9").outcome is LoginOutcome.THROTTLED  # right password, new address
    clock.advance(minutes=14, seconds=59)
    assert login(core, address="203.0.113.9").outcome is LoginOutcome.THROTTLED
    clock.advance(seconds=1)
    assert login(core, address="203.0.113.9").outcome is LoginOutcome.OK
    with core.transaction() as session:  # aged-out failures are swept, not kept for ever
        assert session.scalar(select(func.count()).select_from(SignInFailure)) <= 2


def test_five_failures_from_one_address_lock_that_address_for_every_account(core):
    add(core)
    for attempt in range(5):
        assert login(core, email=f"guess{attempt}@example.ac.jp").outcome is LoginOutcome.INVALID
    assert login(core).outcome is LoginOutcome.THROTTLED  # the right account and password, from that address
    assert login(core, address="192.0.2.2").outcome is LoginOutcome.OK


def test_a_successful_sign_in_forgives_the_accounts_earlier_failures(core):
    add(core)
    for _ in range(4):
        login(core, password="wrong password", address="192.0.2.10")
    assert login(core, address="192.0.2.11").outcome is LoginOutcome.OK
    for _ in range(4):
        login(core, password="wrong password", address="192.0.2.12")
    assert login(core, address="192.0.2.13").outcome is LoginOutcome.OK


def test_a_session_ends_after_eight_idle_hours(core, clock):
    add(core)
    token = login(core).token
    clock.advance(hours=7, minutes=59)
    assert account_of(core, token) is not None  # and the idle timer restarts
    clock.advance(hours=7, minutes=59)
    assert account_of(core, token) is not None
    clock.advance(hours=8)
    assert account_of(core, token) is None
    with core.transaction() as session:
        assert session.scalar(select(func.count()).select_from(StaffSession)) == 0  # the expired one is deleted


def test_a_session_ends_after_twenty_four_hours_however_busy(core, clock):
    add(core)
    token = login(core).token
    for _ in range(3):
        clock.advance(hours=7, minutes=59)
        assert account_of(core, token) is not None
    clock.advance(minutes=3)  # 24 h 0 min after sign-in
    assert account_of(core, token) is None


def test_signing_out_ends_only_that_session(core):
    add(core)
    first, second = login(core).token, login(core).token
    with core.transaction() as session:
        assert staff.end_session(session, first) is True
        assert staff.end_session(session, first) is False
    assert account_of(core, first) is None and account_of(core, second) is not None


def test_a_disabled_account_loses_its_sessions_and_cannot_sign_in(core):
    add(core)
    token = login(core).token
    with core.transaction() as session:
        staff.disable_account(session, EMAIL.upper(), core.now())
    assert account_of(core, token) is None
    assert login(core).outcome is LoginOutcome.INVALID  # the same answer as a wrong password
    with core.transaction() as session:
        try:
            staff.disable_account(session, "nobody@example.ac.jp", core.now())
        except StaffError as error:
            assert "no staff account" in str(error)
        else:
            raise AssertionError("disabled an account that does not exist")


def test_a_hash_with_old_parameters_is_upgraded_at_sign_in(core):
    add(core)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with core.transaction() as session:
        session.scalars(select(StaffAccount)).one().password_hash = weak
    assert login(core).outcome is LoginOutcome.OK
    with core.transaction() as session:
        upgraded = session.scalars(select(StaffAccount)).one().password_hash
    assert upgraded != weak and not PasswordHasher().check_needs_rehash(upgraded)


def test_the_csrf_token_belongs_to_one_session():
    assert staff.csrf_token("a") == staff.csrf_token("a") != staff.csrf_token("b")
    assert staff.same_secret("x" * 10, "x" * 10)
    assert not staff.same_secret("x", "y") and not staff.same_secret(None, None) and not staff.same_secret("", "")


# --- madoguchi staff ----------------------------------------------------------------------------------------


def cli_env(core, tmp_path) -> dict[str, str]:
    return {"DATA_DIR": str(tmp_path), "DATABASE_URL": core.engine.url.render_as_string(hide_password=False),
            "DEMO_DATA": "false", "BASE_URL": "https://madoguchi.example.ac.jp"}


def test_staff_add_asks_the_password_twice_without_echoing_it(core, tmp_path):
    result = CliRunner().invoke(main, ["staff", "add", "Hanako.Sato@example.ac.jp"],
                                input=f"{PASSWORD}\n{PASSWORD}\n", env=cli_env(core, tmp_path))
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert result.output.count("Password (at least 12 characters)") == 1 and "Repeat for confirmation" in result.output
    assert f"staff account {EMAIL} (admin) created" in result.output
    assert "https://madoguchi.example.ac.jp/admin/login" in result.output
    assert login(core).outcome is LoginOutcome.OK


def test_staff_add_refuses_a_short_password_a_mismatch_and_a_duplicate(core, tmp_path):
    env, runner = cli_env(core, tmp_path), CliRunner()
    short = runner.invoke(main, ["staff", "add", EMAIL], input="short pass\nshort pass\n", env=env)
    assert short.exit_code == 1 and "at least 12 characters" in short.output and "short pass" not in short.output
    mismatch = runner.invoke(main, ["staff", "add", EMAIL], input=f"{PASSWORD}\nsomething else!\n", env=env)
    assert mismatch.exit_code != 0 and "do not match" in mismatch.output.lower()
    with core.transaction() as session:
        assert staff.list_accounts(session) == []
    add(core)
    again = runner.invoke(main, ["staff", "add", EMAIL.upper()], input=f"{PASSWORD}\n{PASSWORD}\n", env=env)
    assert again.exit_code == 1 and "already exists" in again.output


def test_the_password_is_never_an_argument():
    result = CliRunner().invoke(main, ["staff", "add", EMAIL, PASSWORD], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 2 and "unexpected extra argument" in result.output.lower()


def test_staff_list_and_disable(core, tmp_path, clock):
    env, runner = cli_env(core, tmp_path), CliRunner()
    assert "no staff accounts yet" in runner.invoke(main, ["staff", "list"], env=env).output
    add(core)
    add(core, email="taro@example.ac.jp")
    token = login(core).token
    disabled = runner.invoke(main, ["staff", "disable", "Taro@example.ac.jp"], env=env)
    assert disabled.exit_code == 0 and "taro@example.ac.jp disabled" in disabled.output
    listing = runner.invoke(main, ["staff", "list"], env=env)
    assert listing.exit_code == 0, listing.output
    lines = [line.split() for line in listing.output.splitlines()[1:]]
    assert lines[0][:3] == [EMAIL, "admin", "-"] and lines[0][5:7] == ["2026-11-24", "10:00"]
    assert lines[0][-1] == "active"
    assert lines[1][0] == "taro@example.ac.jp" and lines[1][5] == "never" and lines[1][6] == "disabled"
    assert account_of(core, token) is not None  # disabling Taro ended none of Hanako's sessions
    unknown = runner.invoke(main, ["staff", "disable", "nobody@example.ac.jp"], env=env)
    assert unknown.exit_code == 1 and "no staff account for nobody@example.ac.jp" in unknown.output
