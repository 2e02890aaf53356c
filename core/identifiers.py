"""Identifiers as students type them: student numbers (full-width, hyphens) and email addresses."""

import re
import unicodedata

from core.errors import InvalidEmailAddress

# Hyphen-likes that Japanese input methods produce, besides the ASCII one NFKC leaves behind.
_SEPARATORS = frozenset(" -\u3000\u2010\u2011\u2012\u2013\u2014\u2212\u30fc\uff70")


def normalize_student_number(text: str) -> str:
    """Full-width to half-width, spaces and hyphens removed, upper-cased: `２４ｍ-1001` → `24M1001`."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch not in _SEPARATORS).upper()


# Deliberately plain: one @, a dotted domain, printable ASCII only. Anything subtler is for the mail server.
_EMAIL_SHAPE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def normalize_email(text: str) -> str:
    """The address with surrounding spaces removed, checked for the mistakes the guide's checklist names.

    Raises:
        InvalidEmailAddress: `full_width` for non-ASCII characters, `spaces` for inner spaces, else `format`.
    """
    email = text.strip()
    if not email.isascii():
        raise InvalidEmailAddress("full_width")
    if any(ch.isspace() for ch in email):
        raise InvalidEmailAddress("spaces")
    local = email.rpartition("@")[0]
    if len(email) > 254 or not _EMAIL_SHAPE.match(email) or local.startswith(".") or local.endswith(".") \
            or ".." in local:
        raise InvalidEmailAddress("format")
    return email
