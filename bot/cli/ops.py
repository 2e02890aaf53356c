"""Operators' commands: `madoguchi doctor`, `madoguchi students forget` and `madoguchi retention run`."""

import logging
import sys

import click

from bot.cli.support import prepared_core
from core.clock import TOKYO
from core.masking import mask_student_number


@click.command()
def doctor() -> None:
    """Check the settings, profile, database, mail and the LINE and Slack credentials; say what is wrong.

    Exits 0 when everything is ok, 1 when anything needs fixing.
    """
    from bot.cli.doctor import Outcome, environment_hint, run_checks, values_to_confirm
    from core.profile import SHIPPED_PROFILE

    click.echo(f"madoguchi doctor: {environment_hint()}")
    results = run_checks()
    for result in results:
        click.echo(result.line)
    profile, unconfirmed = values_to_confirm()
    if unconfirmed:  # not problems: what the university should confirm before going live
        click.echo(f"to confirm with the university ({profile or SHIPPED_PROFILE}; mark each as `university` "
                   "in `sources:` or set the real value once confirmed):")
        for line in unconfirmed:
            click.echo(f"  - {line}")
    problems = sum(result.outcome is Outcome.PROBLEM for result in results)
    click.echo("all good" if not problems else f"{problems} problem(s) to fix")
    sys.exit(1 if problems else 0)


@click.command()
@click.argument("student_number")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def students_forget(student_number: str, yes: bool) -> None:
    """Delete a student's conversations and personal data; their orders stay, without the student.

    Deleted: the student (number, name, email, password hash), their chat accounts, conversations and
    transcripts on every channel, handoff tickets and messages, reminders, one-time links and stored chat
    events. Kept for accounting: orders with their items, status, dates and payment amounts.
    """
    from core.retention import forget_student
    from core.students import find_student

    logging.basicConfig(level=logging.WARNING)
    core = prepared_core()
    masked = mask_student_number(student_number.strip())
    with core.transaction() as session:
        known = find_student(session, student_number) is not None
    if not known:
        click.echo(f"no student with the number {masked}: nothing to forget (already forgotten, or mistyped?)",
                   err=True)
        sys.exit(1)
    if not yes:
        click.confirm(f"Forget student {masked}: delete their chats and personal data for good "
                      "(orders are kept without the student)?", abort=True)
    with core.transaction() as session:
        result = forget_student(session, student_number, now=core.now())
    if result is None:  # forgotten meanwhile by another run
        click.echo(f"no student with the number {masked}: nothing to forget", err=True)
        sys.exit(1)
    click.echo(f"forgot student {masked}:")
    for table, count in sorted(result.deleted.items()):
        click.echo(f"  {table:<20} {count:>6} deleted")
    if result.names_replaced:
        click.echo(f"  {'name mentions':<20} {result.names_replaced:>6} replaced in other people's texts")
    click.echo(f"  {'orders':<20} {result.orders_kept:>6} kept for accounting, no longer linked to the student")


@click.group()
def retention() -> None:
    """Deleting old chat data (the scheduler does it every night)."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Keep this many days (default: the profile's retention_days).")
def retention_run(dry_run: bool, days: int | None) -> None:
    """Delete transcripts and other chat data older than the retention now (orders are never deleted)."""
    from core.retention import purge_expired

    logging.basicConfig(level=logging.WARNING)
    core = prepared_core()
    result = purge_expired(core, days=days, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"chat data from before {result.cutoff.astimezone(TOKYO):%Y-%m-%d %H:%M} (JST), "
               f"{days or core.profile.retention_days} days:")
    for table, count in sorted(result.deleted.items()):
        click.echo(f"  {table:<20} {count:>6} {verb}")
    click.echo(f"  {'total':<20} {result.total:>6} {verb}")
