"""Durable jobs for the bot's worker: written in the caller's transaction, so they commit with the change
that needs them (a ticket and the job posting its card), and deduplicated by key, so each runs once."""

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.models import InboundEvent

# Processors of the bot's worker (bot/delivery/inbox.py) that jobs name; the channels' own webhooks use theirs.
AGENTS = "agents"  # posts to the agents' Slack channel: ticket cards, relayed student messages, notices
DELIVER = "deliver"  # sends a message to a student on their own channel (LINE push, Slack DM, web chat)
MAIL = "mail"  # mails a one-time link (second-password reset, web sign-in) to a student's registered address
KEY_LENGTH = 128  # the event_id column
IN_CHUNK = 1000  # values per IN list: far below SQLite's and PostgreSQL's limits on bound parameters

T = TypeVar("T")


def chunks(items: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """`items` in lists of at most `size` (an IN list of at most that many values)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def enqueue(session: Session, processor: str, key: str, payload: dict[str, Any], now: datetime) -> bool:
    """Add a job for `processor` unless one with this key exists; False if it did (nothing added)."""
    key = key[:KEY_LENGTH]
    exists = session.scalar(select(InboundEvent.id).where(InboundEvent.channel == processor,
                                                          InboundEvent.event_id == key))
    if exists is not None:
        return False
    session.add(InboundEvent(**_row(processor, key, payload, now)))
    session.flush()
    return True


def queued_keys(session: Session, processor: str, keys: Iterable[str]) -> set[str]:
    """Those of the job keys (cut as `enqueue` cuts them) that `processor` has a job for already."""
    taken: set[str] = set()
    for chunk in chunks(sorted({key[:KEY_LENGTH] for key in keys})):
        taken.update(session.scalars(select(InboundEvent.event_id).where(InboundEvent.channel == processor,
                                                                         InboundEvent.event_id.in_(chunk))))
    return taken


def enqueue_many(session: Session, processor: str, jobs: Sequence[tuple[str, dict[str, Any]]],
                 now: datetime) -> set[str]:
    """`enqueue` for many jobs in one bulk insert: each key once, none that exists already; the keys added."""
    wanted: dict[str, dict[str, Any]] = {}
    for key, payload in jobs:
        wanted.setdefault(key[:KEY_LENGTH], payload)
    for taken in queued_keys(session, processor, wanted):
        del wanted[taken]
    if wanted:
        session.execute(insert(InboundEvent), [_row(processor, key, payload, now) for key, payload in wanted.items()])
    return set(wanted)


def _row(processor: str, key: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    stored = {**payload, "job": key}  # the processor derives retry keys (LINE's X-Line-Retry-Key) from it
    return {"channel": processor, "event_id": key, "payload": json.dumps(stored, ensure_ascii=False),
            "received_at": now, "next_attempt_at": now, "status": "pending", "attempts": 0, "sent_parts": 0}
