"""A fresh `madoguchi serve` with no Slack, as `make run` starts it: a student who asks for a person is told the
truth (no desk yet: call the call center), `madoguchi doctor` says so, and once `madoguchi staff add --role
agent` has made an account, the doctor is content and the signed-in agent finds the waiting ticket in the
web inbox. Everything runs as subprocesses over loopback, as a user would run it."""

import os
import re
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.settings import ChannelSettings
from core.models import HandoffTicket
from core.settings import Settings
from intents import IntentModel
from tests.browser.conftest import MADOGUCHI, ServedApp, serve_app
from tests.conftest import free_port

SETTING_NAMES = {name.upper() for kind in (Settings, ChannelSettings) for name in kind.model_fields}
EMAIL = "yamada@example.ac.jp"
PASSWORD = "correct horse battery"
CALL_CENTER_PHONE = "082-207-4262"


@pytest.fixture
def fresh(engine: Engine, nlu_model: IntentModel, tmp_path_factory: pytest.TempPathFactory,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[ServedApp]:
    """`madoguchi serve` on an empty database with no channel, desk or staff setting inherited from the shell."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    yield from serve_app(engine, nlu_model, tmp_path_factory, free_port())


def same_env(app: ServedApp) -> dict[str, str]:
    """The environment the server runs with, for the other `madoguchi` commands (doctor, staff)."""
    return {**os.environ, "DATA_DIR": str(app.data_dir), "BASE_URL": app.url, "DEMO_DATA": "false",
            "DATABASE_URL": app.engine.url.render_as_string(hide_password=False)}


def madoguchi(app: ServedApp, *args: str, typed: str = "") -> subprocess.CompletedProcess[str]:
    # A session of its own: no controlling terminal, so a hidden prompt reads the piped stdin as a script would.
    return subprocess.run([MADOGUCHI, *args], input=typed, capture_output=True, text=True, env=same_env(app),
                          cwd=app.data_dir, timeout=120, check=False, start_new_session=True)


def doctor_line(app: ServedApp) -> tuple[int, str]:
    """`madoguchi doctor`'s exit code and its handoff desk line."""
    result = madoguchi(app, "doctor")
    [line] = [line for line in result.stdout.splitlines() if line.startswith("handoff desk: ")]
    return result.returncode, line


def test_a_fresh_server_tells_the_truth_until_an_agent_account_exists(fresh):
    with httpx.Client(base_url=fresh.url, timeout=30) as http:
        answer = http.post("/api/chat", json={"user": "fresh-student", "text": "人と話したい"})
        assert answer.status_code == 200, answer.text
        [reply] = answer.json()["replies"]
        assert "おつなぎします" not in reply["text"] and "順番待ち" not in reply["text"], reply["text"]
        assert "担当者におつなぎすることができません" in reply["text"]
        assert CALL_CENTER_PHONE in reply["text"]
        offered = [button["payload"] for button in reply["quick_replies"]]
        assert "intent:payment_methods" in offered and "intent:login_help" in offered, offered

        # The bot keeps answering: the student is not left waiting for a person nobody is.
        menu = http.post("/api/chat", json={"user": "fresh-student", "text": "支払い方法を教えて"}).json()
        assert "クレジットカード" in menu["replies"][0]["text"]

    code, line = doctor_line(fresh)
    assert code == 1 and line.startswith("handoff desk: PROBLEM: no one can take"), line
    assert "madoguchi staff add EMAIL --role agent --name NAME" in line

    added = madoguchi(fresh, "staff", "add", EMAIL, "--role", "agent", "--name", "山田",
                      typed=f"{PASSWORD}\n{PASSWORD}\n")
    assert added.returncode == 0, added.stdout + added.stderr
    assert f"staff account {EMAIL} (agent) created" in added.stdout and PASSWORD not in added.stdout
    code, line = doctor_line(fresh)
    assert line == "handoff desk: ok (web inbox: 1 agent(s), 0 admin(s))"
    assert code == 0, madoguchi(fresh, "doctor").stdout

    with Session(fresh.engine) as session:
        [ticket] = session.scalars(select(HandoffTicket)).all()
        assert (ticket.conversation_id, ticket.status) == ("web:fresh-student", "waiting")
        ticket_id = ticket.id

    with httpx.Client(base_url=fresh.url, timeout=30) as browser:
        login = browser.get("/admin/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
        signed = browser.post("/admin/login", data={"csrf": csrf, "email": EMAIL, "password": PASSWORD})
        assert signed.status_code == 303, signed.text
        inbox = browser.get("/admin/inbox")
        assert inbox.status_code == 200, inbox.text
        assert f'data-ticket="{ticket_id}"' in inbox.text
