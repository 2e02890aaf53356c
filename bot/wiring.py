"""The composition root: which handler answers which intent, which guided forms exist, and the worker's
processors of the core's own jobs."""

from bot.delivery.inbox import ChannelProcessor
from bot.delivery.mailing import Mailing
from core.services import Core
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


def job_processors(core: Core) -> list[ChannelProcessor]:
    """The inbox worker's processors of jobs the core queues itself, whatever channels are connected: the
    `mail` jobs (a reset or sign-in link mailed outside the request). Each process running an inbox worker
    registers them (the web app's)."""
    return [Mailing(core)]
