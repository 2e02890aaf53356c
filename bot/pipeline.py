"""The conversation pipeline: normalized message → understanding → handler → neutral replies."""

import logging
from datetime import datetime
from typing import Protocol

from core.enums import Language
from core.errors import DomainError
from core.services import Core
from handlers import basic
from handlers.messages import say
from handlers.registry import HandlerRegistry
from handlers.replies import Reply, Text
from handlers.turn import IncomingMessage, TurnContext
from intents.types import Intent, Understanding

log = logging.getLogger(__name__)

PAYLOAD_INTENT_PREFIX = "intent:"
MAX_TEXT_CHARS = 2000  # a chat message longer than this is cut before understanding


class Understands(Protocol):
    """What the pipeline needs of the understanding layer (intents.Understander)."""

    def understand(self, text: str, now: datetime | None = None) -> Understanding:
        """The meaning of one message."""
        ...


class Pipeline:
    """Answers one message at a time for any channel."""

    def __init__(self, core: Core, understander: Understands, registry: HandlerRegistry) -> None:
        self.core, self.understander, self.registry = core, understander, registry

    def handle(self, message: IncomingMessage) -> list[Reply]:
        """The replies to one message; never raises, so a channel always has something to send."""
        now = self.core.now()
        understanding = self._understand(message, now)
        lang = message.lang_hint or understanding.lang
        ctx = TurnContext(message=message, understanding=understanding, lang=lang, core=self.core, now=now)
        if not (message.text or "").strip() and not message.payload:
            return [Text(say("basic.empty", lang), basic.main_menu(lang))]
        handler = self.registry.get(understanding.intent) or basic.fallback
        try:
            return handler(ctx)
        except DomainError as error:
            log.info("conversation %s: domain refusal %s", message.conversation_id, error.code)
            return [Text(say("basic.error", lang) + "\n\n" + basic.contact_lines(ctx))]
        except Exception:
            log.exception("conversation %s: handler for %s failed", message.conversation_id, understanding.intent)
            return [Text(say("basic.error", lang) + "\n\n" + basic.contact_lines(ctx))]

    def _understand(self, message: IncomingMessage, now: datetime) -> Understanding:
        if message.payload and message.payload.startswith(PAYLOAD_INTENT_PREFIX):
            name = message.payload.removeprefix(PAYLOAD_INTENT_PREFIX)
            if name in set(Intent):
                lang = message.lang_hint or Language.JA
                return Understanding(text=message.payload, intent=Intent(name), confidence=1.0,
                                     candidates=(), entities=(), lang=lang)
        return self.understander.understand((message.text or "")[:MAX_TEXT_CHARS], now=now)
