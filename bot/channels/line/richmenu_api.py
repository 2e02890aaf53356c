"""Deploying the rich menus and reading what is live: the operator's calls (`madoguchi line richmenu`, doctor).

A deploy creates a menu per language (unless one of the same design is live already), uploads its picture to the
data host, makes the Japanese one the default, points the aliases at them, moves students who had the old English
menu to the new one, and deletes our menus it replaced; menus not named like ours are never touched.
"""

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.channels.line import richmenu
from bot.channels.line.richmenu_image import render
from bot.settings import ChannelSettings
from core.enums import Language
from core.settings import secret_value

TIMEOUT_SECONDS = 15.0
BATCH_WAIT_SECONDS = 60  # how long a deploy waits for LINE to move students to the new menus
VERSION_LENGTH = 12


class RichMenuError(Exception):
    """LINE refused a call or could not be reached; the message says which and why, for the operator."""


@dataclass(frozen=True)
class LiveMenu:
    """A rich menu LINE has."""

    id: str
    name: str
    chat_bar_text: str

    @property
    def lang(self) -> Language | None:
        """The language of one of our menus; None for a menu that is not ours."""
        return richmenu.language_of(self.name)


@dataclass(frozen=True)
class Live:
    """What LINE has: the menus, the default menu's id, and the aliases (alias → menu id)."""

    menus: list[LiveMenu]
    default: str | None
    aliases: dict[str, str]

    def ours(self) -> list[LiveMenu]:
        """Our menus (named `madoguchi-…`)."""
        return [menu for menu in self.menus if menu.lang is not None]


@dataclass
class Deployed:
    """What a deploy did."""

    menus: dict[Language, str] = field(default_factory=dict)  # the live menu of each language
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # already live, of the same design
    deleted: list[str] = field(default_factory=list)
    moved: bool = False  # students linked to an old menu were moved to the new one


def version(lang: Language, image: bytes) -> str:
    """A short digest of a menu's design (its request without the name, and its picture)."""
    body = json.dumps(richmenu.request(lang, ""), sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(body + image).hexdigest()[:VERSION_LENGTH]


class RichMenuAdmin:
    """The rich menu calls of one LINE channel."""

    def __init__(self, settings: ChannelSettings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        """Raises:
            RichMenuError: the LINE credentials are not set.
        """
        if not settings.line_enabled:
            raise RichMenuError("LINE is not configured: set LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN")
        headers = {"Authorization": f"Bearer {secret_value(settings.line_channel_access_token)}"}
        self.api = httpx.Client(base_url=settings.line_api_base_url.rstrip("/"), headers=headers,
                                timeout=TIMEOUT_SECONDS)
        self.data = httpx.Client(base_url=settings.line_data_api_base_url.rstrip("/"), headers=headers,
                                 timeout=TIMEOUT_SECONDS)
        self._sleep = sleep

    def close(self) -> None:
        """Close the connections."""
        self.api.close()
        self.data.close()

    # --- reading --------------------------------------------------------------------------------------------

    def live(self) -> Live:
        """The menus, the default and the aliases LINE has now.

        Raises:
            RichMenuError: LINE refused or could not be reached.
        """
        menus = [LiveMenu(menu["richMenuId"], menu.get("name", ""), menu.get("chatBarText", ""))
                 for menu in self._call("GET", "/v2/bot/richmenu/list").json().get("richmenus", [])]
        aliases = {alias["richMenuAliasId"]: alias["richMenuId"]
                   for alias in self._call("GET", "/v2/bot/richmenu/alias/list").json().get("aliases", [])}
        return Live(menus, self.default_menu(), aliases)

    def default_menu(self) -> str | None:
        """The default rich menu's id; None when there is none (LINE answers 404).

        Raises:
            RichMenuError: LINE refused or could not be reached.
        """
        answer = self._call("GET", "/v2/bot/user/all/richmenu", missing_ok=True)
        return None if answer.status_code == 404 else str(answer.json()["richMenuId"])

    # --- deploying ------------------------------------------------------------------------------------------

    def deploy(self) -> Deployed:
        """Put the menus of both languages live, the Japanese one the default, and delete ours they replace.

        Running it again with the same design changes nothing: the live menus are kept.

        Raises:
            RichMenuError: LINE refused a call or could not be reached (what was done so far stays done; running
                it again finishes the work).
            FontMissing: no Japanese font is installed to draw the pictures with.
        """
        before, done = self.live(), Deployed()
        for lang in (richmenu.DEFAULT_LANGUAGE, *(lang for lang in Language if lang != richmenu.DEFAULT_LANGUAGE)):
            self._put_live(lang, before, done)
        default = done.menus[richmenu.DEFAULT_LANGUAGE]
        if before.default != default:
            self._call("POST", f"/v2/bot/user/all/richmenu/{default}")
        self._point_aliases(before, done.menus)
        replaced = [menu for menu in before.ours() if menu.id not in done.menus.values()]
        done.moved = self._move_students(replaced, done.menus)
        for menu in replaced:
            self._call("DELETE", f"/v2/bot/richmenu/{menu.id}")
            done.deleted.append(menu.id)
        return done

    def _put_live(self, lang: Language, before: Live, done: Deployed) -> None:
        """The menu of `lang`: the live one of the same design, else a new one with its picture."""
        image = render(lang)
        design = version(lang, image)
        same = next((menu for menu in before.menus if menu.name == richmenu.menu_name(lang, design)), None)
        if same is not None:
            done.menus[lang] = same.id
            done.kept.append(same.id)
            return
        created = self._call("POST", "/v2/bot/richmenu", json=richmenu.request(lang, design))
        menu_id = str(created.json()["richMenuId"])
        try:
            self._upload(menu_id, image)
        except RichMenuError:
            # A menu without its picture can be neither the default nor linked: not left behind to be kept
            # by the next deploy as if it were whole.
            self._delete_quietly(menu_id)
            raise
        done.menus[lang] = menu_id
        done.created.append(menu_id)

    def _delete_quietly(self, menu_id: str) -> None:
        with contextlib.suppress(RichMenuError):  # the error being raised already says what went wrong
            self._call("DELETE", f"/v2/bot/richmenu/{menu_id}")

    def _upload(self, menu_id: str, image: bytes) -> None:
        # The data host, not the API host: LINE takes the picture only there.
        self._call("POST", f"/v2/bot/richmenu/{menu_id}/content", client=self.data, content=image,
                   headers={"Content-Type": "image/png"})

    def _point_aliases(self, before: Live, menus: dict[Language, str]) -> None:
        for lang, menu_id in menus.items():
            alias = richmenu.alias(lang)
            if alias not in before.aliases:
                self._call("POST", "/v2/bot/richmenu/alias", json={"richMenuAliasId": alias, "richMenuId": menu_id})
            elif before.aliases[alias] != menu_id:
                self._call("POST", f"/v2/bot/richmenu/alias/{alias}", json={"richMenuId": menu_id})

    def _move_students(self, replaced: list[LiveMenu], menus: dict[Language, str]) -> bool:
        """Students who had one of the replaced menus linked get the new one of its language (LINE unlinks them
        when a menu is deleted); whether LINE finished before the wait ran out."""
        operations = [{"type": "link", "from": menu.id, "to": menus[menu.lang]} for menu in replaced
                      if menu.lang is not None and menu.lang in menus]
        if not operations:
            return False
        answer = self._call("POST", "/v2/bot/richmenu/batch", json={"operations": operations})
        request_id = answer.headers.get("x-line-request-id")
        if not request_id:
            return False
        for _ in range(BATCH_WAIT_SECONDS):
            phase = self._call("GET", "/v2/bot/richmenu/progress/batch", params={"requestId": request_id}).json()
            if phase.get("phase") != "ongoing":
                return bool(phase.get("phase") == "succeeded")
            self._sleep(1.0)
        return False

    # --- one call ---------------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, client: httpx.Client | None = None, missing_ok: bool = False,
              **options: Any) -> httpx.Response:
        client = client or self.api
        try:
            answer = client.request(method, path, **options)
        except httpx.HTTPError as error:
            raise RichMenuError(f"cannot reach LINE at {client.base_url} ({type(error).__name__}): check the "
                                "network, or LINE_API_BASE_URL / LINE_DATA_API_BASE_URL") from None
        if answer.is_success or (missing_ok and answer.status_code == 404):
            return answer
        raise RichMenuError(f"LINE answered HTTP {answer.status_code} to {method} {path}: {_message(answer)}")


def _message(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.reason_phrase
    if not isinstance(body, dict):
        return answer.reason_phrase
    details = "; ".join(f"{item.get('property', '')}: {item.get('message', '')}"
                        for item in body.get("details") or [] if isinstance(item, dict))
    return str(body.get("message", answer.reason_phrase)) + (f" ({details})" if details else "")
