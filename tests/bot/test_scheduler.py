"""The reminder scheduler: due reminders sent on a sweep and not before, once even when run twice or by two
schedulers at once (in batches: each reminder claimed by one batch), quiet hours, downtime within and past the
grace, APScheduler running the sweep every 30 s and the nightly work (no job per reminder), and one active
scheduler per deployment (the PostgreSQL advisory lock)."""

import json
import secrets
import threading
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import inspect, select, text, update

from bot.delivery import reminders as sending
from bot.delivery import scheduler as scheduling
from bot.delivery.reminders import send_all, send_due, send_reminder
from bot.delivery.scheduler import SWEEP_EVERY, Scheduler
from bot.runtime import embedded_scheduler
from core import reminders
from core.clock import TOKYO
from core.models import ChannelAccount, InboundEvent, Order, Reminder
from core.reminders import Kind, Status
from core.settings import SchedulerMode, Settings
from tests.core.test_orders import add_student
from tests.core.test_reminders import ready_order

TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)  # the clock fixture's time


@pytest.fixture
def make_scheduler(core):
    """Schedulers on the test core (a lock key of their own), stopped and closed after the test."""
    made: list[Scheduler] = []

    def build(**options) -> Scheduler:
        options.setdefault("lock_key", secrets.randbits(62))
        options.setdefault("standby_retry", 0.05)
        scheduler = Scheduler(core, **options)
        made.append(scheduler)
        return scheduler

    yield build
    for scheduler in made:
        scheduler.stop()
        scheduler.close()


def postgresql_only(core) -> None:
    if core.engine.dialect.name != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's; SQLite deployments run one scheduler process")


def link(core, student_id: int, line_user: str) -> None:
    with core.transaction() as session:
        session.add(ChannelAccount(channel="line", external_id=line_user, student_id=student_id, following=True,
                                   linked_at=core.now(), created_at=core.now(), updated_at=core.now()))


def linked_students(core) -> None:
    """Two linked students in year 2 and above (the parking-fee period's audience) and one in year 1."""
    for number, year, line_user in (("24M1001", 3, "U-three"), ("25M1002", 2, "U-two"), ("26M1003", 1, "U-one")):
        link(core, add_student(core, number=number, year=year).id, line_user)


def bulk(core, key: str, due_at: datetime, kind: Kind = Kind.PARKING_PERIOD) -> int:
    """A period reminder (always relevant: sent to every linked student it concerns)."""
    with core.transaction() as session:
        reminder = reminders.schedule(session, kind=kind, key=key, due_at=due_at, now=core.now(),
                                      subject="parking_fee" if kind is Kind.PARKING_PERIOD else "insurance_renewal")
        assert reminder is not None
        return reminder.id


def row(core, reminder_id: int) -> Reminder:
    with core.transaction() as session:
        reminder = session.get(Reminder, reminder_id)
        assert reminder is not None
        return reminder


def deliveries(core) -> list[dict]:
    """The messages queued for the worker to send, as their payloads."""
    with core.transaction() as session:
        return [json.loads(payload) for payload in session.scalars(
            select(InboundEvent.payload).where(InboundEvent.channel == "deliver").order_by(InboundEvent.id))]


# --- the sweep --------------------------------------------------------------------------------------------


def test_a_due_reminder_is_sent_on_a_sweep_and_not_before(core, clock, make_scheduler):
    linked_students(core)
    reminder_id = bulk(core, "parking_period:test", TUESDAY + timedelta(hours=1))
    scheduler = make_scheduler()

    assert scheduler.tick().outcomes == {}
    clock.advance(minutes=59, seconds=59)
    assert scheduler.tick().outcomes == {}
    assert row(core, reminder_id).status == Status.SCHEDULED and deliveries(core) == []

    clock.advance(seconds=1)
    assert scheduler.tick().outcomes == {Status.SENT: 1}
    assert row(core, reminder_id).status == Status.SENT
    [multicast] = deliveries(core)
    assert multicast["kind"] == "multicast" and sorted(multicast["users"]) == ["U-three", "U-two"]  # not year 1
    assert scheduler.tick().outcomes == {}, "sent once"
    assert len(deliveries(core)) == 1


def test_a_ready_order_is_reminded_at_once_and_again_at_its_pickup_time(core, clock, make_scheduler):
    number = ready_order(core, clock)
    with core.transaction() as session:
        order = session.scalars(select(Order).where(Order.number == number)).one()
        student_id = order.student_id
        reminders.schedule_ready(session, order, core.calendar, core.now())
    link(core, student_id, "U-student")
    scheduler = make_scheduler()

    assert scheduler.tick().outcomes == {Status.SENT: 1}  # ready now
    clock.set(datetime(2026, 11, 25, 13, 0, tzinfo=TOKYO))  # the pickup window opens on Wednesday at 13:00
    assert scheduler.tick().outcomes == {Status.SENT: 1}
    sent = deliveries(core)
    assert [payload["job"] for payload in sent] == [f"ready_now:{number}:line:U-student",
                                                    f"ready_pickup_day:{number}:line:U-student"]
    assert all(payload["user"] == "U-student" and payload["kind"] == "replies" for payload in sent)


def test_quiet_hours_move_a_22_00_reminder_to_8_00(core, clock, make_scheduler):
    linked_students(core)
    evening = datetime(2026, 11, 24, 22, 0, tzinfo=TOKYO)
    reminder_id = bulk(core, "parking_period:evening", evening)
    reminder = row(core, reminder_id)
    assert reminder.deferred and reminder.due_at == datetime(2026, 11, 25, 8, 0, tzinfo=TOKYO)
    scheduler = make_scheduler()

    for at in (evening, datetime(2026, 11, 25, 3, 0, tzinfo=TOKYO), datetime(2026, 11, 25, 7, 59, tzinfo=TOKYO)):
        clock.set(at)
        assert scheduler.tick().outcomes == {}, at
    clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=TOKYO))
    assert scheduler.tick().outcomes == {Status.SENT: 1}
    assert len(deliveries(core)) == 1


def test_after_downtime_a_reminder_within_its_grace_is_sent_and_stale_ones_are_missed(core, clock, make_scheduler):
    linked_students(core)
    clock.set(TUESDAY - timedelta(days=10))  # scheduled while the scheduler still ran
    within = bulk(core, "parking_period:within", TUESDAY - timedelta(days=2))  # grace: 3 days
    stale = [bulk(core, f"insurance_period:stale{index}", TUESDAY - timedelta(days=4), Kind.INSURANCE_PERIOD)
             for index in range(20)]
    clock.set(TUESDAY)  # back up after the downtime

    assert make_scheduler().tick().outcomes == {Status.SENT: 1, Status.MISSED: 20}
    assert row(core, within).status == Status.SENT
    assert {row(core, reminder_id).status for reminder_id in stale} == {Status.MISSED}
    assert "past its grace" in row(core, stale[0]).outcome
    assert [payload["job"] for payload in deliveries(core)] == ["parking_period:within:line:ja:0"], "no burst"


def test_a_reminder_run_twice_queues_one_message(core, make_scheduler):
    linked_students(core)
    reminder_id = bulk(core, "parking_period:twice", TUESDAY)
    scheduler = make_scheduler()

    assert send_reminder(core, reminder_id) is Status.SENT
    assert scheduler.tick().outcomes == {}, "the sweep ran after the row was claimed"
    # Even a claim lost after the send (the row put back to scheduled) sends nothing twice: the message's
    # job key is the reminder's.
    with core.transaction() as session:
        session.execute(update(Reminder).where(Reminder.id == reminder_id).values(status=Status.SCHEDULED.value))
    scheduler.tick()
    assert len(deliveries(core)) == 1


@pytest.mark.parametrize("rounds", [1, 2])
def test_two_sweeps_racing_claim_each_reminder_once(core, make_scheduler, rounds):
    linked_students(core)
    ids = [bulk(core, f"parking_period:race{index}", TUESDAY - timedelta(minutes=index)) for index in range(30)]
    first, second = make_scheduler(), make_scheduler()  # two processes' schedulers: no shared thread locks
    start = threading.Barrier(2)
    results = {}

    def sweep(scheduler: Scheduler) -> None:
        start.wait(timeout=10)
        for _ in range(rounds):
            results.setdefault(scheduler, []).append(scheduler.tick())

    threads = [threading.Thread(target=sweep, args=(scheduler,)) for scheduler in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    sent = sum(sweep.outcomes[Status.SENT] for sweeps in results.values() for sweep in sweeps)
    assert sent == len(ids)
    assert {row(core, reminder_id).status for reminder_id in ids} == {Status.SENT}
    jobs = [payload["job"] for payload in deliveries(core)]
    assert sorted(jobs) == sorted(f"parking_period:race{index}:line:ja:0" for index in range(30))


def test_the_yearly_periods_are_scheduled_once_a_day(core, clock, make_scheduler):
    scheduler = make_scheduler()
    assert scheduler.tick().periods_scheduled == 2  # next year's parking-fee and insurance periods
    assert scheduler.tick().periods_scheduled == 0
    clock.advance(days=1)
    assert make_scheduler().tick().periods_scheduled == 0, "their keys are taken"
    with core.transaction() as session:
        keys = set(session.scalars(select(Reminder.key)))
    assert keys == {"parking_period:2027", "insurance_period:2027"}


def test_the_digest_hook_runs_on_each_sweep(make_scheduler):
    calls = []
    scheduler = make_scheduler(digest=lambda: calls.append(1))
    scheduler.tick()
    scheduler.tick()
    assert calls == [1, 1]


def test_a_reminder_due_just_before_the_quiet_hours_is_sent_by_the_next_sweep(core, clock, make_scheduler):
    linked_students(core)
    reminder_id = bulk(core, "parking_period:late_evening", datetime(2026, 11, 24, 20, 59, 50, tzinfo=TOKYO))
    scheduler = make_scheduler()
    clock.set(datetime(2026, 11, 24, 20, 59, 40, tzinfo=TOKYO))
    assert scheduler.tick().outcomes == {}
    clock.advance(seconds=30)  # the next sweep, at 21:00:10: reached on time, not moved to the morning
    assert scheduler.tick().outcomes == {Status.SENT: 1}
    assert row(core, reminder_id).status == Status.SENT and len(deliveries(core)) == 1


def test_a_reminder_reached_in_the_quiet_hours_longer_after_its_time_waits_for_the_morning(core, clock,
                                                                                           make_scheduler):
    linked_students(core)
    reminder_id = bulk(core, "parking_period:down", datetime(2026, 11, 24, 20, 58, tzinfo=TOKYO))
    clock.set(datetime(2026, 11, 24, 21, 0, 10, tzinfo=TOKYO))  # no sweep ran for over two intervals
    assert make_scheduler().tick().outcomes == {}
    reminder = row(core, reminder_id)
    assert (reminder.status, reminder.due_at, reminder.deferred) == (
        Status.SCHEDULED, datetime(2026, 11, 25, 8, 0, tzinfo=TOKYO), True)
    assert deliveries(core) == []


# --- APScheduler ------------------------------------------------------------------------------------------


def test_apscheduler_runs_the_sweep_and_the_nightly_work_and_no_job_per_reminder(core, clock, make_scheduler):
    linked_students(core)
    evening = bulk(core, "parking_period:evening", datetime(2026, 11, 24, 22, 30, tzinfo=TOKYO))
    due_now = bulk(core, "parking_period:now", TUESDAY)
    scheduler = make_scheduler()
    scheduler.open(paused=True)

    jobs = {job.id: job for job in scheduler.apscheduler.get_jobs()}
    assert set(jobs) == {"sweep", "nightly"}, "the reminder rows are the only schedule"
    assert jobs["sweep"].func == scheduler.sweep and jobs["nightly"].func == scheduler.nightly
    # A due reminder is sent at most 30 s late, by the next sweep.
    assert jobs["sweep"].trigger.interval == SWEEP_EVERY == timedelta(seconds=30)
    assert str(jobs["nightly"].trigger) == "cron[hour='3', minute='30']" and jobs["nightly"].trigger.timezone == TOKYO
    assert {job.next_run_time <= datetime.now(TOKYO) for job in jobs.values()} == {True}, "both run at once"

    assert scheduler.sweep().outcomes == {Status.SENT: 1}
    assert row(core, due_now).status == Status.SENT
    assert scheduler.nightly().periods_scheduled == 2  # next year's parking-fee and insurance periods
    assert {job.id for job in scheduler.apscheduler.get_jobs()} == {"sweep", "nightly"}

    # A restarted scheduler needs nothing from the one before: its sweeps read the rows.
    scheduler.close()
    restarted = make_scheduler()
    restarted.open(paused=True)
    clock.set(datetime(2026, 11, 25, 7, 59, 59, tzinfo=TOKYO))
    assert restarted.tick().outcomes == {}, "moved out of the quiet hours"
    clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=TOKYO))
    assert restarted.tick().outcomes == {Status.SENT: 1}
    assert row(core, evening).status == Status.SENT
    assert restarted.tick().outcomes == {} and len(deliveries(core)) == 2
    assert "apscheduler_jobs" not in inspect(core.engine).get_table_names(), "APScheduler stores nothing"


def test_a_cancelled_reminder_is_not_sent_at_its_time(core, clock, make_scheduler):
    linked_students(core)
    reminder_id = bulk(core, "parking_period:cancelled", TUESDAY + timedelta(minutes=5))
    scheduler = make_scheduler()
    assert scheduler.tick().outcomes == {}
    with core.transaction() as session:
        reminders.finish(session, reminder_id, Status.CANCELLED, core.now(), "order collected")
    clock.advance(minutes=5)
    assert scheduler.tick().outcomes == {}
    assert row(core, reminder_id).status == Status.CANCELLED and deliveries(core) == []


def test_a_reminder_sent_before_a_crash_is_not_sent_again_after_the_restart(core, clock, make_scheduler):
    linked_students(core)
    reminder_id = bulk(core, "parking_period:crash", TUESDAY + timedelta(minutes=5))
    scheduler = make_scheduler()
    scheduler.open(paused=True)
    assert scheduler.tick().outcomes == {}, "not due yet"
    # Sent (say by another scheduler's sweep), then this process dies before its own sweep came.
    clock.advance(minutes=5)
    assert send_reminder(core, reminder_id) is Status.SENT
    scheduler.close()

    restarted = make_scheduler()
    restarted.open(paused=True)
    assert restarted.tick().outcomes == {}  # the restarted scheduler's sweep: nothing more is sent
    assert len(deliveries(core)) == 1


def test_a_reminder_due_while_down_past_its_grace_is_recorded_missed(core, make_scheduler):
    linked_students(core)
    reminder_id = bulk(core, "parking_period:missed", TUESDAY - timedelta(days=4))
    assert make_scheduler().tick().outcomes == {Status.MISSED: 1}
    assert row(core, reminder_id).status == Status.MISSED
    assert deliveries(core) == []


def test_a_closed_scheduler_runs_nothing_and_the_next_one_sends_what_fell_due(core, make_scheduler):
    linked_students(core)
    reminder_id = bulk(core, "parking_period:orphan", TUESDAY)
    scheduler = make_scheduler()
    scheduler.open(paused=True)
    assert scheduler.active
    scheduler.close()
    assert not scheduler.active and scheduler.apscheduler is None
    assert row(core, reminder_id).status == Status.SCHEDULED
    assert make_scheduler().tick().outcomes == {Status.SENT: 1}


def test_a_started_scheduler_leads_and_sweeps_at_once(core, make_scheduler):
    linked_students(core)
    reminder_id = bulk(core, "parking_period:on_start", TUESDAY - timedelta(hours=2))  # due while down
    swept = threading.Event()
    scheduler = make_scheduler(digest=swept.set)
    scheduler.start()
    assert scheduler.leading.wait(10)
    assert swept.wait(10)  # the sweep runs when the scheduler starts, not 30 s later
    assert row(core, reminder_id).status == Status.SENT
    scheduler.stop()
    assert not scheduler.leading.is_set() and not scheduler.active


# --- one active scheduler per deployment ------------------------------------------------------------------


def advisory_holders(core, key: int) -> list[int]:
    """Backend pids holding the advisory lock `key` (PostgreSQL splits a bigint key in two 32-bit halves)."""
    with core.engine.connect() as connection:
        return list(connection.scalars(text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND classid::bigint = :high AND objid::bigint = :low"),
            {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF}))


def test_two_schedulers_on_postgresql_one_leads_the_other_takes_over_when_it_stops(core, make_scheduler):
    postgresql_only(core)
    key = secrets.randbits(62)
    first, second = make_scheduler(lock_key=key), make_scheduler(lock_key=key)
    first.start()
    assert first.leading.wait(10)
    second.start()
    assert second.waiting.wait(10)  # refused the lock at least once
    assert not second.leading.is_set() and len(advisory_holders(core, key)) == 1
    assert first.active and not second.active

    first.stop()
    assert second.leading.wait(10)
    assert not first.leading.is_set() and len(advisory_holders(core, key)) == 1
    assert second.active and not first.active


def test_when_the_leaders_connection_dies_a_standby_takes_over(core, make_scheduler):
    postgresql_only(core)
    key = secrets.randbits(62)
    first, second = make_scheduler(lock_key=key), make_scheduler(lock_key=key)
    first.start()
    assert first.leading.wait(10)
    second.start()
    assert second.waiting.wait(10)
    [pid] = advisory_holders(core, key)
    first.waiting.clear()  # before the kill: the old leader may notice before the standby takes over
    with core.engine.connect() as connection:  # the leader's process dies: its database session ends
        assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    assert second.leading.wait(10)
    assert first.waiting.wait(10), "the old leader noticed and went back on standby"
    assert not first.leading.is_set() and len(advisory_holders(core, key)) == 1


def test_on_sqlite_the_scheduler_leads_without_a_lock(core, make_scheduler):
    if core.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    scheduler = make_scheduler()
    scheduler.start()
    assert scheduler.leading.wait(10) and not scheduler.waiting.is_set()


# --- where it runs ----------------------------------------------------------------------------------------


def test_serve_embeds_the_scheduler_unless_told_not_to(core, tmp_path):
    settings = Settings(data_dir=tmp_path, _env_file=None)
    embedded = embedded_scheduler(core, settings)
    assert isinstance(embedded, Scheduler) and embedded.digest is not None, "the handoff digest is the scheduler's"
    assert embedded_scheduler(core, settings, wanted=False) is None  # --no-scheduler
    off = Settings(data_dir=tmp_path, scheduler="off", _env_file=None)
    assert off.scheduler is SchedulerMode.OFF and embedded_scheduler(core, off) is None
    with pytest.raises(ValidationError, match="scheduler"):
        Settings(data_dir=tmp_path, scheduler="sometimes", _env_file=None)



# --- batches ----------------------------------------------------------------------------------------------


def test_a_reminder_ended_by_another_scheduler_after_the_batch_read_it_is_left_to_that_one(core):
    linked_students(core)
    ids = [bulk(core, f"parking_period:stale{index}", TUESDAY) for index in range(3)]
    with core.transaction() as session:
        batch = reminders.claim_due(session, core.now())
        assert [reminder.id for reminder in batch] == ids
        # Meanwhile another scheduler sent the second one (as if it committed first).
        session.execute(update(Reminder).where(Reminder.id == ids[1]).values(status=Status.SENT.value,
                                                                             outcome="theirs"))
        ended = send_all(session, core, batch, core.now())
        assert ended == {ids[0]: Status.SENT, ids[2]: Status.SENT}
        assert (batch[1].status, batch[1].outcome) == (Status.SENT.value, "theirs"), "what they wrote, not ours"
    assert [payload["job"] for payload in deliveries(core)] == [
        f"parking_period:stale{index}:line:ja:0" for index in (0, 2)], "nothing queued for theirs"


def test_two_schedulers_sending_small_batches_at_once_claim_each_reminder_once(core):
    linked_students(core)
    ids = [bulk(core, f"parking_period:small{index}", TUESDAY - timedelta(minutes=index)) for index in range(40)]
    start = threading.Barrier(2)
    ended: list[dict[int, Status]] = []

    def sweep() -> None:
        start.wait(timeout=10)
        while (batch := send_due(core, core.now(), limit=3)).seen:
            ended.append(batch.ended)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    claimed = [reminder_id for batch in ended for reminder_id in batch]
    assert sorted(claimed) == sorted(ids), "each reminder claimed by exactly one batch"
    assert {status for batch in ended for status in batch.values()} == {Status.SENT}
    assert sorted(payload["job"] for payload in deliveries(core)) == sorted(
        f"parking_period:small{index}:line:ja:0" for index in range(40))


def test_on_postgresql_a_second_batch_skips_the_rows_the_first_holds(core):
    if core.engine.dialect.name != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL's; on SQLite one write transaction runs at a time")
    ids = [bulk(core, f"parking_period:locked{index}", TUESDAY - timedelta(minutes=index)) for index in range(6)]
    with core.transaction() as first:
        held = [reminder.id for reminder in reminders.claim_due(first, core.now(), limit=4)]
        with core.transaction() as second:
            others = [reminder.id for reminder in reminders.claim_due(second, core.now(), limit=4)]
    assert sorted(held + others) == sorted(ids) and not set(held) & set(others)


def test_a_reminder_that_fails_does_not_hold_back_its_batch(core, make_scheduler, monkeypatch, caplog):
    linked_students(core)
    ids = [bulk(core, f"parking_period:fail{index}", TUESDAY) for index in range(5)]
    compose = sending.compose

    def failing(session, core, reminder, lang, subjects=None):
        if reminder.id == ids[2]:
            raise RuntimeError("cannot compose")
        return compose(session, core, reminder, lang, subjects)

    monkeypatch.setattr(sending, "compose", failing)
    assert make_scheduler().tick().outcomes == {Status.SENT: 4}
    assert [row(core, reminder_id).status for reminder_id in ids] == ["sent", "sent", "scheduled", "sent", "sent"]
    assert f"reminder {ids[2]}: sending failed" in caplog.text  # retried on the next sweep
    monkeypatch.setattr(sending, "compose", compose)
    assert make_scheduler().tick().outcomes == {Status.SENT: 1}


def test_while_a_batch_is_composed_other_writers_are_not_held_back(core, monkeypatch):
    # On SQLite the write lock is one for every process: the delivery workers claim and finish their jobs
    # while the sweep composes the next batch's messages, which it does on a read.
    linked_students(core)
    bulk(core, "parking_period:compose", TUESDAY)
    other = bulk(core, "parking_period:elsewhere", TUESDAY + timedelta(hours=1))
    compose = sending.compose
    written = threading.Event()

    def composing_while_another_writes(session, core_, reminder, lang, subjects=None):
        def write() -> None:
            with core.transaction() as elsewhere:
                elsewhere.execute(update(Reminder).where(Reminder.id == other).values(outcome="written meanwhile"))
            written.set()

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=5)
        return compose(session, core_, reminder, lang, subjects)

    monkeypatch.setattr(sending, "compose", composing_while_another_writes)
    assert send_due(core, core.now()).ended and written.is_set(), "the other write waited for the batch"
    assert row(core, other).outcome == "written meanwhile"


def test_a_reminder_ended_elsewhere_while_its_batch_was_composed_is_left_alone(core, monkeypatch):
    if core.engine.dialect.name == "postgresql":
        pytest.skip("on PostgreSQL the batch's rows stay locked while it is composed: another scheduler skips "
                    "them (test_on_postgresql_a_second_batch_skips_the_rows_the_first_holds)")
    linked_students(core)
    mine, theirs = (bulk(core, f"parking_period:race{index}", TUESDAY) for index in range(2))
    compose = sending.compose

    def another_scheduler_sends_theirs_meanwhile(session, core_, reminder, lang, subjects=None):
        with core.transaction() as elsewhere:
            elsewhere.execute(update(Reminder).where(Reminder.id == theirs, Reminder.status == "scheduled")
                              .values(status=Status.SENT.value, outcome="sent elsewhere"))
        return compose(session, core_, reminder, lang, subjects)

    monkeypatch.setattr(sending, "compose", another_scheduler_sends_theirs_meanwhile)
    batch = send_due(core, core.now())
    assert batch.seen == 2 and batch.ended == {mine: Status.SENT}
    assert row(core, theirs).outcome == "sent elsewhere"
    assert {payload["job"].split(":")[1] for payload in deliveries(core)} == {"race0"}  # none queued for theirs


def test_a_sweep_sends_everything_due_in_batches(core, make_scheduler, monkeypatch):
    linked_students(core)
    first, second = (bulk(core, f"parking_period:job{index}", TUESDAY) for index in range(2))
    later = bulk(core, "parking_period:later", TUESDAY + timedelta(hours=1))
    seen = []

    def counted(*args, **kwargs):
        batch = send_due(*args, **kwargs)
        seen.append(batch.seen)
        return batch

    monkeypatch.setattr(scheduling, "send_due", counted)
    scheduler = make_scheduler(batch=1)
    assert scheduler.sweep().outcomes == {Status.SENT: 2}
    assert seen == [1, 1, 0], "a batch each, until one comes back short"
    assert row(core, first).status == row(core, second).status == Status.SENT
    assert scheduler.sweep().outcomes == {}, "each sent once"
    assert row(core, later).status == Status.SCHEDULED, "not due yet"
    assert len(deliveries(core)) == 2


def test_a_started_scheduler_sweeps_again_each_interval(core, clock, make_scheduler):
    linked_students(core)
    reminder_id = bulk(core, "parking_period:interval", TUESDAY + timedelta(minutes=1))
    swept = threading.Condition()
    sweeps_at: list[datetime] = []

    def digest() -> None:  # runs at the end of each sweep
        with swept:
            sweeps_at.append(core.now())
            swept.notify_all()

    def sweeps_after(at: datetime, count: int) -> bool:
        with swept:
            return swept.wait_for(lambda: sum(seen >= at for seen in sweeps_at) >= count, timeout=10)

    scheduler = make_scheduler(digest=digest, sweep_every=timedelta(milliseconds=50))
    scheduler.start()
    assert sweeps_after(TUESDAY, 1) and row(core, reminder_id).status == Status.SCHEDULED
    due = clock.advance(minutes=1)
    # The second sweep ending after the clock moved started after it: the reminder was due by then.
    assert sweeps_after(due, 2)
    assert row(core, reminder_id).status == Status.SENT and len(deliveries(core)) == 1
