"""Message catalogs: every student-facing text in Japanese and English, looked up by key."""

import string
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from core.enums import Language

CORE_LOCALES = Path(__file__).parent / "locales"


class MessageCatalog:
    """Texts of a folder with one subfolder per language; `<lang>/<area>.yaml` holds the keys `<area>.*`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._texts: dict[Language, dict[str, str]] = {lang: {} for lang in Language}
        for lang in Language:
            for path in sorted((folder / lang.value).glob("*.yaml")):
                tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
                self._texts[lang].update(_flatten(tree, f"{path.stem}."))

    def text(self, key: str, lang: Language | str, **values: Any) -> str:
        """The text for `key` in `lang`, with `{placeholders}` filled from `values`.

        Raises:
            KeyError: if the key is missing, so a typo fails in tests rather than reaching a student.
        """
        template = self._texts[Language(lang)][key]
        return template.format(**values) if values else template

    def has(self, key: str) -> bool:
        """True if the key exists (in Japanese; parity with English is checked by tests)."""
        return key in self._texts[Language.JA]

    def keys(self, lang: Language) -> set[str]:
        """Every key of one language."""
        return set(self._texts[lang])

    def placeholders(self, key: str, lang: Language) -> set[str]:
        """The `{names}` a text uses."""
        return {name for _, name, _, _ in string.Formatter().parse(self._texts[lang][key]) if name}


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in (tree or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = str(value).rstrip("\n")
    return flat


@cache
def core_messages() -> MessageCatalog:
    """The core's catalog (password rules, mail, link and payment pages, domain errors), loaded once."""
    return MessageCatalog(CORE_LOCALES)


def t(key: str, lang: Language | str, **values: Any) -> str:
    """Shorthand for a core catalog text."""
    return core_messages().text(key, lang, **values)
