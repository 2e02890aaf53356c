"""Retention: chat data older than the profile's retention purged in batches, and a student forgotten on request."""

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.db import Base, changed_rows
from core.enums import OrderStatus
from core.jobs import AGENTS, DELIVER
from core.masking import mask_student_number
from core.models import (
    AccountLinkNonce,
    ChannelAccount,
    Conversation,
    HandoffMessage,
    HandoffTicket,
    InboundEvent,
    OneTimeLink,
    Order,
    Reminder,
    Student,
    TranscriptEntry,
)
from core.services import Core
from core.students import find_student
from core.tallies import set_aside

log = logging.getLogger(__name__)

BATCH = 1000  # rows per transaction: a big table is never locked for long
FINISHED_EVENTS = ("done", "failed")  # inbound events and jobs the worker will not touch again
JOB_PROCESSORS = (AGENTS, DELIVER)
CLOSED_TICKET = "resolved"
SCHEDULED = "scheduled"  # core.reminders.Status.SCHEDULED (imported by value: core.reminders pulls in orders)
FORGOTTEN = "[forgotten]"  # what a forgotten student's name is replaced with in other people's texts
# Orders whose mailing address is no longer needed: sent, collected or cancelled.
ADDRESS_DONE = (OrderStatus.SHIPPED, OrderStatus.COLLECTED, OrderStatus.CANCELLED)
MIN_NAME_LENGTH = 3  # shorter names are too likely to be part of other words to be replaced safely


# --- the daily purge ------------------------------------------------------------------------------------


class _Expiry(NamedTuple):
    """A kind of row the purge deletes: its table, its id column (the batches' order) and when it is too old."""

    model: type[Base]
    id_column: InstrumentedAttribute[int | str]
    too_old: ColumnElement[bool]


def _expired_rules(cutoff: datetime) -> dict[str, _Expiry]:
    """What the purge deletes, per table."""
    return {
        # Every line of every conversation, by when it was said.
        "transcript_entries": _Expiry(TranscriptEntry, TranscriptEntry.id, TranscriptEntry.at < cutoff),
        # Conversation state (form answers, the identified student): long expired after 30 minutes of silence.
        "conversations": _Expiry(Conversation, Conversation.id, Conversation.updated_at < cutoff),
        # Webhook events and jobs the worker has finished with: what students typed, their chat user ids.
        "inbound_events": _Expiry(InboundEvent, InboundEvent.id, InboundEvent.status.in_(FINISHED_EVENTS)
                                  & (func.coalesce(InboundEvent.processed_at, InboundEvent.received_at) < cutoff)),
        # Closed handoff tickets with their relayed messages (what the bot said, the student's chat id).
        "handoff_tickets": _Expiry(HandoffTicket, HandoffTicket.id, (HandoffTicket.status == CLOSED_TICKET)
                                   & (HandoffTicket.closed_at < cutoff)),
        # Reminders sent, cancelled, skipped or missed (their recipients); scheduled ones stay, whatever their age.
        "reminders": _Expiry(Reminder, Reminder.id, (Reminder.status != SCHEDULED)
                             & (func.coalesce(Reminder.done_at, Reminder.due_at) < cutoff)),
        # Mailed one-time links (the address they went to) and account-link nonces, long expired.
        "one_time_links": _Expiry(OneTimeLink, OneTimeLink.id, OneTimeLink.expires_at < cutoff),
        "account_link_nonces": _Expiry(AccountLinkNonce, AccountLinkNonce.id, AccountLinkNonce.expires_at < cutoff),
    }


@dataclass
class Purge:
    """What one purge deleted (or, in a dry run, would delete), per table."""

    cutoff: datetime
    deleted: Counter[str] = field(default_factory=Counter)
    dry_run: bool = False

    @property
    def total(self) -> int:
        """Rows deleted in all tables."""
        return sum(self.deleted.values())


def purge_expired(core: Core, *, days: int | None = None, batch: int = BATCH, dry_run: bool = False) -> Purge:
    """Delete chat data older than the retention (default: the profile's `retention_days`), in batches.

    Orders, their items, events and payments are accounting records and are never purged (a sent, collected
    or cancelled order's mailing address is cleared); neither are students, their chat accounts, open handoff
    tickets or reminders still to send.

    Args:
        core: the core (its clock says what "now" is).
        days: the retention in days; None takes the profile's.
        batch: rows deleted per transaction.
        dry_run: count what would be deleted, delete nothing.

    Returns:
        The cutoff and the counts per table.
    """
    days = core.profile.retention_days if days is None else days
    if days <= 0:
        raise ValueError(f"retention must be more than 0 days, got {days}")
    cutoff = core.now() - timedelta(days=days)
    result = Purge(cutoff=cutoff, dry_run=dry_run)
    for table, (model, id_column, too_old) in _expired_rules(cutoff).items():
        if dry_run:
            with core.transaction() as session:
                result.deleted[table] = session.scalar(select(func.count()).where(too_old)) or 0
            if table == "handoff_tickets":
                with core.transaction() as session:
                    result.deleted["handoff_messages"] = session.scalar(
                        select(func.count(HandoffMessage.id)).join(HandoffTicket,
                                                                  HandoffMessage.ticket_id == HandoffTicket.id)
                        .where(too_old)) or 0
            continue
        while True:
            with core.transaction() as session:
                # Oldest first by id: old rows come first, so the scan stops early without an index on the age.
                ids = list(session.scalars(select(id_column).where(too_old).order_by(id_column).limit(batch)))
                if not ids:
                    break
                if table == "handoff_tickets":
                    result.deleted["handoff_messages"] += changed_rows(
                        session, delete(HandoffMessage).where(HandoffMessage.ticket_id.in_(ids)))
                # What the rows counted for in /metrics is kept as tallies, so the counters do not go down.
                set_aside(session, model, id_column.in_(ids))
                result.deleted[table] += changed_rows(session, delete(model).where(id_column.in_(ids)))
            if len(ids) < batch:
                break
    # A 郵送 order's address is needed until it is sent: once the order is done and old, it goes (the order stays).
    done_and_old = Order.mailing_address.is_not(None) & Order.status.in_(ADDRESS_DONE) & (Order.updated_at < cutoff)
    with core.transaction() as session:
        result.deleted["order_addresses"] = session.scalar(select(func.count(Order.id)).where(done_and_old)) or 0 \
            if dry_run else changed_rows(session, update(Order).where(done_and_old).values(mailing_address=None))
    log.info("retention (%d days, before %s)%s: %s", days, cutoff.isoformat(timespec="seconds"),
             " dry run, would delete" if dry_run else " deleted",
             ", ".join(f"{table} {count}" for table, count in sorted(result.deleted.items())) or "nothing")
    return result


# --- forgetting a student -------------------------------------------------------------------------------


@dataclass
class Forgotten:
    """What forgetting one student deleted (per table) and kept (orders, anonymous)."""

    deleted: Counter[str] = field(default_factory=Counter)
    orders_kept: int = 0
    names_replaced: int = 0


def _full_width(text: str) -> str:
    """ASCII letters and digits as their full-width forms: how a Japanese keyboard may type a number."""
    return "".join(chr(ord(ch) + 0xFEE0) if ch.isascii() and ch.isalnum() else ch for ch in text)


def _mentions(column: Any, needles: Iterable[str]) -> ColumnElement[bool]:
    """True where `column` contains any of `needles`, ignoring letter case (on SQLite and PostgreSQL)."""
    return or_(*(func.lower(column).contains(needle.lower(), autoescape=True) for needle in needles))


def forget_student(session: Session, student_number: str, *, now: datetime) -> Forgotten | None:
    """Delete a student's conversations and personal data, in the caller's transaction.

    Deleted: the student row (number, name, email, password hash), their one-time links, account-link
    nonces, reminders and chat accounts; every conversation that is theirs (linked to them, on one of their
    chat accounts, or whose transcript mentions their number or email) with its transcript, handoff tickets
    and relayed messages; stored webhook events and jobs of their chat accounts or conversations, or that
    mention their number or email. Their name, where someone else's text mentions it, is replaced.
    Kept: their orders with items, events and payments (accounting), no longer linked to anyone and without
    the mailing address of a 郵送 order.

    Args:
        session: the transaction to work in (the caller commits).
        student_number: the number as typed (normalized here).
        now: the current time (recorded on the kept orders' `updated_at`).

    Returns:
        What was deleted and kept, or None when no student has this number (already forgotten, or a typo).
    """
    student = find_student(session, student_number)
    if student is None:
        return None
    result = Forgotten()
    sid, number, email, name = student.id, student.student_number, student.email, (student.name or "").strip()
    needles = [number, _full_width(number)] + ([email] if email else [])

    accounts = session.execute(select(ChannelAccount.channel, ChannelAccount.external_id)
                               .where(ChannelAccount.student_id == sid)).all()
    external_ids = sorted({external_id for _, external_id in accounts})
    on_their_account = or_(*(Conversation.user_id == external_id for external_id in external_ids)) \
        if external_ids else None
    conversation_ids = set(session.scalars(select(Conversation.id).where(
        or_(Conversation.student_id == sid, *([on_their_account] if on_their_account is not None else [])))))
    conversation_ids |= set(session.scalars(select(TranscriptEntry.conversation_id).distinct()
                                            .where(_mentions(TranscriptEntry.text, needles))))
    ticket_filter = [HandoffTicket.student_id == sid, HandoffTicket.conversation_id.in_(conversation_ids)]
    if external_ids:
        ticket_filter.append(HandoffTicket.user_id.in_(external_ids))
    ticket_ids = list(session.scalars(select(HandoffTicket.id).where(or_(*ticket_filter))))
    conversation_ids |= set(session.scalars(select(HandoffTicket.conversation_id)
                                            .where(HandoffTicket.id.in_(ticket_ids))))
    conversations = sorted(conversation_ids)

    message_ids = set(session.scalars(select(HandoffMessage.id).where(HandoffMessage.ticket_id.in_(ticket_ids))))
    result.deleted["inbound_events"] = _forget_events(session, external_ids, conversations, needles)
    result.deleted["inbound_events"] += _forget_jobs(session, set(ticket_ids), message_ids)
    result.deleted["handoff_messages"] = changed_rows(session, delete(HandoffMessage)
                                                      .where(HandoffMessage.ticket_id.in_(ticket_ids)))
    set_aside(session, HandoffTicket, HandoffTicket.id.in_(ticket_ids))  # the /metrics counters keep them
    result.deleted["handoff_tickets"] = changed_rows(session, delete(HandoffTicket)
                                                     .where(HandoffTicket.id.in_(ticket_ids)))
    result.deleted["transcript_entries"] = changed_rows(session, delete(TranscriptEntry)
                                                        .where(TranscriptEntry.conversation_id.in_(conversations)))
    result.deleted["conversations"] = changed_rows(session, delete(Conversation)
                                                   .where(Conversation.id.in_(conversations)))
    reminder_filter = [Reminder.student_id == sid, Reminder.conversation_id.in_(conversations)]
    if external_ids:
        reminder_filter.append(Reminder.recipient.in_(external_ids))
    set_aside(session, Reminder, or_(*reminder_filter))
    result.deleted["reminders"] = changed_rows(session, delete(Reminder).where(or_(*reminder_filter)))
    set_aside(session, OneTimeLink, OneTimeLink.student_id == sid)
    result.deleted["one_time_links"] = changed_rows(session, delete(OneTimeLink).where(OneTimeLink.student_id == sid))
    result.deleted["account_link_nonces"] = changed_rows(session, delete(AccountLinkNonce)
                                                         .where(AccountLinkNonce.student_id == sid))
    result.deleted["channel_accounts"] = changed_rows(session, delete(ChannelAccount)
                                                      .where(ChannelAccount.student_id == sid))
    result.orders_kept = changed_rows(session, update(Order).where(Order.student_id == sid)
                                      .values(student_id=None, mailing_address=None, updated_at=now))
    session.expunge(student)  # deleted below by id, so the ORM does not try to null its orders' link again
    result.deleted["students"] = changed_rows(session, delete(Student).where(Student.id == sid))
    if len(name) >= MIN_NAME_LENGTH:
        result.names_replaced = _replace_name(session, name)
    log.info("forgot student %s: %s; %d order(s) kept without the student", mask_student_number(number),
             ", ".join(f"{table} {count}" for table, count in sorted(result.deleted.items()) if count) or "nothing",
             result.orders_kept)
    return result


def _forget_events(session: Session, external_ids: list[str], conversations: list[str], needles: list[str]) -> int:
    """Delete the stored events and jobs of the student's chat accounts and conversations, or mentioning them.

    A pending LINE multicast (a period reminder to many students) loses only this student's user id.
    """
    quoted = [f'"{external_id}"' for external_id in external_ids] + [f':{external_id}"' for external_id in external_ids]
    quoted += [f'"{conversation}"' for conversation in conversations]
    if not quoted and not needles:
        return 0
    query = select(InboundEvent).where(_mentions(InboundEvent.payload, quoted + needles))
    doomed: list[InboundEvent] = []
    for event in session.scalars(query):
        payload = json.loads(event.payload)
        others = [user for user in payload.get("users", []) if user not in external_ids] \
            if isinstance(payload, dict) and payload.get("kind") == "multicast" else []
        mentioned = any(needle.lower() in event.payload.lower() for needle in needles)
        if others and not mentioned and event.status not in FINISHED_EVENTS:
            payload["users"] = others
            event.payload = json.dumps(payload, ensure_ascii=False)
            continue
        doomed.append(event)
    return _delete_events(session, doomed)


def _delete_events(session: Session, events: list[InboundEvent]) -> int:
    """Delete these events and jobs, what they counted for in /metrics (a failed reminder) set aside first."""
    if events:
        set_aside(session, InboundEvent, InboundEvent.id.in_([event.id for event in events]))
    for event in events:
        session.delete(event)
    session.flush()
    return len(events)


def _forget_jobs(session: Session, ticket_ids: set[int], message_ids: set[int]) -> int:
    """Delete the worker's unfinished jobs about the deleted tickets and messages (a card, a relay)."""
    if not ticket_ids:
        return 0
    doomed = []
    for event in session.scalars(select(InboundEvent).where(InboundEvent.channel.in_(JOB_PROCESSORS),
                                                           InboundEvent.status.not_in(FINISHED_EVENTS))):
        payload = json.loads(event.payload)
        if isinstance(payload, dict) and (payload.get("ticket") in ticket_ids or payload.get("message") in message_ids):
            doomed.append(event)
    return _delete_events(session, doomed)


def _replace_name(session: Session, name: str) -> int:
    """Replace the name in other people's stored texts (a student may name a classmate); rows changed."""
    forms = {name, json.dumps(name)[1:-1]}  # as typed, and as JSON escapes it in a stored payload
    if any(ch in name for ch in '"\\'):
        forms = {name}
    columns: list[tuple[type[Base], InstrumentedAttribute[str | None]]] = [
        (TranscriptEntry, TranscriptEntry.text), (HandoffMessage, HandoffMessage.text),
        (HandoffTicket, HandoffTicket.bot_said), (InboundEvent, InboundEvent.payload)]
    changed = 0
    for entity, column in columns:
        for row in session.scalars(select(entity).where(or_(*(column.contains(form, autoescape=True)
                                                               for form in forms)))):
            text = getattr(row, column.key)
            for form in forms:
                text = text.replace(form, FORGOTTEN)
            setattr(row, column.key, text)
            changed += 1
    session.flush()
    return changed
