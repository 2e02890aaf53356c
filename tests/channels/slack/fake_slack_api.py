"""A fake Slack Web API on loopback: it records every call the bot makes, validates each against Slack's
published OpenAPI spec and Block Kit's rules, and answers as Slack does (or with a 429 or 500 when told to).

The spec (specs/slack_web_openapi_v2_without_examples.json, from slackapi/slack-api-specs) is Swagger 2.0,
which openapi-core does not read. Each method's operation is therefore converted to OpenAPI 3.0 when first
called, and the request is validated by openapi-core against it:

- the `token` parameter becomes an HTTP bearer security requirement (Slack's clients send
  `Authorization: Bearer xoxb-…`; the spec models that header as a parameter named `token`, in the header
  for most methods and in the query for some, such as users.info);
- `formData` (and `query`) parameters become the properties of an object schema for the request body, for
  both content types the operation `consumes`, with the spec's `required` list;
- every operation is served for POST: Slack accepts GET and POST for every method, and slack_sdk's
  WebClient posts, even for the methods its code names GET (users.info sends its arguments as a form).

On top of the spec: parameter names the spec does not list are violations (the converted schema would
ignore them), the token must be the bot's, and a `blocks` argument must parse with slack_sdk's Block Kit
models, pass their `validate_json()` limits and survive a round trip unchanged (no unknown keys); a `view`
argument (views.publish) the same with slack_sdk's View model, and it must be a Home view (`type: home`, at
most 100 blocks). Answers are shaped like Slack's and checked against the spec's response schema
(jsonschema, draft 4), so the fake cannot drift from what the bot would really receive: chat.postMessage,
chat.update, chat.postEphemeral, views.publish, users.info and auth.test are answered in full, other methods
with a bare `{"ok": true}`. views.publish answers the published view as Slack does (its id, which stays the
user's, a new hash each time, and the fields Slack adds); the last one per user is kept (`home`), so that a
test can click a button of the view a user sees. users.info answers a person of the workspace whose profile
email a test sets (`set_profile`); by default each user has an address of their own that is no student's.
"""

import json
import re
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jsonschema
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPECS = Path(__file__).parent / "specs"
WEB_API_SPEC = SPECS / "slack_web_openapi_v2_without_examples.json"
FAKE_HOST = "http://fake-slack.invalid"  # what openapi-core matches the spec's server against
MAX_BLOCKS = 50  # chat.postMessage: "up to 50 blocks per message"
MAX_VIEW_BLOCKS = 100  # a Home tab view: "up to 100 blocks"
FORM = "application/x-www-form-urlencoded"
UPDATED = 1_795_000_000  # users.info: when a profile was last changed (Unix time)
# Definitions whose alternatives the spec writes as a tuple `items` on an object, which draft 4 applies only
# to arrays: read as anyOf, so that a user object in an answer is really checked.
_ITEMS_AS_ALTERNATIVES = ("objs_user", "objs_conversation", "objs_response_metadata")


CONVERSATION = re.compile(r"[CGD][A-Z0-9]{8,}")  # a conversation id, as the spec's answers give them
CHANNEL_METHODS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral"})


@cache
def web_api_spec() -> dict[str, Any]:
    """The Web API spec, read once."""
    return json.loads(WEB_API_SPEC.read_text(encoding="utf-8"))


def swagger_operation(method: str) -> dict[str, Any] | None:
    """The Swagger 2.0 operation of a Web API method such as `chat.postMessage`, or None if unknown."""
    path = web_api_spec()["paths"].get(f"/{method}")
    if not path:
        return None
    return next((path[verb] for verb in ("post", "get") if verb in path), None)


@cache
def response_definitions() -> dict[str, Any]:
    """The spec's definitions for answer checks, with `_ITEMS_AS_ALTERNATIVES` read as anyOf."""
    definitions = dict(web_api_spec()["definitions"])
    for name in _ITEMS_AS_ALTERNATIVES:
        tuple_items = definitions[name]
        assert isinstance(tuple_items.get("items"), list) and "type" not in tuple_items, name
        definitions[name] = {"anyOf": tuple_items["items"]}
    return definitions


@cache
def openapi_for(method: str) -> OpenAPI:
    """One method's operation converted to an OpenAPI 3.0 document (see the module docstring)."""
    operation = swagger_operation(method)
    assert operation is not None, method
    properties: dict[str, Any] = {}
    required: list[str] = []
    security: list[dict[str, list[str]]] = [{}]
    for parameter in operation.get("parameters", []):
        if parameter["name"] == "token" and parameter["in"] in ("header", "query"):
            security = [{"bearer": []}] if parameter.get("required") else [{"bearer": []}, {}]
            continue
        if parameter["in"] not in ("formData", "query"):
            raise ValueError(f"{method}: unexpected parameter location {parameter['in']}")
        schema = {key: parameter[key] for key in ("type", "items", "enum", "format") if key in parameter}
        properties[parameter["name"]] = schema
        if parameter.get("required"):
            required.append(parameter["name"])
    body: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        body["required"] = required
    content = {media: {"schema": body} for media in operation.get("consumes", [FORM])}
    document = {
        "openapi": "3.0.3",
        "info": {"title": f"Slack Web API: {method}", "version": web_api_spec()["info"]["version"]},
        "servers": [{"url": f"{FAKE_HOST}/api"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {f"/{method}": {"post": {
            "operationId": operation.get("operationId", method),
            "security": security,
            "requestBody": {"required": bool(required), "content": content},
            "responses": {"default": {"description": "any"}},
        }}},
    }
    return OpenAPI.from_dict(document)


def parameter_names(method: str) -> set[str]:
    """Every argument the spec lists for a method (the token included)."""
    operation = swagger_operation(method) or {}
    return {parameter["name"] for parameter in operation.get("parameters", [])}


def response_problems(method: str, status: int, body: dict[str, Any]) -> list[str]:
    """How an answer breaks the spec's response schema for the method (200 for ok, default otherwise)."""
    responses = (swagger_operation(method) or {}).get("responses", {})
    schema = responses.get("200" if body.get("ok") else "default", {}).get("schema")
    if schema is None:
        return []
    validator = jsonschema.Draft4Validator({**schema, "definitions": response_definitions()})
    return [f"{method} answer breaks the spec at {list(error.absolute_path)}: {error.message}"
            for error in validator.iter_errors(body)]


@dataclass(frozen=True)
class _OpenApiRequest:
    """A recorded call as openapi-core's Request protocol."""

    path: str
    body: bytes
    content_type: str
    headers: dict[str, str]
    method: str = "post"
    host_url: str = FAKE_HOST

    @property
    def full_url_pattern(self) -> str:
        return self.host_url + self.path

    @property
    def parameters(self) -> RequestParameters:
        return RequestParameters(header=Headers(self.headers), query=ImmutableMultiDict(), cookie=ImmutableMultiDict())


def block_problems(raw: str, *, limit: int = MAX_BLOCKS, holder: str = "a message") -> list[str]:
    """How a `blocks` argument breaks Block Kit, checked with slack_sdk's block models."""
    try:
        blocks = json.loads(raw)
    except json.JSONDecodeError as error:
        return [f"blocks is not JSON: {error}"]
    if not isinstance(blocks, list) or not blocks:
        return ["blocks must be a non-empty JSON array"]
    problems = [f"{len(blocks)} blocks; {holder} holds at most {limit}"] if len(blocks) > limit else []
    for index, block in enumerate(blocks):
        try:
            parsed = Block.parse(block) if isinstance(block, dict) else None
        except (TypeError, ValueError, SlackObjectFormationError) as error:
            problems.append(f"block {index} does not parse as Block Kit: {error}")
            continue
        if parsed is None:
            problems.append(f"block {index} is not a known Block Kit block: {block!r}")
            continue
        try:
            round_trip = parsed.to_dict()  # validates Block Kit's limits first
        except SlackObjectFormationError as error:
            problems.append(f"block {index} ({block.get('type')}): {error}")
            continue
        if round_trip != block:
            problems.append(f"block {index} has keys Block Kit does not know: {block!r}")
    return problems


def view_problems(raw: str) -> list[str]:
    """How a views.publish `view` argument breaks Slack's rules for a Home view, checked with slack_sdk's View
    model (its limits, and no key it does not know) and its blocks as `block_problems` checks a message's."""
    try:
        view = json.loads(raw)
    except json.JSONDecodeError as error:
        return [f"view is not JSON: {error}"]
    if not isinstance(view, dict):
        return ["view must be a JSON object"]
    problems = [] if view.get("type") == "home" else [f"views.publish takes a home view, not {view.get('type')!r}"]
    problems += block_problems(json.dumps(view.get("blocks")), limit=MAX_VIEW_BLOCKS, holder="a Home view")
    try:
        round_trip = View(**view).to_dict()  # validates the view's own limits (private_metadata, callback_id)
    except (TypeError, ValueError, SlackObjectFormationError) as error:
        return [*problems, f"view does not pass slack_sdk's View model: {error}"]
    if round_trip != view:
        problems.append(f"view has keys a view does not know: {sorted(set(view) - set(round_trip))}")
    return problems


@dataclass
class Call:
    """One request the bot made, and what the fake answered."""

    method: str
    headers: dict[str, str]
    params: dict[str, Any]
    status: int = 200
    answer: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.answer and self.answer.get("ok"))

    @property
    def blocks(self) -> list[dict[str, Any]]:
        """The decoded Block Kit blocks of a message call, or of the view a views.publish call publishes."""
        if self.method == "views.publish":
            return list(self.view.get("blocks") or [])
        raw = self.params.get("blocks")
        return json.loads(raw) if isinstance(raw, str) else list(raw or [])

    @property
    def view(self) -> dict[str, Any]:
        """The decoded `view` of a views.publish call."""
        raw = self.params.get("view")
        return json.loads(raw) if isinstance(raw, str) else dict(raw or {})


@dataclass
class _Failure:
    method: str
    status: int
    retry_after: int | None
    error: str | None


@dataclass(frozen=True)
class Profile:
    """A person of the workspace as users.info describes them."""

    email: str | None  # None: the profile has no email, as Slack answers an app without users:read.email
    is_bot: bool = False
    deleted: bool = False


@dataclass
class FakeSlackApi:
    """The fake's state: the calls, the violations, the failures queued for the next calls, and the people."""

    token: str
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    base_url: str = ""
    profiles: dict[str, Profile] = field(default_factory=dict)
    homes: dict[str, dict[str, Any]] = field(default_factory=dict)  # user → the Home view they see now
    _failures: deque[_Failure] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: Iterator[int] = field(default_factory=lambda: count(1))

    def fail_next(self, times: int, *, status: int, retry_after: int | None = None, error: str | None = None,
                  method: str = "chat.postMessage") -> None:
        """Answer the next `times` calls of `method` with `status`: 429 carries `Retry-After: retry_after`,
        5xx an HTML page, and 200 Slack's `{"ok": false, "error": error}`."""
        with self._lock:
            self._failures.extend(_Failure(method, status, retry_after, error) for _ in range(times))

    def set_profile(self, user: str, email: str | None, *, is_bot: bool = False, deleted: bool = False) -> None:
        """What users.info answers for `user` from now on (`email=None`: a profile without email)."""
        with self._lock:
            self.profiles[user] = Profile(email, is_bot=is_bot, deleted=deleted)

    def profile(self, user: str) -> Profile:
        """The user's profile: as set, else an address of their own that is no student's."""
        with self._lock:
            return self.profiles.get(user) or Profile(f"{user.lower()}@people.example.com")

    def posts(self) -> list[Call]:
        """The chat.postMessage calls Slack accepted, in order."""
        with self._lock:
            return [call for call in self.calls if call.method == "chat.postMessage" and call.ok]

    def publishes(self) -> list[Call]:
        """The views.publish calls Slack accepted, in order."""
        with self._lock:
            return [call for call in self.calls if call.method == "views.publish" and call.ok]

    def home(self, user: str) -> dict[str, Any] | None:
        """The Home view `user` sees now, as views.publish answered it (None if none was published)."""
        with self._lock:
            return self.homes.get(user)

    def attempts(self, method: str = "chat.postMessage") -> list[Call]:
        """Every call of a method, accepted or not."""
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Record, validate and answer one HTTP request; returns status, headers and body."""
        method = path.removeprefix("/api/").split("?")[0]
        content_type = headers.get("content-type", FORM).split(";")[0].strip().lower()
        params = _decode(body, content_type)
        call = Call(method=method, headers=headers, params=params)
        problems = self._check(method, path, headers, body, content_type, params)
        with self._lock:
            self.calls.append(call)
            self.violations.extend(f"{method}: {problem}" for problem in problems)
            failure = next((item for item in self._failures if item.method == method), None)
            if failure is not None:
                self._failures.remove(failure)
        if failure is not None:
            return self._fail(call, failure)
        call.answer = self._answer(method, params, problems)
        with self._lock:
            self.violations.extend(response_problems(method, 200, call.answer))
        return 200, {"content-type": "application/json; charset=utf-8"}, json.dumps(call.answer).encode()

    def _check(self, method: str, path: str, headers: dict[str, str], body: bytes, content_type: str,
               params: dict[str, Any]) -> list[str]:
        if swagger_operation(method) is None:
            return [f"{method} is not a Web API method in the spec"]
        problems = []
        try:
            openapi_for(method).validate_request(_OpenApiRequest(f"/api/{method}", body, content_type, headers))
        except Exception as error:  # openapi-core raises one of several error types; each is a violation
            detail = "; ".join(str(cause) for cause in _causes(error))
            problems.append(f"request breaks the spec: {error}{' (' + detail + ')' if detail else ''}")
        unknown = set(params) - parameter_names(method)
        if unknown:
            problems.append(f"arguments the spec does not list: {sorted(unknown)}")
        if headers.get("authorization") != f"Bearer {self.token}" and params.get("token") != self.token:
            problems.append("not the bot token")
        if "blocks" in params:
            problems += block_problems(params["blocks"] if isinstance(params["blocks"], str)
                                       else json.dumps(params["blocks"]))
            if not params.get("text"):
                problems.append("blocks without a fallback text (notifications and screen readers need one)")
        if method == "views.publish" and "view" in params:
            problems += view_problems(params["view"] if isinstance(params["view"], str)
                                      else json.dumps(params["view"]))
        return problems

    def _answer(self, method: str, params: dict[str, Any], problems: list[str]) -> dict[str, Any]:
        if any(problem == "not the bot token" for problem in problems):
            return {"ok": False, "error": "invalid_auth"}
        ts = f"{1_795_000_000 + next(self._ts)}.000100"
        channel = str(params.get("channel", ""))
        if channel.startswith(("U", "W")):  # a user id: Slack posts to the app's DM with that user
            channel = "D" + channel[1:].ljust(10, "0")
        if method in CHANNEL_METHODS and not CONVERSATION.fullmatch(channel):
            return {"ok": False, "error": "channel_not_found"}  # as Slack answers a channel it has not
        if method == "chat.postMessage":
            message = {"type": "message", "text": params.get("text", ""), "ts": ts, "bot_id": "B0FAKEBOT01"}
            if params.get("thread_ts"):
                message["thread_ts"] = params["thread_ts"]
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.update":  # the edited message keeps its ts; the spec's `message.blocks` is mistyped
            text = str(params.get("text", ""))
            return {"ok": True, "channel": channel, "ts": str(params.get("ts", "")), "text": text,
                    "message": {"text": text}}
        if method == "chat.postEphemeral":  # shown only to `user`; Slack answers the ephemeral message's ts
            return {"ok": True, "message_ts": ts}
        if method == "views.publish":
            return self._publish(str(params.get("user_id", "")), params, problems)
        if method == "users.info":
            return self._user(str(params.get("user", "")))
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "madoguchi",
                    "team_id": "T0FAKETEAM", "user_id": "U0FAKEBOT1", "bot_id": "B0FAKEBOT01",
                    "is_enterprise_install": False}
        return {"ok": True}

    def _publish(self, user: str, params: dict[str, Any], problems: list[str]) -> dict[str, Any]:
        """views.publish's answer: the view as Slack stores it (docs.slack.dev/reference/methods/views.publish),
        kept as the user's Home; an invalid view is refused as Slack refuses it."""
        if not user.startswith(("U", "W")):
            return {"ok": False, "error": "user_not_found"}
        if problems:  # Slack refuses a view it cannot show (the violations are recorded all the same)
            return {"ok": False, "error": "invalid_arguments"}
        sent = json.loads(params["view"]) if isinstance(params["view"], str) else dict(params["view"])
        with self._lock:
            view_id = (self.homes.get(user) or {}).get("id") or f"V0{user[1:].ljust(9, '0')[:9]}"
            view = {
                "id": view_id, "team_id": "T0FAKETEAM", "type": "home", "close": None, "submit": None,
                # Slack gives each block without a block_id one of its own (a click reports it).
                "blocks": [{**block, "block_id": block.get("block_id") or f"h{index}{view_id[-4:]}"}
                           for index, block in enumerate(sent.get("blocks", []))],
                "private_metadata": sent.get("private_metadata", ""),
                "callback_id": sent.get("callback_id", ""), "state": {"values": {}},
                "hash": f"{UPDATED + next(self._ts)}.{next(self._ts):08x}", "clear_on_close": False,
                "notify_on_close": False, "root_view_id": view_id, "previous_view_id": None,
                "app_id": "A0FAKEAPP01", "external_id": sent.get("external_id", ""), "bot_id": "B0FAKEBOT01",
            }
            self.homes[user] = view
        return {"ok": True, "view": view}

    def _user(self, user: str) -> dict[str, Any]:
        """users.info's answer: the person as the spec's user object, or user_not_found."""
        if not user.startswith(("U", "W")):
            return {"ok": False, "error": "user_not_found"}
        person = self.profile(user)
        name = user.lower()
        profile: dict[str, Any] = {
            "real_name": name, "real_name_normalized": name, "display_name": name, "display_name_normalized": name,
            "avatar_hash": "g0123456789a", "title": "", "phone": "", "skype": "", "status_text": "",
            "status_emoji": "", "fields": None,
        }
        if person.email is not None:
            profile["email"] = person.email
        return {"ok": True, "user": {
            "id": user, "name": name, "real_name": name, "deleted": person.deleted, "is_bot": person.is_bot,
            "is_app_user": False, "is_restricted": False, "is_ultra_restricted": False, "updated": UPDATED,
            "tz": "Asia/Tokyo", "tz_label": "Japan Standard Time", "tz_offset": 32400, "profile": profile,
        }}

    def _fail(self, call: Call, failure: _Failure) -> tuple[int, dict[str, str], bytes]:
        call.status = failure.status
        headers = {"content-type": "application/json; charset=utf-8"}
        if failure.status >= 500:  # Slack's 5xx pages are not JSON: the client must cope with any body
            return failure.status, {"content-type": "text/html"}, b"<html><body>Internal Server Error</body></html>"
        if failure.status == 429:
            call.answer = {"ok": False, "error": "ratelimited"}
            if failure.retry_after is not None:
                headers["retry-after"] = str(failure.retry_after)
        else:
            call.answer = {"ok": False, "error": failure.error or "fatal_error"}
            with self._lock:
                self.violations.extend(response_problems(call.method, failure.status, call.answer))
        return failure.status, headers, json.dumps(call.answer).encode()


def _decode(body: bytes, content_type: str) -> dict[str, Any]:
    if content_type == "application/json":
        try:
            data = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _causes(error: BaseException) -> list[BaseException]:
    causes = []
    while error.__cause__ is not None:
        error = error.__cause__
        causes.append(error)
        causes.extend(getattr(error, "schema_errors", ()))
    return causes


@contextmanager
def running(token: str) -> Iterator[FakeSlackApi]:
    """Serve a fake Web API on a loopback port for the duration of the block."""
    fake = FakeSlackApi(token=token)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._serve()

        def do_GET(self) -> None:
            self._serve()

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, answer_headers, answer = fake.handle(self.path, headers, body)
            self.send_response(status)
            for name, value in {**answer_headers, "content-length": str(len(answer))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the calls are recorded instead."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/api/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
