"""`madoguchi actions`: the Rasa action server (being built, issue 8)."""

import click


@click.command()
def actions() -> None:
    """Run the Rasa action server (being built)."""
    raise click.ClickException("not built yet")
