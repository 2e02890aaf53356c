"""The handler registry: one handler per intent, and one reader per question the bot asks, registered
explicitly; a second registration fails."""

from collections.abc import Callable

from handlers.replies import Reply
from handlers.turn import TurnContext
from intents.types import Intent

Handler = Callable[[TurnContext], list[Reply]]
# Reads a message as the answer to a question the bot asked (`state.expect`): the replies, or None when
# the message is not an answer to it (then it is understood as a new question).
Expectation = Callable[[TurnContext], list[Reply] | None]


class DuplicateHandler(Exception):
    """An intent or a question was registered twice: a wiring mistake caught at start-up."""


class HandlerRegistry:
    """Maps each intent to its handler, and each question the bot asks to the reader of its answer."""

    def __init__(self) -> None:
        self._handlers: dict[Intent, Handler] = {}
        self._expectations: dict[str, tuple[Intent, Expectation]] = {}

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

    def expect(self, name: str, intent: Intent, reader: Expectation) -> None:
        """Wire the reader of the answer to question `name`, a question asked about `intent`.

        Raises:
            DuplicateHandler: if the question already has a reader.
        """
        if name in self._expectations:
            raise DuplicateHandler(f"the answer to {name} is read already")
        self._expectations[name] = (intent, reader)

    def expectation(self, name: str) -> tuple[Intent, Expectation] | None:
        """The intent and the reader of question `name`, or None."""
        return self._expectations.get(name)
