"""Student numbers as students type them: full-width, lower case, with spaces or hyphens."""

import unicodedata

# Hyphen-likes that Japanese input methods produce, besides the ASCII one NFKC leaves behind.
_SEPARATORS = frozenset(" -\u3000\u2010\u2011\u2012\u2013\u2014\u2212\u30fc\uff70")


def normalize_student_number(text: str) -> str:
    """Full-width to half-width, spaces and hyphens removed, upper-cased: `２４ｍ-1001` → `24M1001`."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch not in _SEPARATORS).upper()
