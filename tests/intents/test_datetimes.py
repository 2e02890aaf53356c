"""Explicit English dates read like the Japanese ones: a weekday before a date, years, times, spans."""

from datetime import datetime

import pytest

from intents.datetimes import TOKYO, find_datetimes
from intents.entities import EntityExtractor
from intents.normalize import normalize
from intents.types import EntityType
from tests.intents.conftest import NOW


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor()


def dates(extractor: EntityExtractor, text: str, now: datetime = NOW) -> list[tuple[str, str]]:
    entities = extractor.extract(text, now=now)
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text
    return [(str(entity.value), entity.text) for entity in entities if entity.type is EntityType.DATETIME]


# NOW is Monday 2025-11-24 10:00 in Tokyo: a month and day without a year is the one nearest to it.
ENGLISH_DATES = [
    ("Friday, January 8, 2027", [("2027-01-08", "Friday, January 8, 2027")]),
    ("January 8, 2027", [("2027-01-08", "January 8, 2027")]),
    ("Jan 8", [("2026-01-08", "Jan 8")]),
    ("Jan. 8", [("2026-01-08", "Jan. 8")]),
    ("8 Jan", [("2026-01-08", "8 Jan")]),
    ("8th January", [("2026-01-08", "8th January")]),
    ("the 8th of January", [("2026-01-08", "8th of January")]),
    ("January 8th", [("2026-01-08", "January 8th")]),
    ("8 Jan. 2027", [("2027-01-08", "8 Jan. 2027")]),
    ("January 8 (Fri)", [("2026-01-08", "January 8 (Fri)")]),
    ("1/8", [("2026-01-08", "1/8")]),  # month/day, as in Japanese
    ("Nov 3", [("2025-11-03", "Nov 3")]),  # the nearest: this year's, past
    # With a time.
    ("Jan 8 at 4pm", [("2026-01-08T16:00:00+09:00", "Jan 8 at 4pm")]),
    ("January 8th 16:00", [("2026-01-08T16:00:00+09:00", "January 8th 16:00")]),
    ("Friday, January 8, 2027 at 3:30 pm", [("2027-01-08T15:30:00+09:00", "Friday, January 8, 2027 at 3:30 pm")]),
    ("4pm on Jan 8", [("2026-01-08T16:00:00+09:00", "4pm on Jan 8")]),
    # A weekday before an explicit date is that date, not a date of its own.
    ("Fri, Jan 8", [("2026-01-08", "Fri, Jan 8")]),
    ("Sat, Jan 10", [("2026-01-10", "Sat, Jan 10")]),
    ("next Friday, Jan 8", [("2026-01-08", "next Friday, Jan 8")]),
    ("金曜 1/8の16時", [("2026-01-08T16:00:00+09:00", "金曜 1/8の16時")]),
    ("Friday 4pm", [("2025-11-28T16:00:00+09:00", "Friday 4pm")]),
    ("Friday or Jan 8", [("2025-11-28", "Friday"), ("2026-01-08", "Jan 8")]),
    # Not dates: a day of the month alone says no month; "sat" is a verb.
    ("on the 8th", []),
    ("i sat down", []),
    ("I may need 2 copies", []),
]


@pytest.mark.parametrize(("text", "expected"), ENGLISH_DATES)
def test_english_dates(extractor: EntityExtractor, text: str, expected: list) -> None:
    assert dates(extractor, text) == expected


def test_a_date_in_a_message_keeps_its_span_on_the_original_text(extractor: EntityExtractor) -> None:
    text = "I'd like to pick up my transcript on Friday, January 8, 2027 at 3:30 PM, thanks"
    assert dates(extractor, text) == [("2027-01-08T15:30:00+09:00", "Friday, January 8, 2027 at 3:30 PM")]


def test_a_month_and_day_without_a_year_is_the_nearest_one() -> None:
    late_december = datetime(2025, 12, 28, 9, 0, tzinfo=TOKYO)
    assert find_datetimes(normalize("jan 8"), late_december) == [(0, 5, "2026-01-08")]
    assert find_datetimes(normalize("dec 20"), late_december) == [(0, 6, "2025-12-20")]
    early_january = datetime(2026, 1, 3, 9, 0, tzinfo=TOKYO)
    assert find_datetimes(normalize("december 30th"), early_january) == [(0, 13, "2025-12-30")]


def test_the_calendar_date_decides_when_the_weekday_does_not_match() -> None:
    # 8 January 2026 is a Thursday: the date is the more precise of the two.
    assert find_datetimes(normalize("friday, january 8"), NOW) == [(0, 17, "2026-01-08")]
