"""The fake LINE platform's rich menus: menus, their pictures (uploaded to the data host), the default menu,
aliases, per-user links and batch moves, kept as LINE keeps them, with LINE's documented rules checked.

The calls are validated against the Messaging API spec by FakeLineApi; this adds what the spec does not say
(https://developers.line.biz/en/reference/messaging-api/#rich-menu): the picture's format, size and pixel size,
the menu's size and areas, and LINE's answers to a call about a menu that does not exist or has no picture.
"""

import io
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from PIL import Image
from starlette.responses import JSONResponse, Response

DATA_PREFIX = "/data"  # the data host (api-data.line.me) is served under this prefix of the fake's URL
MAX_IMAGE_BYTES = 1024 * 1024
MAX_AREAS = 20
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}


@dataclass
class Menu:
    """A rich menu LINE has: its request, and its picture once uploaded."""

    id: str
    request: dict[str, Any]
    image: bytes | None = None

    def response(self) -> dict[str, Any]:
        return {"richMenuId": self.id, **self.request}


@dataclass
class RichMenus:
    """The rich menu state of one channel."""

    violation: Callable[[str], None]
    menus: dict[str, Menu] = field(default_factory=dict)
    default: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # LINE user id → linked menu id
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)

    def reset(self) -> None:
        self.menus.clear()
        self.aliases.clear()
        self.users.clear()
        self.batches.clear()
        self.default = None

    # --- what tests read and arrange ---------------------------------------------------------------------------

    def named(self, prefix: str) -> list[Menu]:
        return [menu for menu in self.menus.values() if menu.request.get("name", "").startswith(prefix)]

    def add(self, request: dict[str, Any], image: bytes | None = b"png") -> str:
        """A menu made outside the bot (another tool, the console), as LINE would have it."""
        menu_id = _menu_id()
        self.menus[menu_id] = Menu(menu_id, request, image)
        return menu_id

    # --- the endpoints --------------------------------------------------------------------------------------

    def answer(self, method: str, path: str, body: Any, headers: dict[str, str],
               query: dict[str, str]) -> Response | None:
        """LINE's answer to a rich menu call; None for a path that is not about rich menus."""
        for route_method, pattern, handler in self._routes():
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return handler(body=body, headers=headers, query=query, **match.groupdict())
        return None

    def _routes(self) -> list[tuple[str, re.Pattern[str], Callable[..., Response]]]:
        menu, user, alias = r"(?P<menu_id>[^/]+)", r"(?P<user_id>U[0-9a-f]{32})", r"(?P<alias_id>[^/]+)"
        routes = [
            ("POST", "/v2/bot/richmenu", self._create), ("GET", "/v2/bot/richmenu/list", self._list),
            ("GET", "/v2/bot/richmenu/alias/list", self._alias_list),
            ("POST", "/v2/bot/richmenu/alias", self._create_alias),
            ("GET", f"/v2/bot/richmenu/alias/{alias}", self._get_alias),
            ("POST", f"/v2/bot/richmenu/alias/{alias}", self._update_alias),
            ("DELETE", f"/v2/bot/richmenu/alias/{alias}", self._delete_alias),
            ("POST", "/v2/bot/richmenu/batch", self._batch),
            ("GET", "/v2/bot/richmenu/progress/batch", self._progress),
            ("POST", f"{DATA_PREFIX}/v2/bot/richmenu/{menu}/content", self._upload),
            ("GET", f"/v2/bot/richmenu/{menu}", self._get), ("DELETE", f"/v2/bot/richmenu/{menu}", self._delete),
            ("POST", f"/v2/bot/user/all/richmenu/{menu}", self._set_default),
            ("GET", "/v2/bot/user/all/richmenu", self._get_default),
            ("DELETE", "/v2/bot/user/all/richmenu", self._cancel_default),
            ("POST", f"/v2/bot/user/{user}/richmenu/{menu}", self._link),
            ("GET", f"/v2/bot/user/{user}/richmenu", self._get_linked),
            ("DELETE", f"/v2/bot/user/{user}/richmenu", self._unlink),
        ]
        return [(method, re.compile(path), handler) for method, path, handler in routes]

    def _create(self, body: Any, **_: Any) -> Response:
        problems = _menu_problems(body)
        for problem in problems:
            self.violation(f"POST /v2/bot/richmenu: {problem}")
        if problems:
            return _error(400, "The request body has 1 error(s)")
        menu_id = _menu_id()
        self.menus[menu_id] = Menu(menu_id, body)
        return JSONResponse({"richMenuId": menu_id})

    def _upload(self, menu_id: str, body: Any, headers: dict[str, str], **_: Any) -> Response:
        menu = self.menus.get(menu_id)
        if menu is None:
            return _error(404, "Not found")
        if menu.image is not None:  # LINE never replaces a menu's picture: a new menu is made instead
            self.violation(f"upload to {menu_id}: it has a picture already")
            return _error(400, "An image has already been uploaded to the richmenu")
        problem = _image_problem(menu, body, headers.get("content-type", ""))
        if problem:
            self.violation(f"upload to {menu_id}: {problem}")
            return _error(400, problem)
        menu.image = body
        return JSONResponse({})

    def _list(self, **_: Any) -> Response:
        return JSONResponse({"richmenus": [menu.response() for menu in self.menus.values()]})

    def _get(self, menu_id: str, **_: Any) -> Response:
        menu = self.menus.get(menu_id)
        return JSONResponse(menu.response()) if menu else _error(404, "Not found")

    def _delete(self, menu_id: str, **_: Any) -> Response:
        if self.menus.pop(menu_id, None) is None:
            return _error(404, "Not found")
        # LINE unlinks the menu from everyone who had it; the default and aliases naming it go too.
        self.users = {user: linked for user, linked in self.users.items() if linked != menu_id}
        self.aliases = {alias: linked for alias, linked in self.aliases.items() if linked != menu_id}
        self.default = None if self.default == menu_id else self.default
        return JSONResponse({})

    def _whole(self, menu_id: str) -> Response | None:
        """LINE's refusal of a menu that does not exist or has no picture yet; None when it is whole."""
        menu = self.menus.get(menu_id)
        if menu is None:
            return _error(404, "richmenu not found")
        if menu.image is None:
            self.violation(f"{menu_id} used before its picture was uploaded")
            return _error(400, "must upload richmenu image before applying it to user")
        return None

    def _set_default(self, menu_id: str, **_: Any) -> Response:
        refused = self._whole(menu_id)
        if refused is None:
            self.default = menu_id
        return refused or JSONResponse({})

    def _get_default(self, **_: Any) -> Response:
        return JSONResponse({"richMenuId": self.default}) if self.default else _error(404, "no default richmenu")

    def _cancel_default(self, **_: Any) -> Response:
        self.default = None
        return JSONResponse({})

    def _alias_list(self, **_: Any) -> Response:
        return JSONResponse({"aliases": [{"richMenuAliasId": alias, "richMenuId": menu_id}
                                         for alias, menu_id in self.aliases.items()]})

    def _create_alias(self, body: Any, **_: Any) -> Response:
        if body["richMenuAliasId"] in self.aliases:
            return _error(400, "conflict richmenu alias id")
        refused = self._whole(body["richMenuId"])
        if refused is None:
            self.aliases[body["richMenuAliasId"]] = body["richMenuId"]
        return refused or JSONResponse({})

    def _get_alias(self, alias_id: str, **_: Any) -> Response:
        if alias_id not in self.aliases:
            return _error(404, "richmenu alias not found")
        return JSONResponse({"richMenuAliasId": alias_id, "richMenuId": self.aliases[alias_id]})

    def _update_alias(self, alias_id: str, body: Any, **_: Any) -> Response:
        if alias_id not in self.aliases:
            return _error(400, "richmenu alias not found")
        refused = self._whole(body["richMenuId"])
        if refused is None:
            self.aliases[alias_id] = body["richMenuId"]
        return refused or JSONResponse({})

    def _delete_alias(self, alias_id: str, **_: Any) -> Response:
        return JSONResponse({}) if self.aliases.pop(alias_id, None) else _error(400, "richmenu alias not found")

    def _link(self, user_id: str, menu_id: str, **_: Any) -> Response:
        refused = self._whole(menu_id)
        if refused is None:
            self.users[user_id] = menu_id
        return refused or JSONResponse({})

    def _get_linked(self, user_id: str, **_: Any) -> Response:
        menu_id = self.users.get(user_id)
        return JSONResponse({"richMenuId": menu_id}) if menu_id else _error(404, "the user has no richmenu")

    def _unlink(self, user_id: str, **_: Any) -> Response:
        self.users.pop(user_id, None)
        return JSONResponse({})

    def _batch(self, body: Any, **_: Any) -> Response:
        """Done at once here (LINE does it in the background: the progress endpoint says when)."""
        for operation in body["operations"]:
            if operation["type"] == "link":
                refused = self._whole(operation["to"])
                if refused is not None:
                    return refused
                self.users = {user: operation["to"] if linked == operation["from"] else linked
                              for user, linked in self.users.items()}
        request_id = secrets.token_hex(16)
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.batches[request_id] = {"phase": "succeeded", "acceptedTime": now, "completedTime": now}
        return JSONResponse({}, status_code=202, headers={"X-Line-Request-Id": request_id})

    def _progress(self, query: dict[str, str], **_: Any) -> Response:
        progress = self.batches.get(query.get("requestId", ""))
        return JSONResponse(progress) if progress else _error(404, "Not found")


def _menu_id() -> str:
    return "richmenu-" + secrets.token_hex(16)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _menu_problems(body: Any) -> list[str]:
    """LINE's documented rules for a rich menu that its spec does not encode."""
    if not isinstance(body, dict) or not isinstance(body.get("size"), dict):
        return ["no size"]
    width, height = body["size"].get("width", 0), body["size"].get("height", 0)
    problems = []
    if not (800 <= width <= 2500 and height >= 250 and width / height >= 1.45):
        problems.append(f"size {width}×{height}: 800 to 2500 wide, at least 250 high, width/height at least 1.45")
    areas = body.get("areas") or []
    if not 1 <= len(areas) <= MAX_AREAS:
        problems.append(f"{len(areas)} areas: 1 to {MAX_AREAS}")
    for index, area in enumerate(areas):
        bounds = area.get("bounds", {})
        if bounds.get("x", 0) + bounds.get("width", 0) > width or bounds.get("y", 0) + bounds.get("height", 0) > height:
            problems.append(f"area {index} reaches outside the menu")
    return problems


def _image_problem(menu: Menu, body: Any, content_type: str) -> str | None:
    """What is wrong with an uploaded picture, if anything."""
    kind = IMAGE_TYPES.get(content_type.split(";")[0].strip())
    if kind is None:
        return f"Content-Type {content_type!r}: image/png or image/jpeg"
    if not isinstance(body, bytes) or not body:
        return "no picture in the body"
    if len(body) > MAX_IMAGE_BYTES:
        return f"{len(body)} bytes: at most 1 MB"
    try:
        image = Image.open(io.BytesIO(body))
        image.verify()
    except Exception as error:  # any decoding failure: LINE answers 400
        return f"not a readable picture ({type(error).__name__})"
    size = menu.request["size"]
    if image.format != kind or image.size != (size["width"], size["height"]):
        return (f"{image.format} of {image.size[0]}×{image.size[1]}: "
                f"the menu is {kind} of {size['width']}×{size['height']}")
    return None
