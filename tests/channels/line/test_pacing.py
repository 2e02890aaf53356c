"""Pushes paced to the process's share of LINE's limit, and held back after a 429, by the test's own clock."""

import pytest

from bot.channels.line.pacing import MAX_WAIT_SECONDS, Pacer
from bot.delivery.inbox import RetryAfter


class Time:
    """A clock that moves only when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_calls_are_spaced_evenly_at_the_rate():
    time = Time()
    pacer = Pacer(1000, clock=lambda: time.now, sleep=time.sleep)
    started = time.now
    for _ in range(2000):
        pacer.wait()
    # 2,000 calls at 1,000 a second: the last goes out 1.999 s after the first, none two in one slot.
    assert time.now - started == pytest.approx(1.999)
    assert all(gap == pytest.approx(0.001) for gap in time.slept)


def test_a_call_after_a_quiet_spell_goes_at_once():
    time = Time()
    pacer = Pacer(1000, clock=lambda: time.now, sleep=time.sleep)
    pacer.wait()
    time.now += 5
    pacer.wait()
    assert time.slept == []


def test_not_paced_without_a_rate():
    time = Time()
    pacer = Pacer(None, clock=lambda: time.now, sleep=time.sleep)
    for _ in range(10_000):
        pacer.wait()
    assert time.slept == []


def test_a_429_holds_every_call_until_its_retry_after():
    time = Time()
    pacer = Pacer(2000, clock=lambda: time.now, sleep=time.sleep)
    pacer.hold(0.5)
    pacer.wait()  # half a second is worth sleeping for
    assert time.slept == [pytest.approx(0.5)]
    pacer.hold(30)
    with pytest.raises(RetryAfter) as refused:  # longer: back to the inbox, retried after the wait
        pacer.wait()
    assert refused.value.seconds == pytest.approx(30) and refused.value.seconds > MAX_WAIT_SECONDS
    time.now += 30
    pacer.wait()
    assert len(time.slept) == 1
