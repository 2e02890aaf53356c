"""Dates and times in a normalized message, resolved against a reference time in Asia/Tokyo."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")

_JA_WEEKDAYS = "月火水木金土日"
_EN_WEEKDAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2, "thursday": 3,
    "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4, "saturday": 5, "sat": 5, "sunday": 6, "sun": 6,
}  # fmt: skip
# "sat" and "sun" are English words too: only with next/this/coming before them.
_AMBIGUOUS_WEEKDAYS = frozenset({"sat", "sun"})
_EN_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
    "nov": 11, "dec": 12,
}  # fmt: skip
_EN_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "ten": 10}
_KANJI_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_RELATIVE_DAYS = {
    "今日": 0, "きょう": 0, "本日": 0, "明日": 1, "あした": 1, "明後日": 2, "あさって": 2, "明々後日": 3,
    "しあさって": 3, "昨日": -1, "きのう": -1, "today": 0, "tonight": 0, "tomorrow": 1, "tmrw": 1,
    "tmr": 1, "the day after tomorrow": 2, "day after tomorrow": 2, "yesterday": -1,
}  # fmt: skip
_PERIODS_PM = frozenset({"午後", "夕方", "夜", "pm", "p.m."})
_PERIODS_AM = frozenset({"午前", "朝", "am", "a.m."})

_MONTH_NAMES = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_MONTH = rf"(?P<mon>{_MONTH_NAMES})"
_WEEKDAY_EN = "|".join(sorted(_EN_WEEKDAYS, key=len, reverse=True))
_PERIOD_JA = r"(?:(?P<ap>午前|午後|朝|昼|夕方|夜)\s?の?\s?)"
_AMPM = r"(?P<ampm>a\.m\.|p\.m\.|am|pm)"
_WEEKDAY_NOTE = r"(?:\s?\((?:[月火水木金土日]|mon|tue|wed|thu|fri|sat|sun)[a-z.]*\))?"
_RELATIVE = "|".join(re.escape(word) for word in sorted(_RELATIVE_DAYS, key=len, reverse=True))

# What may stand between a date and the time that goes with it ("金曜の16時", "tomorrow at 3pm", "4pm on Jan 8").
_DATE_TIME_GAP = re.compile(r"(?:[\s,、の@]|at\b|に)*")
_TIME_DATE_GAP = re.compile(r"(?:[\s,、]|on\b)*")
# A weekday just before a calendar date names the same day ("Friday, January 8, 2027", "金曜 1/8").
_WEEKDAY_DATE_GAP = re.compile(r"[\s,.、]*")
# "Sat" and "Sun" count as weekdays without next/this when a calendar date follows ("Sat, Jan 10").
_DATE_AHEAD = re.compile(
    rf"[\s,.]*(?:(?:{_MONTH_NAMES})\.?\s?\d|\d{{1,2}}(?:st|nd|rd|th)?\s?(?:of\s)?(?:{_MONTH_NAMES})\b|\d{{1,2}}/\d)"
)


# A weekday ("金曜", "Friday") or a calendar date ("1/8", "Jan 8") may join into one; "" for anything else.
_Kind = Literal["", "weekday", "calendar"]


@dataclass(frozen=True, slots=True)
class _Found:
    start: int
    end: int
    day: date | None
    clock: time | None
    kind: _Kind = ""


def _closest_year(month: int, day: int, today: date) -> date | None:
    """The date with this month and day nearest to today (so in late December, "1/5" is next year's)."""
    options = []
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            options.append(date(year, month, day))
        except ValueError:
            continue
    return min(options, key=lambda option: abs((option - today).days), default=None)


def _calendar_date(year: str | None, month: int, day: int, today: date) -> date | None:
    if year is None:
        return _closest_year(month, day, today)
    try:
        return date(int(year), month, day)
    except ValueError:
        return None


def _weekday_date(weekday: int, relation: str | None, today: date) -> date:
    """Resolve a weekday: this week's, next week's (weeks start on Monday) or the next one to come."""
    monday = today - timedelta(days=today.weekday())
    if relation == "今週":
        return monday + timedelta(days=weekday)
    if relation in ("来週", "next"):
        return monday + timedelta(days=7 + weekday)
    if relation == "再来週":
        return monday + timedelta(days=14 + weekday)
    ahead = (weekday - today.weekday()) % 7
    if ahead == 0 and relation in ("次の", "今度の", "coming", "this coming"):
        ahead = 7
    return today + timedelta(days=ahead)


def _hour(hour: int, period: str | None) -> int | None:
    """Apply 午前/午後/am/pm to an hour; None when the result is no clock hour."""
    if period in _PERIODS_PM or (period == "昼" and hour <= 6):
        if period in ("pm", "p.m.") and not 1 <= hour <= 12:
            return None
        hour = hour if hour >= 12 else hour + 12
    elif period in _PERIODS_AM:
        if period in ("am", "a.m.") and not 1 <= hour <= 12:
            return None
        hour = 0 if hour == 12 else hour
    return hour if 0 <= hour <= 23 else None


def _clock(hour: int | None, minute: int = 0) -> time | None:
    if hour is None or not 0 <= minute <= 59:
        return None
    return time(hour, minute)


def kanji_number(text: str) -> int:
    """Read a kanji number from 一 to 九十九 (三, 十二, 二十); 0 for anything else.

    Args:
        text: The kanji digits.

    Returns:
        The number, or 0.
    """
    if "十" not in text:
        return _KANJI_DIGITS.get(text, 0)
    tens, _, ones = text.partition("十")
    return _KANJI_DIGITS.get(tens, 1 if not tens else 0) * 10 + _KANJI_DIGITS.get(ones, 0)


_Resolver = Callable[[re.Match[str], date], "date | time | None"]


def _relative_day(match: re.Match[str], today: date) -> date:
    return today + timedelta(days=_RELATIVE_DAYS[match["word"]])


def _days_later(match: re.Match[str], today: date) -> date | None:
    count = match["n"]
    days = int(count) if count.isdigit() else _EN_NUMBERS.get(count, 0)
    return today + timedelta(days=days) if days else None


def _numeric_date(match: re.Match[str], today: date) -> date | None:
    return _calendar_date(match["y"], int(match["m"]), int(match["d"]), today)


def _english_date(match: re.Match[str], today: date) -> date | None:
    return _calendar_date(match["y"], _EN_MONTHS[match["mon"][:3]], int(match["d"]), today)


def _ja_weekday(match: re.Match[str], today: date) -> date:
    return _weekday_date(_JA_WEEKDAYS.index(match["wd"]), match["rel"], today)


def _en_weekday(match: re.Match[str], today: date) -> date | None:
    relation = match["rel"]
    if match["wd"] in _AMBIGUOUS_WEEKDAYS and not relation and not _DATE_AHEAD.match(match.string, match.end()):
        return None
    return _weekday_date(_EN_WEEKDAYS[match["wd"]], relation, today)


def _ja_time(match: re.Match[str], _today: date) -> time | None:
    groups = match.groupdict()  # digit hours have h and mi, kanji hours hk
    hour = int(groups["h"]) if groups.get("h") else kanji_number(groups.get("hk") or "")
    minute = 30 if groups["half"] else int(groups.get("mi") or 0)
    return _clock(_hour(hour, groups["ap"]), minute)


def _colon_time(match: re.Match[str], _today: date) -> time | None:
    return _clock(_hour(int(match["h"]), match["ampm"] or match["ap"]), int(match["mi"]))


def _ampm_time(match: re.Match[str], _today: date) -> time | None:
    return _clock(_hour(int(match["h"]), match["ampm"]))


def _noon(_match: re.Match[str], _today: date) -> time:
    return time(12, 0)


_PATTERNS: tuple[tuple[re.Pattern[str], _Resolver], ...] = (
    (re.compile(rf"(?<![a-z])(?P<word>{_RELATIVE})(?![a-z])"), _relative_day),
    (re.compile(r"(?<![\d])(?P<n>\d{1,2})\s?日後"), _days_later),
    (re.compile(r"\bin (?P<n>\d{1,2}|one|two|three|four|five|six|seven|ten) days?\b"), _days_later),
    (re.compile(r"(?<!\d)(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?!\d)"), _numeric_date),
    (
        re.compile(
            r"(?<![\d/.:])(?:(?P<y>\d{4})\s?[年/.]\s?)?(?P<m>\d{1,2})\s?(?:月|/)\s?(?P<d>\d{1,2})(?![\d/])"
            rf"(?:\s?日)?{_WEEKDAY_NOTE}"
        ),
        _numeric_date,
    ),
    (
        re.compile(rf"\b{_MONTH}\.?\s?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s?(?P<y>\d{{4}})\b)?{_WEEKDAY_NOTE}"),
        _english_date,
    ),
    (
        re.compile(
            rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s?(?:of\s)?{_MONTH}\b\.?(?:,?\s?(?P<y>\d{{4}})\b)?{_WEEKDAY_NOTE}"
        ),
        _english_date,
    ),
    (
        re.compile(r"(?:(?P<rel>今週|来週|再来週|次の|今度の|この)\s?の?\s?)?(?P<wd>[月火水木金土日])曜(?:日)?"),
        _ja_weekday,
    ),
    (re.compile(rf"\b(?:(?P<rel>this coming|next|this|coming)\s)?(?P<wd>{_WEEKDAY_EN})\b"), _en_weekday),
    (
        re.compile(rf"{_PERIOD_JA}?(?<!\d)(?P<h>\d{{1,2}})\s?時(?!間)(?:\s?(?P<mi>\d{{1,2}})\s?分|\s?(?P<half>半))?"),
        _ja_time,
    ),
    (
        # Kanji hours only after 午前/午後…: a bare 一時 is "for a while" (一時的に).
        re.compile(
            r"(?P<ap>午前|午後|朝|昼|夕方|夜)\s?の?\s?(?P<hk>[一二三四五六七八九十]{1,3})\s?時(?!間)"
            r"(?:\s?(?P<half>半))?"
        ),
        _ja_time,
    ),
    (
        re.compile(rf"{_PERIOD_JA}?(?<![\d:])(?P<h>\d{{1,2}}):(?P<mi>\d{{2}})(?![\d:])(?:\s?{_AMPM}(?![a-z]))?"),
        _colon_time,
    ),
    (re.compile(rf"(?<![\d:.])(?P<h>\d{{1,2}})\s?{_AMPM}(?![a-z])"), _ampm_time),
    (re.compile(r"\bnoon\b|\bmidday\b|正午"), _noon),
)


_KINDS: dict[_Resolver, _Kind] = {
    _ja_weekday: "weekday",
    _en_weekday: "weekday",
    _numeric_date: "calendar",
    _english_date: "calendar",
}


def _candidates(text: str, today: date) -> list[_Found]:
    found: list[_Found] = []
    for pattern, resolve in _PATTERNS:
        for match in pattern.finditer(text):
            value = resolve(match, today)
            if value is None:
                continue
            day = value if isinstance(value, date) else None
            clock = value if isinstance(value, time) else None
            found.append(_Found(match.start(), match.end(), day, clock, _KINDS.get(resolve, "")))
    # Longest first at each position, then drop whatever overlaps something already kept.
    found.sort(key=lambda item: (item.start, item.start - item.end))
    kept: list[_Found] = []
    for item in found:
        if not kept or item.start >= kept[-1].end:
            kept.append(item)
    return kept


def _combine(text: str, found: list[_Found]) -> list[_Found]:
    """Join a date and a time next to each other ("金曜の16時", "4pm tomorrow") into one datetime, and a
    weekday with the calendar date after it ("Friday, January 8") into that date. The calendar date decides
    the day even when the weekday does not match it: it is the more precise of the two."""
    merged: list[_Found] = []
    for item in found:
        if merged:
            last = merged[-1]
            gap = text[last.end : item.start]
            if (
                last.kind == "weekday"
                and not last.clock
                and item.kind == "calendar"
                and _WEEKDAY_DATE_GAP.fullmatch(gap)
            ):
                merged[-1] = _Found(last.start, item.end, item.day, item.clock, item.kind)
                continue
            if last.day and not last.clock and item.clock and not item.day and _DATE_TIME_GAP.fullmatch(gap):
                merged[-1] = _Found(last.start, item.end, last.day, item.clock)
                continue
            if last.clock and not last.day and item.day and not item.clock and _TIME_DATE_GAP.fullmatch(gap):
                merged[-1] = _Found(last.start, item.end, item.day, last.clock)
                continue
        merged.append(item)
    return merged


def in_tokyo(now: datetime) -> datetime:
    """`now` in Asia/Tokyo (a naive time is taken as Tokyo's)."""
    return now.astimezone(TOKYO) if now.tzinfo else now.replace(tzinfo=TOKYO)


def find_datetimes(text: str, now: datetime) -> list[tuple[int, int, str]]:
    """Find dates and times in a normalized text and resolve them against `now`.

    A date alone resolves to an ISO date ("2025-11-28"); a time, alone or with a date, to an ISO datetime
    with the Asia/Tokyo offset ("2025-11-28T16:00:00+09:00"), on today's date when no date is given.
    Weekdays: "来週月曜" and "next Monday" are the Monday of next week (weeks start on Monday), "今週金曜"
    this week's Friday, "次の金曜" and "coming Friday" the first Friday after today, and a bare or "this"
    weekday ("金曜", "Friday", "this Friday") the next Friday with today included. A month and day without
    a year ("11/25", "Nov 25") is the one nearest to `now`.

    Args:
        text: A normalized message (see `intents.normalize`).
        now: The reference time; converted to Asia/Tokyo.

    Returns:
        `(start, end, value)` for each date or time, with spans on `text`, in order.
    """
    today = in_tokyo(now).date()
    results = []
    for item in _combine(text, _candidates(text, today)):
        if item.clock is not None:
            value = datetime.combine(item.day or today, item.clock, tzinfo=TOKYO).isoformat()
        elif item.day is not None:
            value = item.day.isoformat()
        else:
            continue
        results.append((item.start, item.end, value))
    return results
