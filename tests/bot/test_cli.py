"""The `madoguchi` command as a user runs it: serve, chat, db, students import, and bad settings."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli.commands import main
from core.models import Student

MADOGUCHI = str(Path(sys.executable).parent / "madoguchi")


@pytest.fixture(scope="module")
def fresh_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for the subprocess tests, so the first run's set-up is paid once."""
    return tmp_path_factory.mktemp("var")


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "BASE_URL", "SMTP_"))}
    return {**env, "DATA_DIR": str(data_dir), **extra}


def test_chat_reads_piped_lines_and_prints_replies(fresh_data_dir):
    result = subprocess.run([MADOGUCHI, "chat"], input="こんにちは\n1\nhow can I pay?\n", capture_output=True,
                            text=True, env=clean_env(fresh_data_dir), timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "[1]" in result.stdout  # the menu's buttons, numbered
    assert "PayPay" in result.stdout
    assert (fresh_data_dir / "madoguchi.sqlite3").exists()  # first run created the database


def test_serve_answers_health_and_chat_on_the_given_port(fresh_data_dir):
    from tests.conftest import free_port

    port = free_port()
    process = subprocess.Popen([MADOGUCHI, "serve", "--port", str(port)], stderr=subprocess.PIPE, text=True,
                               env=clean_env(fresh_data_dir))
    try:
        # Wait for uvicorn's own start-up line instead of sleeping.
        for line in process.stderr:  # type: ignore[union-attr]
            if "Uvicorn running" in line or process.poll() is not None:
                break
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        reply = httpx.post(f"{base}/api/chat", json={"user": "cli", "text": "問い合わせ先を教えて"}).json()
        assert "093-691-7211" in reply["replies"][0]["text"]
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_takes_the_port_from_the_environment(fresh_data_dir):
    result = subprocess.run([MADOGUCHI, "serve"], capture_output=True, text=True, timeout=60, check=False,
                            env=clean_env(fresh_data_dir, PORT="not-a-port"))
    assert result.returncode == 2
    assert "not-a-port" in result.stderr


@pytest.mark.parametrize(("variable", "value"), [("BASE_URL", "ftp://example"), ("SMTP_PORT", "seventy"),
                                                 ("PAYMENT_GATEWAY", "acme")])
def test_a_bad_setting_stops_start_up_naming_it(tmp_path, variable, value):
    result = subprocess.run([MADOGUCHI, "serve"], capture_output=True, text=True, timeout=60, check=False,
                            env=clean_env(tmp_path, **{variable: value}))
    assert result.returncode == 2
    assert variable in result.stderr


def test_a_bad_profile_stops_start_up_naming_file_and_key(tmp_path):
    profile = tmp_path / "profile.yaml"
    profile.write_text("id: x\nname: {ja: テスト}\n", encoding="utf-8")
    result = subprocess.run([MADOGUCHI, "chat"], input="", capture_output=True, text=True, timeout=60,
                            check=False, env=clean_env(tmp_path, UNIVERSITY_PROFILE=str(profile)))
    assert result.returncode == 2
    assert str(profile) in result.stderr and "name.en" in result.stderr


def test_db_upgrade_and_current(tmp_path):
    runner = CliRunner()
    env = clean_env(tmp_path)
    upgraded = runner.invoke(main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    current = runner.invoke(main, ["db", "current"], env=env)
    from core.migrate import head_revision
    assert f"database: {head_revision()}  code: {head_revision()}" in current.output


def test_students_import_adds_students_and_refuses_a_bad_file_whole(core, tmp_path):
    env = clean_env(tmp_path, DATABASE_URL=core.engine.url.render_as_string(hide_password=False), DEMO_DATA="false")
    good = tmp_path / "good.csv"
    good.write_text("student_number,department,year,email\n24M2001,medicine,2,a@example.ac.jp\n"
                    "24N2002,nursing,1,\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("student_number,department,year\n24M2003,medicine,2\n24M2004,astrology,2\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["students", "import", str(good)], env=env)
    assert result.exit_code == 0, result.output
    assert "imported 2 new" in result.output
    result = runner.invoke(main, ["students", "import", str(bad)], env=env)
    assert result.exit_code == 1
    assert "line 3" in result.output and "astrology" in result.output
    with core.transaction() as session:
        numbers = set(session.scalars(select(Student.student_number)))
    assert numbers == {"24M2001", "24N2002"}  # nothing of the bad file, not even its good first row


def test_links_send_reset_mails_a_registered_student_and_answers_alike_for_anyone(tmp_path):
    runner = CliRunner()
    env = clean_env(tmp_path)  # a fresh SQLite database with the demo students; mail goes to the outbox
    known = runner.invoke(main, ["links", "send-reset", "24M1001"], env=env)
    unknown = runner.invoke(main, ["links", "send-reset", "99Z9999"], env=env)
    assert known.exit_code == unknown.exit_code == 0, known.output
    assert known.output == unknown.output  # no account enumeration, even for staff tools
    mails = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(mails) == 1
    body = mails[0].read_bytes()
    assert b"/links/" in body


def test_a_bad_channel_setting_stops_start_up_naming_it(tmp_path):
    result = subprocess.run([MADOGUCHI, "serve"], capture_output=True, text=True, timeout=60, check=False,
                            env=clean_env(tmp_path, LINE_API_BASE_URL="api.line.me"))
    assert result.returncode == 2
    assert "LINE_API_BASE_URL" in result.stderr


def test_slack_socket_mode_needs_its_tokens(tmp_path):
    result = subprocess.run([MADOGUCHI, "slack", "socket"], capture_output=True, text=True, timeout=60,
                            check=False, env=clean_env(tmp_path))
    assert result.returncode == 2
    assert "SLACK_APP_TOKEN" in result.stderr


def test_reminders_list_shows_due_and_upcoming_reminders_in_japan_time_with_recipients_masked(core, tmp_path):
    from datetime import UTC, datetime, time, timedelta

    from core import reminders
    from core.clock import TOKYO
    from core.reminders import Kind, Status
    from tests.core.test_orders import add_student

    student = add_student(core)  # 24M1001
    now = datetime.now(UTC)  # the command runs on the real clock
    today = now.astimezone(TOKYO).date()

    def at(days: int, clock: time = time(12, 0)) -> datetime:
        return datetime.combine(today + timedelta(days=days), clock, TOKYO)

    with core.transaction() as session:
        def add(kind: Kind, key: str, due: datetime, **who: object) -> int:
            return reminders.schedule(session, kind=kind, key=key, due_at=due, now=now, **who).id  # type: ignore[union-attr]

        overdue = add(Kind.READY_NOW, "ready_now:K7PM-3QXA", at(-1), student_id=student.id, subject="K7PM-3QXA")
        soon = add(Kind.LINK_EXPIRING, "link_expiring:1", at(1), channel="line", recipient="U4af4980629abcdef",
                   student_id=student.id, subject="1")
        night = add(Kind.PAYMENT_DEADLINE, "payment_deadline:P1", at(2, time(22, 30)), student_id=student.id,
                    subject="P1")
        later = add(Kind.PARKING_PERIOD, "parking_period:x", at(30), subject="parking_fee")
        done = add(Kind.READY_NOW, "ready_now:DONE-0000", at(-1), student_id=student.id, subject="DONE-0000")
        reminders.finish(session, done, Status.SENT, now)

    env = clean_env(tmp_path, DATABASE_URL=core.engine.url.render_as_string(hide_password=False), DEMO_DATA="false")
    result = CliRunner().invoke(main, ["reminders", "list"], env=env)
    assert result.exit_code == 0, result.output
    lines = {int(line.split()[0]): line.split() for line in result.output.splitlines()[1:]}
    assert set(lines) == {overdue, soon, night}  # not the one 30 days away, not the one sent
    assert lines[overdue][1:] == ["ready_now", f"{at(-1):%Y-%m-%d}", "12:00", "due", "no", "student", "24***01"]
    assert lines[soon][1:] == ["link_expiring", f"{at(1):%Y-%m-%d}", "12:00", "scheduled", "no", "line", "U4af…"]
    assert lines[night][1:] == ["payment_deadline", f"{at(3):%Y-%m-%d}", "08:00", "scheduled", "yes", "student",
                                "24***01"]  # moved out of the quiet hours
    assert "24M1001" not in result.output and "U4af4980629abcdef" not in result.output

    wider = CliRunner().invoke(main, ["reminders", "list", "--days", "60"], env=env)
    assert f"{later} " in wider.output and "linked students, year 2+" in wider.output


def test_the_scheduler_runs_alone_until_it_is_stopped(tmp_path):
    import signal

    process = subprocess.Popen([MADOGUCHI, "scheduler"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=clean_env(tmp_path, DEMO_DATA="false"))
    try:
        for line in process.stderr:  # type: ignore[union-attr]
            if "reminder scheduler: active" in line or process.poll() is not None:
                break
        assert process.poll() is None, "the scheduler ended on its own"
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 0
    assert "(SQLite: run no other scheduler)" in out and "madoguchi scheduler stopped" in out
