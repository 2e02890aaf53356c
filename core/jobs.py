"""Durable jobs for the bot's worker: written in the caller's transaction, so they commit with the change
that needs them (a ticket and the job posting its card), and deduplicated by key, so each runs once."""

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import InboundEvent

# Processors of the bot's worker (bot/inbox.py) that jobs name; the channels' own webhooks use theirs.
AGENTS = "agents"  # posts to the agents' Slack channel: ticket cards, relayed student messages, notices
DELIVER = "deliver"  # sends a message to a student on their own channel (LINE push, Slack DM, web chat)


def enqueue(session: Session, processor: str, key: str, payload: dict[str, Any], now: datetime) -> bool:
    """Add a job for `processor` unless one with this key exists; False if it did (nothing added)."""
    key = key[:128]
    exists = session.scalar(select(InboundEvent.id).where(InboundEvent.channel == processor,
                                                          InboundEvent.event_id == key))
    if exists is not None:
        return False
    stored = {**payload, "job": key}  # the processor derives retry keys (LINE's X-Line-Retry-Key) from it
    session.add(InboundEvent(channel=processor, event_id=key, payload=json.dumps(stored, ensure_ascii=False),
                             received_at=now, next_attempt_at=now, status="pending", attempts=0, sent_parts=0))
    session.flush()
    return True
