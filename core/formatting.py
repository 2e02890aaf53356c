"""How dates, times, amounts and lists read to students, in Japanese and English (Japan time)."""

from collections.abc import Iterable
from datetime import datetime

from core.clock import TOKYO, require_aware
from core.enums import Language
from core.i18n import t


def format_yen(amount: int, lang: Language | str) -> str:
    """`1200` → `1,200円` / `¥1,200`."""
    return t("format.yen", lang, amount=f"{amount:,}")


def format_datetime(at: datetime, lang: Language | str) -> str:
    """A time in Asia/Tokyo, in full: `2026年11月27日（金）23:59` / `Fri, Nov 27, 2026, 23:59 (Japan time)`."""
    return _format("format.datetime", require_aware(at), lang)


def format_short(at: datetime, lang: Language | str) -> str:
    """A time in Asia/Tokyo within the coming days: `11月24日（火）9:00` / `Tue, Nov 24, 9:00 (Japan time)`."""
    return _format("format.short", require_aware(at), lang)


def join_list(labels: Iterable[str], lang: Language | str) -> str:
    """`A、B、C` / `A, B, C`."""
    return t("format.list_separator", lang).join(labels)


def _format(key: str, at: datetime, lang: Language | str) -> str:
    local = at.astimezone(TOKYO)
    weekdays = t("format.weekdays", lang).split(",")
    months = t("format.months", lang).split(",")
    return t(key, lang, year=local.year, month=months[local.month - 1], day=local.day,
             weekday=weekdays[local.weekday()], time=f"{local.hour}:{local:%M}")
