"""The composition root: which handler answers which intent."""

from handlers import basic
from handlers.registry import HandlerRegistry


def build_registry() -> HandlerRegistry:
    """Every handler module registers its handlers here, once; a duplicate fails at start-up."""
    registry = HandlerRegistry()
    basic.register(registry)
    return registry
