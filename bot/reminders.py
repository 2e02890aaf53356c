"""Sending a due reminder exactly once: in one transaction it is checked (still due, within its grace, still
relevant, wanted), claimed, and its messages queued for delivery; a second scheduler's claim finds nothing."""

import logging
from datetime import date, datetime
from itertools import islice

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.delivery import deliver_later, latest_conversation_of, notify_student, reachable
from core.enums import Language, Service
from core.formatting import format_datetime, join_list
from core.jobs import DELIVER, enqueue
from core.models import ChannelAccount, Order, Payment, Reminder, Student
from core.order_texts import item_name, pickup_window, pickup_window_text
from core.reminders import (
    Kind,
    Status,
    finish,
    outside_quiet_hours,
    past_grace,
    wants_reminders,
    why_not_relevant,
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


def send_reminder(core: Core, reminder_id: int) -> Status | None:
    """Send one reminder if it is due; its end state, or None when it is not due or was taken already."""
    now = core.now()
    with core.transaction() as session:
        reminder = session.get(Reminder, reminder_id)
        if reminder is None or reminder.status != Status.SCHEDULED.value or reminder.due_at > now:
            return None
        status = send_in(session, core, reminder, now)
    log.info("reminder %d (%s): %s", reminder_id, reminder.kind, status)
    return status


def send_in(session: Session, core: Core, reminder: Reminder, now: datetime) -> Status | None:
    """`send_reminder` inside the caller's transaction (the agents' `ready` sends the first one at once);
    None, and nothing changed, while it is not due (moved out of the quiet hours, it waits until 8:00)."""
    if reminder.due_at > now:
        return None
    if past_grace(reminder, now):
        return _end(session, reminder, Status.MISSED, now, f"due {reminder.due_at.isoformat()}, past its grace")
    reason = why_not_relevant(session, reminder, now)
    if reason is not None:
        return _end(session, reminder, Status.CANCELLED, now, reason)
    if not wants_reminders(session, reminder.student_id):
        return _end(session, reminder, Status.SKIPPED, now, "the student turned reminders off")
    morning, quiet = outside_quiet_hours(now)
    if quiet:  # due in the day but reached at night (the scheduler was down): it waits for 8:00 too
        reminder.due_at, reminder.deferred = morning, True
        return None
    if not finish(session, reminder.id, Status.SENT, now):
        return None  # another scheduler claimed it first
    queued = _queue(session, core, reminder, now)
    if queued == 0:
        reminder.status, reminder.outcome = Status.SKIPPED.value, "no reachable chat account"
        return Status.SKIPPED
    reminder.outcome = f"{queued} message(s) queued"
    return Status.SENT


def _end(session: Session, reminder: Reminder, status: Status, now: datetime, outcome: str) -> Status | None:
    return status if finish(session, reminder.id, status, now, outcome[:200]) else None


def _queue(session: Session, core: Core, reminder: Reminder, now: datetime) -> int:
    """Queue the reminder's messages (deduplicated by the reminder's key); how many were queued."""
    kind = Kind(reminder.kind)
    if kind in BULK_ITEMS:
        return _queue_bulk(session, core, reminder, now)
    if reminder.channel and reminder.recipient:
        if not _reachable(session, reminder):
            return 0
        lang = Language(reminder.lang or Language.JA.value)
        return int(deliver_later(session, key=reminder.key, channel=reminder.channel, user_id=reminder.recipient,
                                 conversation_id=reminder.conversation_id or "",
                                 replies=compose(session, core, reminder, lang), now=now))
    if reminder.student_id is None:
        return 0
    return notify_student(session, reminder.student_id, reminder.key,
                          lambda lang: compose(session, core, reminder, lang), now)


def _queue_bulk(session: Session, core: Core, reminder: Reminder, now: datetime) -> int:
    """A period reminder to every linked student it concerns: LINE multicasts of at most 500, Slack DMs."""
    item = core.profile.catalog.get(BULK_ITEMS[Kind(reminder.kind)])
    query = (select(ChannelAccount, Student).join(Student, Student.id == ChannelAccount.student_id)
             .where(Student.reminders_enabled.is_(True), Student.year >= (item.min_year or 1))
             .order_by(ChannelAccount.id))
    line_by_lang: dict[Language, list[str]] = {lang: [] for lang in Language}
    queued = 0
    for account, student in session.execute(query).all():
        if not reachable(account):
            continue
        latest = latest_conversation_of(session, account)
        lang = Language(latest.lang) if latest is not None and latest.lang else student.preferred_language
        if account.channel == Channel.LINE.value:
            line_by_lang[lang].append(account.external_id)
        else:
            queued += deliver_later(session, key=f"{reminder.key}:{account.channel}:{account.external_id}",
                                    channel=account.channel, user_id=account.external_id, conversation_id="",
                                    replies=compose(session, core, reminder, lang), now=now)
    for lang, users in line_by_lang.items():
        replies = to_json(compose(session, core, reminder, lang))
        for index, chunk in enumerate(_chunks(users, MULTICAST_MAX)):
            queued += enqueue(session, DELIVER, f"{reminder.key}:line:{lang.value}:{index}",
                              {"kind": "multicast", "channel": "line", "users": chunk, "replies": replies}, now)
    return queued


def _reachable(session: Session, reminder: Reminder) -> bool:
    """Whether the one conversation a reminder names may still be sent to: its chat account is still linked to
    the student (a nudge is only for a student known by their account) and, on LINE, still following."""
    account = session.scalars(select(ChannelAccount).where(ChannelAccount.channel == reminder.channel,
                                                           ChannelAccount.external_id == reminder.recipient)).first()
    if account is None or account.student_id is None or account.student_id != reminder.student_id:
        return False
    return reachable(account)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    iterator = iter(items)
    return [chunk for chunk in iter(lambda: list(islice(iterator, size)), [])]


# --- what a reminder says ------------------------------------------------------------------------------------


def compose(session: Session, core: Core, reminder: Reminder, lang: Language) -> list[Reply]:
    """The reminder's message in `lang`, with how to stop reminders."""
    kind = Kind(reminder.kind)
    stop = say("reminders.how_to_stop", lang)
    if kind in (Kind.READY_NOW, Kind.READY_PICKUP_DAY, Kind.READY_UNCOLLECTED):
        order = session.scalars(select(Order).where(Order.number == reminder.subject)).one()
        items = join_list([core.profile.catalog.get(item.item_code).name(lang) for item in order.items], lang)
        window = pickup_window(order, core.calendar)
        text = say(f"reminders.{kind.value}", lang, items=items, number=order.number,
                   window=pickup_window_text(window, lang, core.profile) if window else "",
                   hours=_office_hours(core))
        buttons = (basic.topic_button(Intent.WINDOW_PICKUP_HOWTO, lang),)
    elif kind is Kind.PAYMENT_DEADLINE:
        payment = session.scalars(select(Payment).where(Payment.reference == reminder.subject)).one()
        order = session.get(Order, payment.order_id)
        text = say("reminders.payment_deadline", lang, number=order.number if order else "",
                   deadline=format_datetime(payment.deadline, lang))
        buttons = (basic.topic_button(Intent.PAYMENT_METHODS, lang),)
    elif kind in (Kind.PRINT_EXPIRING, Kind.SHIPPED):
        order = session.scalars(select(Order).where(Order.number == reminder.subject)).one()
        items = join_list([item_name(item.item_code, core.profile)(lang) for item in order.items], lang)
        fulfilment = order.fulfilment
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
