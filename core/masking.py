"""Masking of personal data and secrets before they reach a log line or a stored transcript."""

import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_LINK_TOKEN = re.compile(r"(/links/)[A-Za-z0-9_-]{8,}")


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
    return f"{token[:4]}…" if token else "-"


def mask_text(text: str, student_number_pattern: str | None = None) -> str:
    """Mask emails, one-time link tokens and (given the profile's pattern) student numbers in free text."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _LINK_TOKEN.sub(r"\1[token]", text)
    if student_number_pattern:
        text = re.sub(student_number_pattern, lambda m: mask_student_number(m.group(0)), text,
                      flags=re.IGNORECASE)
    return text
