"""Masking of personal data and secrets before they reach a log line or a stored transcript."""

import re

from core.identifiers import normalize_student_number

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_LINK_TOKEN = re.compile(r"(/links/)[A-Za-z0-9_-]{8,}")
# A run of half- or full-width letters and digits, hyphens allowed between them: how students type numbers.
_ALNUM = "0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
_ID_LIKE = re.compile(rf"[{_ALNUM}](?:[{_ALNUM}]|[-\uff0d\u2010\u2212\u30fc](?=[{_ALNUM}]))+")


def mask_email(email: str | None) -> str:
    """`taro.yamada@example.ac.jp` → `t***@example.ac.jp`."""
    if not email:
        return "-"
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_student_number(number: str | None) -> str:
    """`24M1001` → `24*****01`-style: the year prefix and the last two characters stay for support."""
    if not number:
        return "-"
    if len(number) <= 4:
        return "*" * len(number)
    return f"{number[:2]}{'*' * (len(number) - 4)}{number[-2:]}"


def mask_token(token: str | None) -> str:
    """A secret token shown only by its first four characters."""
    if not token:
        return "-"
    return f"{token[:4]}…" if len(token) > 8 else "…"  # a short token shown by four would be half shown


def mask_text(text: str, student_number_pattern: str | None = None) -> str:
    """Mask emails, one-time link tokens and (given the profile's pattern) student numbers in free text."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _LINK_TOKEN.sub(r"\1[token]", text)
    if student_number_pattern:
        number = re.compile(student_number_pattern, re.IGNORECASE)

        def mask_if_number(match: re.Match[str]) -> str:
            normalized = normalize_student_number(match.group(0))
            return mask_student_number(normalized) if number.search(normalized) else match.group(0)

        text = _ID_LIKE.sub(mask_if_number, text)
    return text
