"""The core's composition: one object holding the profile, database, clock, mailer, calendar, gateway and
fulfilment."""

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from core.calendar import BusinessCalendar
from core.clock import Clock, SystemClock
from core.db import READ_ONLY, make_engine, make_session_factory
from core.fulfilment import FulfilmentPort, fulfil, make_fulfilment
from core.mail import Mailer, OutboxMailer, SmtpMailer, compose
from core.orders import PaymentResult, mark_paid
from core.payments import PaymentGateway, make_gateway
from core.profile import UniversityProfile, load_profile
from core.settings import Settings, secret_value

log = logging.getLogger(__name__)


@dataclass
class Core:
    """What handlers and pages use to reach the domain; built once per process by `build_core`."""

    profile: UniversityProfile
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    mailer: Mailer
    calendar: BusinessCalendar
    payments: PaymentGateway
    fulfilment: FulfilmentPort
    base_url: str
    mail_from: str
    # Work done after the answer (mailing a sign-in link): the answer takes as long whoever asked. It starts
    # `answer_first_seconds` later, so that its database writes do not slow the answer down (tests: 0).
    answer_first_seconds: float = 0.2
    # Whether Slack's agents' channel takes handoff tickets (set where the channels are wired): Slack tells its
    # members, so a ticket there reaches someone whether or not anyone has the web inbox open.
    agents_on_slack: bool = False
    background: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="madoguchi-later"))
    _pending: list[Future[None]] = field(default_factory=list)

    def now(self) -> datetime:
        """The current time from the injected clock."""
        return self.clock.now()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session in a transaction that only reads: on SQLite it takes no write lock and waits for no writer
        (WAL lets it read beside one); anything written in it is rolled back."""
        with self.reading_connection() as connection, self.sessions(bind=connection) as session:
            yield session

    @contextmanager
    def reading_connection(self) -> Iterator[Connection]:
        """A connection in a transaction that only reads (see `reading`), without an ORM session: for the few
        statements run on every message."""
        with self.engine.connect() as connection:
            connection.execution_options(**{READ_ONLY: True})
            connection.begin()
            try:
                yield connection
            finally:
                connection.rollback()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def record_payment(self, session: Session, reference: str, actor: str = "gateway") -> PaymentResult:
        """The gateway took payment `reference`: the order is paid and its fulfilment created (the print number,
        the ready time), once however often the gateway reports it; see `core.orders.mark_paid`."""
        result = mark_paid(session, reference, self.now(), actor)
        fulfil(session, result.order, port=self.fulfilment, profile=self.profile, calendar=self.calendar,
               now=result.order.paid_at or self.now())
        return result

    def later(self, job: Callable[[], None]) -> None:
        """Run `job` in the background, `answer_first_seconds` after the current answer; its errors are logged,
        never raised here."""
        delay = self.answer_first_seconds

        def run() -> None:
            try:
                if delay:
                    time.sleep(delay)  # a worker thread of its own: no request waits on it
                job()
            except Exception:
                log.exception("background job failed")
        self._pending = [future for future in self._pending if not future.done()]
        self._pending.append(self.background.submit(run))

    def settle(self, timeout: float = 30) -> None:
        """Wait for the background jobs started so far (tests, and a clean shutdown)."""
        wait(self._pending, timeout=timeout)

    def url(self, path: str) -> str:
        """An absolute URL on our public base URL (never built from a request's Host header)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def send_mail(self, *, to: str, subject: str, body: str) -> None:
        """Compose and send one mail from the configured sender."""
        self.mailer.send(self.compose(to=to, subject=subject, body=body))

    def compose(self, *, to: str, subject: str, body: str) -> EmailMessage:
        """A mail from the configured sender, dated by the clock."""
        return compose(sender=self.mail_from, to=to, subject=subject, body=body, at=self.now())


def make_mailer(settings: Settings) -> Mailer:
    """SMTP when SMTP_HOST is set, else the local outbox folder."""
    if settings.smtp_host:
        return SmtpMailer(settings.smtp_host, settings.smtp_port, starttls=settings.smtp_starttls,
                          username=settings.smtp_username, password=secret_value(settings.smtp_password) or None)
    return OutboxMailer(settings.outbox_dir)


def build_core(settings: Settings, *, clock: Clock | None = None, mailer: Mailer | None = None,
               engine: Engine | None = None, profile: UniversityProfile | None = None) -> Core:
    """Wire the core from settings; tests pass their own clock, mailer, engine or profile."""
    profile = profile or load_profile(settings.university_profile)
    engine = engine or make_engine(settings.effective_database_url)
    return Core(
        profile=profile,
        engine=engine,
        sessions=make_session_factory(engine),
        clock=clock or SystemClock(),
        mailer=mailer or make_mailer(settings),
        calendar=BusinessCalendar(profile),
        payments=make_gateway(settings.payment_gateway, base_url=settings.base_url, profile=profile),
        fulfilment=make_fulfilment(settings.fulfilment),
        base_url=settings.base_url,
        mail_from=settings.mail_from,
    )
