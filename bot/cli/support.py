"""What the `madoguchi` commands share: the deployment's core, or a plain message and exit status 2."""

import sys
from typing import NoReturn

import click

from bot.runtime import StartupError, load_settings, prepare
from core.services import Core


def fail(error: Exception) -> NoReturn:
    """Print the setting or database problem for the operator and exit with status 2."""
    click.echo(f"madoguchi: {error}", err=True)
    sys.exit(2)


def prepared_core() -> Core:
    """The core of this deployment (settings read, database migrated), or exit naming what is wrong."""
    try:
        return prepare(load_settings())
    except StartupError as error:
        fail(error)
