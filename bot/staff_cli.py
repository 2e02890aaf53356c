"""`madoguchi staff`: staff accounts for the /admin pages (being built, issue 8)."""

import click


@click.group()
def staff() -> None:
    """Staff accounts for the /admin pages."""
