"""This process's pushes kept to its share of LINE's rate limit, and held back while a 429's Retry-After runs."""

import threading
import time
from collections.abc import Callable

from bot.delivery.inbox import RetryAfter

# Longer than this to wait for a slot, a push goes back to the inbox (retried then) instead of keeping a worker
# thread asleep: only a 429's Retry-After holds pushes back that long.
MAX_WAIT_SECONDS = 1.0


class Pacer:
    """Spaces this process's calls evenly at `per_second` (None: no pacing), so that they never go over LINE's
    limit (2,000 pushes a second for a channel, counted over any second) and never meet its 429s.

    Calls over the limit are refused, not queued, and a refused push waits for its Retry-After (a second) before
    it is sent again: a burst of reminders sent as fast as possible lost more time to those waits than pacing
    costs. After a 429 all this process's calls wait for its Retry-After (another process may have taken the
    channel's share).
    """

    def __init__(self, per_second: float | None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._interval = 1.0 / per_second if per_second else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = 0.0  # the clock's time of the next free slot
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Wait for this call's slot.

        Raises:
            RetryAfter: the slot is more than MAX_WAIT_SECONDS away (a 429's Retry-After is running).
        """
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            if slot - now > MAX_WAIT_SECONDS:
                raise RetryAfter(slot - now)
            self._next = slot + self._interval
        if slot > now:
            self._sleep(slot - now)

    def hold(self, seconds: float) -> None:
        """LINE answered 429 with Retry-After `seconds`: no call before then."""
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)
