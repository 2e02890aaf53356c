"""The rasa-sdk action server app over the test core, driven through ASGI with the requests Rasa sends."""

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sanic import Sanic

from bot.rasa.actions import create_app
from bot.rasa.domain import build_domain, build_rules
from core.services import Core
from intents.understander import Understander

_ids = itertools.count(1)


def user_event(text: str, intent: str, entities: list[dict] | None = None, *, metadata: dict | None = None,
               input_channel: str = "rest") -> dict[str, Any]:
    """A `user` event as Rasa's tracker holds it, with the parse data Rasa's NLU gives."""
    parse = {"text": text, "intent": {"name": intent, "confidence": 0.93},
             "intent_ranking": [{"name": intent, "confidence": 0.93}], "entities": entities or [],
             "message_id": f"m{next(_ids)}", "metadata": metadata or {}}
    return {"event": "user", "timestamp": 1.0, "text": text, "parse_data": parse, "input_channel": input_channel,
            "message_id": parse["message_id"], "metadata": metadata or {}}


class ActionServer:
    """The action server app in an event loop of its own, with the lifespan started as a server starts it.

    It keeps a Rasa-like tracker per sender: each call posts the tracker Rasa would post and applies the
    returned events (slots, active loop) to it, as Rasa does.
    """

    def __init__(self, app: Sanic, domain: dict[str, Any]) -> None:
        self.app, self.domain = app, domain
        # Sanic rewrites its own HTTP classes on a server's first start ("touch-up"); a second app started in
        # the same test process would rewrite them again and fail. It is a speed-up only: leave it off here.
        app.config.TOUCHUP = False
        # Which action Rasa's RulePolicy runs for an intent, from the generated rules.
        self.rule_actions = {rule["steps"][0]["intent"]: rule["steps"][1]["action"]
                             for rule in build_rules()["rules"] if "intent" in rule["steps"][0]}
        self.runner = asyncio.Runner()
        self.trackers: dict[str, dict[str, Any]] = {}
        self._inbox: asyncio.Queue | None = None
        self.runner.run(self._start())
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rasa-actions")

    async def _start(self) -> None:
        self._inbox, self._outbox = asyncio.Queue(), asyncio.Queue[dict[str, Any]]()
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
        self._lifespan = asyncio.get_running_loop().create_task(self.app(scope, self._inbox.get, self._outbox.put))
        await self._inbox.put({"type": "lifespan.startup"})
        started = await self._outbox.get()
        assert started["type"] == "lifespan.startup.complete", started

    async def _stop(self) -> None:
        await self.client.aclose()
        assert self._inbox is not None
        await self._inbox.put({"type": "lifespan.shutdown"})
        await self._outbox.get()
        await self._lifespan

    def close(self) -> None:
        self.runner.run(self._stop())
        self.runner.close()
        Sanic.unregister_app(self.app)  # the next test builds its own app of the same name

    def get(self, path: str) -> httpx.Response:
        return self.runner.run(self.client.get(path))

    def post(self, body: dict[str, Any]) -> httpx.Response:
        return self.runner.run(self.client.post("/webhook", json=body))

    def tracker(self, sender: str) -> dict[str, Any]:
        """The sender's tracker, as Rasa keeps it."""
        return self.trackers.setdefault(sender, {
            "sender_id": sender, "slots": {name: None for name in (*self.domain["slots"], "requested_slot")},
            "latest_message": {}, "events": [], "paused": False, "followup_action": None, "active_loop": {},
            "latest_action_name": "action_listen", "latest_input_channel": None})

    def hear(self, sender: str, text: str, intent: str, entities: list[dict] | None = None,
             **options: Any) -> None:
        """The student's message reaches Rasa: its NLU result becomes the tracker's latest message."""
        tracker = self.tracker(sender)
        event = user_event(text, intent, entities, **options)
        tracker["events"].append(event)
        tracker["events"].insert(-1, {"event": "action", "name": "action_listen", "timestamp": 1.0})
        tracker["latest_message"] = event["parse_data"]
        tracker["latest_input_channel"] = event["input_channel"]
        tracker["latest_action_name"] = "action_listen"

    def run(self, sender: str, action: str) -> dict[str, Any]:
        """Post `next_action` with the tracker and domain as Rasa 3.6 does; apply the returned events.

        A form's validation is posted on the copy of the tracker Rasa's FormAction makes (as recorded in
        tests/rasa/recordings): `requested_slot` set again and the form itself added as the latest action.
        """
        tracker = self.tracker(sender)
        posted = tracker
        if action.startswith("validate_"):
            loop = action.removeprefix("validate_")
            if not tracker["active_loop"]:  # Rasa activates its form before the first validation
                tracker["events"].append({"event": "active_loop", "timestamp": 2.0, "name": loop})
                tracker["active_loop"] = {"name": loop}
            added = [{"event": "slot", "timestamp": 2.0, "name": "requested_slot",
                      "value": tracker["slots"].get("requested_slot")},
                     {"event": "action", "timestamp": 2.0, "name": loop, "policy": None, "confidence": None}]
            posted = {**tracker, "events": [*tracker["events"], *added], "latest_action_name": loop}
        response = self.post({"next_action": action, "sender_id": sender, "tracker": posted,
                              "domain": self.domain, "version": "3.6.21"})
        assert response.status_code == 200, response.text
        result = response.json()
        name = action.removeprefix("validate_") if action.startswith("validate_") else action
        tracker["events"].append({"event": "action", "name": name, "timestamp": 2.0})
        tracker["latest_action_name"] = name
        for event in result["events"]:
            tracker["events"].append(event)
            if event["event"] == "slot":
                tracker["slots"][event["name"]] = event["value"]
            elif event["event"] == "active_loop":
                tracker["active_loop"] = {"name": event["name"]} if event["name"] else {}
        for message in result["responses"]:
            tracker["events"].append({"event": "bot", "text": message["text"], "timestamp": 3.0})
        return result

    def say(self, sender: str, text: str, intent: str, entities: list[dict] | None = None,
            **options: Any) -> dict[str, Any]:
        """One student message through Rasa: the active form's validation if a form is active (as Rasa's
        FormAction calls it), else the action the rules give the intent."""
        self.hear(sender, text, intent, entities, **options)
        loop = self.tracker(sender)["active_loop"].get("name")
        return self.run(sender, f"validate_{loop}" if loop else self.rule_actions[intent])

    def tap(self, sender: str, payload: str, **options: Any) -> dict[str, Any]:
        """A button tapped: its payload is the message Rasa parses (`/intent{"payload": ...}`)."""
        intent, _, body = payload[1:].partition("{")
        entities = []
        if body:
            import json

            value = json.loads("{" + body)["payload"]
            entities = [{"entity": "payload", "value": value, "start": 0, "end": 0, "extractor": "RegexMessageHandler"}]
        return self.say(sender, payload, intent, entities, **options)


@pytest.fixture
def server(core: Core, understander: Understander) -> Iterator[ActionServer]:
    """The action server app over the test core, with madoguchi's own understander beside Rasa's, as
    `madoguchi actions` runs it."""
    server = ActionServer(create_app(core, understander), build_domain())
    try:
        yield server
    finally:
        server.close()


def texts(result: dict[str, Any]) -> str:
    """Every response text of an action's result, joined."""
    return "\n".join(message["text"] or "" for message in result["responses"])


def buttons(result: dict[str, Any]) -> list[str]:
    """Every button payload of an action's result."""
    return [button["payload"] for message in result["responses"] for button in message["buttons"]]


def slot_events(result: dict[str, Any]) -> dict[str, Any]:
    """The slots an action's result sets."""
    return {event["name"]: event["value"] for event in result["events"] if event["event"] == "slot"}


def loop_events(result: dict[str, Any]) -> list[str | None]:
    """The active loops an action's result sets."""
    return [event["name"] for event in result["events"] if event["event"] == "active_loop"]
