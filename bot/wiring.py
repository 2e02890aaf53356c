"""The composition root: which handler answers which intent, and which guided forms exist."""

from handlers import basic
from handlers.forms import FormEngine
from handlers.registry import HandlerRegistry


def build_registry() -> HandlerRegistry:
    """Every handler module registers its handlers here, once; a duplicate fails at start-up."""
    registry = HandlerRegistry()
    basic.register(registry)
    return registry


def build_forms() -> FormEngine:
    """Every guided form, registered once."""
    return FormEngine()
