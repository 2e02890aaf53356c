"""madoguchi's handlers as rasa_sdk actions (`action_<intent>`, `validate_<form>_form`) and the action server app;
the one module that imports rasa_sdk."""

import asyncio
import logging
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.endpoint import create_app as create_sdk_app
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from rasa_sdk.types import DomainDict
from sanic import Sanic

from bot.rasa.bridge import RasaAnswer, RasaBridge, RasaTurn, build_bridge
from bot.rasa.domain import action_name, validation_name
from core.services import Core
from intents.types import Intent

log = logging.getLogger(__name__)


def _emit(answer: RasaAnswer, dispatcher: CollectingDispatcher) -> list[EventType]:
    """Say the answer's messages and return its events: the loop change first, then the slots."""
    for message in answer.messages:
        dispatcher.utter_message(**message)
    events: list[EventType] = [ActiveLoop(answer.loop)] if answer.loop_changed else []
    events += [SlotSet(name, value) for name, value in answer.slots.items()]
    return events


class IntentAction(Action):
    """`action_<intent>`: the intent's madoguchi handler, through the pipeline and on madoguchi's state.

    A handler that starts a guided form (an order, a reset mail, an order lookup) activates its Rasa form.
    """

    def __init__(self, intent: Intent, bridge: RasaBridge) -> None:
        self.intent, self.bridge = intent, bridge

    def name(self) -> str:
        """`action_<intent>`."""
        return action_name(self.intent)

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        """Answer the latest message as this action's intent."""
        turn = RasaTurn.from_tracker(tracker.current_state(), self.intent)
        # The pipeline does blocking database work: keep it off the server's event loop.
        return _emit(await asyncio.to_thread(self.bridge.answer, turn), dispatcher)


class FormValidation(FormValidationAction):
    """`validate_<form>_form`: each message inside a form, answered by madoguchi's form engine.

    The engine takes a typed or tapped answer, answers given early, a change, a cancel or a question about
    something else, with madoguchi's own parsers and checks (handlers/forms.py); the events mirror its slots
    (masked), ask Rasa for its next question as `requested_slot`, and end the Rasa form with it. The engine's
    reply already holds the next question, so the domain has no `utter_ask_*` for Rasa to add.
    """

    def __init__(self, form: str, bridge: RasaBridge) -> None:
        self.form, self.bridge = form, bridge

    def name(self) -> str:
        """`validate_<form>_form`."""
        return validation_name(self.form)

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        """Answer the message the form received; right after the action that started it, only report the state."""
        turn = RasaTurn.from_tracker(tracker.current_state())
        answer = await asyncio.to_thread(self.bridge.answer, turn, handle=turn.after_user_message)
        return _emit(answer, dispatcher)


def build_executor(bridge: RasaBridge) -> ActionExecutor:
    """An executor with every intent's action and every form's validation."""
    executor = ActionExecutor()
    for intent in Intent:
        executor.register_action(IntentAction(intent, bridge))
    for form in bridge.forms.slots:
        executor.register_action(FormValidation(form, bridge))
    return executor


def create_app(core: Core, **options: Any) -> Sanic:
    """The rasa-sdk action server app (`POST /webhook`, `GET /actions`, `GET /health`) over a core.

    Args:
        core: The deployment's core (settings, migrated database).
        **options: Passed to `rasa_sdk.endpoint.create_app` (e.g. `cors_origins`).
    """
    return create_sdk_app(build_executor(build_bridge(core)), **options)

