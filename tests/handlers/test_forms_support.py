"""Support for the form tests: a conversation driven through the form engine and handlers by direct calls."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.delivery.mailing import send_queued_mail
from core.conversations import ConversationState
from core.enums import Language
from core.services import Core
from core.students import create_student, find_student
from handlers import ordering, reset, status
from handlers.forms import RESUME, FormEngine
from handlers.registry import HandlerRegistry
from handlers.replies import Card, Reply, Text
from handlers.turn import TurnContext
from intents.types import Entity, EntityType, Intent
from tests.handlers.conftest import all_text, payloads

MAX_BUTTONS = 13
MAX_LABEL = 20

# The demo students the tests create (as in core/data/demo_students.csv).
STUDENTS = {
    "24M1001": ("medicine", 3, "taro.yamada@students.example.ac.jp"),
    "25M1002": ("medicine", 1, None),
    "21M1003": ("medicine", 6, "ichiro.suzuki@students.example.ac.jp"),
    "22N2002": ("nursing", 4, "emily.tanaka@students.example.ac.jp"),
}


def add_students(core: Core, *numbers: str) -> dict[str, int]:
    """Create demo students; their database ids by number."""
    ids = {}
    with core.transaction() as session:
        for number in numbers or tuple(STUDENTS):
            department, year, email = STUDENTS[number]
            ids[number] = create_student(session, student_number=number, department=department, year=year,
                                         email=email, now=core.now()).id
    return ids


def entity(kind: EntityType, value: str | int, text: str = "") -> Entity:
    """An entity as the extractor would give it (the span does not matter to the handlers)."""
    return Entity(kind, value, 0, len(text or str(value)), text or str(value))


def test_entity_helper_keeps_the_value():
    assert entity(EntityType.COPIES, 2).value == 2


@dataclass
class Chat:
    """One conversation: each turn goes through the engine first and to the intent's handler otherwise,
    as bot.pipeline does; the replies of every turn are kept and checked for the channel limits."""

    make_ctx: Callable[..., TurnContext]
    lang: Language = Language.JA
    state: ConversationState = field(default_factory=lambda: ConversationState("web:u", "web", "u"))
    registry: HandlerRegistry = field(default_factory=HandlerRegistry)
    forms: FormEngine = field(default_factory=FormEngine)
    turns: list[list[Reply]] = field(default_factory=list)
    personal: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for module in (ordering, reset, status):
            module.register(self.registry, self.forms)

    def detour(self, ctx: TurnContext) -> list[Reply]:
        handler = self.registry.get(ctx.understanding.intent)
        return handler(ctx) if handler else [Text(f"[answer about {ctx.understanding.intent.value}]")]

    def say(self, text: str = "", intent: Intent = Intent.OUT_OF_SCOPE, *entities: Entity) -> list[Reply]:
        """The student types `text`, understood as `intent` with `entities`."""
        return self._turn(self.make_ctx(intent, text=text, entities=entities, lang=self.lang, state=self.state))

    def sign_in(self, number: str) -> list[Reply]:
        """The student opens the sign-in link mailed for `number` in this browser: the conversation knows them
        from now on (as the pipeline sets it from the signed-in session), and a form in progress goes on."""
        with self.make_ctx().core.transaction() as session:
            student = find_student(session, number)
            assert student is not None, f"no student {number}"
            self.state.student_id = student.id
        return self.tap(RESUME) if self.state.form is not None else []

    def tap(self, payload: str) -> list[Reply]:
        """The student taps a button."""
        return self._turn(self.make_ctx(Intent.OUT_OF_SCOPE, payload=payload, lang=self.lang, state=self.state,
                                        confidence=1.0))

    def _turn(self, ctx: TurnContext) -> list[Reply]:
        replies = self.forms.handle(ctx, self.detour)
        if replies is None:
            replies = self.detour(ctx)
        check_limits(replies)
        json.dumps(self.state.slots)  # the state is stored as JSON: a value that is not would fail here
        self.turns.append(replies)
        self.personal = list(ctx.personal)  # what the last turn marked for masking in the transcript
        send_queued_mail(ctx.core)  # a reset or sign-in link the turn asked for, mailed as the worker does
        return replies


def check_limits(replies: list[Reply]) -> None:
    """Every reply keeps the channels' limits: at most 13 buttons, labels of at most 20 characters."""
    for reply in replies:
        buttons = getattr(reply, "quick_replies", ())
        assert len(buttons) <= MAX_BUTTONS, f"{len(buttons)} buttons: {reply}"
        for button in buttons:
            assert 0 < len(button.label) <= MAX_LABEL, f"label too long: {button.label!r}"


def card(replies: list[Reply]) -> Card:
    """The one card among the replies."""
    cards = [reply for reply in replies if isinstance(reply, Card)]
    assert len(cards) == 1, f"expected one card in {replies}"
    return cards[0]


__all__ = ["Chat", "add_students", "all_text", "card", "entity", "payloads"]
