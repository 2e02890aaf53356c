"""`madoguchi actions` as a deployment runs it: the real action server on a loopback port, over a fresh database."""

import shutil
import subprocess

import httpx
import rasa_sdk

from bot.rasa.domain import build_domain
from tests.bot.test_cli import MADOGUCHI, clean_env
from tests.conftest import free_port


def wait_until_serving(process: subprocess.Popen) -> None:
    """Read the server's log until uvicorn says it is serving (or the process ends), instead of sleeping."""
    for line in process.stderr:  # type: ignore[union-attr]
        if "Uvicorn running" in line:
            return
    raise AssertionError(f"the action server ended with {process.wait(timeout=5)} before serving")


def test_actions_serves_health_and_answers_an_action_call(tmp_path, nlu_model_path):
    shutil.copy(nlu_model_path, tmp_path / "nlu-model.joblib")  # madoguchi's own model, read beside Rasa's
    port = free_port()
    process = subprocess.Popen([MADOGUCHI, "actions", "--port", str(port)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=clean_env(tmp_path))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(process)
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
        assert "action_contact" in {item["name"] for item in httpx.get(f"{url}/actions").json()}
        tracker = {"sender_id": "cli", "slots": {"lang": None}, "events": [], "active_loop": {},
                   "latest_action_name": "action_listen",
                   "latest_message": {"text": "問い合わせ先を教えて", "intent": {"name": "contact", "confidence": 0.9},
                                      "entities": [], "metadata": {}}}
        response = httpx.post(f"{url}/webhook", json={"next_action": "action_contact", "tracker": tracker,
                                                      "domain": build_domain(), "version": rasa_sdk.__version__})
        assert response.status_code == 200
        assert "093-691-7211" in response.json()["responses"][0]["text"]
        assert (tmp_path / "madoguchi.sqlite3").exists()  # the deployment's own database, migrated at start-up
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_bad_setting_stops_the_action_server_naming_it(tmp_path):
    result = subprocess.run([MADOGUCHI, "actions", "--port", str(free_port())], capture_output=True, text=True,
                            timeout=60, check=False, env=clean_env(tmp_path, PAYMENT_GATEWAY="acme"))
    assert result.returncode == 2
    assert "PAYMENT_GATEWAY" in result.stderr
