"""Masking of personal data and secrets before they reach a log line or a stored transcript."""

import re
from functools import lru_cache

from core.identifiers import normalize_student_number

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
TOKEN_MASK = "[token]"
# A mailed link's token after /links/: URL-safe characters (secrets.token_urlsafe), or their percent-escapes
# (a client may send the path escaped). It ends at anything else: a path, query or quoting boundary, or the
# Japanese or punctuation that follows a link pasted into a sentence.
_LINK_TOKEN = re.compile(r"(/links/)((?:[A-Za-z0-9_-]|%[0-9A-Fa-f]{2})+)")
# In free text a short path (/links/abc) is a page name someone typed, not a token; a request line's is one.
TEXT_TOKEN_MIN_CHARS = 8
# LINE account linking's token and nonce in a URL's query string.
_QUERY_SECRET = re.compile(r"((?:linkToken|nonce)=)[^&#\s\"'<>]+")
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
    text = mask_link_tokens(text, TEXT_TOKEN_MIN_CHARS)
    if student_number_pattern:
        number = re.compile(student_number_pattern, re.IGNORECASE)

        def mask_if_number(match: re.Match[str]) -> str:
            normalized = normalize_student_number(match.group(0))
            return mask_student_number(normalized) if number.search(normalized) else match.group(0)

        text = _ID_LIKE.sub(mask_if_number, text)
    return text


def mask_link_tokens(text: str, shortest: int = 1) -> str:
    """`…/links/AbC…xyz?lang=ja` → `…/links/[token]?lang=ja`, for each token of at least `shortest` characters."""
    def masked(match: re.Match[str]) -> str:
        return f"{match.group(1)}{TOKEN_MASK}" if len(match.group(2)) >= shortest else match.group(0)

    return _LINK_TOKEN.sub(masked, text)


def redact_url_secrets(text: str) -> str:
    """Every one-time secret a URL carries hidden: mailed link tokens (`/links/<token>`, however short: in a
    request line a cut-off token is still one) and LINE account linking's tokens and nonces (`?linkToken=…`,
    `&nonce=…`)."""
    return _QUERY_SECRET.sub(rf"\1{TOKEN_MASK}", mask_link_tokens(text))


# Runs of printable ASCII: how a password or card number stands inside Japanese or English text.
_ASCII_RUN = re.compile(r"[!-~]+")
_NOT_A_PASSWORD = (
    re.compile(r"^[^@\s]+@[^@\s]+$"),  # an email address (masked separately)
    re.compile(r"^https?://", re.IGNORECASE),  # a URL
    re.compile(r"^[0-9A-Za-z]{4}-[0-9A-Za-z]{4}$"),  # an order number such as K7PM-3QXA
    re.compile(r"^[0-9]{1,4}([:/.\-年月日時分])[0-9]{1,4}(\1[0-9]{1,4})?$"),  # 16:10, 11/25, 2026-11-24
    re.compile(r"^[¥$]?[0-9,]+(円|yen)?$", re.IGNORECASE),  # an amount
    re.compile(r"^[0-9]+(st|nd|rd|th|pm|am|h|min|copies|copy|x)$", re.IGNORECASE),  # 2nd, 4pm, 3copies
)
_CARD = re.compile(r"(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])")
PASSWORD_MASK = "[password]"
PERSONAL_MASK = "[personal]"  # a mailing address, a recipient's name, a phone number
CARD_MASK = "[card]"


def find_password_candidates(text: str, student_number_pattern: str | None = None) -> list[str]:
    """Tokens that look like a password someone pasted: 6–64 printable ASCII with letters and digits.

    Emails, URLs, order numbers, dates, times, amounts and (given the pattern) student numbers are not
    candidates: they are what students legitimately type to the bot.
    """
    number = _student_number(student_number_pattern) if student_number_pattern else None
    found = []
    for match in _ASCII_RUN.finditer(text):
        token = match.group(0).strip(".,!?()[]「」\"'")
        if not 6 <= len(token) <= 64 or not _LETTER.search(token) or not _DIGIT.search(token):
            continue
        if any(pattern.search(token) for pattern in _NOT_A_PASSWORD) or (number and number.match(token)):
            continue
        found.append(token)
    return found


_LETTER, _DIGIT = re.compile(r"[A-Za-z]"), re.compile(r"[0-9]")


@lru_cache(maxsize=8)
def _student_number(pattern: str) -> re.Pattern[str]:
    """The profile's student number pattern as a whole token (compiled once: every transcript line is masked)."""
    return re.compile(rf"^(?:{pattern})$", re.IGNORECASE)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def mask_secrets(text: str, extra: tuple[str, ...] = (), student_number_pattern: str | None = None, *,
                 look_for_passwords: bool = True) -> str:
    """Text fit for a stored transcript: passwords, card numbers and link tokens masked, plus `extra`.

    `look_for_passwords=False` masks only `extra` as passwords: for the bot's own words, which can hold a
    password only by repeating one the student typed (`extra`), never one of their own.
    """
    if not look_for_passwords and not extra:
        return _bots_words_masked(text)
    if not extra and not _DIGIT.search(text) and "/links/" not in text:
        return text  # a password candidate and a card number have digits, a link token its path: none here
    guessed = find_password_candidates(text, student_number_pattern) if look_for_passwords else []
    text = _replaced(text, {secret for secret in (*extra, *guessed) if secret}, PASSWORD_MASK)
    return _cards_and_tokens_masked(text)


def _cards_and_tokens_masked(text: str) -> str:
    text = _CARD.sub(lambda m: CARD_MASK if _luhn_valid(re.sub(r"[ -]", "", m.group(0))) else m.group(0), text)
    return mask_link_tokens(text, TEXT_TOKEN_MIN_CHARS)


# The bot's own words, which it says again and again, masked once each (never a student's: those are not kept).
_bots_words_masked = lru_cache(maxsize=2048)(_cards_and_tokens_masked)


def mask_personal(text: str, parts: tuple[str, ...]) -> str:
    """`text` with each of `parts` (personal data the student gave: an address, a name, a phone number)
    replaced by PERSONAL_MASK."""
    return _replaced(text, {part for part in parts if part.strip()}, PERSONAL_MASK)


def _replaced(text: str, parts: set[str], mask: str) -> str:
    """`text` with each of `parts` replaced by `mask`, longest first so that a part inside another is not left
    half-masked."""
    for part in sorted(parts, key=len, reverse=True):
        text = text.replace(part, mask)
    return text
