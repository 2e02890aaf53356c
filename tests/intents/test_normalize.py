"""Normalization tables: width, case, whitespace, long vowels, small kana, repeated marks, offsets."""

import pytest

from intents.normalize import normalize, normalize_with_offsets

CASES = [
    # full-width letters, digits and symbols become half-width; case is folded
    ("ＰａｙＰａｙ", "paypay"),
    ("ＩＤとＰＷ", "idとpw"),
    ("２４Ｍ１００１", "24m1001"),
    ("Apple Pay", "apple pay"),
    ("ＡＢＣ＠ＥＸＡＭＰＬＥ．ＪＰ", "abc@example.jp"),
    # half-width katakana become full-width, voiced marks joined
    ("ﾛｸﾞｲﾝ", "ログイン"),
    ("ﾊﾟｽﾜｰﾄﾞ", "パスワード"),
    # whitespace: runs to one space, ends stripped, full-width space included
    ("  在学証明書　を\t\n２通  ", "在学証明書 を 2通"),
    ("", ""),
    ("   ", ""),
    # long-vowel marks after kana: runs to one ー, 〜 and ～ included
    ("パスワーーード", "パスワード"),
    ("ありがと〜〜", "ありがとー"),
    ("ありがと～", "ありがとー"),
    ("すみませーん", "すみませーん"),
    # a wave dash between digits is a range, not a long vowel
    ("9:00〜17:00", "9:00〜17:00"),
    ("9:00～17:00", "9:00~17:00"),
    # small hiragana vowels stretch a word; katakana ones spell loanwords and stay
    ("できないぃ", "できないい"),
    ("わすれたぁ", "わすれたあ"),
    ("ファミマ", "ファミマ"),
    # repeated punctuation and emoji collapse to one
    ("ログインできない！！！", "ログインできない!"),
    ("why???", "why?"),
    ("🙏🙏🙏", "🙏"),
    # letters and digits are never collapsed
    ("1000", "1000"),
    ("aaa", "aaa"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(("text", "_expected"), CASES)
def test_offsets_point_into_the_original(text: str, _expected: str) -> None:
    normalized = normalize_with_offsets(text)
    assert len(normalized.starts) == len(normalized.ends) == len(normalized.text)
    assert list(normalized.starts) == sorted(normalized.starts)
    for index in range(len(normalized.text)):
        start, end = normalized.original_span(index, index + 1)
        assert 0 <= start < end <= len(text)
    if normalized.text:
        start, end = normalized.original_span(0, len(normalized.text))
        assert text[start:end] == text.strip()


def test_span_of_a_word_maps_back_to_its_original_characters() -> None:
    text = "　学籍番号は２４Ｍ１００１です"
    normalized = normalize_with_offsets(text)
    start = normalized.text.index("24m1001")
    original_start, original_end = normalized.original_span(start, start + len("24m1001"))
    assert text[original_start:original_end] == "２４Ｍ１００１"


def test_collapsed_runs_map_to_the_whole_run() -> None:
    text = "パスワーーード"
    normalized = normalize_with_offsets(text)
    assert normalized.original_span(0, len(normalized.text)) == (0, len(text))
