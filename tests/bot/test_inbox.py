"""The inbound event store and its worker: stored before the ack, handled once, retried without repeats."""

import threading
from dataclasses import dataclass, field

from sqlalchemy import select

from bot.inbox import LEASE, MAX_ATTEMPTS, Inbox, PermanentFailure, RetryAfter
from core.models import InboundEvent


@dataclass
class RecordingChannel:
    """A channel whose API calls are recorded; `failures` lists exceptions to raise on the next sends."""

    channel: str = "test"
    prepared: list[str] = field(default_factory=list)
    delivered: list[tuple[str, int]] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prepare(self, payload, received_at):
        with self.lock:
            self.prepared.append(payload["id"])
        return [{"text": f"{payload['id']}-{n}"} for n in range(payload.get("parts", 1))]

    def send(self, payload, part, index, received_at):
        with self.lock:
            if self.failures:
                raise self.failures.pop(0)
            self.delivered.append((payload["id"], index))


def status_of(core, event_id):
    with core.transaction() as session:
        return session.scalars(select(InboundEvent).where(InboundEvent.event_id == event_id)).one()


def test_an_event_is_stored_once_and_a_duplicate_is_refused(core):
    inbox = Inbox(core, {"test": RecordingChannel()})
    assert inbox.accept("test", "e1", {"id": "e1"}) is True
    assert inbox.accept("test", "e1", {"id": "e1", "redelivered": True}) is False
    assert inbox.accept("other", "e1", {"id": "e1"}) is True  # ids are unique per channel
    with core.transaction() as session:
        assert len(session.scalars(select(InboundEvent)).all()) == 2


def test_drain_prepares_once_and_sends_every_part_in_order(core):
    channel = RecordingChannel()
    inbox = Inbox(core, {"test": channel})
    inbox.accept("test", "e1", {"id": "e1", "parts": 3})
    inbox.accept("test", "e2", {"id": "e2"})
    assert inbox.drain() == 2
    assert channel.prepared == ["e1", "e2"]
    assert channel.delivered == [("e1", 0), ("e1", 1), ("e1", 2), ("e2", 0)]
    assert status_of(core, "e1").status == "done" and status_of(core, "e1").sent_parts == 3
    assert inbox.drain() == 0


def test_a_failed_part_is_retried_with_backoff_and_sent_parts_are_not_repeated(core, clock):
    channel = RecordingChannel(failures=[])
    inbox = Inbox(core, {"test": channel})
    inbox.accept("test", "e1", {"id": "e1", "parts": 3})
    original_send = channel.send

    def fail_second(payload, part, index, received_at):
        if index == 1 and not channel.failures and status_of(core, "e1").attempts == 0:
            raise ConnectionError("HTTP 500 from the platform")
        original_send(payload, part, index, received_at)

    channel.send = fail_second
    inbox.drain()
    event = status_of(core, "e1")
    assert (event.status, event.attempts, event.sent_parts) == ("pending", 1, 1)
    assert "500" in event.last_error
    assert inbox.drain() == 0  # not due yet: backoff
    clock.advance(seconds=2)
    assert inbox.drain() == 1
    assert channel.prepared == ["e1"]  # the conversation turn ran once
    assert channel.delivered == [("e1", 0), ("e1", 1), ("e1", 2)]  # part 0 not sent twice
    assert status_of(core, "e1").status == "done"


def test_retry_after_waits_as_asked_without_counting_a_failure(core, clock):
    channel = RecordingChannel(failures=[RetryAfter(30)])
    inbox = Inbox(core, {"test": channel})
    inbox.accept("test", "e1", {"id": "e1"})
    inbox.drain()
    assert status_of(core, "e1").attempts == 0
    clock.advance(seconds=29)
    assert inbox.drain() == 0
    clock.advance(seconds=1)
    assert inbox.drain() == 1
    assert channel.delivered == [("e1", 0)]


def test_a_permanent_failure_is_not_retried(core, clock):
    channel = RecordingChannel(failures=[PermanentFailure("400 bad request")])
    inbox = Inbox(core, {"test": channel})
    inbox.accept("test", "e1", {"id": "e1"})
    inbox.drain()
    clock.advance(hours=1)
    assert inbox.drain() == 0
    assert status_of(core, "e1").status == "failed"


def test_an_event_that_keeps_failing_is_marked_failed_after_the_last_attempt(core, clock):
    channel = RecordingChannel(failures=[ConnectionError("down")] * MAX_ATTEMPTS)
    inbox = Inbox(core, {"test": channel})
    inbox.accept("test", "e1", {"id": "e1"})
    for _ in range(MAX_ATTEMPTS):
        inbox.drain()
        clock.advance(minutes=6)
    event = status_of(core, "e1")
    assert (event.status, event.attempts) == ("failed", MAX_ATTEMPTS)
    assert channel.delivered == []


def test_an_event_whose_worker_died_is_taken_up_after_its_lease(core, clock):
    channel = RecordingChannel()
    dead = Inbox(core, {"test": channel})
    dead.accept("test", "e1", {"id": "e1"})
    assert dead._claim() is not None  # claimed, then the process "dies" before handling it
    survivor = Inbox(core, {"test": channel})
    assert survivor.drain() == 0  # leased to the dead worker
    clock.advance(seconds=LEASE.total_seconds())
    assert survivor.drain() == 1
    assert channel.delivered == [("e1", 0)]


def test_an_event_without_a_processor_fails_visibly(core):
    inbox = Inbox(core, {})
    inbox.accept("mystery", "e1", {"id": "e1"})
    inbox.drain()
    assert status_of(core, "e1").status == "failed"


def test_two_workers_never_handle_the_same_event(core):
    channel = RecordingChannel()
    for number in range(20):
        Inbox(core).accept("test", f"e{number}", {"id": f"e{number}"})
    workers = [Inbox(core, {"test": channel}) for _ in range(2)]
    barrier = threading.Barrier(2)

    def run(worker):
        barrier.wait()
        worker.drain()

    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(channel.prepared) == sorted(f"e{n}" for n in range(20))
    assert len(channel.delivered) == 20


def test_a_handled_event_keeps_its_payload_only_with_secrets_masked(core):
    inbox = Inbox(core, {"test": RecordingChannel()})
    inbox.accept("test", "e1", {"id": "e1", "message": {"text": "my second password is Kq7mZp2Lx", "n": 3}})
    inbox.drain()
    import json

    payload = json.loads(status_of(core, "e1").payload)
    assert payload["message"] == {"text": "my second password is [password]", "n": 3}
