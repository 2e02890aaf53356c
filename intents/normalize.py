"""Text normalization for matching and classification, keeping a map back to the original characters."""

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Marks students type to stretch a vowel; after NFKC, ～ (U+FF5E) is "~" and ｰ (U+FF70) is "ー".
_LONG_VOWEL_MARKS = frozenset("ー〜~")
_SMALL_HIRAGANA = str.maketrans("ぁぃぅぇぉゎ", "あいうえおわ")
# Marks that belong to the character before them and must go through NFKC with it (ｶﾞ → ガ).
_JOINING_MARKS = frozenset("\uff9e\uff9f\u200d")


@dataclass(frozen=True, slots=True)
class Normalized:
    """A normalized text and, for each of its characters, the span of the original text it came from."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of the normalized text back to the original text.

        Args:
            start: First normalized character of the span.
            end: One past the last normalized character; must be greater than `start`.

        Returns:
            `(start, end)` in the original text.
        """
        return self.starts[start], self.ends[end - 1]


def _is_kana(char: str) -> bool:
    return "\u3041" <= char <= "\u30ff"


def _clusters(text: str) -> list[tuple[int, int]]:
    """Split text into spans of a base character and the marks that join it."""
    spans: list[tuple[int, int]] = []
    for index, char in enumerate(text):
        joins = char in _JOINING_MARKS or unicodedata.combining(char) or "\ufe00" <= char <= "\ufe0f"
        if spans and joins:
            spans[-1] = (spans[-1][0], index + 1)
        else:
            spans.append((index, index + 1))
    return spans


# One message is read by several parts of the understanding and the pipeline (about eight times a turn); the
# result is immutable, so each text is normalized once.
@lru_cache(maxsize=4096)
def normalize_with_offsets(text: str) -> Normalized:
    """Normalize text the way the classifier and the entity tables see it, keeping offsets.

    The steps: NFKC (full-width letters, digits and symbols to half-width, half-width kana to full-width),
    case folding, whitespace runs to one space with the ends stripped, runs of long-vowel marks after kana
    (ー, 〜, ～) to one ー, small hiragana vowels to large ones (できないぃ → できないい), and runs of one
    repeated symbol or punctuation mark (！！！, 🙏🙏) to a single one.

    Args:
        text: The original message.

    Returns:
        The normalized text with, for every character, the original span it came from.
    """
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for start, end in _clusters(text):
        piece = unicodedata.normalize("NFKC", text[start:end]).casefold()
        for char in piece:
            previous = out[-1] if out else ""
            if char.isspace():
                if not out or previous == " ":
                    continue
                char = " "
            elif char in _LONG_VOWEL_MARKS and (_is_kana(previous)):
                if previous == "ー":
                    ends[-1] = end
                    continue
                char = "ー"
            else:
                char = char.translate(_SMALL_HIRAGANA)
                if char == previous and unicodedata.category(char)[0] in "PS":
                    ends[-1] = end
                    continue
            out.append(char)
            starts.append(start)
            ends.append(end)
    if out and out[-1] == " ":
        out.pop()
        starts.pop()
        ends.pop()
    return Normalized("".join(out), tuple(starts), tuple(ends))


def normalize(text: str) -> str:
    """Normalize text for classification and matching (see `normalize_with_offsets` for the steps).

    Args:
        text: The original message.

    Returns:
        The normalized text.
    """
    return normalize_with_offsets(text).text
