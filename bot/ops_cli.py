"""Operators' commands: `madoguchi doctor` and `madoguchi students forget` (being built, issue 8)."""

import click


@click.command()
def doctor() -> None:
    """Check the settings, database, mail and channel credentials (being built)."""
    raise click.ClickException("not built yet")


@click.command()
@click.argument("student_number")
def students_forget(student_number: str) -> None:
    """Delete a student's conversations and personal data (being built)."""
    raise click.ClickException("not built yet")
