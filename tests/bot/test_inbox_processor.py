"""The processor side of the inbox: a `ChannelProcessor` gets one `Job` to prepare and one `Call` per API call,
`failed` is a no-op unless overridden, and a processor of the older positional shape is still taken."""

from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.delivery.inbox import Call, ChannelProcessor, Inbox, Job, PermanentFailure


@dataclass
class Recorder(ChannelProcessor):
    """Two calls per job; the first attempt at the second call fails once (a 5xx), or `refuse` fails them all."""

    channel: str = "test"
    refuse: bool = False
    prepared: list[Job] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    failures: list[tuple[Job, str]] = field(default_factory=list)

    def prepare(self, job: Job) -> list[dict[str, Any]]:
        self.prepared.append(job)
        return [{"n": 0}, {"n": 1}]

    def send(self, call: Call) -> None:
        self.calls.append(call)
        if self.refuse:
            raise PermanentFailure("refused, card 4111 1111 1111 1111")
        if call.index == 1 and len(self.calls) == 2:
            raise ConnectionError("HTTP 500")


class Recording(Recorder):
    def failed(self, job: Job, error: str) -> None:
        self.failures.append((job, error))


def test_a_job_and_its_calls_are_given_as_one_value_each(core, clock):
    processor = Recording()
    inbox = Inbox(core, {"test": processor})
    inbox.accept("test", "e1", {"id": "e1"})
    inbox.drain()
    clock.advance(seconds=2)
    assert inbox.drain() == 1

    [job] = processor.prepared
    assert job.payload == {"id": "e1"} and job.received_at is not None
    assert [(call.index, call.part, call.resumed) for call in processor.calls] == [
        (0, {"n": 0}, False), (1, {"n": 1}, False), (1, {"n": 1}, True)]  # the retry resumes stored calls
    assert all(call.payload == {"id": "e1"} and call.job.payload == job.payload for call in processor.calls)
    assert processor.failures == []


def test_failed_is_told_once_with_the_job_and_the_error_masked(core):
    processor = Recording(refuse=True)
    inbox = Inbox(core, {"test": processor})
    inbox.accept("test", "e1", {"id": "e1"})
    inbox.drain()
    [(job, error)] = processor.failures
    assert job.payload == {"id": "e1"}
    assert "refused" in error and "4111 1111 1111 1111" not in error


def test_failed_does_nothing_by_default(core):
    inbox = Inbox(core)
    inbox.register(Recorder(refuse=True))  # its `failed` is the base class's
    inbox.accept("test", "e1", {"id": "e1"})
    assert inbox.drain() == 1


def test_the_base_class_asks_for_prepare_and_send():
    class Half(ChannelProcessor):
        channel = "half"

        def prepare(self, job: Job) -> list[dict[str, Any]]:
            return []

    with pytest.raises(TypeError):
        Half()  # type: ignore[abstract]  # the point: `send` is missing
