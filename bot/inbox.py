"""Webhook events stored before they are acknowledged, and a worker that answers each exactly once.

A webhook calls `Inbox.accept` for each event and answers 200 at once; the event row is committed first,
so nothing accepted is lost if the process dies after the 200. The worker then asks the channel to
`prepare` the answer (one conversation turn, rendered into API calls that are stored with the event) and
`send`s the calls one by one, recording after each how many were delivered. A retry (after a crash, a
429 or a 500) resends only what was not delivered and never runs the conversation turn again.
"""

import json
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import logs
from core.masking import mask_secrets
from core.models import InboundEvent
from core.services import Core

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # with the backoff below: about 8.5 minutes of retrying before an event is marked failed
LEASE = timedelta(minutes=2)  # a worker that dies mid-event frees it after this long
POLL_SECONDS = 1.0  # the running worker also looks for due retries this often


class RetryAfter(Exception):
    """The platform asked us to wait (HTTP 429 Retry-After, or our own per-channel pacing)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:g} s")
        self.seconds = seconds


class PermanentFailure(Exception):
    """A call that will never succeed (a 4xx other than 429): the event is marked failed and logged."""


class ChannelProcessor(Protocol):
    """A channel's (or a job kind's) side of the worker: one turn or job per event, then its API calls."""

    channel: str

    def prepare(self, payload: dict[str, Any], received_at: datetime) -> list[dict[str, Any]]:
        """Handle one stored event; return the API calls to make (JSON-serializable; [] for none)."""
        ...

    def send(self, payload: dict[str, Any], part: dict[str, Any], index: int, received_at: datetime) -> None:
        """Make one API call; raise RetryAfter, PermanentFailure or anything else (retried with backoff)."""
        ...

    # Optionally also: failed(payload, error) -> None, called once when an event has failed for good.


# Platform identifiers are not secrets, and must stay as they are: an unsend names its message by id, and a
# long digit string must not pass for a card number.
IDENTIFIER_KEYS = frozenset({"id", "messageId", "quotedMessageId", "webhookEventId", "event_id", "ts", "thread_ts",
                             "event_ts", "job"})


def _masked(value: Any) -> Any:
    """A JSON value with every string passed through mask_secrets, keeping the structure valid."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, dict):
        return {key: item if key in IDENTIFIER_KEYS else _masked(item) for key, item in value.items()}
    return value


def rewrite_payloads(session: Session, channel: str, needle: str, rewrite: Callable[[dict[str, Any]], bool]) -> int:
    """Let `rewrite` change stored payloads of a channel that contain `needle` (it returns True when it changed
    one, e.g. to hide a message the student took back); the number changed."""
    changed = 0
    query = select(InboundEvent).where(InboundEvent.channel == channel, InboundEvent.payload.contains(needle))
    for event in session.scalars(query):
        payload = json.loads(event.payload)
        if rewrite(payload):
            event.payload = json.dumps(payload, ensure_ascii=False)
            changed += 1
    return changed


def backoff(attempts: int) -> timedelta:
    """2, 4, 8 … seconds after each failed attempt, at most five minutes."""
    return timedelta(seconds=min(2 ** attempts, 300))


class Inbox:
    """The store of inbound events and the worker that processes them."""

    def __init__(self, core: Core, processors: Mapping[str, ChannelProcessor] | None = None) -> None:
        self.core = core
        self._processors: dict[str, ChannelProcessor] = dict(processors or {})
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drain_lock = threading.Lock()
        self._periodic: list[Callable[[], None]] = []

    def register(self, processor: ChannelProcessor) -> None:
        """Add a channel's processor; a second one for the same channel is a wiring mistake."""
        if processor.channel in self._processors:
            raise ValueError(f"a processor for {processor.channel} is registered already")
        self._processors[processor.channel] = processor

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
        self._wake.set()
        return True

    def drain(self) -> int:
        """Process every event that is due now, one at a time in the order received; the count handled."""
        handled = 0
        with self._drain_lock:  # one drain at a time in this process; other processes are kept out by leases
            while (event_id := self._claim()) is not None:
                with logs.conversation(None):  # the job's lines carry its conversation once it is known
                    self._process(event_id)
                handled += 1
        return handled

    def start(self) -> None:
        """Run the worker in a background thread (the web app's lifespan calls this)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="inbox-worker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the background worker after the event in hand."""
        self._stop.set()
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

    def _claim(self) -> int | None:
        """Take the oldest due event under a lease, so no other worker takes it meanwhile."""
        now = self.core.now()
        with self.core.transaction() as session:
            candidates = session.scalars(
                select(InboundEvent.id).where(
                    InboundEvent.status.in_(("pending", "processing")), InboundEvent.next_attempt_at <= now,
                    (InboundEvent.lease_until.is_(None)) | (InboundEvent.lease_until <= now),
                ).order_by(InboundEvent.id).limit(5)
            ).all()
            for event_id in candidates:
                taken = session.execute(
                    update(InboundEvent).where(
                        InboundEvent.id == event_id,
                        (InboundEvent.lease_until.is_(None)) | (InboundEvent.lease_until <= now),
                    ).values(status="processing", lease_until=now + LEASE)
                ).rowcount
                if taken == 1:
                    return event_id
        return None

    def _process(self, event_id: int) -> None:
        with self.core.transaction() as session:
            event = session.get(InboundEvent, event_id)
            assert event is not None
            channel, payload, received_at = event.channel, json.loads(event.payload), event.received_at
            parts = json.loads(event.parts) if event.parts is not None else None
            sent = event.sent_parts
        logs.note_conversation(payload.get("conversation"))  # a delivery names it; a webhook's turn finds it
        processor = self._processors.get(channel)
        if processor is None:
            self._finish(event_id, "failed", f"no processor for channel {channel}")
            log.error("inbox: no processor for %s event %d", channel, event_id)
            return
        try:
            if parts is None:
                parts = processor.prepare(payload, received_at)
                self._update(event_id, parts=json.dumps(parts, ensure_ascii=False))
            for index in range(sent, len(parts)):
                processor.send(payload, parts[index], index, received_at)
                self._update(event_id, sent_parts=index + 1)
        except RetryAfter as wait:
            # Not a failure: the platform (or our pacing) asked for patience. The attempt is not counted.
            self._update(event_id, status="pending", lease_until=None,
                         next_attempt_at=self.core.now() + timedelta(seconds=wait.seconds))
            return
        except PermanentFailure as failure:
            self._finish(event_id, "failed", str(failure))
            log.error("inbox: %s event %d failed permanently: %s", channel, event_id, failure)
            self._report_failure(processor, payload, str(failure))
            return
        except Exception as error:
            if self._retry_later(event_id, channel, error):
                self._report_failure(processor, payload, f"{type(error).__name__}: {error}")
            return
        self._finish(event_id, "done", None)

    def _report_failure(self, processor: ChannelProcessor, payload: dict[str, Any], error: str) -> None:
        """Tell a processor that wants to know (a relay marks the failure in the agents' thread)."""
        failed = getattr(processor, "failed", None)
        if failed is None:
            return
        try:
            failed(payload, mask_secrets(error))
        except Exception:
            log.exception("inbox: reporting the failure of a %s event failed", processor.channel)

    def _retry_later(self, event_id: int, channel: str, error: Exception) -> bool:
        """Count a failed attempt and schedule the next; True when it was the last and the event failed."""
        with self.core.transaction() as session:
            event = session.get(InboundEvent, event_id)
            assert event is not None
            event.attempts += 1
            event.last_error = mask_secrets(f"{type(error).__name__}: {error}")[:2000]
            event.lease_until = None
            if event.attempts >= MAX_ATTEMPTS:
                event.status, event.processed_at = "failed", self.core.now()
                log.error("inbox: %s event %d failed after %d attempts: %s", channel, event_id, event.attempts,
                          event.last_error)
                return True
            else:
                event.status, event.next_attempt_at = "pending", self.core.now() + backoff(event.attempts)
                log.warning("inbox: %s event %d attempt %d failed, retrying: %s", channel, event_id,
                            event.attempts, event.last_error)
        return False

    def _finish(self, event_id: int, status: str, error: str | None) -> None:
        with self.core.transaction() as session:
            event = session.get(InboundEvent, event_id)
            assert event is not None
            # Handled: what the student typed stays only with passwords and card numbers masked.
            event.payload = json.dumps(_masked(json.loads(event.payload)), ensure_ascii=False)
            event.status, event.last_error, event.lease_until = status, error, None
            event.processed_at = self.core.now()

    def _update(self, event_id: int, **values: Any) -> None:
        with self.core.transaction() as session:
            session.execute(update(InboundEvent).where(InboundEvent.id == event_id).values(**values))
