"""Clocks: the system clock for production and a settable clock for tests, so nothing ever sleeps."""

from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")


class Clock(Protocol):
    """Anything that tells the current time as an aware datetime."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, at: datetime) -> None:
        self._at = require_aware(at)

    def now(self) -> datetime:
        """The time the clock was set to."""
        return self._at

    def set(self, at: datetime) -> None:
        """Move the clock to an absolute time."""
        self._at = require_aware(at)

    def advance(self, **delta: float) -> datetime:
        """Move the clock forward by a timedelta given as keyword arguments, and return the new time."""
        self._at += timedelta(**delta)
        return self._at


def require_aware(at: datetime) -> datetime:
    """Return `at` unchanged if it carries a timezone.

    Raises:
        ValueError: if `at` is naive, because a naive time is ambiguous across Tokyo and UTC.
    """
    if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
        raise ValueError(f"a timezone-aware datetime is required, got naive {at.isoformat()}")
    return at
