"""The reminder scheduler: one leader per deployment, on which APScheduler runs the sweep (every due
reminder sent, within 30 s of its time) and the nightly work (the year's periods, the purge of old chat data)."""

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from bot.delivery.reminders import BATCH, send_due, send_reminder
from core.clock import TOKYO
from core.reminders import Status, due_reminders, schedule_periods
from core.retention import Purge, purge_expired
from core.services import Core

log = logging.getLogger(__name__)
# APScheduler logs every run of every job at INFO (the sweep: twice a minute); its warnings and errors stay.
logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)

SWEEP_JOB = "sweep"
NIGHTLY_JOB = "nightly"
# How often the sweep looks for due reminders: a reminder is never sent early and at most this late.
SWEEP_EVERY = timedelta(seconds=30)
STANDBY_RETRY_SECONDS = 5.0  # a standby scheduler asks for the lock this often; the leader checks it holds it
# The PostgreSQL advisory lock of the active scheduler (any constant shared by the deployment's processes;
# the conversation locks of bot/locks.py hash conversation ids over the whole 64-bit range).
LOCK_KEY = 0x6D61646F_7363_6864  # "mado" "sc" "hd"
DUE_BATCH = BATCH  # due reminders claimed per transaction
RETENTION_AT = time(3, 30)  # Japan time: the daily purge of old chat data, when hardly anyone chats


@dataclass
class Sweep:
    """What one sweep (or one nightly run, or one `tick`) did."""

    outcomes: Counter[Status] = field(default_factory=Counter)  # end states of the due reminders it ran
    periods_scheduled: int = 0
    retention: Purge | None = None  # the day's purge of old chat data, on the run that did it


class Scheduler:
    """Runs the reminders of one deployment: leader election, and APScheduler driving the sweep and the
    nightly work. The reminder rows are the only schedule: nothing about them is kept in APScheduler.

    On PostgreSQL only the process holding the advisory lock `lock_key` schedules and sends; the others wait
    on standby and take over when the leader's connection closes. SQLite deployments run one process, which
    needs no lock.
    """

    def __init__(self, core: Core, *, digest: Callable[[], object] | None = None,
                 sweep_every: timedelta = SWEEP_EVERY, standby_retry: float = STANDBY_RETRY_SECONDS,
                 lock_key: int = LOCK_KEY, batch: int = DUE_BATCH) -> None:
        self.core = core
        self.digest = digest
        self.sweep_every = sweep_every
        # A sweep reaches a reminder at most one interval after its time, or two when the sweep before ran
        # long (a big batch): that late, one due just before 21:00 was reached on time and is still sent.
        self.on_time = 2 * sweep_every
        self.standby_retry = standby_retry
        self.lock_key = lock_key
        self.batch = batch
        self.leading = threading.Event()  # set while this scheduler is the active one
        self.waiting = threading.Event()  # set once it has been refused the lock (on standby)
        self.apscheduler: BackgroundScheduler | None = None
        self._lock_connection: Connection | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._periods_on: date | None = None
        self._purged_on: date | None = None

    @property
    def active(self) -> bool:
        """True while APScheduler runs this scheduler's jobs in this process (between `open` and `close`)."""
        apscheduler = self.apscheduler
        return apscheduler is not None and apscheduler.running

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
        """Become this process's active scheduler: start APScheduler with the sweep, every `sweep_every`, and
        the nightly work, at RETENTION_AT Japan time; both run at once too (what fell due, and the day's work
        left undone, while no scheduler ran are done now).

        Args:
            paused: start APScheduler without running jobs (tests look at its jobs).
        """
        # In memory: the jobs are this process's own and are added again on each start. coalesce: runs
        # missed while busy or asleep are made up by one; no misfire limit, so a late run still runs.
        self.apscheduler = BackgroundScheduler(timezone=UTC, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self.apscheduler.start(paused=paused)
        started = datetime.now(UTC)
        self.apscheduler.add_job(self.sweep, IntervalTrigger(seconds=self.sweep_every.total_seconds()),
                                 id=SWEEP_JOB, next_run_time=started)
        self.apscheduler.add_job(self.nightly, CronTrigger(hour=RETENTION_AT.hour, minute=RETENTION_AT.minute,
                                                           timezone=TOKYO),
                                 id=NIGHTLY_JOB, next_run_time=started)

    def close(self) -> None:
        """Shut APScheduler down after a running job; this process no longer schedules."""
        apscheduler, self.apscheduler = self.apscheduler, None
        if apscheduler is not None and apscheduler.running:
            apscheduler.pause()  # no new runs while the running ones finish
            apscheduler.shutdown(wait=True)

    # ----- the jobs ------------------------------------------------------------------------------------

    def sweep(self) -> Sweep:
        """The sweep at `core.now()`: every due reminder sent or ended, then the digest hook.

        Returns:
            What it did.
        """
        done = Sweep()
        self._sweep(self.core.now(), done)
        return done

    def nightly(self) -> Sweep:
        """The day's work at `core.now()`: the year's periods (once a day) and, from RETENTION_AT Japan time,
        the purge of chat data older than the profile's retention (once a day).

        Returns:
            What it did.
        """
        done, now = Sweep(), self.core.now()
        self._step("periods", lambda: self._schedule_periods(now, done))
        self._step("retention", lambda: self._purge(now, done))
        return done

    def tick(self) -> Sweep:
        """What both jobs do, in one call at `core.now()`: the year's periods (once a day), every due reminder
        sent or ended, the digest hook, and from 03:30 Japan time the day's purge (once a day).

        Returns:
            What it did.
        """
        done, now = Sweep(), self.core.now()
        self._step("periods", lambda: self._schedule_periods(now, done))
        self._sweep(now, done)
        self._step("retention", lambda: self._purge(now, done))
        return done

    def _sweep(self, now: datetime, done: Sweep) -> None:
        self._step("due reminders", lambda: self._run_due(now, done))
        if self.digest is not None:
            self._step("digest", self.digest)

    @staticmethod
    def _step(name: str, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:  # one failing step must not keep the others from running
            log.exception("reminder sweep: %s failed", name)

    def _schedule_periods(self, now: datetime, done: Sweep) -> None:
        today = now.astimezone(TOKYO).date()
        if self._periods_on == today:
            return
        for year in (today.year, today.year + 1):
            try:
                with self.core.transaction() as session:
                    done.periods_scheduled += len(schedule_periods(session, self.core.profile, year, now))
            except IntegrityError:  # another scheduler wrote the same rows at the same moment
                log.info("reminder sweep: the %d periods were scheduled meanwhile", year)
        self._periods_on = today

    def _purge(self, now: datetime, done: Sweep) -> None:
        """The daily purge, on the first run at or after RETENTION_AT (a restarted scheduler purges again
        that day: cheap, as nothing is left to delete)."""
        local = now.astimezone(TOKYO)
        if local.time() < RETENTION_AT or self._purged_on == local.date():
            return
        self._purged_on = local.date()  # set first: a failing purge is logged once, and retried tomorrow
        done.retention = purge_expired(self.core)

    def _run_due(self, now: datetime, done: Sweep) -> None:
        """Every reminder due by `now`, in batches of `batch` (one transaction each)."""
        failed: list[int] = []
        while True:
            try:
                sent = send_due(self.core, now, limit=self.batch, skip=failed, on_time=self.on_time)
            except Exception:  # one bad reminder must not hold the others back: find it by sending one by one
                log.exception("reminder sweep: a batch failed; sending its reminders one by one")
                if not self._send_one_by_one(now, failed, done):
                    return
                continue
            done.outcomes.update(sent.ended.values())
            if sent.seen < self.batch:
                return

    def _send_one_by_one(self, now: datetime, failed: list[int], done: Sweep) -> bool:
        """The next batch's reminders one at a time, adding those that fail to `failed`; False when none was
        left to send."""
        with self.core.reading() as session:
            todo = [reminder_id for reminder_id in due_reminders(session, now, limit=self.batch)
                    if reminder_id not in failed]
        for reminder_id in todo:
            try:
                status = send_reminder(self.core, reminder_id, on_time=self.on_time)
            except Exception:  # retried on the next sweep, and recorded missed once past its grace
                log.exception("reminder %d: sending failed", reminder_id)
                failed.append(reminder_id)
                continue
            if status is not None:
                done.outcomes[status] += 1
        return bool(todo)
