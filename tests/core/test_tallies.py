"""The business counters never go down: rows that retention or forgetting deletes leave what they counted for
as tallies, and totals are live rows plus tallies, on SQLite and PostgreSQL."""

import json
import logging
from datetime import timedelta

from sqlalchemy import func, select

from core.conversations import ConversationState, save_state
from core.enums import Language, LinkPurpose
from core.handoffs import ClosedHow, Reason, close, open_ticket
from core.jobs import DELIVER, enqueue
from core.models import HandoffTicket, InboundEvent, MetricTally, OneTimeLink, Reminder, TranscriptEntry
from core.retention import forget_student, purge_expired
from core.students import create_student
from core.tallies import SERIES, set_aside, totals

NUMBER, EMAIL = "24M1001", "taro.yamada@example.ac.jp"
LINE_USER = "U" + "a1" * 16


def _ticket(session, conversation, user, reason, at, how=None, student_id=None):
    ticket, _ = open_ticket(session, conversation_id=conversation, channel="line", user_id=user,
                            student_id=student_id, lang=Language.JA, reason=reason, topic=None, bot_said=None, now=at)
    if how is not None:
        close(session, ticket.id, how, at)
    return ticket


def _reminder(session, key, at, status, *, deferred=False, student_id=None, kind="ready_now"):
    session.add(Reminder(kind=kind, key=key, student_id=student_id, due_at=at, grace=60, status=status,
                         deferred=deferred, created_at=at, done_at=None if status == "scheduled" else at))


def _link(session, student_id, tag, at, used):
    session.add(OneTimeLink(student_id=student_id, purpose=LinkPurpose.SECOND_PASSWORD_RESET,
                            token_hash=tag * 64, email=EMAIL, created_at=at, expires_at=at + timedelta(minutes=30),
                            used_at=at if used else None))


def _undelivered(session, key, at, user="U-someone"):
    enqueue(session, DELIVER, key, {"kind": "replies", "channel": "line", "user": user, "replies": []}, at)
    session.execute(InboundEvent.__table__.update().where(InboundEvent.event_id == key)
                    .values(status="failed", processed_at=at))


def populate(core, clock):
    """Something for every counter twice over: once 200 days old (purged), once the student's (forgotten);
    and a little that stays: a recent handoff and reminder."""
    now = clock.now()
    old = now - timedelta(days=200)
    with core.transaction() as session:
        student = create_student(session, student_number=NUMBER, department="medicine", year=3, now=now,
                                 email=EMAIL)
        other = create_student(session, student_number="25N2002", department="nursing", year=2, now=old)
        save_state(session, ConversationState(f"line:{LINE_USER}", "line", LINE_USER, student_id=student.id), now)
        # Old: purged by the 180-day retention.
        _ticket(session, "web:old-1", "old-1", Reason.ASKED, old, ClosedHow.RESOLVED)
        _ticket(session, "web:old-2", "old-2", Reason.MISSES, old, ClosedHow.WITHDRAWN)
        for key, status, deferred in (("o-sent", "sent", True), ("o-missed", "missed", False),
                                      ("o-cancelled", "cancelled", False), ("o-skipped", "skipped", True)):
            _reminder(session, key, old, status, deferred=deferred, student_id=other.id)
        _link(session, other.id, "a", old, used=True)
        _link(session, other.id, "b", old, used=False)
        _undelivered(session, "ready_now:OLD-0001:line:U-old", old)
        _undelivered(session, "agent-reply:9", old)  # not a reminder's: counts for nothing
        # The student's: deleted when they are forgotten.
        _ticket(session, f"line:{LINE_USER}", LINE_USER, Reason.ASKED, now, ClosedHow.HANDED_BACK,
                student_id=student.id)
        _ticket(session, "web:theirs", "theirs", Reason.COMPLAINT, now, student_id=student.id)  # still open
        _reminder(session, "t-sent", now, "sent", student_id=student.id, kind="link_expiring")
        _reminder(session, "t-deferred", now, "scheduled", deferred=True, student_id=student.id)
        _link(session, student.id, "c", now, used=True)
        _undelivered(session, f"payment_deadline:K7PM-3QXA:line:{LINE_USER}", now, user=LINE_USER)
        # Recent and someone else's: stays.
        _ticket(session, "web:recent", "recent", Reason.ASKED, now, ClosedHow.RESOLVED)
        _reminder(session, "r-sent", now, "sent", student_id=other.id)


def rows(core) -> int:
    with core.transaction() as session:
        return sum(session.scalar(select(func.count()).select_from(model)) or 0
                   for model in (HandoffTicket, Reminder, OneTimeLink, InboundEvent))


def current(core):
    with core.transaction() as session:
        return totals(session)


def test_purging_and_forgetting_leave_every_counter_where_it_was(core, clock):
    populate(core, clock)
    before = current(core)
    assert all(before[series.name] for series in SERIES), "the data counts for every counter"
    assert before["reminders_failed"] == {("ready_now", "missed"): 1, ("ready_now", "undelivered"): 1,
                                          ("payment_deadline", "undelivered"): 1}
    assert before["handoffs_opened"] == {("asked",): 3, ("misses",): 1, ("complaint",): 1}
    assert before["handoffs_closed"] == {("resolved",): 2, ("withdrawn",): 1, ("handed_back",): 1}
    assert before["reminders_deferred"] == {("ready_now",): 3}
    assert before["events_failed"] == {("deliver",): 3}  # every failed job, a reminder's or not
    stored = rows(core)

    purged = purge_expired(core, batch=2)
    assert purged.deleted["handoff_tickets"] == 2 and purged.deleted["reminders"] == 4
    assert purged.deleted["one_time_links"] == 2 and purged.deleted["inbound_events"] == 2
    assert current(core) == before

    with core.transaction() as session:
        forgotten = forget_student(session, NUMBER, now=core.now())
    assert forgotten is not None and forgotten.deleted["handoff_tickets"] == 2
    assert forgotten.deleted["reminders"] == 2 and forgotten.deleted["one_time_links"] == 1
    assert forgotten.deleted["inbound_events"] >= 1, "their undelivered reminder too"
    assert rows(core) < stored
    assert current(core) == before

    with core.transaction() as session:  # a new event still adds exactly one
        _ticket(session, "web:new", "new", Reason.ASKED, core.now(), ClosedHow.RESOLVED)
    after = current(core)
    assert after["handoffs_opened"] == {**before["handoffs_opened"], ("asked",): 4}
    assert after["handoffs_closed"] == {**before["handoffs_closed"], ("resolved",): 3}
    assert {name: counts for name, counts in after.items() if not name.startswith("handoffs_")} == \
        {name: counts for name, counts in before.items() if not name.startswith("handoffs_")}


def test_tallies_of_one_label_set_add_up_in_one_row(core, clock):
    now = clock.now()
    with core.transaction() as session:
        for index in range(3):
            _ticket(session, f"web:{index}", str(index), Reason.ASKED, now, ClosedHow.RESOLVED)
    with core.transaction() as session:
        first, *rest = session.scalars(select(HandoffTicket.id).order_by(HandoffTicket.id)).all()
        set_aside(session, HandoffTicket, HandoffTicket.id == first)
        session.execute(HandoffTicket.__table__.delete().where(HandoffTicket.id == first))
        set_aside(session, HandoffTicket, HandoffTicket.id.in_(rest))
        session.execute(HandoffTicket.__table__.delete().where(HandoffTicket.id.in_(rest)))
    with core.transaction() as session:
        stored = session.execute(select(MetricTally.series, MetricTally.labels, MetricTally.count)
                                 .order_by(MetricTally.series)).all()
        assert [tuple(row) for row in stored] == [("handoffs_closed", '{"how":"resolved"}', 3),
                                                  ("handoffs_opened", '{"reason":"asked"}', 3)]
        assert totals(session)["handoffs_opened"] == {("asked",): 3}


def test_a_table_no_counter_reads_is_let_through(core):
    with core.transaction() as session:
        set_aside(session, TranscriptEntry, TranscriptEntry.id > 0)
        assert session.scalar(select(func.count(MetricTally.id))) == 0


def test_a_rolled_back_deletion_leaves_no_tally(core, clock):
    with core.transaction() as session:
        _ticket(session, "web:x", "x", Reason.ASKED, clock.now())
    try:
        with core.transaction() as session:
            set_aside(session, HandoffTicket, HandoffTicket.id > 0)
            raise RuntimeError("the delete failed")
    except RuntimeError:
        pass
    with core.transaction() as session:
        assert session.scalar(select(func.count(MetricTally.id))) == 0
        assert totals(session)["handoffs_opened"] == {("asked",): 1}


def test_a_tally_of_no_known_counter_is_left_out_with_a_warning(core, caplog):
    with core.transaction() as session:
        session.add(MetricTally(series="handoffs_opened", labels=json.dumps({"why": "asked"}), count=5))
        session.add(MetricTally(series="gone_series", labels="{}", count=2))
    caplog.set_level(logging.WARNING, logger="core.tallies")
    assert current(core)["handoffs_opened"] == {}
    assert "gone_series" in caplog.text and '{"why": "asked"}' in caplog.text
