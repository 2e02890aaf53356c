"""A real Rasa Open Source 3.6 beside madoguchi's action server: where Rasa is installed, a model trained once per
change of the shipped files, and the two servers started on loopback and talked to over Rasa's REST channel."""

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import stop_process

ROOT = Path(__file__).resolve().parents[2]
RASA_VERSION = "3.6.21"
# Rasa lives in a Python 3.10 virtual environment of its own (`make rasa`), never in the project's.
RASA_VENV = Path(os.environ.get("MADOGUCHI_RASA_VENV", Path.home() / ".cache" / "madoguchi" / f"rasa-{RASA_VERSION}"))
MODEL_CACHE = Path(os.environ.get("MADOGUCHI_RASA_MODELS", Path.home() / ".cache" / "madoguchi" / "rasa-models"))
CONFIG = ROOT / "bot" / "rasa" / "config.yml"
DOMAIN = ROOT / "bot" / "rasa" / "domain.yml"
# The training data as the README's recipe passes it (madoguchi's lookup tables stay out: see config.yml).
DATA = (ROOT / "intents" / "data" / "nlu_ja.yml", ROOT / "intents" / "data" / "nlu_en.yml",
        ROOT / "bot" / "rasa" / "data")
MADOGUCHI = str(Path(sys.executable).parent / "madoguchi")
# Rasa's start-up prints telemetry notices and TensorFlow chatter; none of it matters here.
# Its training cache goes beside the models, not into the checkout's .rasa/.
QUIET = {"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
         "PYTHONWARNINGS": "ignore", "RASA_CACHE_DIRECTORY": str(MODEL_CACHE.parent / "rasa-cache")}
START_TIMEOUT = 240.0  # seconds: Rasa loads TensorFlow before it serves (about 20 s on 2 cores)


def rasa_command() -> Path:
    """The `rasa` executable of the Rasa virtual environment (it may not exist: see `rasa_missing`)."""
    return RASA_VENV / "bin" / "rasa"


def rasa_missing() -> str | None:
    """Why the real Rasa cannot run here, or None when it can."""
    if not rasa_command().exists():
        return (f"Rasa {RASA_VERSION} is not installed in {RASA_VENV}: run `make rasa` (needs Python 3.10, "
                "e.g. pyenv's; about 2 minutes)")
    return None


def data_files() -> list[Path]:
    """Every file `rasa train` reads, in a fixed order."""
    files = [CONFIG, DOMAIN]
    for path in DATA:
        files += sorted(path.rglob("*.yml")) if path.is_dir() else [path]
    return files


def model_key() -> str:
    """The hash of Rasa's version and every file training reads: a model is reused until one changes."""
    digest = hashlib.sha256(RASA_VERSION.encode())
    for path in data_files():
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def trained_model() -> Path:
    """A model trained with the shipped config, domain and data (`rasa train`, as the README says), cached."""
    model = MODEL_CACHE / f"madoguchi-{model_key()}.tar.gz"
    if model.exists():
        return model
    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    command = [str(rasa_command()), "train", "--config", str(CONFIG), "--domain", str(DOMAIN), "--data",
               *(str(folder) for folder in DATA), "--out", str(MODEL_CACHE), "--fixed-model-name", model.name[:-7]]
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **QUIET}, capture_output=True, text=True,
                            timeout=1800, check=False)
    if result.returncode != 0 or not model.exists():
        output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        raise RuntimeError(f"rasa train failed ({result.returncode}):\n{output}")
    return model


def _wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT) -> None:
    """Poll `url` until it answers (a server's own readiness), failing early if the process ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} ended with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)  # polling a process's readiness, not waiting for time to pass
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s:\n{log.read_text()[-4000:]}")


@contextmanager
def launched(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A server process, its output in `log`; stopped on exit."""
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop_process(process, timeout=30)


@contextmanager
def rasa_with_actions(model: Path, actions_env: dict[str, str], folder: Path, actions_port: int, rasa_port: int,
                      action_url: str | None = None) -> Iterator[str]:
    """`madoguchi actions` (as the Procfile runs it) and `rasa run` with the REST channel (as the README's
    recipe starts it) on loopback, started together and both ready; Rasa's base URL.

    Args:
        action_url: Where Rasa calls the actions (default: the action server itself; a proxy to record).
    """
    credentials, endpoints = folder / "credentials.yml", folder / "endpoints.yml"
    credentials.write_text("rest:\n", encoding="utf-8")
    action_url = action_url or f"http://127.0.0.1:{actions_port}/webhook"
    endpoints.write_text(f'action_endpoint:\n  url: "{action_url}"\n', encoding="utf-8")
    rasa = [str(rasa_command()), "run", "--model", str(model), "--port", str(rasa_port), "--interface",
            "127.0.0.1", "--credentials", str(credentials), "--endpoints", str(endpoints)]
    # Rasa takes about 15 s to load; the action server starts meanwhile (Rasa calls it only per message).
    actions_command = [MADOGUCHI, "actions", "--port", str(actions_port)]
    with launched(actions_command, actions_env, folder / "actions.log") as actions, \
            launched(rasa, {**os.environ, **QUIET}, folder / "rasa.log") as server:
        _wait_for(f"http://127.0.0.1:{actions_port}/health", actions, folder / "actions.log")
        _wait_for(f"http://127.0.0.1:{rasa_port}/", server, folder / "rasa.log")
        yield f"http://127.0.0.1:{rasa_port}"


@dataclass
class RestClient:
    """A student talking to Rasa through its REST channel (`POST /webhooks/rest/webhook`)."""

    base_url: str
    sender: str

    def say(self, text: str, **metadata: Any) -> list[dict[str, Any]]:
        """Send one message (or a button's payload) and return Rasa's answer: a list of messages."""
        body: dict[str, Any] = {"sender": self.sender, "message": text}
        if metadata:
            body["metadata"] = metadata
        response = httpx.post(f"{self.base_url}/webhooks/rest/webhook", json=body, timeout=120)
        response.raise_for_status()
        return response.json()


def texts(messages: list[dict[str, Any]]) -> str:
    """The texts of Rasa's REST answer, joined."""
    return "\n".join(message.get("text") or "" for message in messages)


def button_payloads(messages: list[dict[str, Any]]) -> list[str]:
    """The button payloads of Rasa's REST answer."""
    return [button["payload"] for message in messages for button in message.get("buttons") or ()]


def dump_json(path: Path, document: Any) -> None:
    """Write a recording as readable JSON (Japanese kept as written)."""
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def validation_warnings() -> list[str]:
    """What `rasa data validate` says is wrong with the shipped files: its errors and warnings (Rasa's own
    libraries' deprecation warnings, about Rasa and not the files, are left out). `--fail-on-warnings`
    alone is not enough: it lets "utterance not used" warnings pass."""
    command = [str(rasa_command()), "data", "validate", "--fail-on-warnings", "--config", str(CONFIG), "--domain",
               str(DOMAIN), "--data", *(str(path) for path in DATA)]
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **QUIET}, capture_output=True, text=True,
                            timeout=600, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    found = [line for line in lines if "UserWarning" in line or " WARNING " in line or " ERROR " in line]
    return found or ([] if result.returncode == 0 else lines[-20:])


if __name__ == "__main__":  # `make rasa`: the shipped files validate, and the model the real-Rasa tests use
    missing = rasa_missing()
    if missing:
        sys.exit(missing)
    problems = validation_warnings()
    if problems:
        sys.exit("rasa data validate found problems:\n" + "\n".join(problems))
    print("rasa data validate: no warnings")
    print(f"Rasa model: {trained_model()}")
