"""Webhook events stored before they are acknowledged, and a worker that answers each exactly once.

A webhook calls `Inbox.accept` for each event and answers 200 at once; the event row is committed first,
so nothing accepted is lost if the process dies after the 200. The worker claims due events in batches
and answers different conversations' events in parallel on a few threads, each conversation's events one
after another in the order received. For each event it asks the channel to `prepare` the answer (one
conversation turn, rendered into API calls that are stored with the event) and `send`s the calls one by
one, recording after each how many were delivered. A retry (after a crash, a 429 or a 500) resends only
what was not delivered and never runs the conversation turn again.
"""

import functools
import json
import logging
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Update, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.ops import logs
from bot.untrusted import storable, storable_json
from core.jobs import AGENTS, DELIVER
from core.masking import mask_secrets
from core.models import InboundEvent
from core.services import Core
from handlers.turn import Channel

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # with the backoff below: about 8.5 minutes of retrying before an event is marked failed
LEASE = timedelta(minutes=2)  # a worker that dies mid-event frees it after this long (INBOX_LEASE_SECONDS)
RENEWALS = 3  # a worker renews the leases it holds this many times a lease, so a slow event keeps its own
POLL_SECONDS = 1.0  # the running worker also looks for due retries this often
THREADS = 32  # conversations answered at once: most of an event's time is waiting for LINE's answers (two calls)
# Events claimed and not yet handled, at most. Small enough that a queued event is started well within its
# lease (which each claim renews), so that no other process takes it meanwhile.
CAPACITY = 4 * THREADS
UNSTARTED = "pending"  # what an event claimed but never started goes back to when the worker stops
# Answered one event at a time, as always: Slack's rate limit is the app's (a 429 holds every conversation, see
# SlackWebApi._take_turn), so posting there in parallel would only race that hold; and the agents' jobs post
# a ticket's card before the messages in its thread, which need the card's timestamp.
ONE_AT_A_TIME = frozenset({Channel.SLACK.value, AGENTS})
# Processors whose `prepare` only renders the job's own payload (it runs no conversation turn and records
# nothing when it has calls to make): their calls need not be stored before the first one goes out, since a
# retry renders the same ones again, and a LINE push's retry key (from the job's key) refuses a second delivery.
REPEATABLE = frozenset({DELIVER})


class RetryAfter(Exception):
    """The platform asked us to wait (HTTP 429 Retry-After, or our own per-channel pacing)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:g} s")
        self.seconds = seconds


class PermanentFailure(Exception):
    """A call that will never succeed (a 4xx other than 429): the event is marked failed and logged."""


@dataclass(frozen=True)
class Job:
    """One stored event (a webhook's) or job (the core's), as its processor gets it."""

    payload: dict[str, Any]
    received_at: datetime


@dataclass(frozen=True)
class Call:
    """One of a job's stored API calls, as `send` gets it: the job, the call, and its place among the job's.

    `resumed` is set on the first call of an attempt that resumes a job whose calls an earlier attempt stored
    (and then died or failed): that call may have gone out already. A channel that can tell (LINE: a young
    reply token refused was used) treats it as delivered instead of sending it another way.
    """

    job: Job
    part: dict[str, Any]
    index: int
    resumed: bool = False

    @property
    def payload(self) -> dict[str, Any]:
        """The job's stored payload."""
        return self.job.payload


class ChannelProcessor(ABC):
    """A channel's (or a job kind's) side of the worker: one turn or job per event, then its API calls.

    Every method is called from the worker's threads, for different conversations at the same time.
    """

    channel: str  # the inbox channel whose events this processor handles

    @abstractmethod
    def prepare(self, job: Job) -> list[dict[str, Any]]:
        """Handle one stored event; return the API calls to make (JSON-serializable; [] for none)."""

    @abstractmethod
    def send(self, call: Call) -> None:
        """Make one API call; raise RetryAfter, PermanentFailure or anything else (retried with backoff)."""

    def failed(self, job: Job, error: str) -> None:  # noqa: B027 (a hook: most processors need nothing)
        """Called once when the job has failed for good (`error` masked); nothing by default."""


# Platform identifiers are not secrets, and must stay as they are: an unsend names its message by id, and a
# long digit string must not pass for a card number.
IDENTIFIER_KEYS = frozenset({"id", "messageId", "quotedMessageId", "webhookEventId", "event_id", "ts", "thread_ts",
                             "event_ts", "job"})


def _masked(value: Any) -> Any:
    """A JSON value with every string made storable and passed through mask_secrets (identifiers only made
    storable), keeping the structure valid: one walk for both."""
    if isinstance(value, str):
        return mask_secrets(storable(value))
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable_json(item) if key in IDENTIFIER_KEYS else _masked(item)
                for key, item in value.items()}
    return value


def masked_json(payload: Any) -> str:
    """A handled event's payload as it is kept: what the student typed only with passwords and card numbers
    masked, and storable (a lone surrogate, stored escaped, would not be once written out as UTF-8)."""
    return json.dumps(_masked(payload), ensure_ascii=False)


def _masked_stored(stored: str) -> str:
    """`masked_json` of a stored payload; what is not JSON (it always is, unless edited by hand) masked as text."""
    try:
        return masked_json(json.loads(stored))
    except ValueError:
        return storable(mask_secrets(stored))


def rewrite_payloads(session: Session, channel: str, needle: str, rewrite: Callable[[dict[str, Any]], bool]) -> int:
    """Let `rewrite` change stored payloads of a channel that contain `needle` (it returns True when it changed
    one, e.g. to hide a message the student took back); the number changed."""
    changed = 0
    # Escaped: a `%` or `_` in a message id is a character, not a wildcard.
    query = select(InboundEvent).where(InboundEvent.channel == channel,
                                       InboundEvent.payload.contains(needle, autoescape=True))
    for event in session.scalars(query):
        payload = json.loads(event.payload)
        if rewrite(payload):
            event.payload = json.dumps(payload, ensure_ascii=False)
            changed += 1
    return changed


def backoff(attempts: int) -> timedelta:
    """2, 4, 8 … seconds after each failed attempt, at most five minutes."""
    return timedelta(seconds=min(2 ** attempts, 300))


def order_key(channel: str, payload: Mapping[str, Any]) -> str:
    """Events with the same key are handled one after another, in the order received; others in parallel.

    The key names whom the answer goes to: a LINE user, group or room (`source`); a `deliver` job's channel
    and user, the same key as that user's own webhook events, so that it keeps its place among them; else a
    job's `conversation` or `to`. What names none of these (a multicast, an agent's relayed message) shares one
    key with its whole processor, which keeps the one-at-a-time order it always had.
    """
    to = payload.get("channel")  # a deliver job: the student's channel
    target = to if channel == DELIVER and isinstance(to, str) and to else channel
    if target in ONE_AT_A_TIME:
        return target
    source = payload.get("source")
    if isinstance(source, dict):
        who = source.get("groupId") or source.get("roomId") or source.get("userId")
        if isinstance(who, str) and who:
            return f"{channel}:{who}"
    user = payload.get("user")
    if target != channel and isinstance(user, str) and user:
        return f"{target}:{user}"
    conversation, recipient = payload.get("conversation"), payload.get("to")
    if isinstance(conversation, str) and conversation:
        return conversation
    if isinstance(recipient, str) and recipient:
        return f"{channel}:{recipient}"
    return channel


@dataclass
class Claimed:
    """An event taken under this worker's lease, with what handling it needs (read by the claim itself)."""

    id: int
    channel: str
    payload: dict[str, Any]
    stored: str  # the payload as stored
    received_at: datetime
    parts: list[dict[str, Any]] | None
    sent: int
    key: str


@dataclass(frozen=True)
class Finish:
    """An event's last write: its end state and columns, and its payload masked. The masking is done by the
    event's own thread, not while the others wait for the commit; should the stored payload differ from the
    one claimed (an unsend hid the message meanwhile), the stored one is masked instead."""

    event_id: int
    values: dict[str, Any]
    claimed: str  # the payload as stored when the event was claimed
    masked: str  # that payload, masked


@dataclass
class _Write:
    change: Callable[[Session], Any] | Finish
    result: Any = None
    error: Exception | None = None
    done: bool = False


class GroupCommit:
    """The worker threads' small writes (parts stored, a part sent, an event finished), committed together.

    Each caller waits until its write is committed, exactly as with a transaction of its own, so nothing about
    a crash changes; but whoever finds writes waiting commits them all in one transaction: one turn of the
    writer lock and one WAL sync for a whole round of events instead of one each.
    """

    def __init__(self, core: Core) -> None:
        self.core = core
        self._waiting: list[_Write] = []
        self._committing = False  # one committing thread at a time
        self._turn = threading.Condition()  # guards both; notified when a commit ends

    def write(self, change: Callable[[Session], Any] | Finish) -> Any:
        """Run `change` in a transaction, committed when this returns; what `change` returned.

        Raises:
            Exception: whatever `change` or the commit raised.
        """
        mine = _Write(change)
        with self._turn:
            self._waiting.append(mine)
            # Wait while another thread commits: it may take ours along (then we are done without queueing
            # for the commit ourselves), or leave it for the next round, which we then commit.
            self._turn.wait_for(lambda: mine.done or not self._committing)
            mine_to_commit = not mine.done
            if mine_to_commit:
                self._committing = True
                batch, self._waiting = self._waiting, []
        if mine_to_commit:
            try:
                self._commit(batch)
            finally:
                with self._turn:
                    self._committing = False
                    self._turn.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.result

    def _commit(self, batch: list[_Write]) -> None:
        try:
            with self.core.transaction() as session:
                finishes = [write.change for write in batch if isinstance(write.change, Finish)]
                if finishes:
                    _finish_all(session.connection(), finishes)
                results = [None if isinstance(write.change, Finish) else write.change(session) for write in batch]
        except Exception as error:
            if len(batch) == 1:
                batch[0].error, batch[0].done = error, True
                return
            for write in batch:  # one bad write must not fail the others: each alone
                self._commit([write])
            return
        for write, result in zip(batch, results, strict=True):
            write.result, write.done = result, True


def _finish_all(connection: Connection, finishes: list[Finish]) -> None:
    """Write events' end states: one read of their payloads, one UPDATE run for each set of columns. Plain
    statements, not the ORM: this runs once for every event and job."""
    ids = [finish.event_id for finish in finishes]
    query = select(InboundEvent.id, InboundEvent.payload).where(InboundEvent.id.in_(ids))
    stored = {event_id: payload for event_id, payload in connection.execute(query)}
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for finish in finishes:
        payload = stored.get(finish.event_id)
        if payload is None:
            continue
        masked = finish.masked if payload == finish.claimed else masked_json(json.loads(payload))
        row = {**finish.values, "payload": masked, "event": finish.event_id}
        by_columns.setdefault(tuple(sorted(row)), []).append(row)
    for columns, rows in by_columns.items():
        connection.execute(_finish_statement(columns), rows)


def _renewal(event_ids: Collection[int], until: datetime) -> Update:
    """The lease of events in hand extended to `until`: only those still processing. One that its thread has put
    back meanwhile (pending until a 429's Retry-After) must stay free, or it would wait for the whole lease."""
    return (update(InboundEvent).where(InboundEvent.id.in_(event_ids), InboundEvent.status == "processing")
            .values(lease_until=until).execution_options(synchronize_session=False))


@functools.cache
def _finish_statement(columns: tuple[str, ...]) -> Update:
    """UPDATE inbound_events SET <columns> WHERE id = :event, built once for each set of columns."""
    return (update(InboundEvent).where(InboundEvent.id == bindparam("event"))
            .values({column: bindparam(column) for column in columns if column != "event"}))


class Inbox:
    """The store of inbound events and the worker that processes them."""

    def __init__(self, core: Core, processors: Mapping[str, ChannelProcessor] | None = None, *,
                 lease: timedelta = LEASE, only_registered: bool = False) -> None:
        self.core = core
        self.lease = lease
        # A worker of a process without every processor (the terminal chat, the Rasa action server) takes only
        # the events it can handle, and leaves the others to the web app's worker.
        self.only_registered = only_registered
        self._processors = dict(processors or {})
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drain_lock = threading.Lock()
        self._periodic: list[Callable[[], None]] = []
        self._writes = GroupCommit(core)
        # What the drain in progress has in hand, guarded by _state: each key's queue of claimed events (a key
        # is in the map while one thread works through its queue), how many are claimed and not handled, and a
        # counter of progress (an event handled, an event accepted) that the drain waits on.
        self._state = threading.Condition()
        self._queues: dict[str, deque[Claimed]] = {}
        self._in_progress: set[int] = set()
        self._outstanding = 0
        self._handled = 0
        self._progress = 0
        self._arrived = False

    def register(self, processor: ChannelProcessor) -> None:
        """Add a channel's processor; a second one for the same channel is a wiring mistake."""
        if processor.channel in self._processors:
            raise ValueError(f"a processor for {processor.channel} is registered already")
        self._processors[processor.channel] = processor

    def processor(self, channel: str) -> ChannelProcessor:
        """The processor registered for `channel` (KeyError if none is)."""
        return self._processors[channel]

    def every_poll(self, task: Callable[[], None]) -> None:
        """Run `task` on each poll of the running worker (about once a second), e.g. a due check."""
        self._periodic.append(task)

    def accept(self, channel: str, event_id: str, payload: dict[str, Any]) -> bool:
        """Store an event durably; False (and nothing stored) when this event id was accepted before."""
        now = self.core.now()
        try:
            with self.core.transaction() as session:
                session.add(InboundEvent(channel=channel, event_id=event_id[:128], payload=json.dumps(payload),
                                         received_at=now, next_attempt_at=now, status="pending"))
        except IntegrityError:
            log.info("%s event %s is a duplicate; handled once already", channel, event_id)
            return False
        with self._state:  # a drain in progress claims it as soon as it has room
            self._arrived = True
            self._progress += 1
            self._state.notify_all()
        self._wake.set()
        return True

    def drain(self) -> int:
        """Process every event that is due now, each conversation's in the order received; the count handled.

        Returns when nothing due is left (or the worker is stopping); events accepted meanwhile are taken too.
        """
        with self._drain_lock, ThreadPoolExecutor(THREADS, thread_name_prefix="inbox") as pool:
            self._handled, short = 0, False
            while not self._stop.is_set():
                with self._state:
                    room, idle, arrived = CAPACITY - self._outstanding, self._outstanding == 0, self._arrived
                    seen = self._progress
                # Claim when idle, or when half the room is free and more may be due: claiming a few at a time
                # would cost a write transaction per event.
                if idle or (room >= CAPACITY // 2 and (arrived or not short)):
                    with self._state:
                        self._arrived = False
                    claimed = self._claim(room, renew=self._held())
                    short = len(claimed) < room
                    if not claimed and idle:
                        break
                    for event in claimed:
                        self._dispatch(pool, event)
                    if claimed and not short:
                        continue
                with self._state:
                    moved = self._state.wait_for(lambda: self._progress != seen,  # noqa: B023 (read at once)
                                                 timeout=self.lease.total_seconds() / RENEWALS)
                if not moved:  # a long wait: the events in hand keep their lease
                    self._renew(self._held())
            with self._state:  # stopping: the threads finish the event in hand and give the rest back
                self._state.wait_for(lambda: self._outstanding == 0)
            return self._handled

    def start(self) -> None:
        """Run the worker in a background thread (the web app's lifespan calls this)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="inbox-worker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the background worker after the events in hand; claimed events not yet started are given back
        at once (their lease cleared), so that a restarted worker need not wait for the lease to run out."""
        self._stop.set()
        with self._state:
            self._progress += 1
            self._state.notify_all()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for task in self._periodic:
                    task()
                self.drain()
            except Exception:  # the worker must outlive any one bad event or a database hiccup
                log.exception("inbox worker: drain failed")
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    # --- claiming and dispatching ------------------------------------------------------------------------------

    def _claim(self, limit: int, renew: Collection[int] = ()) -> list[Claimed]:
        """Take up to `limit` due events, oldest first, under a lease, in one transaction (and renew the lease
        of `renew`, events this worker holds and has not started); what each needs, in the order received.

        One `UPDATE … RETURNING` (SQLite 3.35+, PostgreSQL) both checks that the lease is free and takes it, so
        two workers never take the same event; on PostgreSQL the candidates are locked `SKIP LOCKED`, so a
        second process's claim passes over rows being claimed instead of waiting for them.
        """
        now = self.core.now()
        free = InboundEvent.lease_until.is_(None) | (InboundEvent.lease_until <= now)
        due = select(InboundEvent.id).where(
            InboundEvent.status.in_(("pending", "processing")), InboundEvent.next_attempt_at <= now, free,
        ).order_by(InboundEvent.id).limit(limit)
        if self.only_registered:
            due = due.where(InboundEvent.channel.in_(sorted(self._processors)))
        if not renew:
            with self.core.reading() as session:  # an idle poll costs no write transaction
                if session.scalar(due.limit(1)) is None:
                    return []
        if self.core.engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        with self.core.transaction() as session:
            if renew:
                session.execute(_renewal(renew, now + self.lease))
            rows = session.execute(
                update(InboundEvent).where(InboundEvent.id.in_(due), free)
                .values(status="processing", lease_until=now + self.lease)
                .returning(InboundEvent.id, InboundEvent.channel, InboundEvent.payload, InboundEvent.received_at,
                           InboundEvent.parts, InboundEvent.sent_parts)
                .execution_options(synchronize_session=False)
            ).all()
        claimed = []
        for row in sorted(rows, key=lambda row: row.id):  # RETURNING promises no order
            payload = json.loads(row.payload)
            claimed.append(Claimed(row.id, row.channel, payload, row.payload, row.received_at,
                                   json.loads(row.parts) if row.parts is not None else None, row.sent_parts,
                                   order_key(row.channel, payload)))
        return claimed

    def _held(self) -> list[int]:
        """The events this worker has claimed and not finished: waiting in hand or in progress."""
        with self._state:
            return [event.id for queue in self._queues.values() for event in queue] + list(self._in_progress)

    def _renew(self, event_ids: list[int]) -> None:
        """Extend the lease of events in hand, so that no other worker takes them while they wait or run."""
        if not event_ids:
            return
        try:
            with self.core.transaction() as session:
                session.execute(_renewal(event_ids, self.core.now() + self.lease))
        except Exception:  # the next claim or renewal tries again
            log.exception("inbox: renewing the lease of %d events failed", len(event_ids))

    def _dispatch(self, pool: ThreadPoolExecutor, event: Claimed) -> None:
        """Queue the event behind its conversation's; a conversation without one in hand gets a thread."""
        with self._state:
            self._outstanding += 1
            queue = self._queues.get(event.key)
            if queue is not None:  # in hand here already: never two of a conversation's events at once
                queue.append(event)
                return
            self._queues[event.key] = deque([event])
        pool.submit(self._work_through, event.key)

    def _work_through(self, key: str) -> None:
        """Handle the key's queued events one by one until none is left (or the worker stops)."""
        while True:
            with self._state:
                queue = self._queues[key]
                if not queue or self._stop.is_set():
                    del self._queues[key]
                    unstarted = list(queue)
                    break
                event = queue.popleft()
                self._in_progress.add(event.id)
            try:
                with logs.conversation(None):  # the job's lines carry its conversation once it is known
                    self._process(event)
            except Exception as error:  # a step failed outside the channel's call (a write, the turn itself)
                self._count_failed_step(event, error)
            with self._state:
                self._in_progress.discard(event.id)
                self._outstanding -= 1
                self._handled += 1
                self._progress += 1
                self._state.notify_all()
        if unstarted:
            self._give_back([event.id for event in unstarted])
        with self._state:
            self._outstanding -= len(unstarted)
            self._progress += 1
            self._state.notify_all()

    def _give_back(self, event_ids: list[int]) -> None:
        try:
            with self.core.transaction() as session:
                session.execute(update(InboundEvent).where(InboundEvent.id.in_(event_ids))
                                .values(status=UNSTARTED, lease_until=None)
                                .execution_options(synchronize_session=False))
        except Exception:  # they are taken up when their lease runs out instead
            log.exception("inbox: %d claimed events could not be given back", len(event_ids))

    # --- handling one event ----------------------------------------------------------------------------------

    def _process(self, event: Claimed) -> None:
        logs.note_conversation(event.payload.get("conversation"))  # a delivery names it; a webhook's turn finds it
        processor = self._processors.get(event.channel)
        if processor is None:
            self._finish(event, "failed", f"no processor for channel {event.channel}")
            log.error("inbox: no processor for %s event %d", event.channel, event.id)
            return
        job = Job(event.payload, event.received_at)
        try:
            parts = self._parts(processor, event, job)
            if parts is None:
                return
            self._send_parts(processor, event, job, parts)
        except RetryAfter as wait:
            # Not a failure: the platform (or our pacing) asked for patience. The attempt is not counted.
            self._update(event.id, status="pending", lease_until=None,
                         next_attempt_at=self.core.now() + timedelta(seconds=wait.seconds))
            return
        except PermanentFailure as failure:
            self._finish(event, "failed", str(failure))
            log.error("inbox: %s event %d failed permanently: %s", event.channel, event.id, failure)
            self._report_failure(processor, job, str(failure))
            return
        except Exception as error:
            if self._retry_later(event.id, event.channel, error):
                self._report_failure(processor, job, f"{type(error).__name__}: {error}")
            return
        try:
            self._finish(event, "done", None, sent_parts=len(parts))
        except Exception:
            # Everything went out: the retries of the finish must not send it again.
            self._update(event.id, sent_parts=len(parts))
            raise

    def _parts(self, processor: ChannelProcessor, event: Claimed, job: Job) -> list[dict[str, Any]] | None:
        """The event's calls: stored by an earlier attempt, else prepared now (and stored before the first goes
        out); None when there is nothing to send, the event then finished."""
        if event.parts is not None:
            return event.parts
        parts = processor.prepare(job)
        if not parts:  # nothing to send: the turn's record and the finish are one write
            self._finish(event, "done", None, parts="[]")
            return None
        if event.channel not in REPEATABLE:
            # Committed before the first call: a retry resends these and never runs the turn again.
            self._update(event.id, parts=storable(json.dumps(parts, ensure_ascii=False)))
        return parts

    def _send_parts(self, processor: ChannelProcessor, event: Claimed, job: Job, parts: list[dict[str, Any]]) -> None:
        """Send the calls not yet sent, recording each before the next."""
        resumed = event.parts is not None  # stored by an earlier attempt, which may have sent parts[sent]
        for index in range(event.sent, len(parts)):
            processor.send(Call(job, parts[index], index, resumed=resumed and index == event.sent))
            # Recorded (committed) before the next part goes out, because a resent part is not always
            # harmless: a push carries LINE's retry key (a second one is refused, 409) but a reply does not
            # (its token is spent, so the resend goes out as a push and the student reads it twice), nor
            # does a Slack post. The last part's record is the finish, one write with it.
            if index + 1 < len(parts):
                self._update(event.id, sent_parts=index + 1)

    def _report_failure(self, processor: ChannelProcessor, job: Job, error: str) -> None:
        """Tell the processor (a relay marks the failure in the agents' thread)."""
        try:
            processor.failed(job, mask_secrets(error))
        except Exception:
            log.exception("inbox: reporting the failure of a %s event failed", processor.channel)

    def _count_failed_step(self, event: Claimed, error: Exception) -> None:
        """A step failed that is not the channel's call: recording a part or the finish, or the turn itself.
        It counts as an attempt like any other, so an event that cannot be handled ends `failed` after the
        last one instead of coming back every lease. Only when even that cannot be written (the database is
        down) does the event stay leased, to be taken up again when its lease runs out."""
        log.error("inbox: %s event %d: a step failed: %s: %s", event.channel, event.id, type(error).__name__,
                  mask_secrets(str(error))[:500])
        try:
            self._retry_later(event.id, event.channel, error)
        except Exception:
            log.exception("inbox: %s event %d could not be recorded; retried after its lease", event.channel,
                          event.id)

    def _retry_later(self, event_id: int, channel: str, error: Exception) -> bool:
        """Count a failed attempt and schedule the next; True when it was the last and the event failed (its
        payload then masked, as a handled event's is)."""
        now = self.core.now()

        def change(session: Session) -> tuple[bool, int, str]:
            event = session.get(InboundEvent, event_id)
            if event is None:  # deleted meanwhile (a student forgotten): nothing left to retry
                return False, 0, "the event is gone"
            event.attempts += 1
            event.last_error = storable(mask_secrets(f"{type(error).__name__}: {error}"))[:2000]
            event.lease_until = None
            if event.attempts >= MAX_ATTEMPTS:
                event.status, event.processed_at = "failed", now
                event.payload = _masked_stored(event.payload)
            else:
                event.status, event.next_attempt_at = "pending", now + backoff(event.attempts)
            return event.status == "failed", event.attempts, event.last_error

        failed, attempts, last_error = self._writes.write(change)
        if failed:
            log.error("inbox: %s event %d failed after %d attempts: %s", channel, event_id, attempts, last_error)
        else:
            log.warning("inbox: %s event %d attempt %d failed, retrying: %s", channel, event_id, attempts,
                        last_error)
        return failed

    def _finish(self, event: Claimed, status: str, error: str | None, **values: Any) -> None:
        self._writes.write(Finish(event.id, {"status": status, "last_error": error, "lease_until": None,
                                             "processed_at": self.core.now(), **values},
                                  event.stored, masked_json(event.payload)))

    def _update(self, event_id: int, **values: Any) -> None:
        self._writes.write(lambda session: session.connection().execute(
            update(InboundEvent).where(InboundEvent.id == event_id).values(**values)))
