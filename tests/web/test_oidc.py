"""Single sign-on against a real OpenID provider: the certified `oidc-provider` (npm, tests/oidc) started on
loopback by the test with Node.js, its development login page filled in as a student would. Sign in; a wrong
state; an expired code; a user without a matching student; nothing is mocked on either side."""

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from bot.web.signin import COOKIE
from core.models import WebSession
from core.students import load_demo_students
from tests.conftest import LiveServer, free_port, serve, stop_process

PROVIDER = Path(__file__).resolve().parents[1] / "oidc"
CLIENT_ID, CLIENT_SECRET = "madoguchi-test", "a-client-secret-for-tests-only"
SCOPE = "openid email student"  # the test provider's `student` scope carries the student number
_FORM = re.compile(r'<form[^>]*action="([^"]+)"', re.I)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', re.I)

pytestmark = pytest.mark.skipif(shutil.which("node") is None or not (PROVIDER / "node_modules").exists(),
                                reason="SINGLE SIGN-ON NOT TESTED: Node.js or tests/oidc/node_modules missing "
                                       "(`make test` installs it)")


def start_provider(port: int, redirect_uri: str, code_ttl: int = 60) -> subprocess.Popen:
    env = {**os.environ, "PORT": str(port), "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET,
           "REDIRECT_URI": redirect_uri, "CODE_TTL": str(code_ttl)}
    process = subprocess.Popen(["node", "provider.mjs"], cwd=PROVIDER, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_process(process)
    raise AssertionError("oidc-provider did not start")


@contextmanager
def madoguchi_and_provider(make_core, clock, code_ttl: int = 60) -> Iterator[tuple[LiveServer, int]]:
    """madoguchi with single sign-on on, and the provider it trusts, both on loopback (on today's clock: the
    provider's tokens are dated by the real one)."""
    clock.set(datetime.now(UTC))
    port = free_port()
    with serve(make_core, None, oidc_issuer=f"http://127.0.0.1:{port}", oidc_client_id=CLIENT_ID,
               oidc_client_secret=CLIENT_SECRET, oidc_scope=SCOPE) as server:
        with server.core.transaction() as session:
            load_demo_students(session, server.core.profile, server.core.now())
        process = start_provider(port, f"{server.url}/signin/oidc/callback", code_ttl=code_ttl)
        try:
            yield server, port
        finally:
            stop_process(process)


@pytest.fixture
def sign_on(make_core, inbox, clock) -> Iterator[tuple[LiveServer, int]]:
    """The pair, with the provider's usual code lifetime."""
    with madoguchi_and_provider(make_core, clock) as pair:
        yield pair


def sign_in_at_the_provider(browser: httpx.Client, location: str, login: str) -> str:
    """Follow the provider's pages as a browser: its development login form (any account id), then the consent;
    the address it sends the browser back to madoguchi with."""
    for _ in range(12):
        response = browser.get(location)
        if response.status_code in (302, 303):
            location = str(response.url.join(response.headers["location"]))
            if "/signin/oidc/callback" in location:
                return location
            continue
        action = _FORM.search(response.text)
        assert action, response.text[:500]
        fields = dict(_HIDDEN.findall(response.text))  # what the page's form carries (the prompt it answers)
        if 'name="login"' in response.text:
            fields |= {"login": login, "password": "anything"}
        posted = browser.post(str(response.url.join(action.group(1))), data=fields)
        assert posted.status_code in (302, 303), posted.text[:300]
        location = str(posted.url.join(posted.headers["location"]))
        if "/signin/oidc/callback" in location:
            return location
    raise AssertionError("the provider never sent the browser back")


def test_a_student_signs_in_with_the_university_account(sign_on):
    server, _ = sign_on
    chat_page = server.client.get("/")
    assert 'id="sign-on"' in chat_page.text and "大学のアカウントでサインイン" in chat_page.text
    started = server.client.get("/signin/oidc")
    assert started.status_code == 303
    query = parse_qs(urlsplit(started.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [CLIENT_ID]
    assert query["state"][0] and query["nonce"][0] and "code_verifier" not in query
    with httpx.Client(timeout=10) as browser:
        back = sign_in_at_the_provider(browser, started.headers["location"], "24M1001")
    done = server.client.get(back.removeprefix(server.url))
    assert done.status_code == 303 and done.headers["location"] == "/?signed_in=1&lang=ja"
    assert f"{COOKIE}=" in done.headers["set-cookie"] and "HttpOnly" in done.headers["set-cookie"]
    with server.core.transaction() as session:
        [row] = session.scalars(select(WebSession)).all()
        assert row.via == "oidc"
    assert "24***01 でサインイン中" in server.client.get("/").text
    again = server.client.get(back.removeprefix(server.url))  # the same answer twice: the flow is over
    assert again.status_code == 400


def test_a_wrong_state_signs_no_one_in(sign_on):
    server, _ = sign_on
    started = server.client.get("/signin/oidc")
    with httpx.Client(timeout=10) as browser:
        back = sign_in_at_the_provider(browser, started.headers["location"], "24M1001")
    forged = re.sub(r"state=[^&]+", "state=not-the-one-we-sent", back)
    refused = server.client.get(forged.removeprefix(server.url))
    assert refused.status_code == 400 and "一致しませんでした" in refused.text
    stranger = httpx.Client(base_url=server.url, timeout=10)  # another browser, with this one's answer
    assert stranger.get(back.removeprefix(server.url)).status_code == 400
    with server.core.transaction() as session:
        assert session.scalars(select(WebSession)).all() == []


def test_an_expired_code_signs_no_one_in(make_core, inbox, clock):
    with madoguchi_and_provider(make_core, clock, code_ttl=1) as (server, _):
        started = server.client.get("/signin/oidc")
        with httpx.Client(timeout=10) as browser:
            back = sign_in_at_the_provider(browser, started.headers["location"], "24M1001")
        time.sleep(2.5)  # the provider's own clock: its code lives 1 second (its TTL, not ours to inject)
        refused = server.client.get(back.removeprefix(server.url))
    assert refused.status_code == 400 and "時間がかかりすぎた" in refused.text


def test_a_provider_user_who_is_no_student_is_told_so(sign_on):
    server, _ = sign_on
    started = server.client.get("/signin/oidc", params={"lang": "en"})
    with httpx.Client(timeout=10) as browser:
        back = sign_in_at_the_provider(browser, started.headers["location"], "99Z9999")
    refused = server.client.get(back.removeprefix(server.url))
    assert refused.status_code == 403 and "no student of the Certificate Issuance Service matches" in refused.text
    assert "Student Support Division" in refused.text and COOKIE not in refused.headers.get("set-cookie", "")


def test_doctor_checks_the_provider_and_that_it_accepts_the_client(sign_on):
    from bot.cli.doctor import Outcome, check_sign_on
    from bot.settings import ChannelSettings

    _, port = sign_on
    issuer = f"http://127.0.0.1:{port}"

    def checked(**values: str):
        return check_sign_on(ChannelSettings(_env_file=None, **values))  # type: ignore[call-arg, arg-type]

    good = checked(oidc_issuer=issuer, oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET)
    assert good.outcome is Outcome.OK and "client accepted" in good.detail
    wrong = checked(oidc_issuer=issuer, oidc_client_id=CLIENT_ID, oidc_client_secret="not-the-secret")
    assert wrong.outcome is Outcome.PROBLEM and "OIDC_CLIENT_SECRET" in wrong.detail
    gone = checked(oidc_issuer=f"http://127.0.0.1:{free_port()}", oidc_client_id=CLIENT_ID,
                   oidc_client_secret=CLIENT_SECRET)
    assert gone.outcome is Outcome.PROBLEM and "OIDC_ISSUER" in gone.detail
    half = checked(oidc_issuer=issuer)
    assert half.outcome is Outcome.PROBLEM and "OIDC_CLIENT_ID, OIDC_CLIENT_SECRET" in half.detail
    assert checked().outcome is Outcome.SKIPPED
