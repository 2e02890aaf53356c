"""The inbound event store and its worker: stored before the ack, handled once, retried without repeats."""

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, text, update

from bot.delivery.inbox import (
    LEASE,
    MAX_ATTEMPTS,
    Call,
    ChannelProcessor,
    GroupCommit,
    Inbox,
    Job,
    PermanentFailure,
    RetryAfter,
    _Write,
    order_key,
)
from core.jobs import AGENTS, DELIVER
from core.models import InboundEvent
from tests.conftest import at_once


@dataclass
class RecordingChannel(ChannelProcessor):
    """A channel whose API calls are recorded; `failures` lists exceptions to raise on the next sends."""

    channel: str = "test"
    prepared: list[str] = field(default_factory=list)
    delivered: list[tuple[str, int]] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prepare(self, job: Job) -> list[dict]:
        with self.lock:
            self.prepared.append(job.payload["id"])
        return [{"text": f"{job.payload['id']}-{n}"} for n in range(job.payload.get("parts", 1))]

    def send(self, call: Call) -> None:
        with self.lock:
            if self.failures:
                raise self.failures.pop(0)
            self.delivered.append((call.payload["id"], call.index))


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

    def fail_second(call: Call) -> None:
        if call.index == 1 and not channel.failures and status_of(core, "e1").attempts == 0:
            raise ConnectionError("HTTP 500 from the platform")
        original_send(call)

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
    assert dead._claim(1) != []  # claimed, then the process "dies" before handling it
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


# --- batches, threads and per-conversation order ------------------------------------------------------------------


@dataclass
class ConversationChannel(RecordingChannel):
    """A channel whose events name a conversation; `on_send` runs before each delivery (to hold one back)."""

    on_send: dict[str, Callable[[], None]] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)  # conversations seen with two events in hand at once

    def send(self, call: Call) -> None:
        conversation = call.payload["conversation"]
        with self.lock:
            self.in_flight[conversation] = self.in_flight.get(conversation, 0) + 1
            if self.in_flight[conversation] > 1:
                self.overlaps.append(conversation)
        try:
            if call.payload["id"] in self.on_send:
                self.on_send.pop(call.payload["id"])()
            super().send(call)
        finally:
            with self.lock:
                self.in_flight[conversation] -= 1


def accept_all(inbox, *events):
    for event_id, conversation in events:
        assert inbox.accept("test", event_id, {"id": event_id, "conversation": conversation})


def test_two_workers_claiming_batches_never_take_the_same_event(core):
    for number in range(15):
        Inbox(core).accept("test", f"e{number}", {"id": f"e{number}"})
    first, second = Inbox(core), Inbox(core)
    taken_first, taken_second = first._claim(10), second._claim(10)
    assert len(taken_first) == 10 and len(taken_second) == 5
    assert not {event.id for event in taken_first} & {event.id for event in taken_second}
    assert [event.id for event in taken_first] == sorted(event.id for event in taken_first)  # oldest first
    assert first._claim(10) == [] and second._claim(10) == []  # all leased


def test_two_workers_claiming_at_the_same_moment_split_the_events(core):
    for number in range(60):
        Inbox(core).accept("test", f"e{number}", {"id": f"e{number}"})
    workers = [Inbox(core), Inbox(core)]
    taken: list[list[int]] = [[], []]

    def claim(index):
        while batch := workers[index]._claim(7):
            taken[index].extend(event.id for event in batch)

    at_once(lambda: claim(0), lambda: claim(1))
    assert len(taken[0]) + len(taken[1]) == 60
    assert len(set(taken[0]) | set(taken[1])) == 60


def test_a_conversation_waits_for_its_own_events_while_others_go_ahead(core):
    channel = ConversationChannel()
    other_answered = threading.Event()
    channel.on_send["a1"] = lambda: other_answered.wait(timeout=10)  # held until b's event is answered
    inbox = Inbox(core, {"test": channel})
    accept_all(inbox, ("a1", "line:A"), ("a2", "line:A"), ("b1", "line:B"), ("a3", "line:A"))
    original_send = channel.send

    def send(call: Call) -> None:
        original_send(call)
        if call.payload["id"] == "b1":
            other_answered.set()

    channel.send = send
    assert inbox.drain() == 4
    assert other_answered.is_set()
    assert channel.delivered.index(("b1", 0)) < channel.delivered.index(("a1", 0))  # b did not wait for a
    assert [event for event, _ in channel.delivered if event.startswith("a")] == ["a1", "a2", "a3"]
    assert channel.overlaps == []  # never two of a conversation's events at once
    assert all(status_of(core, event).status == "done" for event in ("a1", "a2", "a3", "b1"))


def test_a_failing_event_holds_back_nobody(core, clock):
    channel = ConversationChannel()

    def fail():
        raise ConnectionError("HTTP 500 from the platform")

    channel.on_send["a1"] = fail
    inbox = Inbox(core, {"test": channel})
    accept_all(inbox, ("a1", "line:A"), ("a2", "line:A"), ("b1", "line:B"))
    assert inbox.drain() == 3
    assert sorted(channel.delivered) == [("a2", 0), ("b1", 0)]
    failed = status_of(core, "a1")
    assert (failed.status, failed.attempts, failed.lease_until) == ("pending", 1, None)
    clock.advance(seconds=2)
    assert inbox.drain() == 1
    assert channel.prepared.count("a1") == 1 and ("a1", 0) in channel.delivered


def test_stopping_gives_back_the_claimed_events_not_yet_started(core):
    channel = ConversationChannel()
    inbox = Inbox(core, {"test": channel})
    started = threading.Event()

    def hold_until_stopping():
        started.set()
        assert inbox._stop.wait(timeout=10)  # the worker is told to stop while this event is in hand

    channel.on_send["a1"] = hold_until_stopping
    accept_all(inbox, ("a1", "line:A"), ("a2", "line:A"), ("a3", "line:A"))
    inbox.start()
    assert started.wait(timeout=10)
    inbox.stop()
    assert channel.delivered == [("a1", 0)]  # the event in hand is finished
    for event_id in ("a2", "a3"):
        event = status_of(core, event_id)
        assert (event.status, event.lease_until, event.attempts) == ("pending", None, 0)
    assert Inbox(core, {"test": channel}).drain() == 2  # at once, not after the lease
    assert channel.delivered == [("a1", 0), ("a2", 0), ("a3", 0)]


def test_a_claim_renews_the_lease_of_events_waiting_in_hand(core, clock):
    inbox = Inbox(core)
    accept_all(inbox, ("a1", "line:A"), ("a2", "line:A"))
    [first, waiting] = inbox._claim(2)
    clock.advance(seconds=LEASE.total_seconds() - 1)
    inbox._claim(5, renew=[waiting.id])
    clock.advance(seconds=2)  # the first lease has run out, the renewed one has not
    assert [event.id for event in Inbox(core)._claim(5)] == [first.id]


def test_a_claim_does_not_lease_again_an_event_put_back_meanwhile(core, clock):
    # The drain lists the events in hand, then claims and renews them; an event whose thread meanwhile put it
    # back to wait (a 429's Retry-After) is pending and free, and must stay so: leased again it would wait for
    # the whole lease (minutes) instead of the second LINE asked for.
    inbox = Inbox(core)
    accept_all(inbox, ("a1", "line:A"))
    [in_hand] = inbox._claim(1)
    inbox._update(in_hand.id, status="pending", lease_until=None, next_attempt_at=core.now() + timedelta(seconds=1))
    inbox._claim(5, renew=[in_hand.id])
    assert status_of(core, "a1").lease_until is None
    clock.advance(seconds=2)
    assert [event.id for event in Inbox(core)._claim(5)] == [in_hand.id]


def test_events_are_ordered_by_whom_the_answer_goes_to():
    line_event = {"source": {"type": "user", "userId": "U1"}, "webhookEventId": "x"}
    assert order_key("line", line_event) == "line:U1"
    assert order_key("line", {"source": {"type": "group", "groupId": "G1", "userId": "U1"}}) == "line:G1"
    # A job to a LINE user keeps its place among that user's own events.
    assert order_key(DELIVER, {"kind": "replies", "channel": "line", "user": "U1", "conversation": "line:U1"}) \
        == "line:U1"
    # Slack's rate limit is the app's, and a ticket's card goes before its thread: one at a time, as before.
    assert order_key("slack", {"type": "event_callback", "event": {"user": "W1"}}) == "slack"
    assert order_key(DELIVER, {"kind": "replies", "channel": "slack", "user": "W1"}) == "slack"
    assert order_key(AGENTS, {"kind": "card", "ticket": 3}) == AGENTS
    assert order_key(DELIVER, {"kind": "agent_message", "message": 7}) == DELIVER
    assert order_key("test", {"conversation": "web:1"}) == "web:1"


def test_one_bad_write_in_a_group_commit_fails_only_itself(core):
    Inbox(core).accept("test", "e1", {"id": "e1"})
    good = _Write(lambda session: session.execute(update(InboundEvent).values(sent_parts=2)))
    bad = _Write(lambda session: 1 / 0)
    GroupCommit(core)._commit([good, bad])
    assert good.done and good.error is None
    assert bad.done and isinstance(bad.error, ZeroDivisionError)
    assert status_of(core, "e1").sent_parts == 2


def test_a_deliver_job_is_rendered_again_on_retry_instead_of_storing_its_calls(core, clock):
    """`deliver` jobs only render their payload: their calls are not written before the first goes out, and a
    retry renders the same ones again; a webhook's calls (a conversation turn) are stored and never redone."""
    jobs, webhook = RecordingChannel(channel=DELIVER), RecordingChannel()
    jobs.failures.append(ConnectionError("HTTP 500"))
    webhook.failures.append(ConnectionError("HTTP 500"))
    inbox = Inbox(core, {DELIVER: jobs, "test": webhook})
    inbox.accept(DELIVER, "j1", {"id": "j1"})
    inbox.accept("test", "e1", {"id": "e1"})
    inbox.drain()
    assert status_of(core, "j1").parts is None and status_of(core, "e1").parts is not None
    clock.advance(seconds=2)
    inbox.drain()
    assert jobs.prepared == ["j1", "j1"] and webhook.prepared == ["e1"]
    assert jobs.delivered == [("j1", 0)] and webhook.delivered == [("e1", 0)]
    assert status_of(core, "j1").status == "done" and status_of(core, "e1").status == "done"


def _poison_finishes_of(core, event_id: str) -> None:
    """Make the database refuse to finish one event, as a write that keeps failing would (a real trigger)."""
    with core.transaction() as session:
        if core.engine.dialect.name == "sqlite":
            session.execute(text(
                "CREATE TRIGGER poison BEFORE UPDATE OF status ON inbound_events "
                f"WHEN NEW.status = 'done' AND OLD.event_id = '{event_id}' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"))
        else:
            session.execute(text(
                "CREATE OR REPLACE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.status = 'done' AND OLD.event_id = '{event_id}' THEN RAISE EXCEPTION 'poisoned'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"))
            session.execute(text("CREATE TRIGGER poison BEFORE UPDATE ON inbound_events "
                                 "FOR EACH ROW EXECUTE FUNCTION poison()"))


def _cure(core) -> None:
    with core.transaction() as session:
        session.execute(text("DROP TRIGGER poison" if core.engine.dialect.name == "sqlite"
                             else "DROP TRIGGER poison ON inbound_events"))


def test_an_event_whose_finish_cannot_be_written_fails_after_the_last_attempt_and_holds_back_nobody(core, clock):
    channel = RecordingChannel()
    inbox = Inbox(core, {"test": channel})
    _poison_finishes_of(core, "poison")
    try:
        inbox.accept("test", "poison", {"id": "poison", "text": "my password is Abcd1234xyz"})
        inbox.accept("test", "fine", {"id": "fine"})
        inbox.drain()
        assert status_of(core, "fine").status == "done"  # the events behind it went ahead
        first = status_of(core, "poison")
        assert first.status == "pending" and first.attempts == 1  # counted, not left leased for ever
        assert first.lease_until is None and "poisoned" in first.last_error
        for _ in range(MAX_ATTEMPTS - 1):
            clock.advance(minutes=6)
            inbox.drain()
        last = status_of(core, "poison")
        assert last.status == "failed" and last.attempts == MAX_ATTEMPTS
        assert "Abcd1234xyz" not in last.payload  # masked as a handled event's payload is
        assert channel.delivered.count(("poison", 0)) == 1  # answered once: the retries only try to finish
        clock.advance(minutes=30)
        assert inbox.drain() == 0  # never taken up again
    finally:
        _cure(core)


def test_a_text_with_a_lone_surrogate_is_finished_and_kept_storable(core):
    channel = RecordingChannel()
    inbox = Inbox(core, {"test": channel})
    inbox.accept("test", "odd", {"id": "odd", "text": "a\ud800b\x00c"})  # stored escaped, as JSON allows
    assert inbox.drain() == 1
    event = status_of(core, "odd")
    assert event.status == "done" and event.attempts == 0
    assert json.loads(event.payload)["text"] == "a\ufffdbc"
