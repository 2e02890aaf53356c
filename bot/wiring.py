"""The composition root: which handler answers which intent, and which guided forms exist."""

from handlers import basic, email, handoff, info, login, money, ordering, pickup, reset, rules, status
from handlers.forms import FormEngine
from handlers.registry import HandlerRegistry

# Modules that answer topics from the guide and the profile; each exposes `register(registry)`.
TOPIC_MODULES = (basic, login, rules, email, money, pickup, info, handoff)
# Modules with guided forms; each exposes `register(registry, forms)`, wiring its intents and its forms.
FORM_MODULES = (ordering, reset, status)


def build_handlers() -> tuple[HandlerRegistry, FormEngine]:
    """Every handler and form, each registered once; a duplicate fails at start-up."""
    registry, forms = HandlerRegistry(), FormEngine()
    for module in TOPIC_MODULES:
        module.register(registry)
    for module in FORM_MODULES:
        module.register(registry, forms)
    return registry, forms
