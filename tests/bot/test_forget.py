"""`madoguchi students forget`: asks first (unless --yes), deletes the student's chats and personal data in one
go, prints counts, keeps the orders for accounting, masks the number in what it prints and logs, and says so
when the student is unknown (a second run)."""

import logging

import pytest
from click.testing import CliRunner

from bot.cli.commands import main
from tests.core.test_retention import EMAIL, NAME, NUMBER, accounting, populate, text_cells


@pytest.fixture
def env(monkeypatch, tmp_path, engine):
    """The command's settings: the test database, no demo students, no .env."""
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DEMO_DATA", "false")
    monkeypatch.chdir(tmp_path)


def forget(*args: str, answer: str | None = None):
    return CliRunner().invoke(main, ["students", "forget", *args], input=answer)


def mentions(core) -> list[tuple[str, str, str]]:
    return [cell for cell in text_cells(core) if NUMBER in cell[2].upper() or EMAIL in cell[2] or NAME in cell[2]]


def test_forget_with_yes_deletes_and_prints_counts(core, env, caplog):
    populate(core)
    before = accounting(core)
    caplog.set_level(logging.INFO)

    result = forget(NUMBER, "--yes")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("forgot student 24***01:")
    assert "conversations             2 deleted" in result.output
    assert "orders                    2 kept for accounting" in result.output
    assert NUMBER not in result.output and NUMBER not in caplog.text
    assert mentions(core) == []
    assert accounting(core) == before


def test_forget_asks_first_and_a_no_changes_nothing(core, env):
    populate(core)
    refused = forget(NUMBER, answer="n\n")
    assert refused.exit_code == 1 and "Forget student 24***01" in refused.output and "Aborted" in refused.output
    assert mentions(core) != [], "nothing deleted"

    accepted = forget(NUMBER, answer="y\n")
    assert accepted.exit_code == 0 and "forgot student 24***01:" in accepted.output
    assert mentions(core) == []


def test_a_second_run_says_the_student_is_unknown(core, env):
    populate(core)
    assert forget(NUMBER, "--yes").exit_code == 0
    again = forget(NUMBER, "--yes")
    assert again.exit_code == 1
    assert "no student with the number 24***01: nothing to forget" in again.output
    assert NUMBER not in again.output
