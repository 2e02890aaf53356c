"""The normalized inbound message and the typed context a handler receives for one turn."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.conversations import ConversationState
from core.enums import Language
from core.services import Core
from intents.types import Entity, EntityType, Understanding


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
    message_ref: str | None = None  # the channel's id of this message (LINE message id), if it has one
    lang_hint: Language | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    # The web chat's signed-in student (a session the browser proved by a mailed link), else None; never typed.
    signed_in_student: int | None = None


@dataclass(frozen=True, slots=True)
class TurnContext:
    """Everything a handler may use: the message, what it means, the reply language, the conversation's
    state (which the handler may change; the pipeline saves it), the core and the time. `expecting` names
    the question the bot asked in its last answer (a handler sets `state.expect` to ask one). A handler adds
    to `personal` the parts of the message it read as personal data (an address), which transcripts mask."""

    message: IncomingMessage
    understanding: Understanding
    lang: Language
    state: ConversationState
    core: Core
    now: datetime
    expecting: str | None = None
    personal: list[str] = field(default_factory=list)

    @property
    def entities(self) -> tuple[Entity, ...]:
        """The entities of this message."""
        return self.understanding.entities

    def entity(self, kind: EntityType) -> Entity | None:
        """The first entity of a kind, or None."""
        return next((entity for entity in self.understanding.entities if entity.type is kind), None)
