"""The composition root: which handler answers which intent, and which guided forms exist."""

from handlers import basic, email, info, login, money, ordering, pickup, reset, rules, status
from handlers.forms import FormEngine
from handlers.registry import HandlerRegistry

# Modules that answer topics from the guide and the profile; each exposes `register(registry)`.
TOPIC_MODULES = (basic, login, rules, email, money, pickup, info)
# Modules with guided forms; each exposes `register(registry, forms)`, wiring its intents and its forms.
FORM_MODULES = (ordering, reset, status)


def _register_form_modules(registry: HandlerRegistry, forms: FormEngine) -> None:
    for module in FORM_MODULES:
        module.register(registry, forms)


def build_registry() -> HandlerRegistry:
    """Every handler module registers its handlers here, once; a duplicate fails at start-up."""
    registry = HandlerRegistry()
    for module in TOPIC_MODULES:
        module.register(registry)
    # The form modules' intent handlers start their forms through the engine they were registered with; a
    # form in progress lives in the conversation state, so build_forms()'s engine (which holds the same
    # forms) continues it on the next turn.
    _register_form_modules(registry, FormEngine())
    return registry


def build_forms() -> FormEngine:
    """Every guided form, registered once."""
    forms = FormEngine()
    _register_form_modules(HandlerRegistry(), forms)
    return forms
