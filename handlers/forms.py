"""Guided forms: ask for one slot at a time, accept answers typed or tapped, allow change, cancel and detours."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.enums import Language
from handlers.messages import say
from handlers.payloads import (
    CancelForm,
    ChangeSlot,
    Namespace,
    ResumeForm,
    SetSlot,
    StartForm,
    decode,
    encode,
    namespace_of,
)
from handlers.replies import QuickReply, Reply, Text
from handlers.turn import TurnContext
from intents.controls import Control
from intents.types import Intent

CANCEL = encode(CancelForm())
RESUME = encode(ResumeForm())
# `state.expect` after a detour: the bot asked whether to continue the form, so a typed yes or no answers it.
RESUME_QUESTION = "form:resume"
# Thanks or a goodbye inside a form is answered as such only this surely: a name (「佐藤花子です」) reads as
# unsure small talk.
SURE_SMALL_TALK = 0.7


def set_payload(slot: str, value: str) -> str:
    """The payload of a button that answers `slot` with `value`."""
    return encode(SetSlot(slot, value))


def change_payload(slot: str) -> str:
    """The payload of a button that asks `slot` again."""
    return encode(ChangeSlot(slot))


def start_payload(form: str) -> str:
    """The payload of a button that starts a form."""
    return encode(StartForm(form))


class SlotRejected(Exception):
    """An answer was understood but cannot be used; `key` names the handler message that says why."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key, self.values = key, values


@dataclass(frozen=True)
class Slot:
    """One question of a form.

    `parse` returns the answer found in the turn (a tapped `form:set:<slot>:<value>` payload, an entity
    or the text), None when the turn does not answer it, or raises SlotRejected. `needed` skips the
    slot when it has nothing to ask (e.g. copies for an item that allows one).
    """

    name: str
    ask: Callable[[TurnContext], list[Reply]]
    parse: Callable[[TurnContext], Any]
    needed: Callable[[TurnContext], bool] = lambda ctx: True
    # A yes/no question (the order's confirmation): a typed "no" asks which answer to change.
    yes_no: bool = False


@dataclass(frozen=True)
class Form:
    """A guided form: its slots in order and what to do when all are answered."""

    name: str
    slots: tuple[Slot, ...]
    finish: Callable[[TurnContext], list[Reply]]
    prefill: Callable[[TurnContext], dict[str, Any]] = field(default=lambda ctx: {})
    # Called before each next question (after the form starts and after every accepted answer): lets a form
    # take up answers given early once they can be checked, e.g. the order form's item once the student is
    # known, also when that happened outside the form (LINE account linking).
    refresh: Callable[[TurnContext], None] = field(default=lambda ctx: None)
    # The intent a turn inside the form answers (the order form serves order_certificate and fee_items).
    topic: Callable[[TurnContext], Intent] = field(default=lambda ctx: Intent.OUT_OF_SCOPE)
    # An answer of the form's own to a question asked inside it, before any detour (the order form answers
    # a refund question itself: nothing has been paid yet); None to detour as usual.
    aside: Callable[[TurnContext], list[Reply] | None] = field(default=lambda ctx: None)
    # The earlier question a message names (「戻って、受取方法まちがえた」: the delivery), which a typed "back"
    # returns to instead of the question just before; None when it names none.
    named: Callable[[TurnContext], str | None] = field(default=lambda ctx: None)

    def slot(self, name: str) -> Slot | None:
        """The slot called `name`, or None."""
        return next((slot for slot in self.slots if slot.name == name), None)


Detour = Callable[[TurnContext], list[Reply]]


class FormEngine:
    """Runs the registered forms over the conversation state (`state.form`, `state.slots`)."""

    def __init__(self) -> None:
        self._forms: dict[str, Form] = {}

    def register(self, form: Form) -> None:
        """Add a form; a second form of the same name is a wiring mistake."""
        if form.name in self._forms:
            raise ValueError(f"form {form.name} registered twice")
        self._forms[form.name] = form

    def names(self) -> frozenset[str]:
        """Every registered form's name."""
        return frozenset(self._forms)

    def start(self, name: str, ctx: TurnContext) -> list[Reply]:
        """Begin form `name`, taking what the first message already answers, and ask the first open slot."""
        form = self._forms[name]
        ctx.state.start_form(name)
        ctx.state.slots.update(form.prefill(ctx))
        return self._advance(form, ctx)

    def active(self, ctx: TurnContext) -> Form | None:
        """The form in progress, if any."""
        return self._forms.get(ctx.state.form or "")

    def topic(self, ctx: TurnContext) -> Intent | None:
        """The intent of the form in progress (what a turn inside it answers), or None without one."""
        form = self.active(ctx)
        return form.topic(ctx) if form is not None else None

    def handle(self, ctx: TurnContext, detour: Detour) -> list[Reply] | None:
        """Answer a turn inside a form, or None when the turn is not the form's (no form in progress).

        A `form:start:<name>` payload starts a form; `form:cancel`, `form:resume` and `form:change:<slot>`
        steer the current one, as do the same words typed (cancel, continue, back, change; yes and no to a
        yes/no question or to "shall we continue?"). Any other turn is offered to the open slot; a confident
        question about something else is answered by the form's aside or by `detour`, followed by an offer
        to continue or cancel.
        """
        payload = ctx.message.payload or ""
        tapped = decode(payload)
        if isinstance(tapped, StartForm) and tapped.form in self._forms:
            return self.start(tapped.form, ctx)
        form = self.active(ctx)
        if form is None:  # a form's button after the form ended is stale; anything else is not the form's
            return [Text(say("forms.expired", ctx.lang))] if namespace_of(payload) is Namespace.FORM else None
        if isinstance(tapped, CancelForm | ResumeForm | ChangeSlot):
            return self._steer_by_button(form, tapped, ctx)
        slot = self._open_slot(form, ctx)
        if slot is None:
            return self._advance(form, ctx)
        steered = self._steer(form, slot, ctx) if not payload else None
        if steered is not None:
            return steered
        return self._answer(form, slot, ctx, detour)

    def _answer(self, form: Form, slot: Slot, ctx: TurnContext, detour: Detour) -> list[Reply]:
        """The open slot's answer taken, or refused with the reason; else a detour for a question about
        something else, or the question again."""
        try:
            value = slot.parse(ctx)
        except SlotRejected as rejected:
            return [Text(say(rejected.key, ctx.lang, **rejected.values)), *slot.ask(ctx)]
        if value is not None:
            ctx.state.slots[slot.name] = value
            return self._advance(form, ctx)
        if _asks_something_else(ctx):
            answered = form.aside(ctx) or detour(ctx)
            if ctx.state.form is None:  # the answer ended the form (a person was asked for)
                return answered
            ctx.state.expect = RESUME_QUESTION
            return [*answered, resume_offer(ctx.lang)]
        return [Text(say("forms.not_understood", ctx.lang)), *slot.ask(ctx)]

    def _steer_by_button(self, form: Form, tapped: CancelForm | ResumeForm | ChangeSlot,
                         ctx: TurnContext) -> list[Reply]:
        """What a tapped cancel, continue or change button does."""
        if isinstance(tapped, CancelForm):
            return self._cancel(ctx)
        if isinstance(tapped, ChangeSlot) and form.slot(tapped.slot) is not None:
            ctx.state.slots.pop(tapped.slot, None)
            ctx.state.slots.pop("confirm", None)  # a changed answer needs a new confirmation
        return self._advance(form, ctx)

    def _steer(self, form: Form, slot: Slot, ctx: TurnContext) -> list[Reply] | None:
        """What a typed steering word does, as its button would; None when the message is not one."""
        control = ctx.understanding.control
        if ctx.expecting == RESUME_QUESTION and control in (Control.YES, Control.NO):
            control = Control.CONTINUE if control is Control.YES else Control.CANCEL
        if control is Control.CANCEL:
            return self._cancel(ctx)
        if control is Control.CONTINUE:
            return self._advance(form, ctx)
        if control is Control.BACK or (control is Control.CHANGE and not slot.yes_no):
            return self._back(form, slot, ctx)
        if control in (Control.CHANGE, Control.NO) and slot.yes_no:
            return [Text(say("forms.which_to_change", ctx.lang)), *slot.ask(ctx)]
        signing_off = ctx.understanding.intent in (Intent.THANKS, Intent.GOODBYE)  # "ok thanks": answered as such
        if control in (Control.YES, Control.NO) and not slot.yes_no and not signing_off:
            return [Text(say("forms.answer_the_question", ctx.lang)), *slot.ask(ctx)]  # no yes/no question is open
        return None

    def _back(self, form: Form, slot: Slot, ctx: TurnContext) -> list[Reply]:
        """Ask the question before the open one again (its answer is dropped), or the earlier one the message
        names; the open one if it is the first."""
        answered = [earlier.name for earlier in form.slots[:form.slots.index(slot)]
                    if earlier.name in ctx.state.slots and earlier.needed(ctx)]
        named = form.named(ctx)
        if answered:
            ctx.state.slots.pop(named if named in answered else answered[-1], None)
        return [Text(say("forms.back", ctx.lang)), *self._advance(form, ctx)]

    @staticmethod
    def _cancel(ctx: TurnContext) -> list[Reply]:
        ctx.state.end_form()
        return [Text(say("forms.cancelled", ctx.lang))]

    def _open_slot(self, form: Form, ctx: TurnContext) -> Slot | None:
        return next((slot for slot in form.slots if slot.name not in ctx.state.slots and slot.needed(ctx)), None)

    def _advance(self, form: Form, ctx: TurnContext) -> list[Reply]:
        form.refresh(ctx)
        slot = self._open_slot(form, ctx)
        if slot is not None:
            return slot.ask(ctx)
        return form.finish(ctx)


def resume_offer(lang: Language) -> Text:
    """After a detour: continue the form where it stopped, or cancel it."""
    return Text(say("forms.resume_question", lang), (
        QuickReply(say("forms.resume", lang), RESUME),
        QuickReply(say("forms.cancel", lang), CANCEL),
    ))


def _asks_something_else(ctx: TurnContext) -> bool:
    """True when a turn the open slot could not use is a question the bot can place (to be answered on a
    detour), not a form's own stale button."""
    payload = ctx.message.payload or ""
    understanding = ctx.understanding
    # A typed greeting, or a name, which reads as unsure small talk (「山田太郎です」), answers nothing: the
    # question is asked again (the menu button, intent:greet, still shows the menu; a clear thanks is thanked).
    greeting = not payload and (understanding.intent is Intent.GREET or (
        understanding.intent in (Intent.THANKS, Intent.GOODBYE) and understanding.confidence < SURE_SMALL_TALK))
    placed = (understanding.intent is not Intent.OUT_OF_SCOPE and not greeting) \
        or understanding.out_of_scope_kind is not None
    return placed and namespace_of(payload) is not Namespace.FORM


def tapped(ctx: TurnContext, slot: str) -> str | None:
    """The value of a tapped `form:set:<slot>:<value>` button for this slot, else None."""
    button = decode(ctx.message.payload or "")
    return button.value if isinstance(button, SetSlot) and button.slot == slot else None


def cancel_button(ctx: TurnContext) -> QuickReply:
    """A button that leaves the form."""
    return QuickReply(say("forms.cancel", ctx.lang), CANCEL)
