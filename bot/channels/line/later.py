"""Calls made a little later unless called off first, all by one thread (a thread per call costs more than the
turn it would wait for): LINE's typing animation for a turn that is slow to answer."""

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(order=True)
class Pending:
    """A call waiting for its time; `cancel` calls it off (a call already made is not undone)."""

    due: float
    order: int
    call: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        """Call it off."""
        self.cancelled = True


class LaterCalls:
    """Runs each call `after` seconds from when it was asked for, on one daemon thread started on first use."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[Pending] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def after(self, seconds: float, call: Callable[[], None]) -> Pending:
        """Make `call` in `seconds` unless the returned handle is cancelled first."""
        pending = Pending(self._clock() + seconds, next(self._order), call)
        with self._wake:
            heapq.heappush(self._heap, pending)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="madoguchi-later-calls", daemon=True)
                self._thread.start()
            self._wake.notify()
        return pending

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)  # called off: forgotten without waiting for its time
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0].due - self._clock()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                pending = heapq.heappop(self._heap)
            try:
                pending.call()  # outside the lock: a slow call must not hold up asking for the next
            except Exception:
                log.exception("a later call failed")  # the thread goes on with the others
