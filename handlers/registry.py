"""The handler registry: one handler per intent, registered explicitly; a second registration fails."""

from collections.abc import Callable

from handlers.replies import Reply
from handlers.turn import TurnContext
from intents.types import Intent

Handler = Callable[[TurnContext], list[Reply]]


class DuplicateHandler(Exception):
    """An intent was registered twice: a wiring mistake caught at start-up."""


class HandlerRegistry:
    """Maps each intent to its handler."""

    def __init__(self) -> None:
        self._handlers: dict[Intent, Handler] = {}

    def register(self, intent: Intent, handler: Handler) -> None:
        """Wire `handler` to `intent`.

        Raises:
            DuplicateHandler: if the intent already has a handler.
        """
        if intent in self._handlers:
            existing = self._handlers[intent]
            raise DuplicateHandler(f"{intent} is handled by {existing.__module__}.{existing.__name__} already")
        self._handlers[intent] = handler

    def get(self, intent: Intent) -> Handler | None:
        """The handler of an intent, or None."""
        return self._handlers.get(intent)

    def intents(self) -> frozenset[Intent]:
        """Every intent with a handler."""
        return frozenset(self._handlers)
