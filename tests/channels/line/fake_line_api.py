"""A fake LINE platform on loopback: the Messaging API calls the bot makes, recorded and validated against
LINE's OpenAPI spec (plus the documented limits the spec does not encode), and the accountLink dialog.

Tests tell it to fail the next calls of an endpoint (`fail_next`) or to hold message sends to a rate
(`limit_rate`: 429 with Retry-After beyond N requests a second, as LINE does per endpoint), or to accept only
one channel access token (`access_token`: any other is answered 401, as LINE answers a revoked token); it
also answers the bot's info (`GET /v2/bot/info`, what `madoguchi doctor` checks the token with) and keeps rich
menus (fake_richmenu.py), whose pictures go to the data host, served under `data_url`. Every violation is
collected and the fixture fails the test at teardown if there is any.
"""

import copy
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.starlette.requests import StarletteOpenAPIRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.channels.line.fake_richmenu import DATA_PREFIX, RichMenus

SPECS = Path("/work/shared/specs/line")
MESSAGING_SPEC = SPECS / "messaging-api.yml"
WEBHOOK_SPEC = SPECS / "webhook.yml"

REPLY, PUSH, MULTICAST = "/v2/bot/message/reply", "/v2/bot/message/push", "/v2/bot/message/multicast"
RETRY_KEY_PATHS = frozenset({PUSH, MULTICAST})  # the sends that take an X-Line-Retry-Key
LOADING = "/v2/bot/chat/loading/start"
BOT_INFO = "/v2/bot/info"
# What LINE answers a call whose channel access token is wrong, expired or revoked (HTTP 401).
BAD_TOKEN = "Authentication failed. Confirm that the access token in the authorization header is valid."
LINK_DIALOG = "/dialog/bot/accountLink"

# Documented limits the OpenAPI documents do not encode (https://developers.line.biz/en/reference/messaging-api/).
MAX_TEXT_UNITS = 5000
MAX_ACTION_LABEL = 20
MAX_DISPLAY_TEXT = 300
MAX_ALT_TEXT = 1500
MAX_FLEX_BYTES = 30_000
MAX_URI = 1000


# The kinds the bot sends most, tried first: jsonschema's anyOf stops at the first branch that fits, and every
# branch tried before it validates the whole object (a message's quick replies, each button's action) again.
# anyOf means the same in any order; this only makes checking a reply 6 ms -> well under 1 ms.
MOST_SENT = ("text", "postback", "message", "uri", "flex", "bubble", "box", "button", "separator", "carousel")


def _most_sent_first(item: tuple[str, Any]) -> int:
    return MOST_SENT.index(item[0]) if item[0] in MOST_SENT else len(MOST_SENT)


def polymorphic(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with each discriminated base schema, where it is used as a value rather than inherited
    (`allOf`), replaced by `anyOf` over its mapping, each branch pinned to its discriminator value.

    openapi-core does not dispatch on `discriminator`: without this, `{"type": "text"}` without `text`
    would pass as a `Message`.
    """
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    bases = {name: schema.pop("discriminator") for name, schema in schemas.items() if "discriminator" in schema}
    for name, discriminator in bases.items():
        prop = discriminator["propertyName"]
        schemas[f"{name}__any"] = {"anyOf": [
            {"allOf": [{"type": "object", "required": [prop],
                        "properties": {prop: {"type": "string", "enum": [value]}}},
                       {"$ref": target}]}
            for value, target in sorted(discriminator["mapping"].items(), key=_most_sent_first)
        ]}
    refs = {f"#/components/schemas/{name}": f"#/components/schemas/{name}__any" for name in bases}

    def rewrite(node: Any, inherited: bool = False) -> None:
        if isinstance(node, dict):
            if not inherited and node.get("$ref") in refs:
                node["$ref"] = refs[node["$ref"]]
            for key, value in node.items():
                if key == "allOf" and isinstance(value, list):
                    for item in value:
                        rewrite(item, inherited=True)
                else:
                    rewrite(value)
        elif isinstance(node, list):
            for item in node:
                rewrite(item)

    for name, schema in list(schemas.items()):
        if not name.endswith("__any"):
            rewrite(schema)
    for path_item in spec.get("paths", {}).values():
        rewrite(path_item)
    return spec


def load_openapi(path: Path, server_url: str, data_url: str | None = None) -> OpenAPI:
    """An OpenAPI validator for one of LINE's specs, served at `server_url`; the operations LINE serves on its
    data host (their own `servers`, api-data.line.me) at `data_url`, and only there."""
    spec = polymorphic(yaml.safe_load(path.read_text(encoding="utf-8")))
    spec["servers"] = [{"url": server_url}]
    for path_item in spec.get("paths", {}).values():
        for node in (path_item, *(value for value in path_item.values() if isinstance(value, dict))):
            if "servers" in node and data_url is not None:
                node["servers"] = [{"url": data_url}]
    return OpenAPI.from_dict(spec)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def limit_violations(body: Any) -> list[str]:
    """Breaches of LINE's documented limits in a request body's messages and actions."""
    problems: list[str] = []

    def visit(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "text" and "text" in node and where.endswith("]"):
                if not node["text"].strip():
                    problems.append(f"{where}: empty text")
                if utf16_units(node["text"]) > MAX_TEXT_UNITS:
                    problems.append(f"{where}: text of {utf16_units(node['text'])} UTF-16 units")
            if node.get("type") == "flex":
                if utf16_units(node.get("altText", "")) > MAX_ALT_TEXT or not node.get("altText", "").strip():
                    problems.append(f"{where}: altText empty or over {MAX_ALT_TEXT}")
                if len(json.dumps(node.get("contents"), ensure_ascii=False).encode()) > MAX_FLEX_BYTES:
                    problems.append(f"{where}: flex contents over {MAX_FLEX_BYTES} bytes")
            if node.get("type") in {"postback", "uri", "message"} and "label" in node:
                if not node["label"] or utf16_units(node["label"]) > MAX_ACTION_LABEL:
                    problems.append(f"{where}: action label {node['label']!r} empty or over {MAX_ACTION_LABEL}")
                if utf16_units(node.get("displayText", "")) > MAX_DISPLAY_TEXT:
                    problems.append(f"{where}: displayText over {MAX_DISPLAY_TEXT}")
                if len(node.get("uri", "")) > MAX_URI:
                    problems.append(f"{where}: uri over {MAX_URI}")
            for key, value in node.items():
                visit(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                visit(item, f"{where}[{index}]")

    visit(body, "body")
    if isinstance(body, dict) and "loadingSeconds" in body and body["loadingSeconds"] % 5:
        problems.append("loadingSeconds is not a multiple of 5")
    return problems


@dataclass
class Call:
    """One request the bot made, and what the fake answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    delivered: bool = False  # the platform took the messages (even if it then answered an error)
    query: dict[str, str] = field(default_factory=dict)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []


@dataclass
class Failure:
    status: int
    headers: dict[str, str]
    message: str
    deliver: bool


@dataclass
class RateLimit:
    """At most `per_second` calls to `paths` in any second; beyond, 429 with Retry-After."""

    per_second: int
    paths: frozenset[str]
    retry_after: int
    clock: Callable[[], float]  # seconds, monotonic
    recent: deque[float] = field(default_factory=deque)  # times of the calls let through in the last second

    def admit(self) -> bool:
        now = self.clock()
        while self.recent and now - self.recent[0] >= 1.0:
            self.recent.popleft()
        if len(self.recent) >= self.per_second:
            return False
        self.recent.append(now)
        return True


class FakeLineApi:
    """The fake platform's state and its Starlette app."""

    def __init__(self) -> None:
        self.url = self.data_url = ""
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.link_tokens: dict[str, str] = {}  # issued link token → LINE user id
        self.dialog_visits: list[dict[str, str]] = []
        self._failures: dict[str, deque[Failure]] = {}
        self._used_reply_tokens: set[str] = set()
        self._accepted_retry_keys: set[str] = set()
        self._rate_limit: RateLimit | None = None
        self.throttled = 0  # calls answered 429 by the rate limit
        self.access_token: str | None = None  # when set, a call with any other bearer token is answered 401
        self._lock = threading.Lock()
        self._openapi: OpenAPI | None = None
        self.richmenus = RichMenus(self._violation)
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "DELETE"])])

    def bind(self, url: str) -> None:
        """Serve at `url` (and the data host at `data_url`): the spec's servers are rewritten to them."""
        self.url, self.data_url = url, url.rstrip("/") + DATA_PREFIX
        self._openapi = load_openapi(MESSAGING_SPEC, url, self.data_url)

    def reset(self) -> None:
        """Forget every call, failure and token (between tests)."""
        with self._lock:
            self.calls.clear()
            self.violations.clear()
            self.link_tokens.clear()
            self.dialog_visits.clear()
            self._failures.clear()
            self._used_reply_tokens.clear()
            self._accepted_retry_keys.clear()
            self._rate_limit = None
            self.throttled = 0
            self.access_token = None
            self.richmenus.reset()

    def fail_next(self, path: str, status: int, *, times: int = 1, headers: dict[str, str] | None = None,
                  message: str = "injected failure", deliver: bool = False) -> None:
        """Answer the next `times` calls to `path` with `status`; `deliver` takes the messages anyway (a
        response lost on the way back), so a retried push meets its retry key again (409)."""
        with self._lock:
            queue = self._failures.setdefault(path, deque())
            queue.extend(Failure(status, headers or {}, message, deliver) for _ in range(times))

    def limit_rate(self, per_second: int, *, paths: frozenset[str] = RETRY_KEY_PATHS, retry_after: int = 1,
                   clock: Callable[[], float] = time.monotonic) -> None:
        """Answer 429 with `Retry-After: retry_after` to calls to `paths` beyond `per_second` in any second of
        `clock` (LINE: 2,000 requests a second for push, 200 for multicast); a refused call delivers nothing.
        A test passes a clock of its own, so no test waits for real time."""
        with self._lock:
            self._rate_limit = RateLimit(per_second, frozenset(paths), retry_after, clock)

    # --- what tests read -----------------------------------------------------------------------------------

    def calls_to(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]

    def deliveries(self) -> list[Call]:
        """Reply, push and multicast calls whose messages reached the users, in order."""
        return [call for call in self.calls if call.delivered]

    def delivered_messages(self) -> list[dict[str, Any]]:
        return [message for call in self.deliveries() for message in call.messages]

    def delivered_texts(self) -> list[str]:
        """Every delivered message as text: a text's text, a Flex message's altText."""
        return [message.get("text") or message.get("altText", "") for message in self.delivered_messages()]

    # --- the app ---------------------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        path = request.url.path
        try:
            # The data host takes pictures; everything else is JSON.
            body = raw if path.startswith(DATA_PREFIX) else json.loads(raw) if raw else None
        except ValueError:  # not JSON, or not even text
            body = None
            self._violation(f"{request.method} {path}: body is not JSON")
        call = Call(request.method, path, dict(request.headers), body, query=dict(request.query_params))
        with self._lock:
            self.calls.append(call)
        if path == LINK_DIALOG and request.method == "GET":
            # access.line.me: the browser arrives here after our sign-in page.
            self.dialog_visits.append(dict(request.query_params))
            call.status = 200
            return HTMLResponse("<p>LINE account link dialog (fake)</p>")
        self._validate(request, raw, body)
        response = self._answer(call)
        call.status = response.status_code
        return response

    def _validate(self, request: Request, raw: bytes, body: Any) -> None:
        assert self._openapi is not None, "bind() the fake before use"
        try:
            self._openapi.validate_request(StarletteOpenAPIRequest(request, raw))
        except Exception as error:  # any validation error is a test failure, reported at teardown
            cause = getattr(error, "__cause__", None)
            self._violation(f"{request.method} {request.url.path}: {type(error).__name__}: {error} {cause or ''}")
        for problem in limit_violations(body):
            self._violation(f"{request.method} {request.url.path}: {problem}")
        if request.url.path not in RETRY_KEY_PATHS and "x-line-retry-key" in request.headers:
            self._violation(f"{request.url.path}: X-Line-Retry-Key is for push and multicast only")
        if request.url.path == MULTICAST and isinstance(body, dict) and isinstance(body.get("to"), list):
            users = body["to"]
            if len(set(users)) != len(users):
                self._violation(f"{request.url.path}: the same user ID twice in one multicast")

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text[:2000])

    def _answer(self, call: Call) -> Response:
        if self.access_token is not None and call.headers.get("authorization") != f"Bearer {self.access_token}":
            return JSONResponse({"message": BAD_TOKEN}, status_code=401)
        with self._lock:
            limit = self._rate_limit
            if limit is not None and call.path in limit.paths and not limit.admit():
                self.throttled += 1
                return JSONResponse({"message": "Too many requests"}, status_code=429,
                                    headers={"Retry-After": str(limit.retry_after)})
            queue = self._failures.get(call.path)
            failure = queue.popleft() if queue else None
        # One event loop serves every request and nothing below awaits: checking a retry key and accepting it
        # cannot interleave with another request.
        retry_key = call.headers.get("x-line-retry-key")
        if call.path in RETRY_KEY_PATHS and retry_key and retry_key in self._accepted_retry_keys:
            body = {"message": "The retry key is already accepted"}
            return JSONResponse(body | {"sentMessages": self._sent(call)} if call.path == PUSH else body,
                                status_code=409)
        if failure is not None:
            if failure.deliver and call.path in {REPLY, PUSH, MULTICAST}:
                self._deliver(call, retry_key)
            return JSONResponse({"message": failure.message}, status_code=failure.status, headers=failure.headers)
        if call.path == REPLY:
            token = call.body.get("replyToken") if isinstance(call.body, dict) else None
            if token in self._used_reply_tokens:
                return JSONResponse({"message": "Invalid reply token"}, status_code=400)
            self._deliver(call, None)
            return JSONResponse({"sentMessages": self._sent(call)})
        if call.path == PUSH:
            self._deliver(call, retry_key)
            return JSONResponse({"sentMessages": self._sent(call)})
        if call.path == MULTICAST:
            self._deliver(call, retry_key)
            return JSONResponse({})
        if call.path == LOADING:
            return JSONResponse({}, status_code=202)
        if call.path == BOT_INFO and call.method == "GET":  # the spec's BotInfoResponse, its required fields
            return JSONResponse({"userId": "U" + "f" * 32, "basicId": "@123abcde", "displayName": "窓口 (fake)",
                                 "chatMode": "bot", "markAsReadMode": "auto"})
        if call.path.startswith("/v2/bot/user/") and call.path.endswith("/linkToken"):
            token = secrets.token_urlsafe(24)
            self.link_tokens[token] = call.path.split("/")[4]
            return JSONResponse({"linkToken": token})
        menus = self.richmenus.answer(call.method, call.path, call.body, call.headers, call.query)
        if menus is not None:
            return menus
        self._violation(f"{call.method} {call.path}: an endpoint the fake does not serve")
        return JSONResponse({"message": "Not found"}, status_code=404)

    def _deliver(self, call: Call, retry_key: str | None) -> None:
        call.delivered = True
        if call.path == REPLY and isinstance(call.body, dict):
            self._used_reply_tokens.add(call.body.get("replyToken"))
        if retry_key:
            self._accepted_retry_keys.add(retry_key)

    @staticmethod
    def _sent(call: Call) -> list[dict[str, str]]:
        return [{"id": str(10**17 + index), "quoteToken": secrets.token_urlsafe(8)}
                for index in range(len(call.messages))]
