"""Sending due reminders exactly once, in batches: a batch is checked (still due, within its grace, still
relevant, wanted) and its messages composed on a read, then in one short transaction claimed with one
conditional UPDATE per end state and its messages queued for delivery with one bulk insert; what another
scheduler ended meanwhile is left alone, and a second scheduler's claim finds nothing."""

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from bot.delivery.notices import Job, latest_conversations, notice_jobs, reachable, replies_job
from core.enums import Language, Service
from core.formatting import format_datetime, join_list
from core.jobs import DELIVER, KEY_LENGTH, chunks, enqueue_many, queued_keys
from core.models import ChannelAccount, Reminder, Student
from core.order_texts import item_name, pickup_window, pickup_window_text
from core.reminders import (
    End,
    Kind,
    Status,
    Subjects,
    claim_due,
    defer_many,
    finish_many,
    load_subjects,
    outside_quiet_hours,
    past_grace,
    reason,
    wanting,
)
from core.services import Core
from handlers import basic
from handlers.messages import say
from handlers.replies import QuickReply, Reply, Text, intent_payload, to_json
from handlers.turn import Channel
from intents.types import Intent

log = logging.getLogger(__name__)

MULTICAST_MAX = 500  # LINE's multicast takes at most 500 user IDs per call
BULK_ITEMS = {Kind.PARKING_PERIOD: "parking_fee", Kind.INSURANCE_PERIOD: "insurance_renewal"}
BATCH = 500  # due reminders claimed per transaction: short enough for the write lock, long enough to pay off
ON_TIME = timedelta(0)  # but for the sweep, a reminder reached in the quiet hours after its time waits for 8:00


@dataclass
class Batch:
    """What one batch did: how many due reminders it took up, and the end state of each it ended (one moved
    to 8:00 by the quiet hours, or ended meanwhile by another scheduler, has none)."""

    seen: int = 0
    ended: dict[int, Status] = field(default_factory=dict)


def send_due(core: Core, now: datetime, *, limit: int = BATCH, skip: Sequence[int] = (),
             on_time: timedelta = ON_TIME) -> Batch:
    """Send or end one batch of the reminders due by `now`, oldest first.

    The batch is read and its messages composed without the write lock, which SQLite has one of: composing
    500 messages took about 90 ms, during which the delivery workers could neither claim nor finish a job
    (they delivered 446 of 10,000 reminders while the sweep ran, 2,000 a second after it). Only the claim and
    the queueing are a write transaction; `finish_many` moves only the reminders still scheduled then.

    Args:
        core: the core (its database, profile and calendar).
        now: the sweep's time.
        limit: at most this many reminders.
        skip: ids left out (their batch failed; the sweep sends them one by one).
        on_time: how late a reminder may be reached and still count as on time (see `send_all`).

    Returns:
        What the batch did; fewer than `limit` seen means nothing more was due.
    """
    with core.reading() as session:
        reminders = claim_due(session, now, limit=limit, skip=skip)
        if not reminders:  # the sweep's usual minute: nothing due, nothing to look up
            return Batch()
        planned = _Planned.of(session, core, reminders, now, on_time)
    with core.transaction() as session:
        ended = planned.apply(session, now)
    log.info("reminders: %d due, %s", len(reminders), dict(Counter(status.value for status in ended.values())))
    return Batch(len(reminders), ended)


def send_reminder(core: Core, reminder_id: int, *, on_time: timedelta = ON_TIME) -> Status | None:
    """Send one reminder if it is due; its end state, or None when it is not due or was taken already."""
    now = core.now()
    with core.transaction() as session:
        reminder = session.get(Reminder, reminder_id)
        if reminder is None or reminder.status != Status.SCHEDULED.value or reminder.due_at > now:
            return None
        status = send_all(session, core, [reminder], now, on_time=on_time).get(reminder.id)
    log.info("reminder %d (%s): %s", reminder_id, reminder.kind, status)
    return status


def send_in(session: Session, core: Core, reminder: Reminder, now: datetime) -> Status | None:
    """`send_reminder` inside the caller's transaction (the agents' `ready` sends the first one at once);
    None, and nothing changed, while it is not due (moved out of the quiet hours, it waits until 8:00)."""
    if reminder.due_at > now:
        return None
    return send_all(session, core, [reminder], now).get(reminder.id)


def send_all(session: Session, core: Core, reminders: Sequence[Reminder], now: datetime, *,
             on_time: timedelta = ON_TIME) -> dict[int, Status]:
    """Check, claim and queue due reminders in the caller's transaction; the end state of each it ended.

    Missed past its grace; cancelled when no longer relevant; skipped when the student turned reminders off
    or no chat account can be reached; moved to 8:00 (still scheduled) when reached in the quiet hours
    `on_time` or more after it was due; else sent: its messages queued, once per reminder key. A reminder
    another scheduler ended first is left alone.

    Args:
        session: the caller's transaction.
        core: the core (its profile and calendar, for the messages).
        reminders: the reminders to look at; those not due by `now` are left alone.
        now: the time they are reached.
        on_time: how late the sweep may reach a reminder on time: one due at 20:59:50 and reached by the
            sweep at 21:00:10 is sent, not moved to the morning. Zero (the default): any lateness counts.

    Returns:
        The end state of each reminder this call ended.
    """
    return _Planned.of(session, core, reminders, now, on_time).apply(session, now)


@dataclass
class _Planned:
    """A batch checked and its messages composed: what `apply` then claims and queues (see `send_all`)."""

    triage: "_Triage"
    fresh: dict[int, list[Job]]  # each reminder's jobs not queued before

    @classmethod
    def of(cls, session: Session, core: Core, reminders: Sequence[Reminder], now: datetime,
           on_time: timedelta) -> "_Planned":
        triage = _Triage.of(session, reminders, now, on_time)
        jobs = _Messages(session, core, triage.subjects, triage.to_send).jobs()
        return cls(triage, _not_queued(session, jobs))

    def apply(self, session: Session, now: datetime) -> dict[int, Status]:
        """Claim and queue in `session` (a write transaction); the end state of each reminder it ended."""
        triage, fresh = self.triage, self.fresh
        ends = list(triage.ends)
        for reminder in triage.to_send:
            queued = len(fresh[reminder.id])
            ends.append((reminder, Status.SENT, f"{queued} message(s) queued") if queued
                        else (reminder, Status.SKIPPED, "no reachable chat account"))
        claimed = finish_many(session, ends, now)  # what another scheduler ended meanwhile is not ours to queue
        enqueue_many(session, DELIVER, [job for reminder in triage.to_send if reminder.id in claimed
                                        for job in fresh[reminder.id]], now)  # once per key: checked again here
        if triage.deferred:
            defer_many(session, triage.deferred, triage.morning)
        return {reminder.id: status for reminder, status, _ in ends if reminder.id in claimed}


@dataclass
class _Triage:
    """The due reminders of a batch sorted by what becomes of them before any message is composed."""

    subjects: Subjects  # what they are about
    morning: datetime  # when the deferred ones fall due again
    ends: list[End] = field(default_factory=list)  # missed, cancelled or skipped, with why
    deferred: list[Reminder] = field(default_factory=list)  # reached late in the quiet hours
    to_send: list[Reminder] = field(default_factory=list)

    @classmethod
    def of(cls, session: Session, reminders: Sequence[Reminder], now: datetime, on_time: timedelta) -> "_Triage":
        """Sort the reminders of `reminders` due by `now` (see `send_all`)."""
        due = [reminder for reminder in reminders if reminder.due_at <= now]
        live = [reminder for reminder in due if not past_grace(reminder, now)]
        subjects = load_subjects(session, live)
        morning, quiet = outside_quiet_hours(now)
        triage = cls(subjects, morning, [(reminder, Status.MISSED, f"due {reminder.due_at.isoformat()}, past its grace")
                                         for reminder in due if past_grace(reminder, now)])
        wanted = wanting(session, {reminder.student_id for reminder in live if reminder.student_id is not None})
        for reminder in live:
            why = reason(reminder, subjects, now)
            if why is not None:
                triage.ends.append((reminder, Status.CANCELLED, why))
            elif reminder.student_id is not None and reminder.student_id not in wanted:
                triage.ends.append((reminder, Status.SKIPPED, "the student turned reminders off"))
            elif quiet and now - reminder.due_at >= on_time:
                triage.deferred.append(reminder)  # due in the day but reached at night (no scheduler ran)
            else:
                triage.to_send.append(reminder)
        return triage


def _not_queued(session: Session, jobs: dict[int, list[Job]]) -> dict[int, list[Job]]:
    """Each reminder's jobs without those queued before (its claim was lost after its messages went)."""
    taken = queued_keys(session, DELIVER, [key for planned in jobs.values() for key, _ in planned])
    return {reminder_id: [job for job in planned if job[0][:KEY_LENGTH] not in taken]
            for reminder_id, planned in jobs.items()}


class _Messages:
    """The `deliver` jobs of a batch's reminders, with what they need (accounts, languages, conversations)
    loaded in a few queries."""

    def __init__(self, session: Session, core: Core, subjects: Subjects, reminders: Sequence[Reminder]) -> None:
        self.session, self.core, self.subjects, self.reminders = session, core, subjects, reminders
        self._said: dict[tuple[int, Language], list[Reply]] = {}

    def jobs(self) -> dict[int, list[Job]]:
        """Each reminder's jobs by its id ([] when nobody can be reached)."""
        jobs: dict[int, list[Job]] = {reminder.id: [] for reminder in self.reminders}
        personal = [reminder for reminder in self.reminders if Kind(reminder.kind) not in BULK_ITEMS]
        jobs.update((reminder.id, self._bulk(reminder)) for reminder in self.reminders
                    if Kind(reminder.kind) in BULK_ITEMS)
        jobs.update(self._named_jobs([(reminder, reminder.channel, reminder.recipient) for reminder in personal
                                      if reminder.channel and reminder.recipient]))
        jobs.update(self._notice_jobs([(reminder, reminder.student_id) for reminder in personal
                                       if not (reminder.channel and reminder.recipient)
                                       and reminder.student_id is not None]))
        return jobs

    def _named_jobs(self, named: Sequence[tuple[Reminder, str, str]]) -> dict[int, list[Job]]:
        """The jobs of reminders that name their conversation (channel, recipient), their accounts in a query
        per channel."""
        by_recipient = {(account.channel, account.external_id): account for channel in {c for _, c, _ in named}
                        for account in self._accounts(ChannelAccount.external_id,
                                                      {r for _, c, r in named if c == channel}, channel)}
        return {reminder.id: self._named(reminder, channel, recipient, by_recipient.get((channel, recipient)))
                for reminder, channel, recipient in named}

    def _notice_jobs(self, noticed: Sequence[tuple[Reminder, int]]) -> dict[int, list[Job]]:
        """The jobs of reminders to each reachable account of their student, in the language of its latest
        conversation (else the student's preferred one)."""
        student_ids = {student_id for _, student_id in noticed}
        by_student: dict[int, list[ChannelAccount]] = {}
        for account in self._accounts(ChannelAccount.student_id, student_ids):
            if account.student_id is not None:  # always: found by its student
                by_student.setdefault(account.student_id, []).append(account)
        preferred = self._preferred(student_ids)
        latest = latest_conversations(self.session, [a for accounts in by_student.values() for a in accounts])
        return {reminder.id: notice_jobs(reminder.key, by_student.get(student_id, []),
                                         preferred.get(student_id, Language.JA), latest, partial(self.said, reminder))
                for reminder, student_id in noticed}

    def said(self, reminder: Reminder, lang: Language) -> list[Reply]:
        """The reminder's message in `lang`, composed once per batch."""
        if (reminder.id, lang) not in self._said:
            self._said[reminder.id, lang] = compose(self.session, self.core, reminder, lang, self.subjects)
        return self._said[reminder.id, lang]

    def _accounts(self, column: InstrumentedAttribute[Any], values: set[Any],
                  channel: str | None = None) -> list[ChannelAccount]:
        """The chat accounts (on `channel`, if given) whose `column` is one of `values`, oldest first."""
        found: list[ChannelAccount] = []
        for chunk in chunks(sorted(values)):
            query = select(ChannelAccount).where(column.in_(chunk)).order_by(ChannelAccount.id)
            if channel is not None:  # (channel, external_id) is the unique index's order
                query = query.where(ChannelAccount.channel == channel)
            found.extend(self.session.scalars(query))
        return found

    def _preferred(self, student_ids: set[int]) -> dict[int, Language]:
        languages: dict[int, Language] = {}
        for chunk in chunks(sorted(student_ids)):
            languages.update((student_id, Language(lang or Language.JA)) for student_id, lang in self.session.execute(
                select(Student.id, Student.preferred_language).where(Student.id.in_(chunk))))
        return languages

    def _named(self, reminder: Reminder, channel: str, recipient: str, account: ChannelAccount | None) -> list[Job]:
        """The one conversation a reminder names (`channel`, `recipient`: its columns, both set), if it may still
        be sent to: its chat account is still linked to the student (a nudge is only for a student known by
        their account) and, on LINE, still following."""
        if account is None or account.student_id is None or account.student_id != reminder.student_id:
            return []
        if not reachable(account):
            return []
        lang = Language(reminder.lang or Language.JA.value)
        return [(reminder.key, replies_job(channel=channel, user_id=recipient,
                                           conversation_id=reminder.conversation_id or "",
                                           replies=self.said(reminder, lang)))]

    def _bulk(self, reminder: Reminder) -> list[Job]:
        """A period reminder to every linked student it concerns: LINE multicasts of at most 500, Slack DMs."""
        item = self.core.profile.catalog.get(BULK_ITEMS[Kind(reminder.kind)])
        query = (select(ChannelAccount, Student).join(Student, Student.id == ChannelAccount.student_id)
                 .where(Student.reminders_enabled.is_(True), Student.year >= (item.min_year or 1))
                 .order_by(ChannelAccount.id))
        audience = [(account, student) for account, student in self.session.execute(query).all()
                    if reachable(account)]
        latest = latest_conversations(self.session, [account for account, _ in audience])
        line_by_lang: dict[Language, list[str]] = {lang: [] for lang in Language}
        jobs: list[Job] = []
        for account, student in audience:
            conversation = latest.get((account.channel, account.external_id))
            lang = Language(conversation.lang) if conversation and conversation.lang else student.preferred_language
            if account.channel == Channel.LINE.value:
                line_by_lang[lang].append(account.external_id)
            else:
                jobs.append((f"{reminder.key}:{account.channel}:{account.external_id}", replies_job(
                    channel=account.channel, user_id=account.external_id, conversation_id="",
                    replies=self.said(reminder, lang))))
        for lang, users in line_by_lang.items():
            if not users:
                continue
            replies = to_json(self.said(reminder, lang))
            for index, chunk in enumerate(chunks(users, MULTICAST_MAX)):
                jobs.append((f"{reminder.key}:line:{lang.value}:{index}",
                             {"kind": "multicast", "channel": "line", "users": chunk, "replies": replies}))
        return jobs


# --- what a reminder says ------------------------------------------------------------------------------------


def compose(session: Session, core: Core, reminder: Reminder, lang: Language,
            subjects: Subjects | None = None) -> list[Reply]:
    """The reminder's message in `lang`, with how to stop reminders; `subjects` are the batch's loaded ones."""
    subjects = subjects if subjects is not None else load_subjects(session, [reminder])
    kind = Kind(reminder.kind)
    stop = say("reminders.how_to_stop", lang)
    if kind in (Kind.READY_NOW, Kind.READY_PICKUP_DAY, Kind.READY_UNCOLLECTED):
        order = subjects.orders[reminder.subject or ""]
        items = join_list([core.profile.catalog.get(code).name(lang) for code in subjects.item_codes.get(order.id, [])],
                          lang)
        window = pickup_window(order, core.calendar)
        text = say(f"reminders.{kind.value}", lang, items=items, number=order.number,
                   window=pickup_window_text(window, lang, core.profile) if window else "",
                   hours=_office_hours(core))
        buttons = (basic.topic_button(Intent.WINDOW_PICKUP_HOWTO, lang),)
    elif kind is Kind.PAYMENT_DEADLINE:
        payment = subjects.payments[reminder.subject or ""]
        order = payment.order
        text = say("reminders.payment_deadline", lang, number=order.number if order else "",
                   deadline=format_datetime(payment.deadline, lang) if payment.deadline else "-")
        buttons = (basic.topic_button(Intent.PAYMENT_METHODS, lang),)
    elif kind in (Kind.PRINT_EXPIRING, Kind.SHIPPED):
        order = subjects.orders[reminder.subject or ""]
        items = join_list([item_name(code, core.profile)(lang) for code in subjects.item_codes.get(order.id, [])],
                          lang)
        fulfilment = subjects.fulfilments.get(order.id)
        expires_at = fulfilment.expires_at if fulfilment else None
        text = say(f"reminders.{kind.value}", lang, items=items, number=order.number,
                   print_number=fulfilment.print_number if fulfilment else "-",
                   expires=format_datetime(expires_at, lang) if expires_at else "-")
        buttons = (QuickReply(say("status.check_button", lang), intent_payload(Intent.ORDER_STATUS)),)
    elif kind is Kind.LINK_EXPIRING:
        text = say("reminders.link_expiring", lang, minutes=core.profile.one_time_link_minutes)
        buttons = (QuickReply(say("reminders.new_link", lang), intent_payload(Intent.SECOND_PASSWORD_RESET)),)
    else:
        item = core.profile.catalog.get(BULK_ITEMS[kind])
        period = item.application_period
        start, end = (_month_day(value, lang) for value in (period.start, period.end)) if period else ("", "")
        text = say(f"reminders.{kind.value}", lang, item=item.name(lang), start=start, end=end)
        buttons = (basic.topic_button(Intent.FEE_ITEMS, lang),)
    return [Text(f"{text}\n\n{stop}", (*buttons, basic.menu_button(lang)))]


def _office_hours(core: Core) -> str:
    hours = core.profile.contact(Service.STUDENT_SUPPORT).hours
    return f"{hours.open:%H:%M}–{hours.close:%H:%M}"


def _month_day(value: str, lang: Language) -> str:
    month, day = (int(part) for part in value.split("-"))
    sample = date(2000, month, day)
    return f"{sample.month}月{sample.day}日" if lang is Language.JA else f"{sample:%b} {sample.day}"
