"""Validly signed random LINE webhooks, from LINE's webhook spec and mutated, posted over HTTP: never a 5xx, and
every stored event ends done or failed once the inbox is drained."""

import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from sqlalchemy import select

from core.models import InboundEvent
from tests.channels.line.conftest import LineHarness, fake_line, fake_line_server, line, make_line  # noqa: F401
from tests.channels.line.fake_line_api import WEBHOOK_SPEC
from tests.fuzz.conftest import FUZZ

DROPPED_KEYS = frozenset({"description", "externalDocs", "example", "examples", "discriminator", "format"})
MAX_DRAIN_ROUNDS = 30  # each round moves the clock an hour: past every backoff of the inbox's attempts
USERS = [f"U{index:032x}" for index in range(1, 6)]  # a few students, so turns meet earlier conversations


# --- LINE's webhook spec as a JSON schema -------------------------------------------------------------------

def openapi_to_json_schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """The schema `name` of an OpenAPI document with every `$ref` resolved and every `allOf` merged; a
    discriminated base used as a value becomes a `oneOf` of its mapped schemas, each pinned to its value."""
    schemas = spec["components"]["schemas"]

    def resolve(node: Any, inherited: bool = False) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = schemas[node["$ref"].rsplit("/", 1)[-1]]
            if "discriminator" in target and not inherited:
                prop = target["discriminator"]["propertyName"]
                return {"oneOf": [_pinned(resolve({"$ref": ref}), prop, value)
                                  for value, ref in target["discriminator"]["mapping"].items()]}
            return resolve(target)
        if "allOf" in node:
            rest = {key: value for key, value in node.items() if key != "allOf"}
            return _merged([resolve(item, inherited=True) for item in node["allOf"]] + [resolve(rest)])
        return {key: resolve(value) for key, value in node.items() if key not in DROPPED_KEYS}

    return resolve(schemas[name])


def _merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    for part in parts:
        merged["properties"].update(part.get("properties", {}))
        merged["required"] += [name for name in part.get("required", []) if name not in merged["required"]]
    return merged


def _pinned(schema: dict[str, Any], prop: str, value: str) -> dict[str, Any]:
    required = [*schema.get("required", []), *([prop] if prop not in schema.get("required", []) else [])]
    return {**schema, "properties": {**schema["properties"], prop: {"const": value}}, "required": required}


def from_json_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """`hypothesis_jsonschema.from_schema`, except that objects, arrays and oneOf are built here.

    hypothesis-jsonschema 0.23.1 draws objects through a private Hypothesis API that Hypothesis 6.170 no
    longer has (`many.more()`), so every object schema fails there; its strings (patterns, lengths), numbers
    and enums are still its own. Objects get their required properties and any of their optional ones.
    """
    if "oneOf" in schema:
        return st.one_of([from_json_schema(branch) for branch in schema["oneOf"]])
    if schema.get("type") == "object" or "properties" in schema:
        properties = {name: from_json_schema(item) for name, item in schema.get("properties", {}).items()}
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries({name: value for name, value in properties.items() if name in required},
                                     optional={name: value for name, value in properties.items()
                                               if name not in required})
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return st.lists(from_json_schema(schema["items"]), min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 3), 3))
    return from_schema(schema)


@cache
def event_schema() -> dict[str, Any]:
    """One webhook event, by the spec (a oneOf of its 19 event types)."""
    spec = yaml.safe_load(WEBHOOK_SPEC.read_text(encoding="utf-8"))
    return openapi_to_json_schema(spec, "CallbackRequest")["properties"]["events"]["items"]


# --- strategies -----------------------------------------------------------------------------------------------

NASTY_STRINGS = ["\ud800", "\udfff", "a\ud83d", "\x00", "a\x00b", "\ud800\x00", "", " ", "\n", "\u202e", "𠮷"]
nasty_text = st.one_of(
    st.text(max_size=40), st.sampled_from(NASTY_STRINGS),
    st.tuples(st.text(max_size=10), st.sampled_from(NASTY_STRINGS)).map("".join),
    st.integers(1_000, 120_000).map(lambda size: "あ" * size),  # past every limit of ours and LINE's
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-(10**30), 10**30) | st.floats() | nasty_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(nasty_text, inner, max_size=3), max_leaves=8)
deep_values = st.integers(20, 200).map(lambda depth: json.loads("[" * depth + "]" * depth))


def plausible_events(now_ms: int) -> st.SearchStrategy[dict[str, Any]]:
    """Events by the spec with what the spec leaves open made as LINE makes it (fresh id, current time, one of
    a few users), so that most are stored and answered."""
    def settle(event: dict[str, Any], user: str, age: int, text: str) -> dict[str, Any]:
        event = {**event, "webhookEventId": secrets.token_hex(13), "timestamp": now_ms - age,
                 "source": {"type": "user", "userId": user}}
        if event["type"] == "message" and event["message"].get("type") == "text":
            event["message"] = {**event["message"], "text": text}
        return event

    return st.builds(settle, from_json_schema(event_schema()), st.sampled_from(USERS),
                     st.integers(0, 10 * 24 * 3_600_000), nasty_text)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value (the root included) where another value could be put."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


@st.composite
def mutated(draw: st.DrawFn, events: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A plausible event with one place in it replaced by any JSON value, odd text or deep nesting."""
    event = draw(events)
    path = draw(st.sampled_from(list(paths(event))))
    return replaced(event, path, draw(st.one_of(json_values, nasty_text, deep_values)))


def bodies(now_ms: int) -> st.SearchStrategy[Any]:
    """Webhook bodies: about half only plausible events (stored and answered), the rest events straight from
    the spec, mutated events, and bodies with their destination, events or whole self replaced."""
    plausible = plausible_events(now_ms)

    def body(events: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({"destination": st.just("U" + "0" * 32), "events": events})

    good = body(st.lists(plausible, min_size=1, max_size=3))
    odd_body = st.builds(lambda whole, path_value: replaced(whole, *path_value),
                         good, st.tuples(st.sampled_from([("destination",), ("events",), ()]), json_values))
    return st.one_of(good, good, good, body(st.lists(mutated(plausible), min_size=1, max_size=2)),
                     body(st.lists(mutated(plausible), min_size=1, max_size=2)),
                     body(st.lists(from_json_schema(event_schema()), max_size=3)), odd_body)


# --- the property ---------------------------------------------------------------------------------------------

def test_signed_random_webhooks_never_get_a_5xx_and_every_stored_event_is_finished(line: LineHarness,  # noqa: F811
                                                                                  caplog):
    caplog.set_level(logging.ERROR)
    now_ms = int(line.clock.now().timestamp() * 1000)
    answers: dict[int, int] = {}
    reasons: dict[str, int] = {}

    @FUZZ
    @given(body=bodies(now_ms), ascii_escapes=st.booleans())
    def post(body: Any, ascii_escapes: bool) -> None:
        # ASCII escapes carry lone surrogates ("\ud800") as a sender may write them; raw UTF-8 cannot.
        raw = json.dumps(body, ensure_ascii=ascii_escapes or _has_lone_surrogate(body)).encode()
        response = line.post_body(raw)
        status = response.status_code
        answers[status] = answers.get(status, 0) + 1
        if status == 400:  # which field, without the event's index: what the fuzzer reached
            reason = re.sub(r"\[\d+\]", "[]", response.text)[:60]
            reasons[reason] = reasons.get(reason, 0) + 1
        assert status < 500 and status in (200, 400, 413), (status, raw[:2000])

    started = time.perf_counter()
    post()
    posted = time.perf_counter()
    statuses = drain(line)
    print(f"\nLINE fuzz: answers {answers}; stored events by status {statuses} (posting {posted - started:.1f} s,"
          f" draining {time.perf_counter() - posted:.1f} s); 400s by reason:")
    print("\n".join(f"  {count:6d} {reason}" for reason, count in sorted(reasons.items(), key=lambda i: -i[1])))
    assert_every_event_finished_cleanly(line, caplog)
    failed = _events(line, "failed")
    assert not failed, "\n".join(f"{event.last_error} {event.payload[:500]}" for event in failed)


def drain(harness: Any, advance: Callable[[], object] | None = None) -> dict[str, int]:
    """Drain until nothing is due, moving the clock an hour a round; the stored events counted by status."""
    for _ in range(MAX_DRAIN_ROUNDS):
        harness.inbox.drain()
        if not _events(harness, "pending", "processing"):
            break
        (advance or (lambda: harness.clock.advance(hours=1)))()
    counts: dict[str, int] = {}
    for event in _events(harness):
        counts[event.status] = counts.get(event.status, 0) + 1
    return counts


def assert_every_event_finished_cleanly(harness: Any, caplog: pytest.LogCaptureFixture) -> None:
    """No stored event is left pending or processing, and no exception escaped a step of the inbox."""
    stuck = _events(harness, "pending", "processing")
    assert not stuck, "\n".join(f"{event.status} {event.last_error} {event.payload[:500]}" for event in stuck)
    escaped = [record for record in caplog.records
               if record.name.startswith("bot.delivery.inbox") and record.exc_info]
    assert not escaped, "an exception escaped a step of the inbox"


def _events(harness: Any, *statuses: str) -> list[InboundEvent]:
    with harness.core.transaction() as session:
        query = select(InboundEvent).order_by(InboundEvent.id)
        if statuses:
            query = query.where(InboundEvent.status.in_(statuses))
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


