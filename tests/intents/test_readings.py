"""Readings (intents.readings): kanji, hiragana and romaji meet in one romaji key."""

import pytest

from intents.normalize import normalize
from intents.readings import Reader, fold_romaji, shared_reader


@pytest.fixture(scope="module")
def reader() -> Reader:
    return shared_reader()


@pytest.mark.parametrize(("kanji", "kana", "romaji"), [
    ("支払い方法", "しはらいほうほう", "shiharai houhou"),
    ("成績証明書", "せいせきしょうめいしょ", "seiseki shoumeisho"),
    ("学生証", "がくせいしょう", "gakuseisho"),
    ("第2パスワード", "だい2ぱすわーど", "dai2 pasuwaado"),
])
def test_kanji_kana_and_romaji_share_a_key(reader, kanji, kana, romaji):
    key = reader.read(normalize(kanji)).key
    assert reader.read(normalize(kana)).key == key
    assert reader.read(normalize(romaji)).key.replace(" ", "") == key


@pytest.mark.parametrize(("spelling", "folded"), [
    ("shoumeisho", "shomeisho"), ("syoumeisyo", "shomeisho"), ("gakuseishou", "gakuseisho"),
    ("tuuti", "tsuchi"), ("pasuwaado", "pasuwado"), ("shimbun", "shinbun"),
])
def test_romaji_spellings_fold_to_one(spelling, folded):
    assert fold_romaji(spelling) == folded


def test_lemmas_normalize_words(reader):
    assert "メルアド" in reader.read(normalize("メアド変えたい")).lemmas
    assert "教える" in reader.read(normalize("教えてください")).lemmas


def test_latin_text_and_digits_pass_through(reader):
    assert reader.read("how do i pay 2 copies").key == fold_romaji("how do i pay 2 copies")
    assert reader.read("").key == ""


def test_half_width_katakana_reads_like_kanji(reader):
    assert reader.read(normalize("ｶﾞｸｾｲｼｮｳ")).key == reader.read(normalize("学生証")).key
