"""madoguchi's handlers as rasa_sdk actions (`action_<intent>`, `validate_<form>_form`) and the action server app;
the one module that imports rasa_sdk."""

import asyncio
import logging
import warnings
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.endpoint import create_app as create_sdk_app
from rasa_sdk.events import ActionExecuted, ActiveLoop, EventType, Restarted, SessionStarted, SlotSet
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from rasa_sdk.types import DomainDict
from sanic import Sanic

from bot.rasa.bridge import ACTION_LISTEN, RasaAnswer, RasaBridge, RasaTurn, build_bridge
from bot.rasa.domain import ACTION_RESTART, ACTION_SESSION_START, action_name, validation_name
from core.services import Core
from intents.types import Intent
from intents.understander import Understander

log = logging.getLogger(__name__)

# The Rasa the action server is tested against (tests/rasa: recordings of it and an end-to-end run). The
# action-call protocol is the same across Rasa 3: rasa-sdk's warning on every call from a Rasa whose minor
# version differs from its own is replaced by CheckedExecutor's one warning for another major version.
TESTED_RASA = "3.6.21"
warnings.filterwarnings("ignore", message="Your versions of rasa and rasa_sdk might not be compatible")


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
        answer = await asyncio.to_thread(self.bridge.answer, turn, handle=turn.answers_message)
        return _emit(answer, dispatcher)


class StartOverAction(Action):
    """Rasa's `action_restart` (the student's `/restart`) or `action_session_start`, replaced: madoguchi's state
    of the conversation starts over too (a form left in it would take the next message)."""

    def __init__(self, name: str, bridge: RasaBridge) -> None:
        self._name, self.bridge = name, bridge

    def name(self) -> str:
        """The Rasa default action this one replaces."""
        return self._name

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        """Forget madoguchi's form and answers, then do what Rasa's own action does: a restart says so with the
        menu and restarts the tracker; a session starts silently, listening, with no slot carried over (the
        domain's `carry_over_slots_to_new_session` is false)."""
        turn = RasaTurn.from_tracker(tracker.current_state())
        if self._name == ACTION_SESSION_START:
            await asyncio.to_thread(self.bridge.start_over, turn)
            return [SessionStarted(), ActionExecuted(ACTION_LISTEN)]
        answer = await asyncio.to_thread(self.bridge.restart, turn)
        for message in answer.messages:
            dispatcher.utter_message(**message)
        return [Restarted()]


class CheckedExecutor(ActionExecutor):
    """rasa-sdk's executor, saying once in the log when Rasa's major version is not the one madoguchi is tested
    with (rasa-sdk's own check wants the same minor version, which no rasa-sdk for Python 3.11 has for 3.6)."""

    _warned = False

    async def run(self, action_call: dict[str, Any]) -> Any:
        """Run the called action (rasa-sdk's), after the version check."""
        version = str(action_call.get("version") or "")
        if version.split(".")[0] != TESTED_RASA.split(".")[0] and not CheckedExecutor._warned:
            CheckedExecutor._warned = True
            log.warning("Rasa %s calls the action server; madoguchi is tested with Rasa %s",
                        version or "(unknown)", TESTED_RASA)
        return await super().run(action_call)


def build_executor(bridge: RasaBridge) -> ActionExecutor:
    """An executor with every intent's action, every form's validation, and the restart and session start."""
    executor = CheckedExecutor()
    executor.register_action(StartOverAction(ACTION_RESTART, bridge))
    executor.register_action(StartOverAction(ACTION_SESSION_START, bridge))
    for intent in Intent:
        executor.register_action(IntentAction(intent, bridge))
    for form in bridge.forms.slots:
        executor.register_action(FormValidation(form, bridge))
    return executor


def create_app(core: Core, own: Understander | None = None, **options: Any) -> Sanic:
    """The rasa-sdk action server app (`POST /webhook`, `GET /actions`, `GET /health`) over a core.

    Args:
        core: The deployment's core (settings, migrated database).
        own: madoguchi's own understander, read beside Rasa's intent (see `RasaUnderstander`).
        **options: Passed to `rasa_sdk.endpoint.create_app` (e.g. `cors_origins`).
    """
    return create_sdk_app(build_executor(build_bridge(core, own)), **options)

