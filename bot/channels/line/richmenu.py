"""LINE's rich menu, one per language: its tiles from the chat's own menu tree and catalogs, as API objects.

The menu is the main menu the chat offers as quick replies (handlers/basic.py), plus the order status and a
person, on a 3×3 grid; each tile sends the postback the pipeline already answers. Drawn by richmenu_image.py,
deployed by richmenu_api.py; a student who switches language gets the other menu (`MenuSwitch`, sent by the
inbox as one more call of the turn's answer).
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.channels.line_render import MAX_DISPLAY_TEXT_UNITS, MAX_LABEL_UNITS, clip
from core.enums import Language
from core.handoffs import Reason
from handlers import basic
from handlers.messages import say
from handlers.payloads import AskPerson, encode
from handlers.replies import QuickReply
from intents.types import Intent

WIDTH, HEIGHT = 2500, 1686  # LINE's large rich menu
COLUMNS, ROWS = 3, 3
NAME_PREFIX = "madoguchi"  # our menus' names start with it: a deploy replaces those and no others
DEFAULT_LANGUAGE = Language.JA  # the default menu's; a student who chose another gets theirs linked
MAX_CHAT_BAR_UNITS = 14
PART_KEY = "richMenu"  # the inbox call that switches a student's menu (see `MenuSwitch`)


class Icon(StrEnum):
    """The glyph drawn on a tile."""

    KEY = "key"
    LOCK = "lock"
    DOCUMENT = "document"
    YEN = "yen"
    BOX = "box"
    STATUS = "status"
    PHONE = "phone"
    PERSON = "person"
    GLOBE = "globe"


# The topics on the menu, in reading order (row by row); a person and the language switch follow.
TOPICS = (
    (Icon.KEY, Intent.LOGIN_HELP), (Icon.LOCK, Intent.SECOND_PASSWORD_RESET), (Icon.DOCUMENT, Intent.ORDER_CERTIFICATE),
    (Icon.YEN, Intent.PAYMENT_METHODS), (Icon.BOX, Intent.PICKUP_TIMING), (Icon.STATUS, Intent.ORDER_STATUS),
    (Icon.PHONE, Intent.CONTACT),
)


@dataclass(frozen=True)
class Tile:
    """One tappable tile: its glyph, the button it is (label and payload, as in the chat) and a caption in
    small letters under the label (the label in the other language)."""

    icon: Icon
    button: QuickReply
    caption: str


@dataclass(frozen=True)
class Bounds:
    """A tile's tap area, in the image's pixels."""

    x: int
    y: int
    width: int
    height: int


def tiles(lang: Language) -> tuple[Tile, ...]:
    """The menu's tiles in `lang`, in reading order."""
    other = basic.other_language(lang)
    topics = tuple(Tile(icon, basic.topic_button(intent, lang), basic.topic_button(intent, other).label)
                   for icon, intent in TOPICS)
    person = Tile(Icon.PERSON, _person_button(lang), _person_button(other).label)
    language = Tile(Icon.GLOBE, basic.language_button(lang), say("line.richmenu.switch_hint", lang))
    return (*topics, person, language)


def _person_button(lang: Language) -> QuickReply:
    # The chat's own "talk to a person" button (handlers.handoff.person_button), asked for by the student.
    return QuickReply(say("handoff.person_button", lang), encode(AskPerson(Reason.ASKED)))


def grid() -> list[Bounds]:
    """The tiles' tap areas, row by row, covering the whole image (the last column and row take the rest)."""
    width, height = WIDTH // COLUMNS, HEIGHT // ROWS
    return [Bounds(column * width, row * height,
                   WIDTH - column * width if column == COLUMNS - 1 else width,
                   HEIGHT - row * height if row == ROWS - 1 else height)
            for row in range(ROWS) for column in range(COLUMNS)]


def menu_name(lang: Language, version: str) -> str:
    """Our menu's name, e.g. `madoguchi-ja-3f2a9c1b0d4e` (`version` tells one design from another)."""
    return f"{NAME_PREFIX}-{lang.value}-{version}"


def language_of(name: str) -> Language | None:
    """The language of one of our menus, by its name; None for a menu that is not ours."""
    prefix, _, rest = name.partition("-")
    code = rest.partition("-")[0]
    return Language(code) if prefix == NAME_PREFIX and code in set(Language) else None


def alias(lang: Language) -> str:
    """The rich menu alias that names the live menu of `lang`, e.g. `madoguchi-en`."""
    return f"{NAME_PREFIX}-{lang.value}"


def request(lang: Language, version: str) -> dict[str, Any]:
    """The menu of `lang` as the API's RichMenuRequest object (the API's own JSON)."""
    areas = [{"bounds": vars(bounds), "action": _action(tile.button)} for tile, bounds in zip(tiles(lang), grid(),
                                                                                               strict=True)]
    return {"size": {"width": WIDTH, "height": HEIGHT}, "selected": True, "name": menu_name(lang, version),
            "chatBarText": clip(say("line.richmenu.chat_bar", lang), MAX_CHAT_BAR_UNITS), "areas": areas}


def _action(button: QuickReply) -> dict[str, Any]:
    # displayText: the chat shows what was tapped, as it does for the same quick reply. The menu closes after a
    # tap, so that the answer is not read in the little room the large menu leaves.
    return {"type": "postback", "label": clip(button.label, MAX_LABEL_UNITS), "data": button.payload,
            "displayText": clip(button.label, MAX_DISPLAY_TEXT_UNITS), "inputOption": "closeRichMenu"}


@dataclass(frozen=True)
class MenuSwitch:
    """Show a LINE user the menu of `lang`: one more call of a turn's answer, stored and retried with it."""

    user_id: str
    lang: Language

    def part(self) -> dict[str, Any]:
        """The call as the inbox stores it."""
        return {PART_KEY: {"to": self.user_id, "lang": self.lang.value}}

    @classmethod
    def from_part(cls, part: dict[str, Any]) -> "MenuSwitch | None":
        """The switch a stored call asks for; None for any other call (a message send)."""
        switch = part.get(PART_KEY)
        if not isinstance(switch, dict) or switch.get("lang") not in set(Language):
            return None
        return cls(str(switch.get("to", "")), Language(switch["lang"]))
