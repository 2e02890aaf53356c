"""Routes of the page pages (being built)."""

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    """None yet."""
    return []
