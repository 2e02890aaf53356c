"""The one thread of later calls (LINE's typing animation for a slow turn): due order, called off, failures."""

import threading

from bot.channels.line.later import LaterCalls

WAIT = 10  # seconds at most a test waits for a call that must come


def test_calls_are_made_in_the_order_they_fall_due():
    later, made, done = LaterCalls(), [], threading.Event()
    later.after(0.06, lambda: (made.append("second"), done.set()))
    later.after(0.01, lambda: made.append("first"))
    assert done.wait(WAIT)
    assert made == ["first", "second"]


def test_a_call_called_off_is_never_made():
    later, made, done = LaterCalls(), [], threading.Event()
    later.after(0.01, lambda: made.append("called off")).cancel()
    later.after(0.05, lambda: (made.append("kept"), done.set()))
    assert done.wait(WAIT)  # made after the one called off fell due
    assert made == ["kept"]


def test_a_failing_call_leaves_the_thread_making_the_others(caplog):
    later, done = LaterCalls(), threading.Event()

    def fails() -> None:
        raise RuntimeError("LINE unreachable")

    later.after(0.0, fails)
    later.after(0.01, done.set)
    assert done.wait(WAIT)
    assert "a later call failed" in caplog.text
