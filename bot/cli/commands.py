"""The `madoguchi` command: serve, chat, the scheduler, database, students, reminders and the NLU tools."""

import logging
import os
import signal
import sys
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bot.cli.support import fail, prepared_core
from bot.cli.workers import WorkersWithOwnSockets
from bot.runtime import (
    StartupError,
    build_pipeline,
    embedded_scheduler,
    load_channel_settings,
    load_settings,
    prepare,
    serving_app,
)
from bot.settings import LINE_PUSH_PACE
from core.clock import TOKYO
from core.settings import LogFormat, Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.pipeline import Pipeline
    from core.models import Reminder
    from core.services import Core

# Open chat-page event streams would otherwise hold a stopping server for up to their 5 minutes.
SHUTDOWN_GRACE_SECONDS = 5


def _configure_logging(level: str, log_format: LogFormat = LogFormat.AUTO) -> None:
    """Masked log lines on stderr, JSON (LOG_FORMAT=json, or auto when stderr is not a terminal) or text."""
    from bot.ops import logs

    logs.configure(level, log_format)


@click.group()
def main() -> None:
    """madoguchi: a 24-hour helpdesk bot for the university's certificate issuance service."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=None, help="Port (default: $PORT, else 8000).")
@click.option("--no-scheduler", is_flag=True,
              help="Leave reminders to `madoguchi scheduler` (as SCHEDULER=off does).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Web worker processes (default: $WEB_CONCURRENCY, else 1).")
def serve(host: str, port: int | None, no_scheduler: bool, workers: int | None) -> None:
    """Run the web app: chat API, link pages, sandbox payments, metrics, health check; and the reminder
    scheduler (in this process; with several workers, in the process that supervises them)."""
    import uvicorn

    from intents.understander import ensure_trained

    try:
        settings = load_settings()
        _configure_logging(settings.log_level, settings.log_format)
        channel_settings = load_channel_settings()
        workers = workers or _workers_from_environment()
        core = prepare(settings)  # migrated and demo data loaded once, before any worker starts
        if workers == 1:
            pipeline = build_pipeline(core, settings)
        else:  # trained once here if needed; each worker loads the saved model, this supervisor never does
            ensure_trained(settings.nlu_model_path)
        port = port or int(os.environ.get("PORT", "8000"))
    except (StartupError, ValueError) as error:
        fail(error)
    if workers > 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _fresh_metrics_dir(settings)
    click.echo(f"madoguchi is serving on http://{host}:{port} with {workers} worker(s)  "
               f"(mail outbox: {settings.outbox_dir})")
    scheduler = embedded_scheduler(core, settings, wanted=not no_scheduler)
    if scheduler is not None:
        scheduler.start()
    try:
        if workers == 1:
            app = serving_app(core, settings, pipeline, channel_settings)
            uvicorn.run(app, host=host, port=port, log_config=None, proxy_headers=True,
                        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS)
        else:
            # Each worker builds its own app (bot.runtime.web_app_from_environment) without a scheduler, and
            # listens on a socket of its own (bot.cli.workers). Each delivers (its inbox), so each paces its
            # pushes to its share of LINE's limit, unless the operator set the share.
            os.environ.setdefault("LINE_PUSHES_PER_SECOND", str(max(1, LINE_PUSH_PACE // workers)))
            config = uvicorn.Config("bot.runtime:web_app_from_environment", factory=True, workers=workers,
                                    host=host, port=port, log_config=None, proxy_headers=True,
                                    timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS)
            try:
                supervisor = WorkersWithOwnSockets(config)
            except OSError as error:  # the address is taken or cannot be bound
                fail(StartupError(f"cannot listen on {host}:{port}: {error.strerror or error}"))
            supervisor.run()
    finally:
        if scheduler is not None:
            scheduler.stop()


def _workers_from_environment() -> int:
    value = os.environ.get("WEB_CONCURRENCY", "").strip() or "1"
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"bad setting(s): WEB_CONCURRENCY: {value!r} is not a number of workers (1 or more)")
    return int(value)


def _fresh_metrics_dir(settings: Settings) -> None:
    """Point the workers' metrics at PROMETHEUS_MULTIPROC_DIR (default DATA_DIR/metrics), emptied: the files
    of a previous run would add its counts to this one's. Set before the workers start, which read it as
    they import prometheus_client."""
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.data_dir / "metrics")
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path.resolve())


@main.command("scheduler")
def scheduler_command() -> None:
    """Run the reminder scheduler alone (Procfile `clock`), for deployments with several web workers."""
    from bot.delivery.scheduler import Scheduler
    from bot.handoff.agents import queue_opening_digest

    # SIGINT and SIGTERM are taken by sigwait below, never by a handler: the kernel may hand a signal to any
    # thread, and a Python handler runs only when the main thread wakes, which an untimed wait never does.
    # Blocked before any thread starts, every thread inherits the mask and the signal waits for sigwait.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        settings = load_settings()
        _configure_logging(settings.log_level, settings.log_format)
        core = prepare(settings)
    except StartupError as error:
        fail(error)
    scheduler = Scheduler(core, digest=partial(queue_opening_digest, core))
    click.echo(f"madoguchi scheduler on {core.engine.url.render_as_string(hide_password=True)}"
               f"{'' if core.engine.dialect.name == 'postgresql' else ' (SQLite: run no other scheduler)'}")
    scheduler.start()
    try:
        signal.sigwait(stop_signals)
    finally:
        scheduler.stop()
    click.echo("madoguchi scheduler stopped")


@main.command()
@click.option("--student", "student_number", metavar="NUMBER", default=None,
              help="Talk as this student, as if signed in (the operator's own machine; students sign in on the web).")
def chat(student_number: str | None) -> None:
    """Talk to the bot in the terminal; with piped input, one message per line."""
    try:
        settings = load_settings()
        logging.basicConfig(level=logging.WARNING)
        core = prepare(settings)
        pipeline = build_pipeline(core, settings)
        student_id = _student_id(core, student_number) if student_number else None
    except StartupError as error:
        fail(error)
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo("madoguchi — type a question (Ctrl-D to quit). 質問を入力してください。")
    lines = iter(lambda: click.prompt("you", default="", show_default=False), None) if interactive else sys.stdin
    try:
        _converse(pipeline, lines, student_id)
    except (click.Abort, EOFError, KeyboardInterrupt):
        click.echo("")


def _student_id(core: "Core", number: str) -> int:
    """The id of the student `--student` names.

    Raises:
        StartupError: naming the number when there is no such student.
    """
    from core.students import find_student

    with core.transaction() as session:
        student = find_student(session, number)
        if student is None:
            raise StartupError(f"--student {number}: no such student in the database")
        return student.id


def _converse(pipeline: "Pipeline", lines: Iterable[str], student_id: int | None = None) -> None:
    from bot.channels import terminal
    from bot.delivery.mailing import send_queued_mail
    from handlers.turn import Channel, IncomingMessage

    buttons: list[str] = []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        payload = buttons[int(text) - 1] if text.isdigit() and 0 < int(text) <= len(buttons) else None
        message = IncomingMessage(channel=Channel.TERMINAL, user_id="terminal", conversation_id="terminal:local",
                                  text=None if payload else text, payload=payload, signed_in_student=student_id)
        replies = pipeline.handle(message)
        buttons = terminal.last_buttons(replies)
        click.echo(terminal.render(replies))
        click.echo("")
        send_queued_mail(pipeline.core)  # a reset or sign-in link the turn asked for: no inbox worker runs here


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema (the release step)."""
    from core import migrate
    from core.db import make_engine

    try:
        settings = load_settings()
    except StartupError as error:
        fail(error)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    migrate.upgrade(engine)
    click.echo(f"database at migration {migrate.current_revision(engine)}")


@db.command("current")
def db_current() -> None:
    """Print the database's migration and the code's."""
    from core import migrate
    from core.db import make_engine

    try:
        settings = load_settings()
    except StartupError as error:
        fail(error)
    engine = make_engine(settings.effective_database_url)
    click.echo(f"database: {migrate.current_revision(engine)}  code: {migrate.head_revision()}")


@main.group()
def students() -> None:
    """Student administration."""


@students.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def students_import(csv_file: Path) -> None:
    """Import or update students from CSV (student_number, department, year[, name, email, language])."""
    from core.students import StudentImportError, import_students_csv

    try:
        core = prepare(load_settings())
        with core.transaction() as session:
            result = import_students_csv(session, csv_file, core.profile, core.now())
    except StudentImportError as error:
        click.echo(f"madoguchi: {error.source}: nothing imported", err=True)
        for row_error in error.errors:
            click.echo(f"  {row_error}", err=True)
        sys.exit(1)
    except StartupError as error:
        fail(error)
    click.echo(f"imported {result.created} new and updated {result.updated} existing students")


@main.group()
def links() -> None:
    """One-time links, as a student would request them (for staff and for trying the service)."""


@links.command("send-reset")
@click.argument("student_number")
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True)
def links_send_reset(student_number: str, lang: str) -> None:
    """Mail a second-password reset link to the student's registered address (same answer either way)."""
    from bot.delivery.mailing import send_queued_mail
    from core.links import request_second_password_reset

    core = prepared_core()
    click.echo(request_second_password_reset(core, student_number, lang).text)
    send_queued_mail(core)  # no inbox worker runs here: the queued mail goes now, after the answer


@main.group()
def reminders() -> None:
    """Scheduled reminders."""


@reminders.command("list")
@click.option("--days", type=click.IntRange(min=0), default=7, show_default=True,
              help="Show reminders due within this many days (and any overdue).")
def reminders_list(days: int) -> None:
    """List the reminders still to send: overdue ones as `due`, then the upcoming ones, in Japan time."""
    from core.reminders import upcoming

    core = prepared_core()
    now = core.now()
    with core.transaction() as session:
        rows = [(reminder, _reminder_recipient(session, reminder)) for reminder in upcoming(session, now, days)]
    if not rows:
        click.echo(f"no reminders due within {days} day(s)")
        return
    click.echo(f"{'id':>6}  {'kind':<18} {'due (JST)':<16}  {'status':<9}  {'deferred':<8}  recipient")
    for reminder, recipient in rows:
        status = "due" if reminder.due_at <= now else reminder.status
        click.echo(f"{reminder.id:>6}  {reminder.kind:<18} {reminder.due_at.astimezone(TOKYO):%Y-%m-%d %H:%M}  "
                   f"{status:<9}  {'yes' if reminder.deferred else 'no':<8}  {recipient}")


def _reminder_recipient(session: "Session", reminder: "Reminder") -> str:
    """Who a reminder goes to, masked: a chat user, a student's linked accounts, or the linked students."""
    from core.masking import mask_student_number, mask_token
    from core.models import Student
    from core.reminders import Kind

    if reminder.channel and reminder.recipient:
        return f"{reminder.channel} {mask_token(reminder.recipient)}"
    if reminder.student_id is not None:
        student = session.get(Student, reminder.student_id)
        return f"student {mask_student_number(student.student_number if student else None)}"
    return "linked students, year 2+" if reminder.kind == Kind.PARKING_PERIOD else "linked students"


@main.group()
def slack() -> None:
    """Slack tools."""


@slack.command("socket")
def slack_socket() -> None:
    """Answer Slack over Socket Mode (local development with SLACK_APP_TOKEN; production uses HTTP)."""
    from bot.channels.slack import SlackChannel, run_socket_mode
    from bot.delivery.inbox import Inbox

    try:
        settings = load_settings()
        _configure_logging(settings.log_level, settings.log_format)
        channel_settings = load_channel_settings()
        if not (channel_settings.slack_enabled and channel_settings.slack_app_token):
            raise StartupError("set SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_APP_TOKEN for Socket Mode")
        core = prepare(settings)
        pipeline = build_pipeline(core, settings)
    except StartupError as error:
        fail(error)
    inbox = Inbox(core)
    channel = SlackChannel(core, pipeline, channel_settings)
    inbox.register(channel)
    inbox.start()
    try:
        run_socket_mode(channel, inbox)
    finally:
        inbox.stop()


def _mount_commands() -> None:
    """Commands that live in their own modules (imported here so `madoguchi --help` lists them)."""
    from bot.cli.dialogue import dialogue
    from bot.cli.line_menu import line
    from bot.cli.ops import doctor, retention, students_forget
    from bot.cli.rasa import actions
    from bot.cli.staff import staff
    from intents.cli import nlu

    for command in (nlu, dialogue, actions, doctor, staff, retention, line):
        main.add_command(command)
    students.add_command(students_forget, "forget")


_mount_commands()
