"""Every student-facing text exists in Japanese and English, with the same placeholders."""

import re

import pytest

from core.enums import Language
from core.i18n import CORE_LOCALES, MessageCatalog
from handlers.messages import HANDLER_LOCALES

CATALOGS = {"core": CORE_LOCALES, "handlers": HANDLER_LOCALES}
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.mark.parametrize("name", CATALOGS)
def test_both_languages_have_the_same_keys(name):
    catalog = MessageCatalog(CATALOGS[name])
    ja, en = catalog.keys(Language.JA), catalog.keys(Language.EN)
    assert ja, "empty catalog"
    assert ja - en == set(), f"only in Japanese: {sorted(ja - en)}"
    assert en - ja == set(), f"only in English: {sorted(en - ja)}"


@pytest.mark.parametrize("name", CATALOGS)
def test_placeholders_match_and_no_text_is_empty(name):
    catalog = MessageCatalog(CATALOGS[name])
    for key in catalog.keys(Language.JA):
        assert catalog.placeholders(key, Language.JA) == catalog.placeholders(key, Language.EN), key
        for lang in Language:
            assert catalog.text(key, lang).strip(), f"{lang}:{key} is empty"


@pytest.mark.parametrize("name", CATALOGS)
def test_japanese_texts_are_japanese_and_polite(name):
    catalog = MessageCatalog(CATALOGS[name])
    for key in catalog.keys(Language.JA):
        text = catalog.text(key, Language.JA)
        if len(text) > 40 and JAPANESE.search(text):  # whole sentences, not labels or names
            assert not re.search(r"(だ|である)。", text), f"ja:{key} is not in です・ます: {text}"
