"""Which language a message is written in: Japanese or English."""

import re
import unicodedata

from core.enums import Language

_LATIN_WORD = re.compile(r"[a-z]+")
# Words that show English grammar; a Japanese sentence that names "PayPay" or "Apple Pay" has none.
_ENGLISH_FUNCTION_WORDS = frozenset(
    {
        "a", "an", "the", "i", "im", "my", "me", "you", "your", "we", "is", "are", "am", "was", "were", "be",
        "been", "do", "does", "did", "can", "could", "will", "would", "should", "how", "what", "when",
        "where", "why", "which", "who", "to", "of", "for", "in", "on", "at", "with", "from", "by", "and",
        "or", "not", "no", "it", "this", "that", "there", "please", "want", "need", "have", "has", "get",
    }
)  # fmt: skip


def _counts(text: str) -> tuple[int, int]:
    """Count Japanese script characters and hiragana characters."""
    japanese = hiragana = 0
    for char in text:
        if "\u3040" <= char <= "\u309f":
            hiragana += 1
            japanese += 1
        elif (
            "\u30a0" <= char <= "\u30ff"
            or "\u4e00" <= char <= "\u9fff"
            or "\u3400" <= char <= "\u4dbf"
            or "\uf900" <= char <= "\ufaff"
            or "\u3005" <= char <= "\u3007"
        ):
            japanese += 1
    return japanese, hiragana


def detect_language(text: str, default: Language = Language.JA) -> Language:
    """Tell whether a message is Japanese or English.

    Any kana or kanji makes a message Japanese unless English grammar dominates it: English function
    words are present and the Japanese part is only a name or two (no more than one hiragana, or fewer
    than half as many Japanese characters as Latin letters), as in "Can I use the 学内印刷機?".

    Args:
        text: The message (original or normalized).
        default: The answer for a message with neither Latin letters nor Japanese script (emoji, digits).

    Returns:
        `Language.JA` or `Language.EN`.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    japanese, hiragana = _counts(folded)
    words = _LATIN_WORD.findall(folded)
    if not japanese:
        return Language.EN if words else default
    if not words:
        return Language.JA
    latin_letters = sum(len(word) for word in words)
    english_grammar = any(word in _ENGLISH_FUNCTION_WORDS for word in words)
    if english_grammar and (hiragana < 2 or latin_letters > 2 * japanese):
        return Language.EN
    return Language.JA
