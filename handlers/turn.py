"""The normalized inbound message and the typed context a handler receives for one turn."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.enums import Language
from core.services import Core
from intents.types import Understanding


class Channel(StrEnum):
    """Where a message came from."""

    WEB = "web"
    TERMINAL = "terminal"
    LINE = "line"
    SLACK = "slack"


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message from any channel, normalized by its adapter."""

    channel: Channel
    user_id: str
    conversation_id: str
    text: str | None = None
    payload: str | None = None  # a tapped button's payload, instead of text
    event_id: str | None = None
    lang_hint: Language | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TurnContext:
    """Everything a handler may use: the message, what it means, the reply language, the core, the time."""

    message: IncomingMessage
    understanding: Understanding
    lang: Language
    core: Core
    now: datetime
