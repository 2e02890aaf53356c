"""A fake turn context for calling handlers directly (layer 1 of the tests)."""

from collections.abc import Callable
from datetime import datetime

import pytest

from core.conversations import ConversationState
from core.enums import Language
from core.services import Core
from handlers.replies import Card, Link, Reply, Text
from handlers.turn import Channel, IncomingMessage, TurnContext
from intents.controls import Control
from intents.types import Entity, Intent, Understanding


@pytest.fixture
def make_ctx(core: Core) -> Callable[..., TurnContext]:
    """Build a TurnContext by hand: an intent, entities, a language, a state and a time of your choosing."""

    def build(intent: Intent = Intent.OUT_OF_SCOPE, *, text: str = "", payload: str | None = None,
              lang: Language = Language.JA, entities: tuple[Entity, ...] = (), state: ConversationState | None = None,
              now: datetime | None = None, confidence: float = 0.9,
              candidates: tuple[tuple[Intent, float], ...] = (), control: Control | None = None,
              expecting: str | None = None) -> TurnContext:
        message = IncomingMessage(channel=Channel.WEB, user_id="u", conversation_id="web:u", text=text or None,
                                  payload=payload)
        understanding = Understanding(text=text, intent=intent, confidence=confidence, candidates=candidates,
                                      entities=entities, lang=lang, control=control)
        return TurnContext(message=message, understanding=understanding, lang=lang,
                           state=state or ConversationState("web:u", "web", "u"), core=core,
                           now=now or core.now(), expecting=expecting)

    return build


def all_text(replies: list[Reply]) -> str:
    """Every visible string of the replies, joined: texts, card titles and fields, link labels and URLs."""
    parts: list[str] = []
    for reply in replies:
        match reply:
            case Text(text=text):
                parts.append(text)
            case Link(label=label, url=url, text=text):
                parts += [text, label, url]
            case Card(title=title, fields=fields, footer=footer):
                parts += [title, *(f"{k}: {v}" for k, v in fields), footer]
    return "\n".join(parts)


def payloads(replies: list[Reply]) -> list[str]:
    """The payloads of every quick reply offered."""
    return [button.payload for reply in replies for button in getattr(reply, "quick_replies", ())]
