"""The business calendar: business days, the guide's pickup window and the offices' opening hours."""

import threading
from datetime import date, datetime, timedelta
from functools import cache

import holidays

from core.clock import TOKYO, require_aware
from core.enums import Service
from core.profile import UniversityProfile, load_profile
from core.settings import get_settings

# No office is closed longer than this; a longer search means a broken profile, not a real calendar.
_MAX_SEARCH_DAYS = 60
_MAX_KNOWN_DAYS = 4096  # is_business_day answers kept (about eleven years of days)


class BusinessCalendar:
    """Business days of one university: weekdays that are neither national holidays nor closure days."""

    def __init__(self, profile: UniversityProfile) -> None:
        self.profile = profile
        # The holidays library computes a year on first use; the lock keeps that safe across threads.
        self._holidays = holidays.country_holidays("JP", language="ja")
        self._lock = threading.Lock()
        self._business_days: dict[date, bool] = {}  # is_business_day's answers (a dict's get and set are atomic)

    def holiday_name(self, day: date) -> str | None:
        """The national holiday's Japanese name (振替休日 and 国民の休日 included), or None."""
        with self._lock:
            return self._holidays.get(day)

    def is_business_day(self, day: date) -> bool:
        """True on a weekday that is neither a national holiday nor one of the profile's closure days."""
        known = self._business_days.get(day)
        if known is None:
            # Kept: every chat turn asks whether the offices are open, and a sweep of reminders asks for each
            # pickup window; the holidays and the profile do not change while the process runs.
            if len(self._business_days) >= _MAX_KNOWN_DAYS:
                self._business_days.clear()
            known = self._business_days[day] = (day.weekday() < 5 and self.holiday_name(day) is None
                                                and not self.profile.is_closure_day(day))
        return known

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after `day`."""
        for offset in range(1, _MAX_SEARCH_DAYS + 1):
            candidate = day + timedelta(days=offset)
            if self.is_business_day(candidate):
                return candidate
        raise RuntimeError(f"no business day within {_MAX_SEARCH_DAYS} days after {day}: check closure_days")

    def add_business_days(self, day: date, count: int) -> date:
        """The `count`-th business day after `day`."""
        for _ in range(count):
            day = self.next_business_day(day)
        return day

    def pickup_window(self, applied_at: datetime) -> tuple[datetime, datetime]:
        """When a window-pickup item applied for at `applied_at` can be collected, as (earliest, latest).

        The guide's rule: from 13:00 on the business day after the application date; an application
        made on a business day at or after 15:00 may only be ready at 13:00 on the business day after
        that. Both are aware datetimes in Asia/Tokyo; earliest equals latest when there is no doubt.

        Raises:
            ValueError: if `applied_at` is naive.
        """
        local = require_aware(applied_at).astimezone(TOKYO)
        rules = self.profile.pickup
        first_day = self.next_business_day(local.date())
        earliest = datetime.combine(first_day, rules.ready_at, TOKYO)
        if self.is_business_day(local.date()) and local.time() >= rules.cutoff:
            return earliest, datetime.combine(self.next_business_day(first_day), rules.ready_at, TOKYO)
        return earliest, earliest

    def is_open(self, service: Service, at: datetime) -> bool:
        """True if `service` answers at `at` (its profile hours, on business days where it keeps them)."""
        local = require_aware(at).astimezone(TOKYO)
        hours = self.profile.contact(service).hours
        if hours.always:
            return True
        if hours.days == "business_days" and not self.is_business_day(local.date()):
            return False
        return hours.open <= local.time() < hours.close

    def next_opening(self, service: Service, at: datetime) -> datetime:
        """`at` itself (in Asia/Tokyo) when `service` is open then, else the moment it next opens."""
        local = require_aware(at).astimezone(TOKYO)
        if self.is_open(service, local):
            return local
        hours = self.profile.contact(service).hours
        day = local.date()
        if local.time() < hours.open and self._keeps_hours_on(service, day):
            return datetime.combine(day, hours.open, TOKYO)
        for offset in range(1, _MAX_SEARCH_DAYS + 1):
            candidate = day + timedelta(days=offset)
            if self._keeps_hours_on(service, candidate):
                return datetime.combine(candidate, hours.open, TOKYO)
        raise RuntimeError(f"{service} does not open within {_MAX_SEARCH_DAYS} days of {local}")

    def _keeps_hours_on(self, service: Service, day: date) -> bool:
        hours = self.profile.contact(service).hours
        return hours.days == "every_day" or self.is_business_day(day)


@cache
def default_calendar() -> BusinessCalendar:
    """The calendar of the configured university profile, built on first use."""
    return BusinessCalendar(load_profile(get_settings().university_profile))


def pickup_window(applied_at: datetime, calendar: BusinessCalendar | None = None) -> tuple[datetime, datetime]:
    """(earliest, latest) pickup times for an application at `applied_at`; see BusinessCalendar."""
    return (calendar or default_calendar()).pickup_window(applied_at)


def is_open(service: Service, at: datetime, calendar: BusinessCalendar | None = None) -> bool:
    """True if `service` is open at `at`; see BusinessCalendar.is_open."""
    return (calendar or default_calendar()).is_open(service, at)


def next_opening(service: Service, at: datetime, calendar: BusinessCalendar | None = None) -> datetime:
    """When `service` next opens (or `at` if open); see BusinessCalendar.next_opening."""
    return (calendar or default_calendar()).next_opening(service, at)

