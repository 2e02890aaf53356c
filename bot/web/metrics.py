"""Routes of the metrics pages (being built)."""

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    """None yet."""
    return []
