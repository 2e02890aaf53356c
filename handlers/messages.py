"""The handlers' message catalog: every text the bot says, in Japanese and English."""

from functools import cache
from pathlib import Path
from typing import Any

from core.enums import Language
from core.i18n import MessageCatalog

HANDLER_LOCALES = Path(__file__).parent / "locales"


@cache
def handler_messages() -> MessageCatalog:
    """The catalog of `handlers/locales`, loaded on first use."""
    return MessageCatalog(HANDLER_LOCALES)


def say(key: str, lang: Language | str, **values: Any) -> str:
    """A handler text in `lang`."""
    return handler_messages().text(key, lang, **values)
