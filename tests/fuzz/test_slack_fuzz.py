"""Validly signed random Slack requests (Events API bodies from Slack's event wrapper schema, interactivity
payloads and slash commands, each also mutated) posted over HTTP: never a 5xx, and every stored payload ends
done or failed once the inbox is drained."""

import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.channels.slack import payloads
from tests.channels.slack.conftest import SlackServer, fake_slack, slack_server, slack_settings  # noqa: F401 (fixtures)
from tests.channels.slack.fake_slack_api import FORM
from tests.channels.slack.payloads import SPECS, signed_headers
from tests.fuzz.conftest import FUZZ
from tests.fuzz.test_line_webhook_fuzz import (
    _events,
    assert_every_event_finished_cleanly,
    deep_values,
    drain,
    from_json_schema,
    json_values,
    nasty_text,
    paths,
    replaced,
)

EXPECTED = (200, 400, 404, 413)  # 404: Bolt has no listener for a request of that type


@cache
def wrapper_schema() -> dict[str, Any]:
    """Slack's common Events API wrapper (every topic of the events spec refers to it)."""
    return json.loads((SPECS / "slack_common_event_wrapper_schema.json").read_text(encoding="utf-8"))


def new_user() -> str:
    """A fresh user, so each answer goes to a conversation of its own (Slack's pacing is one post a second)."""
    return "U" + secrets.token_hex(5).upper()


@st.composite
def mutation_of(draw: st.DrawFn, body: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A body with one place in it replaced by any JSON value, odd text or deep nesting."""
    value = draw(body)
    path = draw(st.sampled_from(list(paths(value))))
    return replaced(value, path, draw(st.one_of(json_values, nasty_text, deep_values)))


def plausible_messages() -> st.SearchStrategy[dict[str, Any]]:
    def build(text: str, mention: bool, extra: dict[str, Any]) -> dict[str, Any]:
        user = new_user()
        # A channel of its own too: answers to mentions go to the channel, one post a second.
        channel = "C" + secrets.token_hex(5).upper()
        body = (payloads.app_mention(f"<@{payloads.BOT_USER}> {text}", user=user, channel=channel) if mention
                else payloads.im_message(text, user=user, channel="D" + user[1:]))
        return {**body, "event": {**body["event"], **extra}}

    extras = st.fixed_dictionaries({}, optional={"subtype": st.sampled_from(["file_share", "message_changed"]),
                                                 "thread_ts": st.just("1795000000.000100"),
                                                 "bot_id": st.just("B0OTHERBOT1")})
    return st.builds(build, nasty_text, st.booleans(), extras)


def event_bodies() -> st.SearchStrategy[Any]:
    messages = plausible_messages()
    return st.one_of(messages, messages, from_json_schema(wrapper_schema()), mutation_of(messages),
                     mutation_of(from_json_schema(wrapper_schema())), json_values)


def click_payloads() -> st.SearchStrategy[Any]:
    def build(value: str) -> dict[str, Any]:
        user = new_user()
        form = payloads.button_click("", user=user, channel="D" + user[1:])
        payload = json.loads(parse_qs(form)["payload"][0])
        payload["actions"][0]["value"] = value  # set after: the helper's form cannot carry a lone surrogate
        return payload

    clicks = st.builds(build, st.one_of(nasty_text, st.sampled_from(["intent:greet", "lang:en", "intent:x"])))
    return st.one_of(clicks, clicks, mutation_of(clicks), json_values)


def command_forms() -> st.SearchStrategy[dict[str, str]]:
    def build(text: str, command: str, channel: str) -> dict[str, str]:
        form = parse_qs(payloads.slash_command("", user=new_user(), channel=channel), keep_blank_values=True)
        return {**{name: values[0] for name, values in form.items()}, "text": text, "command": command}

    forms = st.builds(build, st.one_of(nasty_text, st.sampled_from(["help", "menu", "en", "payload"])),
                      st.sampled_from(["/madoguchi", "/certificates"]), st.sampled_from([payloads.DM, payloads.PUBLIC]))
    # Built once, not per example (Hypothesis checks every new strategy): every form has the same fields.
    fields_to_change = st.lists(st.sampled_from(sorted(build("", "/madoguchi", payloads.DM))), min_size=1, max_size=4,
                                unique=True)
    dropped_or_replaced = st.one_of(st.none(), nasty_text)

    @st.composite
    def changed(draw: st.DrawFn) -> dict[str, str]:  # a form holds only text: fields replaced or dropped
        form = draw(forms)
        for name in draw(fields_to_change):
            replacement = draw(dropped_or_replaced)
            form = {key: value for key, value in form.items() if key != name} if replacement is None \
                else {**form, name: replacement}
        return form

    # About half answered: each answer is a turn, a profile lookup and a post, the slowest part of the test.
    return st.one_of(forms, changed(), changed())


def _ascii(value: Any) -> bytes:
    # ASCII escapes carry lone surrogates ("\ud800") as a sender may write them.
    return json.dumps(value).encode()


# What a form encoder writes for each byte: unreserved ASCII as it is, a space as "+", anything else as %XX (as
# urllib's urlencode does, a byte at a time in Python: this table is two to three times faster on the long texts).
_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
_FORM_BYTES = [chr(byte) if byte in _UNRESERVED else "+" if byte == 0x20 else f"%{byte:02X}" for byte in range(256)]


def _form(fields: dict[str, str]) -> bytes:
    """The fields form-encoded as urlencode does it; lone surrogates are written as their UTF-8-like bytes
    (surrogatepass), as a sender's invalid UTF-8 would arrive."""
    def encoded(text: str) -> str:
        return "".join(map(_FORM_BYTES.__getitem__, text.encode("utf-8", "surrogatepass")))

    return "&".join(f"{encoded(name)}={encoded(value)}" for name, value in fields.items()).encode()


def _fuzz(server: SlackServer, caplog: Any, strategy: st.SearchStrategy[Any],
          encode: Callable[[Any], tuple[bytes, str]]) -> None:
    """Post every drawn body signed; then drain and check that every stored payload was finished."""
    caplog.set_level(logging.ERROR)
    answers: dict[int, int] = {}
    reasons: dict[str, int] = {}

    @FUZZ
    @given(value=strategy)
    def post(value: Any) -> None:
        raw, content_type = encode(value)
        response = server.post(raw, signed_headers(raw, content_type=content_type))
        answers[response.status_code] = answers.get(response.status_code, 0) + 1
        if response.status_code == 400:
            reason = re.sub(r"\[\d+\]", "[]", response.text)[:70]
            reasons[reason] = reasons.get(reason, 0) + 1
        assert response.status_code in EXPECTED, (response.status_code, response.text[:300], raw[:2000])

    started = time.perf_counter()
    post()
    posted = time.perf_counter()
    statuses = drain(server, lambda: server.clock.advance(hours=1))
    print(f"\nSlack fuzz: answers {answers}; stored payloads by status {statuses} (posting {posted - started:.1f} s,"
          f" draining {time.perf_counter() - posted:.1f} s); 400s by reason:")
    print("\n".join(f"  {count:6d} {reason}" for reason, count in sorted(reasons.items(), key=lambda i: -i[1])))
    assert_every_event_finished_cleanly(server, caplog)
    # Failed, rightly: Slack refused the channel (a mutated but well-formed id no workspace has).
    failed = [event for event in _events(server, "failed") if "channel_not_found" not in (event.last_error or "")]
    assert not failed, "\n".join(f"{event.last_error} {event.payload[:500]}" for event in failed)


@settings(FUZZ, max_examples=100)  # a check of the test's own encoder: a hundred forms are plenty
@given(fields=st.dictionaries(nasty_text, nasty_text, max_size=3))
def test_the_form_encoder_writes_what_urlencode_writes(fields):
    assert _form(fields) == urlencode(fields, encoding="utf-8", errors="surrogatepass").encode()


def test_signed_random_events_never_get_a_5xx_and_every_stored_one_is_finished(slack_server, caplog):  # noqa: F811
    _fuzz(slack_server, caplog, event_bodies(), lambda body: (_ascii(body), "application/json"))


def test_signed_random_interactions_never_get_a_5xx_and_every_stored_one_is_finished(slack_server,  # noqa: F811
                                                                                       caplog):
    _fuzz(slack_server, caplog, click_payloads(),
          lambda payload: (_form({"payload": json.dumps(payload)}), FORM))


def test_signed_random_slash_commands_never_get_a_5xx_and_every_stored_one_is_finished(slack_server,  # noqa: F811
                                                                                         caplog):
    _fuzz(slack_server, caplog, command_forms(), lambda form: (_form(form), FORM))
