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


# One romaji word: syllables of Japanese spelled in Latin letters (Hepburn or Kunrei), with doubled
# consonants, long vowels and a syllabic n ("gakuseishou", "nakushita", "moushikomi", "kakunin").
_ROMAJI_WORD = re.compile(
    r"^(?:(?:[kgsztdnhbpmr]y|sh|ch|j|ts|f|[kgsztdnhbpmrwyv])?[aiueo]|n(?![aiueoy])|([kgstdhbpmrf])(?=\1))+$"
)
_JAPANESE_SOUND = re.compile(r"sh[aiuo]|ch[aiuo]|tsu|[kgnhbpmr]y[aou]|ou|uu|ei|([kstp])\1|desu|masu|tai$")
# Words that make a Latin message English even when they could be read as romaji (can, me, name, mine).
_ENGLISH_MARKERS = frozenset({"can", "me", "name", "mine", "time", "use", "are", "take", "make", "home", "one",
                              "some", "come", "more", "here", "where", "fire", "site", "tube", "see", "you", "hi",
                              "hii", "hiii", "hiiii", "hiya", "heya", "gotta", "bye", "byebye", "okay", "ok", "nope",
                              "yup", "yep", "meme", "mama", "papa", "anime", "sake", "karate", "change",
                              "changes", "machine", "chinese", "japanese", "shine", "sushi", "ramen"})


def looks_like_romaji(text: str) -> bool:
    """True for Japanese written in Latin letters ("gakusei shou nakushita", "shiharai houhou wa?"): most of
    its words are romaji, at least one of them unmistakably (four letters or more), and few English words.

    Args:
        text: The message, NFKC-normalized and case-folded.

    Returns:
        Whether to read the message as Japanese.
    """
    words = [word for word in _LATIN_WORD.findall(text) if len(word) > 1]
    if not words:
        return False
    romaji = [word for word in words if _ROMAJI_WORD.match(word) and word not in _ENGLISH_MARKERS]
    if len(words) == 1:  # one word ("change", "gakuseisho"): romaji only with a sound English rarely spells
        return bool(romaji) and len(romaji[0]) >= 5 and bool(_JAPANESE_SOUND.search(romaji[0]))
    return len(romaji) >= 0.7 * len(words) and any(len(word) >= 4 for word in romaji)


def detect_language(text: str, default: Language = Language.JA) -> Language:
    """Tell whether a message is Japanese or English.

    Any kana or kanji makes a message Japanese unless English grammar dominates it: English function
    words are present and the Japanese part is only a name or two (no more than one hiragana, or fewer
    than half as many Japanese characters as Latin letters), as in "Can I use the 学内印刷機?". A message
    in Latin letters is English unless it is romaji ("gakusei shou nakushita").

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
        return default if not words else Language.JA if looks_like_romaji(folded) else Language.EN
    if not words:
        return Language.JA
    latin_letters = sum(len(word) for word in words)
    english_grammar = any(word in _ENGLISH_FUNCTION_WORDS for word in words)
    if english_grammar and (hiragana < 2 or latin_letters > 2 * japanese):
        return Language.EN
    return Language.JA


def written_language(text: str) -> Language | None:
    """The language a message is plainly written in, or None when it does not say (a code, a name, "ok").

    A Japanese sentence has two hiragana or more among five Japanese characters or more (「学生支援課のメール
    アドレスは？」; not 「学生支援課」 copied from a screen, nor a short answer such as 「郵送で」「2通です」);
    an English one three Latin words or more, one of them a word of English grammar. Romaji says Japanese
    but is no sentence of it: the reader may have no Japanese keyboard.

    Args:
        text: The message as typed.

    Returns:
        `Language.JA`, `Language.EN` or None.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    language = detect_language(folded)
    japanese, hiragana = _counts(folded)
    words = _LATIN_WORD.findall(folded)
    if language is Language.JA and hiragana >= 2 and japanese >= 5:
        return Language.JA
    if language is Language.EN and len(words) >= 3 and any(word in _ENGLISH_FUNCTION_WORDS for word in words):
        return Language.EN
    return None
