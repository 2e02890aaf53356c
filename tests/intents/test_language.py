"""Language detection table: Japanese, English, mixed messages and messages without letters."""

import pytest

from core.enums import Language
from intents.language import detect_language, written_language

JA, EN = Language.JA, Language.EN


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("在学証明書がほしい", JA),
        ("ログインできない", JA),
        ("ﾛｸﾞｲﾝできない", JA),
        ("成績証明書", JA),
        ("学生証再発行", JA),
        ("PayPayで払える？", JA),
        ("ＰａｙＰａｙ使える", JA),
        ("Apple Pay 使用可", JA),
        ("pw忘れた", JA),
        ("LINE Payは使えますか", JA),
        ("how do i pay", EN),
        ("forgot my password", EN),
        ("ＨＥＬＬＯ", EN),
        ("Can I use the 学内印刷機?", EN),
        ("what does the 郵送対応完了 mail mean", EN),
        ("I want to pick up at 学生支援課", EN),
    ],
)
def test_detect_language(text: str, expected: Language) -> None:
    assert detect_language(text) is expected


@pytest.mark.parametrize("text", ["", "   ", "12345", "🙏🙏", "？！"])
def test_no_letters_gives_the_default(text: str) -> None:
    assert detect_language(text) is JA
    assert detect_language(text, default=EN) is EN


@pytest.mark.parametrize(("text", "expected"), [
    ("学生支援課のメールアドレスは？", JA),
    ("コンビニ払いの期限はいつまでですか", JA),
    ("what time does the call center close", EN),
    ("Can I use PayPay at 7-Eleven?", EN),
    ("学生支援課", None),       # a name copied from the screen
    ("24M1001", None),
    ("ok", None),
    ("PayPay", None),
    ("shiharai houhou wa", None),  # romaji: Japanese, but typed on a keyboard without it
])
def test_the_language_a_message_is_plainly_written_in(text, expected):
    assert written_language(text) is expected
