"""The reminder scheduler: an APScheduler job per reminder, a sweep behind them, one leader per deployment."""

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Connection, MetaData, select, text
from sqlalchemy.exc import IntegrityError

from bot.reminders import BATCH, send_due, send_reminder
from core.clock import TOKYO
from core.models import Reminder
from core.reminders import Status, due_reminders, schedule_periods
from core.retention import Purge, purge_expired
from core.services import Core

log = logging.getLogger(__name__)
# APScheduler logs every run of every job at INFO (the sweep: twice a minute); its warnings and errors stay.
logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)

JOB_TABLE = "apscheduler_jobs"  # APScheduler creates and owns it; Alembic's migrations leave it alone
JOB_PREFIX = "reminder:"
SWEEP_JOB = "sweep"
SWEEP_EVERY = timedelta(seconds=30)
STANDBY_RETRY_SECONDS = 5.0  # a standby scheduler asks for the lock this often; the leader checks it holds it
# The PostgreSQL advisory lock of the active scheduler (any constant shared by the deployment's processes;
# the conversation locks of bot/locks.py hash conversation ids over the whole 64-bit range).
LOCK_KEY = 0x6D61646F_7363_6864  # "mado" "sc" "hd"
DUE_BATCH = BATCH  # due reminders claimed per transaction
RETENTION_AT = time(3, 30)  # Japan time: the daily purge of old chat data, when hardly anyone chats


class _JobStore(SQLAlchemyJobStore):
    """APScheduler's SQLAlchemy job store on the core's engine, with a MetaData of its own."""

    def shutdown(self) -> None:
        """Leave the engine alone: it is the core's, still used by the rest of the process."""


# --- the job functions: importable by reference, arguments plain ints (the job store pickles them) -------

_active: "Scheduler | None" = None
_active_guard = threading.Lock()


def _register(scheduler: "Scheduler | None", *, unless_other: "Scheduler | None" = None) -> None:
    global _active
    with _active_guard:
        if unless_other is None or _active is unless_other:
            _active = scheduler


def run_reminder(reminder_id: int) -> Status | None:
    """The job of one reminder: send it, with everything else due by now, through this process's active
    scheduler (reminders due together, say 10,000 at 13:00, go in batches, not one transaction each).

    Args:
        reminder_id: the reminder row's id.

    Returns:
        The reminder's end state, or None when it was not due, taken already, or no scheduler is active.
    """
    scheduler = _active
    if scheduler is None:
        log.error("reminder %d: no active scheduler in this process; the sweep will send it", reminder_id)
        return None
    return scheduler.run_job(reminder_id)


def run_sweep() -> None:
    """The periodic job: the active scheduler's sweep."""
    scheduler = _active
    if scheduler is not None:
        scheduler.tick()


def record_missed(event: JobExecutionEvent) -> None:
    """APScheduler missed a reminder's run time (the process was down past its grace): the reminder is
    recorded missed (`send_reminder` finds it past its grace), never sent late."""
    if event.job_id.startswith(JOB_PREFIX):
        run_reminder(int(event.job_id.removeprefix(JOB_PREFIX)))


# --- the scheduler --------------------------------------------------------------------------------------


@dataclass
class Sweep:
    """What one sweep did."""

    outcomes: Counter[Status] = field(default_factory=Counter)  # end states of the due reminders it ran
    jobs_added: int = 0
    jobs_removed: int = 0
    periods_scheduled: int = 0
    retention: Purge | None = None  # the day's purge of old chat data, on the sweep that ran it


class Scheduler:
    """Runs the reminders of one deployment: leader election, APScheduler, and the sweep.

    On PostgreSQL only the process holding the advisory lock `lock_key` schedules and sends; the others wait
    on standby and take over when the leader's connection closes. SQLite deployments run one process, which
    needs no lock.
    """

    def __init__(self, core: Core, *, digest: Callable[[], None] | None = None,
                 sweep_every: timedelta = SWEEP_EVERY, standby_retry: float = STANDBY_RETRY_SECONDS,
                 lock_key: int = LOCK_KEY) -> None:
        self.core = core
        self.digest = digest
        self.sweep_every = sweep_every
        self.standby_retry = standby_retry
        self.lock_key = lock_key
        self.leading = threading.Event()  # set while this scheduler is the active one
        self.waiting = threading.Event()  # set once it has been refused the lock (on standby)
        self.apscheduler: BackgroundScheduler | None = None
        self._store: _JobStore | None = None
        self._lock_connection: Connection | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._periods_on: date | None = None
        self._purged_on: date | None = None

    # ----- leadership ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Run in a background thread: on standby until this process may lead, then schedule and send."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="reminder-scheduler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop scheduling, wait for a running job, and release the lock for a standby scheduler."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._acquire():
                    self._lead()
                    # Lost the lead (its connection died): let a standby take over before trying again.
                    self.waiting.set()
                    self._stopping.wait(2 * self.standby_retry)
                else:
                    self.waiting.set()
                    self._stopping.wait(self.standby_retry)
            except Exception:  # the database may be down: retry rather than end the thread
                log.exception("reminder scheduler: cannot lead; retrying in %.0f s", self.standby_retry)
                self._release()
                self._stopping.wait(self.standby_retry)

    def _lead(self) -> None:
        try:
            self.open()
            self.leading.set()
            log.info("reminder scheduler: active")
            while not self._stopping.wait(self.standby_retry):
                if not self._still_holding():
                    log.warning("reminder scheduler: lost the lock's connection; back on standby")
                    break
        finally:
            self.leading.clear()
            self.close()
            self._release()

    def _acquire(self) -> bool:
        """True when this process may lead: always on SQLite, else when it gets the advisory lock."""
        if self.core.engine.dialect.name != "postgresql":
            return True
        connection = self.core.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.lock_key}))
        except Exception:
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        self._lock_connection = connection  # held while leading: its session holds the lock
        return True

    def _still_holding(self) -> bool:
        if self._lock_connection is None:
            return True
        try:
            self._lock_connection.exec_driver_sql("SELECT 1")
        except Exception:
            return False
        return True

    def _release(self) -> None:
        connection, self._lock_connection = self._lock_connection, None
        if connection is not None:
            # Close the database session itself (not back to the pool, which would keep it and the lock).
            try:
                connection.invalidate()
                connection.close()
            except Exception:
                log.warning("reminder scheduler: closing the lock's connection failed", exc_info=True)

    # ----- APScheduler ---------------------------------------------------------------------------------

    def open(self, *, paused: bool = False) -> None:
        """Become this process's active scheduler: start APScheduler on its job store (creating its table)
        and the periodic sweep, which runs at once (what fell due while no scheduler ran is handled now).

        Args:
            paused: start APScheduler without running jobs (tests look at the job store).
        """
        self._store = _JobStore(engine=self.core.engine, tablename=JOB_TABLE, metadata=MetaData())
        self.apscheduler = BackgroundScheduler(
            jobstores={"default": self._store, "local": MemoryJobStore()}, timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1})
        self.apscheduler.add_listener(record_missed, EVENT_JOB_MISSED)
        _register(self)
        self.apscheduler.start(paused=paused)
        self.apscheduler.add_job(run_sweep, "interval", seconds=self.sweep_every.total_seconds(), id=SWEEP_JOB,
                                 jobstore="local", next_run_time=datetime.now(UTC), replace_existing=True)

    def close(self) -> None:
        """Shut APScheduler down after a running job; this process no longer schedules."""
        if self.apscheduler is not None and self.apscheduler.running:
            # APScheduler's loop looks for due jobs once more after shutdown, with its executor gone: it
            # would drop them from the store unrun. Detach the stores first (the rows stay the truth).
            self.apscheduler.pause()
            for alias in ("default", "local"):
                self.apscheduler.remove_jobstore(alias, shutdown=False)
            self.apscheduler.shutdown(wait=True)
        self.apscheduler, self._store = None, None
        _register(None, unless_other=self)

    # ----- the sweep -----------------------------------------------------------------------------------

    def tick(self) -> Sweep:
        """One sweep at `core.now()`: the year's periods (once a day), every due reminder sent or ended,
        a job for each scheduled reminder that has none, the digest hook, and from 03:30 Japan time the
        day's purge of chat data older than the profile's retention (once a day).

        Returns:
            What the sweep did.
        """
        sweep = Sweep()
        now = self.core.now()
        self._step("periods", lambda: self._schedule_periods(now, sweep))
        self._step("due reminders", lambda: self._run_due(now, sweep))
        if self.apscheduler is not None and self.apscheduler.running:
            self._step("jobs", lambda: self._sync_jobs(now, sweep))
        if self.digest is not None:
            self._step("digest", self.digest)
        self._step("retention", lambda: self._purge(now, sweep))
        return sweep

    @staticmethod
    def _step(name: str, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:  # one failing step must not keep the others from running
            log.exception("reminder sweep: %s failed", name)

    def _schedule_periods(self, now: datetime, sweep: Sweep) -> None:
        today = now.astimezone(TOKYO).date()
        if self._periods_on == today:
            return
        for year in (today.year, today.year + 1):
            try:
                with self.core.transaction() as session:
                    sweep.periods_scheduled += len(schedule_periods(session, self.core.profile, year, now))
            except IntegrityError:  # another scheduler wrote the same rows at the same moment
                log.info("reminder sweep: the %d periods were scheduled meanwhile", year)
        self._periods_on = today

    def _purge(self, now: datetime, sweep: Sweep) -> None:
        """The daily purge, on the first sweep at or after RETENTION_AT (a restarted scheduler purges again
        that day: cheap, as nothing is left to delete)."""
        local = now.astimezone(TOKYO)
        if local.time() < RETENTION_AT or self._purged_on == local.date():
            return
        self._purged_on = local.date()  # set first: a failing purge is logged once, and retried tomorrow
        sweep.retention = purge_expired(self.core)

    def run_job(self, reminder_id: int) -> Status | None:
        """A reminder's APScheduler job: when it is still scheduled and due, everything due is sent in
        batches (the jobs of the others due with it then find theirs taken, after one read).

        Returns:
            The reminder's end state, or None when it was not due or was taken already.
        """
        now = self.core.now()
        with self.core.reading() as session:
            row = session.execute(select(Reminder.status, Reminder.due_at)
                                  .where(Reminder.id == reminder_id)).first()
        if row is None or row.status != Status.SCHEDULED.value or row.due_at > now:
            return None
        return self._run_due(now, Sweep()).get(reminder_id)

    def _run_due(self, now: datetime, sweep: Sweep) -> dict[int, Status]:
        """Every reminder due by `now`, in batches of DUE_BATCH (one transaction each); each one's end state."""
        failed: list[int] = []
        ended: dict[int, Status] = {}
        while True:
            try:
                batch = send_due(self.core, now, limit=DUE_BATCH, skip=failed)
            except Exception:  # one bad reminder must not hold the others back: find it by sending one by one
                log.exception("reminder sweep: a batch failed; sending its reminders one by one")
                with self.core.reading() as session:
                    todo = [reminder_id for reminder_id in due_reminders(session, now, limit=DUE_BATCH)
                            if reminder_id not in failed]
                if not todo:
                    return ended
                for reminder_id in todo:
                    try:
                        status = send_reminder(self.core, reminder_id)
                    except Exception:  # retried on the next sweep, and recorded missed once past its grace
                        log.exception("reminder %d: sending failed", reminder_id)
                        failed.append(reminder_id)
                        continue
                    if status is not None:
                        ended[reminder_id] = status
                        sweep.outcomes[status] += 1
                continue
            ended.update(batch.ended)
            sweep.outcomes.update(batch.ended.values())
            if batch.seen < DUE_BATCH:
                return ended

    def _sync_jobs(self, now: datetime, sweep: Sweep) -> None:
        """Add a job for each scheduled reminder still to come that has none (the web process writes the
        rows), and remove the jobs of reminders no longer scheduled (cancelled, sent, deleted)."""
        apscheduler, store = self.apscheduler, self._store  # close() may clear them from another thread
        if apscheduler is None or store is None:
            log.info("reminder sweep: the scheduler was closed, its jobs are another process's to sync")
            return
        with self.core.transaction() as session:
            rows = session.execute(select(Reminder.id, Reminder.due_at, Reminder.grace)
                                   .where(Reminder.status == Status.SCHEDULED.value)).all()
        with self.core.engine.connect() as connection:
            existing = set(connection.scalars(select(store.jobs_t.c.id)))
        scheduled = {f"{JOB_PREFIX}{row.id}" for row in rows}
        for row in rows:
            job_id = f"{JOB_PREFIX}{row.id}"
            if job_id in existing or row.due_at <= now:
                continue  # due ones were just run by the sweep
            apscheduler.add_job(run_reminder, "date", run_date=row.due_at, args=[row.id], id=job_id,
                                misfire_grace_time=row.grace, coalesce=True, replace_existing=True)
            sweep.jobs_added += 1
        for job_id in existing:
            if job_id.startswith(JOB_PREFIX) and job_id not in scheduled:
                try:
                    apscheduler.remove_job(job_id, jobstore="default")
                    sweep.jobs_removed += 1
                except JobLookupError:
                    pass  # it ran meanwhile
