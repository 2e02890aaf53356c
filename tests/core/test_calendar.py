"""The business calendar: the guide's pickup window, business days and the offices' opening hours."""

from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import holidays
import pytest
import yaml

from core import calendar as calendar_module
from core.calendar import BusinessCalendar, is_open, next_opening, pickup_window
from core.clock import TOKYO
from core.enums import Service
from core.profile import SHIPPED_PROFILE, load_profile
from core.settings import get_settings

STUDENT_SUPPORT, CALL_CENTER, CHAT = Service.STUDENT_SUPPORT, Service.CALL_CENTER, Service.CHAT_SUPPORT
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return BusinessCalendar(load_profile())


def calendar_with_closures(*closure_days: str) -> BusinessCalendar:
    return BusinessCalendar(load_profile().model_copy(update={"closure_days": closure_days}))


# --- the facts the tables below rely on, checked against the holidays library itself -------------------------

@pytest.mark.parametrize(("day", "weekday", "name"), [
    (date(2026, 5, 6), WED, "振替休日"),
    (date(2026, 9, 21), MON, "敬老の日"),
    (date(2026, 9, 22), TUE, "国民の休日"),
    (date(2026, 9, 23), WED, "秋分の日"),
    (date(2026, 11, 23), MON, "勤労感謝の日"),
    (date(2027, 1, 11), MON, "成人の日"),
    (date(2027, 3, 22), MON, "振替休日"),
    (date(2027, 5, 3), MON, "憲法記念日"),
    (date(2027, 7, 19), MON, "海の日"),
])
def test_holiday_names_include_substitute_and_citizens_holidays(cal, day, weekday, name):
    assert day.weekday() == weekday
    assert cal.holiday_name(day) == name
    assert not cal.is_business_day(day)


@pytest.mark.parametrize(("day", "expected"), [
    (date(2026, 11, 24), True),   # Tuesday
    (date(2026, 11, 27), True),   # Friday
    (date(2026, 11, 28), False),  # Saturday
    (date(2026, 11, 29), False),  # Sunday
    (date(2026, 11, 23), False),  # 勤労感謝の日
    (date(2026, 12, 28), True),   # Monday, the last day before the closure
    (date(2026, 12, 29), False),  # closure (a Tuesday)
    (date(2026, 12, 31), False),  # closure (a Thursday)
    (date(2027, 1, 1), False),    # 元日 and closure
    (date(2027, 1, 3), False),    # closure (a Sunday anyway)
    (date(2027, 1, 4), True),     # Monday, first business day of 2027
    (date(2027, 3, 19), True),
    (date(2027, 3, 22), False),   # 振替休日
])
def test_is_business_day(cal, day, expected):
    assert cal.is_business_day(day) is expected


def test_next_and_add_business_days(cal):
    assert cal.next_business_day(date(2026, 9, 18)) == date(2026, 9, 24)  # Fri → Thu after the silver week
    assert cal.next_business_day(date(2026, 12, 28)) == date(2027, 1, 4)
    assert cal.add_business_days(date(2026, 11, 24), 0) == date(2026, 11, 24)
    assert cal.add_business_days(date(2026, 11, 27), 2) == date(2026, 12, 1)
    assert cal.add_business_days(date(2026, 12, 25), 2) == date(2027, 1, 4)


# --- the pickup window --------------------------------------------------------------------------------------

PICKUP_CASES = [
    # (applied at, Asia/Tokyo) → (earliest, latest), both at 13:00
    pytest.param(jst(2026, 11, 24, 10, 0), date(2026, 11, 25), date(2026, 11, 25), id="weekday-morning"),
    pytest.param(jst(2026, 11, 24, 0, 0), date(2026, 11, 25), date(2026, 11, 25), id="weekday-midnight"),
    pytest.param(jst(2026, 11, 24, 13, 0), date(2026, 11, 25), date(2026, 11, 25), id="weekday-13:00"),
    pytest.param(jst(2026, 11, 24, 14, 59, 59), date(2026, 11, 25), date(2026, 11, 25), id="14:59:59"),
    pytest.param(jst(2026, 11, 24, 14, 59, 59, 999999), date(2026, 11, 25), date(2026, 11, 25),
                 id="14:59:59.999999"),
    pytest.param(jst(2026, 11, 24, 15, 0, 0), date(2026, 11, 25), date(2026, 11, 26), id="15:00:00"),
    pytest.param(jst(2026, 11, 24, 23, 59, 59), date(2026, 11, 25), date(2026, 11, 26), id="weekday-23:59"),
    pytest.param(jst(2026, 11, 27, 16, 10), date(2026, 11, 30), date(2026, 12, 1), id="friday-16:10"),
    pytest.param(jst(2026, 11, 27, 11, 0), date(2026, 11, 30), date(2026, 11, 30), id="friday-morning"),
    pytest.param(jst(2026, 12, 24, 16, 0), date(2026, 12, 25), date(2026, 12, 28), id="thursday-before-xmas"),
    # 敬老の日 (Mon 9/21), 国民の休日 (Tue 9/22), 秋分の日 (Wed 9/23)
    pytest.param(jst(2026, 9, 18, 16, 10), date(2026, 9, 24), date(2026, 9, 25), id="silver-week-friday-16:10"),
    pytest.param(jst(2026, 9, 18, 9, 0), date(2026, 9, 24), date(2026, 9, 24), id="silver-week-friday-morning"),
    pytest.param(jst(2026, 9, 22, 16, 0), date(2026, 9, 24), date(2026, 9, 24), id="on-kokumin-no-kyujitsu"),
    # 海の日 on Monday 7/20
    pytest.param(jst(2026, 7, 17, 16, 10), date(2026, 7, 21), date(2026, 7, 22), id="friday-before-umi-no-hi"),
    # Golden week: 5/3 Sun, 5/4 Mon, 5/5 Tue, 5/6 Wed 振替休日
    pytest.param(jst(2026, 4, 30, 16, 0), date(2026, 5, 1), date(2026, 5, 7), id="golden-week-thursday"),
    pytest.param(jst(2026, 5, 1, 15, 0), date(2026, 5, 7), date(2026, 5, 8), id="golden-week-friday"),
    pytest.param(jst(2026, 5, 6, 16, 0), date(2026, 5, 7), date(2026, 5, 7), id="on-furikae-kyujitsu"),
    # 2027: 振替休日 on Mon 3/22; 成人の日 on Mon 1/11; 憲法記念日 to こどもの日 Mon 5/3 - Wed 5/5
    pytest.param(jst(2027, 3, 19, 16, 0), date(2027, 3, 23), date(2027, 3, 24), id="2027-furikae-monday"),
    pytest.param(jst(2027, 1, 8, 16, 0), date(2027, 1, 12), date(2027, 1, 13), id="2027-seijin-no-hi"),
    pytest.param(jst(2027, 4, 30, 16, 0), date(2027, 5, 6), date(2027, 5, 7), id="2027-golden-week"),
    # Not business days: no 15:00 rule, earliest equals latest
    pytest.param(jst(2026, 11, 28, 16, 0), date(2026, 11, 30), date(2026, 11, 30), id="saturday-16:00"),
    pytest.param(jst(2026, 11, 28, 9, 0), date(2026, 11, 30), date(2026, 11, 30), id="saturday-morning"),
    pytest.param(jst(2026, 11, 29, 20, 0), date(2026, 11, 30), date(2026, 11, 30), id="sunday-20:00"),
    pytest.param(jst(2026, 11, 23, 16, 0), date(2026, 11, 24), date(2026, 11, 24), id="holiday-16:00"),
    # Year-end closure 12/29 - 1/3
    pytest.param(jst(2026, 12, 28, 16, 0), date(2027, 1, 4), date(2027, 1, 5), id="year-end-16:00"),
    pytest.param(jst(2026, 12, 28, 10, 0), date(2027, 1, 4), date(2027, 1, 4), id="year-end-morning"),
    pytest.param(jst(2026, 12, 25, 16, 0), date(2026, 12, 28), date(2027, 1, 4), id="last-friday-of-year"),
    pytest.param(jst(2026, 12, 30, 16, 0), date(2027, 1, 4), date(2027, 1, 4), id="during-closure"),
    pytest.param(jst(2027, 1, 1, 16, 0), date(2027, 1, 4), date(2027, 1, 4), id="new-years-day"),
    pytest.param(jst(2027, 1, 4, 15, 30), date(2027, 1, 5), date(2027, 1, 6), id="first-day-after-closure"),
    pytest.param(jst(2027, 12, 28, 16, 0), date(2028, 1, 4), date(2028, 1, 5), id="year-end-2027"),
]


@pytest.mark.parametrize(("applied_at", "earliest_day", "latest_day"), PICKUP_CASES)
def test_pickup_window_table(cal, applied_at, earliest_day, latest_day):
    earliest, latest = pickup_window(applied_at, cal)
    assert (earliest, latest) == (jst(*earliest_day.timetuple()[:3], 13), jst(*latest_day.timetuple()[:3], 13))
    for moment in (earliest, latest):
        assert moment.tzinfo is not None
        assert moment.utcoffset() == timedelta(hours=9)
        assert moment.time() == time(13, 0)
        assert cal.is_business_day(moment.date())
    assert earliest.date() > applied_at.date()


def test_pickup_window_results_are_in_tokyo(cal):
    earliest, latest = pickup_window(jst(2026, 11, 24, 10), cal)
    assert earliest.tzinfo == TOKYO and latest.tzinfo == TOKYO


def test_year_end_case_weekdays(cal):
    # The brief's year-end case, with the weekdays spelled out: Mon 12/28 → Mon 1/4 and Tue 1/5.
    assert date(2026, 12, 28).weekday() == MON
    earliest, latest = pickup_window(jst(2026, 12, 28, 16), cal)
    assert (earliest.weekday(), latest.weekday()) == (MON, TUE)
    assert (earliest.date(), latest.date()) == (date(2027, 1, 4), date(2027, 1, 5))


@pytest.mark.parametrize(("applied_at", "expected"), [
    # 2026-11-24T15:30Z is Wednesday 11/25 00:30 in Tokyo: before 15:00, so next business day Thursday
    (datetime(2026, 11, 24, 15, 30, tzinfo=UTC), (jst(2026, 11, 26, 13), jst(2026, 11, 26, 13))),
    # 06:00Z is exactly 15:00 in Tokyo on Tuesday
    (datetime(2026, 11, 24, 6, 0, tzinfo=UTC), (jst(2026, 11, 25, 13), jst(2026, 11, 26, 13))),
    (datetime(2026, 11, 24, 5, 59, 59, tzinfo=UTC), (jst(2026, 11, 25, 13), jst(2026, 11, 25, 13))),
    # Friday 2026-11-27T07:10Z = 16:10 JST
    (datetime(2026, 11, 27, 7, 10, tzinfo=UTC), (jst(2026, 11, 30, 13), jst(2026, 12, 1, 13))),
    # Friday 23:00Z is Saturday 08:00 JST: not a business day, so no 15:00 rule
    (datetime(2026, 11, 27, 23, 0, tzinfo=UTC), (jst(2026, 11, 30, 13), jst(2026, 11, 30, 13))),
    # New York evening of Monday 12/28 is Tuesday 12/29 morning in Tokyo, inside the closure
    (datetime(2026, 12, 28, 20, 0, tzinfo=timezone(timedelta(hours=-5))),
     (jst(2027, 1, 4, 13), jst(2027, 1, 4, 13))),
])
def test_pickup_window_converts_other_time_zones_to_tokyo(cal, applied_at, expected):
    earliest, latest = pickup_window(applied_at, cal)
    assert (earliest, latest) == expected
    assert earliest.utcoffset() == latest.utcoffset() == timedelta(hours=9)


def test_pickup_window_rejects_naive_datetime(cal):
    with pytest.raises(ValueError, match="timezone-aware"):
        pickup_window(datetime(2026, 11, 24, 10, 0), cal)
    with pytest.raises(ValueError):
        cal.pickup_window(datetime(2026, 11, 24, 16, 0))


_JP_HOLIDAYS = holidays.country_holidays("JP", years=range(2026, 2029))


def _independent_business_day(day: date) -> bool:
    """An oracle written from the spec alone: weekday, not a JP holiday, not 12/29 - 1/3."""
    year_end = (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)
    return day.weekday() < 5 and day not in _JP_HOLIDAYS and not year_end


def test_pickup_window_sweep_over_two_years_matches_the_rule(cal):
    """Every 5 h 17 min through 2026-2027, the window follows the guide's rule against an independent oracle."""
    at = jst(2026, 1, 1, 0, 3)
    end = jst(2028, 1, 1)
    checked = 0
    while at < end:
        earliest, latest = pickup_window(at, cal)
        day = at.date()
        expected_first = day + timedelta(days=1)
        while not _independent_business_day(expected_first):
            expected_first += timedelta(days=1)
        assert earliest == datetime.combine(expected_first, time(13), TOKYO), at
        if _independent_business_day(day) and at.time() >= time(15):
            expected_second = expected_first + timedelta(days=1)
            while not _independent_business_day(expected_second):
                expected_second += timedelta(days=1)
            assert latest == datetime.combine(expected_second, time(13), TOKYO), at
        else:
            assert latest == earliest, at
        at += timedelta(hours=5, minutes=17)
        checked += 1
    assert checked > 3000


def test_module_functions_use_the_configured_profile(tmp_path, monkeypatch):
    """With no calendar given, the module functions use UNIVERSITY_PROFILE's closure days."""
    raw = yaml.safe_load(SHIPPED_PROFILE.read_text(encoding="utf-8"))
    raw["closure_days"] = ["2026-11-25"]
    path = tmp_path / "closed-wednesday.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("UNIVERSITY_PROFILE", str(path))
    get_settings.cache_clear()
    calendar_module.default_calendar.cache_clear()
    try:
        assert pickup_window(jst(2026, 11, 24, 10)) == (jst(2026, 11, 26, 13), jst(2026, 11, 26, 13))
        assert not is_open(STUDENT_SUPPORT, jst(2026, 11, 25, 10))
        assert next_opening(CALL_CENTER, jst(2026, 11, 24, 18)) == jst(2026, 11, 26, 9)
    finally:
        get_settings.cache_clear()
        calendar_module.default_calendar.cache_clear()


# --- opening hours ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("service", "at", "expected"), [
    (STUDENT_SUPPORT, jst(2026, 11, 24, 8, 29), False),
    (STUDENT_SUPPORT, jst(2026, 11, 24, 8, 29, 59, 999999), False),
    (STUDENT_SUPPORT, jst(2026, 11, 24, 8, 30), True),
    (STUDENT_SUPPORT, jst(2026, 11, 24, 12, 0), True),
    (STUDENT_SUPPORT, jst(2026, 11, 24, 16, 59), True),
    (STUDENT_SUPPORT, jst(2026, 11, 24, 16, 59, 59), True),
    (STUDENT_SUPPORT, jst(2026, 11, 24, 17, 0), False),
    (STUDENT_SUPPORT, jst(2026, 11, 24, 23, 0), False),
    (STUDENT_SUPPORT, jst(2026, 11, 28, 10, 0), False),  # Saturday
    (STUDENT_SUPPORT, jst(2026, 11, 29, 10, 0), False),  # Sunday
    (STUDENT_SUPPORT, jst(2026, 11, 23, 10, 0), False),  # 勤労感謝の日
    (STUDENT_SUPPORT, jst(2026, 9, 22, 10, 0), False),   # 国民の休日
    (STUDENT_SUPPORT, jst(2026, 12, 29, 10, 0), False),  # closure, a Tuesday
    (STUDENT_SUPPORT, jst(2026, 12, 28, 16, 59), True),
    (STUDENT_SUPPORT, jst(2027, 1, 4, 8, 30), True),
    (CALL_CENTER, jst(2026, 11, 24, 8, 30), False),
    (CALL_CENTER, jst(2026, 11, 24, 8, 59, 59), False),
    (CALL_CENTER, jst(2026, 11, 24, 9, 0), True),
    (CALL_CENTER, jst(2026, 11, 24, 16, 59), True),
    (CALL_CENTER, jst(2026, 11, 24, 17, 0), False),
    (CALL_CENTER, jst(2026, 5, 6, 10, 0), False),        # 振替休日
    (CALL_CENTER, jst(2027, 1, 2, 10, 0), False),        # closure, a Saturday anyway
    (CALL_CENTER, jst(2026, 12, 30, 10, 0), False),      # closure, a Wednesday
    (CHAT, jst(2026, 11, 24, 3, 0), True),
    (CHAT, jst(2026, 11, 28, 23, 59, 59), True),         # Saturday night
    (CHAT, jst(2026, 11, 23, 0, 0), True),               # holiday midnight
    (CHAT, jst(2027, 1, 1, 0, 0), True),                 # 元日, in the closure
    (CHAT, jst(2026, 12, 31, 17, 0), True),
])
def test_is_open(cal, service, at, expected):
    assert is_open(service, at, cal) is expected
    assert cal.is_open(service, at) is expected


def test_is_open_converts_utc_to_tokyo(cal):
    assert is_open(CALL_CENTER, datetime(2026, 11, 24, 0, 0, tzinfo=UTC), cal)  # 09:00 JST
    assert not is_open(CALL_CENTER, datetime(2026, 11, 23, 23, 59, tzinfo=UTC), cal)  # 08:59 JST
    assert not is_open(STUDENT_SUPPORT, datetime(2026, 11, 24, 8, 0, tzinfo=UTC), cal)  # 17:00 JST
    # Sunday 23:30Z is Monday 08:30 JST
    assert is_open(STUDENT_SUPPORT, datetime(2026, 11, 29, 23, 30, tzinfo=UTC), cal)


@pytest.mark.parametrize("service", list(Service))
def test_is_open_and_next_opening_reject_naive_datetimes(cal, service):
    with pytest.raises(ValueError):
        is_open(service, datetime(2026, 11, 24, 10, 0), cal)
    with pytest.raises(ValueError):
        next_opening(service, datetime(2026, 11, 24, 10, 0), cal)


@pytest.mark.parametrize(("service", "at", "expected"), [
    # open now: the same moment back
    (STUDENT_SUPPORT, jst(2026, 11, 24, 10, 0), jst(2026, 11, 24, 10, 0)),
    (CALL_CENTER, jst(2026, 11, 24, 9, 0), jst(2026, 11, 24, 9, 0)),
    # before opening on a business day: today
    (STUDENT_SUPPORT, jst(2026, 11, 24, 7, 0), jst(2026, 11, 24, 8, 30)),
    (STUDENT_SUPPORT, jst(2026, 11, 24, 8, 29, 59), jst(2026, 11, 24, 8, 30)),
    (CALL_CENTER, jst(2026, 11, 24, 8, 30), jst(2026, 11, 24, 9, 0)),
    (CALL_CENTER, jst(2026, 11, 24, 0, 0), jst(2026, 11, 24, 9, 0)),
    # after closing: the next business day
    (STUDENT_SUPPORT, jst(2026, 11, 24, 17, 0), jst(2026, 11, 25, 8, 30)),
    (CALL_CENTER, jst(2026, 11, 24, 23, 59), jst(2026, 11, 25, 9, 0)),
    (CALL_CENTER, jst(2026, 11, 27, 17, 30), jst(2026, 11, 30, 9, 0)),  # Friday evening → Monday
    (CALL_CENTER, jst(2026, 11, 28, 7, 0), jst(2026, 11, 30, 9, 0)),    # Saturday morning → Monday
    # Friday 17:30 before a national-holiday Monday → Tuesday 9:00
    (CALL_CENTER, jst(2026, 7, 17, 17, 30), jst(2026, 7, 21, 9, 0)),     # 海の日
    (CALL_CENTER, jst(2026, 10, 9, 17, 30), jst(2026, 10, 13, 9, 0)),    # スポーツの日
    (CALL_CENTER, jst(2027, 3, 19, 17, 30), jst(2027, 3, 23, 9, 0)),     # 振替休日
    (STUDENT_SUPPORT, jst(2026, 11, 20, 17, 30), jst(2026, 11, 24, 8, 30)),  # 勤労感謝の日
    (CALL_CENTER, jst(2026, 9, 18, 17, 30), jst(2026, 9, 24, 9, 0)),     # the silver week
    (CALL_CENTER, jst(2026, 9, 23, 7, 0), jst(2026, 9, 24, 9, 0)),       # on a holiday, before 9:00
    # closure days
    (STUDENT_SUPPORT, jst(2026, 12, 28, 17, 0), jst(2027, 1, 4, 8, 30)),
    (CALL_CENTER, jst(2026, 12, 30, 8, 0), jst(2027, 1, 4, 9, 0)),
    # chat: always now
    (CHAT, jst(2027, 1, 1, 3, 0), jst(2027, 1, 1, 3, 0)),
    (CHAT, jst(2026, 11, 28, 23, 59), jst(2026, 11, 28, 23, 59)),
])
def test_next_opening(cal, service, at, expected):
    result = next_opening(service, at, cal)
    assert result == expected
    assert result.utcoffset() == timedelta(hours=9)
    assert is_open(service, result, cal)


def test_next_opening_converts_to_tokyo(cal):
    # 2026-11-24T08:30Z = 17:30 JST Tuesday → Wednesday 09:00 JST
    result = next_opening(CALL_CENTER, datetime(2026, 11, 24, 8, 30, tzinfo=UTC), cal)
    assert result == jst(2026, 11, 25, 9, 0)
    assert result.tzinfo == TOKYO
    # Open now: returns the same instant, but expressed in Tokyo time
    at = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 10:00 JST
    result = next_opening(STUDENT_SUPPORT, at, cal)
    assert result == at and result.tzinfo == TOKYO and result.hour == 10
    chat = next_opening(CHAT, at, cal)
    assert chat == at and chat.utcoffset() == timedelta(hours=9)


# --- closure days come from the profile ---------------------------------------------------------------------

def test_custom_closure_days_single_date_and_range():
    custom = calendar_with_closures("2026-11-25", "2026-12-01..2026-12-02")
    assert not custom.is_business_day(date(2026, 11, 25))
    assert custom.is_business_day(date(2026, 11, 26))
    assert not custom.is_business_day(date(2026, 12, 1)) and not custom.is_business_day(date(2026, 12, 2))
    assert custom.is_business_day(date(2026, 12, 3))
    # Without the default 12-29..01-03, the year end is ordinary (12/29 is a Tuesday)
    assert custom.is_business_day(date(2026, 12, 29))
    assert custom.pickup_window(jst(2026, 11, 24, 10)) == (jst(2026, 11, 26, 13), jst(2026, 11, 26, 13))
    assert custom.pickup_window(jst(2026, 11, 30, 16)) == (jst(2026, 12, 3, 13), jst(2026, 12, 4, 13))
    assert custom.pickup_window(jst(2026, 12, 28, 16)) == (jst(2026, 12, 29, 13), jst(2026, 12, 30, 13))
    assert not custom.is_open(STUDENT_SUPPORT, jst(2026, 11, 25, 10))
    assert custom.is_open(STUDENT_SUPPORT, jst(2026, 12, 30, 10))
    assert custom.next_opening(CALL_CENTER, jst(2026, 11, 30, 17, 30)) == jst(2026, 12, 3, 9)
    # The year of a YYYY-MM-DD date matters: 2027-11-25 is an ordinary Thursday
    assert custom.is_business_day(date(2027, 11, 25))


def test_custom_closure_days_recurring_month_day_range():
    custom = calendar_with_closures("08-13..08-15", "05-01")
    # 2027: 8/11 山の日 (Wed), 8/13 Fri closed, 8/14-15 weekend anyway
    assert not custom.is_business_day(date(2027, 8, 13))
    assert custom.pickup_window(jst(2027, 8, 12, 16)) == (jst(2027, 8, 16, 13), jst(2027, 8, 17, 13))
    assert not custom.is_business_day(date(2026, 5, 1))  # Friday, closed every year
    assert not custom.is_business_day(date(2028, 8, 14))  # Monday
    assert custom.is_business_day(date(2028, 8, 16))
    assert custom.pickup_window(jst(2026, 4, 30, 16)) == (jst(2026, 5, 7, 13), jst(2026, 5, 8, 13))


def test_custom_closure_days_from_a_yaml_file(tmp_path: Path):
    raw = yaml.safe_load(SHIPPED_PROFILE.read_text(encoding="utf-8"))
    raw["closure_days"] = ["12-26..01-05", "2026-11-26..2026-11-27"]
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    custom = BusinessCalendar(load_profile(path))
    assert custom.pickup_window(jst(2026, 11, 25, 15)) == (jst(2026, 11, 30, 13), jst(2026, 12, 1, 13))
    # 12/28 is now closed too, and 1/4 and 1/5: first business day of 2027 is Wed 1/6
    assert custom.pickup_window(jst(2026, 12, 25, 10)) == (jst(2027, 1, 6, 13), jst(2027, 1, 6, 13))
    assert custom.next_opening(CALL_CENTER, jst(2026, 12, 25, 17)) == jst(2027, 1, 6, 9)


def test_profile_closing_every_day_fails_loudly_instead_of_looping():
    closed = calendar_with_closures("01-01..12-31")
    with pytest.raises(RuntimeError, match="closure_days"):
        closed.pickup_window(jst(2026, 11, 24, 10))
    with pytest.raises(RuntimeError):
        closed.next_opening(CALL_CENTER, jst(2026, 11, 24, 18))
    assert closed.is_open(CHAT, jst(2026, 11, 24, 18))  # chat keeps no business-day hours
