"""Conversation stories: scripted conversations, played through the pipeline and checked as a student sees them.

A story file is a YAML list of conversations (format: benchmarks/dialogue/README.md). `tests/test_stories.py`
plays tests/stories/*.yaml in the test suite; `madoguchi dialogue eval FILE` plays any file and reports how
many conversations and turns passed.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from bot.channels import web
from bot.pipeline import Pipeline
from core.clock import TOKYO, FixedClock
from core.conversations import load_state
from core.enums import Language
from core.models import Payment, TranscriptEntry
from core.services import Core
from core.staff import Role, create_account
from core.students import find_student
from handlers.identity import SIGNED_IN_PAYLOAD
from handlers.turn import Channel, IncomingMessage
from intents.types import Intent

STEP_KEYS = frozenset({"say", "press", "tap", "pay", "sign_in", "lang", "expect"})
# `pay: latest`: the payment gateway reports the latest payment paid (as the sandbox page's button does); the
# bot says nothing, and the steps after it see the paid order.
PAY_LATEST = "latest"
# `sign_in: 24M1001`: the student opened the sign-in link mailed for that number in this browser (the link itself
# is tested in tests/core and the browser tests); from then on the web chat knows them, and the page tells the chat.
EXPECT_KEYS = frozenset({"intents", "contains", "not_contains", "offers", "not_offers", "form", "reply_lang",
                         "silent", "transcript_not_contains"})
# A business day inside every office's hours, when a story gives no time.
DEFAULT_NOW = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)


# `desk:` of a story, who can take a handoff: `staffed` (default) a desk that reaches people (Slack's agents'
# channel), `away` web inbox accounts with nobody at the desk, `none` no desk at all (a fresh install).
DESKS = ("staffed", "away", "none")


class StoryError(ValueError):
    """A story file that does not follow the format; the message names the file, the story and the step."""


@dataclass(frozen=True)
class Story:
    """One scripted conversation."""

    name: str
    source: str
    now: datetime
    steps: tuple[dict[str, Any], ...]
    user: str
    desk: str = "staffed"  # who can take a handoff: staffed (a desk that reaches people), away or none (see DESKS)


@dataclass
class StepResult:
    """What one step showed and what in it was wrong."""

    said: str
    shown: str
    buttons: list[str]
    intents: tuple[Intent, ...]
    failures: list[str] = field(default_factory=list)


@dataclass
class StoryResult:
    """A played story: each step's result, as far as the story got."""

    story: Story
    steps: list[StepResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True if every step met its expectations."""
        return all(not step.failures for step in self.steps)


def load_stories(path: Path) -> list[Story]:
    """The stories of one file, checked for shape so that a typo fails loudly instead of testing nothing.

    Raises:
        StoryError: naming what is wrong and where.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as error:
        raise StoryError(f"{path}: not YAML: {error}") from error
    if not isinstance(raw, list):
        raise StoryError(f"{path}: expected a list of stories")
    stories, names = [], set()
    for number, item in enumerate(raw, start=1):
        where = f"{path.name}: story {number}"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item.get("steps"):
            raise StoryError(f"{where}: needs a name and steps")
        if item["name"] in names:
            raise StoryError(f"{where}: the name {item['name']!r} is used twice")
        names.add(item["name"])
        for index, step in enumerate(item["steps"], start=1):
            _check_step(f"{where} ({item['name']}), step {index}", step)
        now = datetime.fromisoformat(str(item["now"])) if item.get("now") else DEFAULT_NOW
        desk = str(item.get("desk", "staffed"))
        if desk not in DESKS:
            raise StoryError(f"{where} ({item['name']}): desk must be one of {', '.join(DESKS)}")
        stories.append(Story(item["name"], path.name, now if now.tzinfo else now.replace(tzinfo=TOKYO),
                             tuple(item["steps"]), str(item.get("user", "story-student")), desk))
    return stories


def _check_step(where: str, step: object) -> None:
    if not isinstance(step, dict) or not set(step) <= STEP_KEYS:
        raise StoryError(f"{where}: keys must be among {sorted(STEP_KEYS)}")
    if len({"say", "press", "tap", "pay", "sign_in"} & set(step)) != 1:
        raise StoryError(f"{where}: needs exactly one of say, press, tap, pay, sign_in")
    if "pay" in step and step["pay"] != PAY_LATEST:
        raise StoryError(f"{where}: pay must be {PAY_LATEST!r}")
    said = step.get("say", step.get("press", step.get("tap", step.get("pay", step.get("sign_in")))))
    if not isinstance(said, str):  # YAML reads a bare yes as True and 13:00 as 780: quote them
        raise StoryError(f"{where}: {said!r} must be a string (quote it)")
    expect = step.get("expect") or {}
    if not isinstance(expect, dict) or not set(expect) <= EXPECT_KEYS:
        raise StoryError(f"{where}: expect keys must be among {sorted(EXPECT_KEYS)}")
    for key in ("intents", "contains", "not_contains", "offers", "not_offers", "transcript_not_contains"):
        values = expect.get(key, [])
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise StoryError(f"{where}: {key} must be a list of strings (quote 13:00, yes, no, a:b)")
    for intent in expect.get("intents") or []:
        if intent not in {member.value for member in Intent}:
            raise StoryError(f"{where}: unknown intent {intent!r}")


def visible_text(rendered: list[dict[str, Any]]) -> str:
    """Everything the chat page shows of the replies: texts, link labels and URLs."""
    parts = []
    for reply in rendered:
        parts.append(reply["text"])
        if "link" in reply:
            parts += [reply["link"]["label"], reply["link"]["url"]]
    return "\n".join(parts)


def reply_language(text: str) -> Language:
    """The language of the bot's answer. English answers quote the service's Japanese terms (「第2パスワード
    変更」, e-ラーニング→看護学科), but only Japanese sentences are full of hiragana."""
    bare = re.sub(r"https?://\S+", "", text)
    hiragana = len(re.findall(r"[\u3041-\u309f]", bare))
    latin = len(re.findall(r"[A-Za-z]", bare))
    return Language.JA if hiragana * 4 > latin else Language.EN


class StoryPlayer:
    """Plays stories through a pipeline, each in a fresh database holding only the demo students."""

    def __init__(self, pipeline: Pipeline, clock: FixedClock, reset: Callable[[Core], None]) -> None:
        """Args:
            pipeline: The pipeline to talk to (web channel).
            clock: The core's clock, set to each story's time.
            reset: Empties the database and loads the demo students, before each story.
        """
        self.pipeline, self.clock, self.reset = pipeline, clock, reset

    def play(self, story: Story) -> StoryResult:
        """Play one story to its end (a failed step does not stop it: later steps are checked too)."""
        core = self.pipeline.core
        self.clock.set(story.now)
        self.reset(core)
        core.agents_on_slack = story.desk == "staffed"
        if story.desk == "away":
            with core.transaction() as session:
                create_account(session, "agent@example.ac.jp", "story agent password", core.now(), role=Role.AGENT,
                               display_name="Story Agent")
        result = StoryResult(story)
        buttons: dict[str, str] = {}
        page_lang: Language | None = None  # the web page sends its language with every message once chosen
        signed_in: int | None = None  # the browser's signed-in student, once a `sign_in` step opened the link
        for step in story.steps:
            page_lang = Language(step["lang"]) if step.get("lang") else page_lang
            if "pay" in step:
                result.steps.append(self._pay(step, story))
                continue
            if "sign_in" in step:
                signed_in = self._student_id(str(step["sign_in"]))
                if signed_in is None:
                    result.steps.append(StepResult(f"[sign in as {step['sign_in']}]", "", list(buttons), (),
                                                   [f"no student {step['sign_in']} to sign in as"]))
                    continue
            payload = SIGNED_IN_PAYLOAD if "sign_in" in step else step.get("tap")
            said = step.get("say") or (f"[sign in as {step['sign_in']}]" if "sign_in" in step else None) \
                or payload or f"[{step['press']}]"
            if "press" in step:
                payload = _pressed(buttons, str(step["press"]))
                if payload is None:
                    result.steps.append(StepResult(said, "", list(buttons), (), [
                        f"no button labelled {step['press']!r} to press; offered: {list(buttons)}"]))
                    continue
            message = IncomingMessage(
                channel=Channel.WEB, user_id=story.user, conversation_id=f"web:{story.user}",
                text=None if payload is not None else str(step["say"]), payload=payload,
                lang_hint=page_lang, signed_in_student=signed_in)
            turn = self.pipeline.answer(message)
            rendered = web.render(turn.replies)
            buttons = {button["label"]: button["payload"] for reply in rendered for button in reply["quick_replies"]}
            offered = [f"{label} ({value})" for label, value in buttons.items()]
            outcome = StepResult(said, visible_text(rendered), offered, turn.intents)
            outcome.failures = self._failures(step.get("expect") or {}, outcome, rendered, story)
            result.steps.append(outcome)
        return result

    def _student_id(self, number: str) -> int | None:
        with self.pipeline.core.transaction() as session:
            student = find_student(session, number)
            return student.id if student else None

    def _pay(self, step: dict[str, Any], story: Story) -> StepResult:
        """The gateway reports the latest payment paid; the step's expectations see nothing said."""
        core = self.pipeline.core
        with core.transaction() as session:
            reference = session.scalars(select(Payment.reference).order_by(Payment.id.desc())).first()
            if reference is None:
                return StepResult("[pay]", "", [], (), ["no payment to pay"])
            core.record_payment(session, reference)
        outcome = StepResult("[pay]", "", [], ())
        outcome.failures = self._failures(step.get("expect") or {}, outcome, [], story)
        return outcome

    def _failures(self, expect: dict[str, Any], outcome: StepResult, rendered: list[dict[str, Any]],
                  story: Story) -> list[str]:
        """Everything in a step's outcome that falls short of its `expect:`."""
        return [*_reply_failures(expect, outcome, rendered), *self._form_failures(expect, story),
                *_language_failures(expect, outcome.shown, rendered), *self._transcript_failures(expect)]

    def _form_failures(self, expect: dict[str, Any], story: Story) -> list[str]:
        """The form in progress when it is not the one expected (`form:`)."""
        if "form" not in expect:
            return []
        core = self.pipeline.core
        with core.transaction() as session:
            state = load_state(session, f"web:{story.user}", Channel.WEB.value, story.user, core.now())
        if state.form != expect["form"]:
            return [f"form in progress: {state.form}, expected {expect['form']}"]
        return []

    def _transcript_failures(self, expect: dict[str, Any]) -> list[str]:
        """The secrets the stored transcript holds though it should not (`transcript_not_contains:`)."""
        secrets = expect.get("transcript_not_contains") or []
        if not secrets:
            return []
        with self.pipeline.core.transaction() as session:
            stored = "\n".join(session.scalars(select(TranscriptEntry.text)))
        return [f"the transcript holds: {secret}" for secret in secrets if str(secret) in stored]


def _reply_failures(expect: dict[str, Any], outcome: StepResult, rendered: list[dict[str, Any]]) -> list[str]:
    """What the replies got wrong: silence, the intents answered, the text shown and the buttons offered."""
    failures = []
    if expect.get("silent") and rendered:
        failures.append("the bot should stay silent (a person has the conversation)")
    if "intents" in expect and [intent.value for intent in outcome.intents] != list(expect["intents"]):
        failures.append(f"answered {[i.value for i in outcome.intents]}, expected {list(expect['intents'])}")
    return failures + _text_failures(expect, outcome.shown) + _button_failures(expect, outcome.buttons)


def _text_failures(expect: dict[str, Any], text: str) -> list[str]:
    """The words missing from what the chat shows (`contains:`) and those that should not be there."""
    return [f"missing: {wanted}" for wanted in expect.get("contains") or [] if str(wanted) not in text] \
        + [f"should not contain: {unwanted}" for unwanted in expect.get("not_contains") or [] if str(unwanted) in text]


def _button_failures(expect: dict[str, Any], offered: list[str]) -> list[str]:
    """The buttons not offered (`offers:`) and those offered that should not be; each of `offered` is
    "label (payload)"."""
    return [f"not offered: {button}" for button in expect.get("offers") or []
            if not any(str(button) in value for value in offered)] \
        + [f"should not offer: {button}" for button in expect.get("not_offers") or []
           if any(str(button) in value for value in offered)]


def _language_failures(expect: dict[str, Any], text: str, rendered: list[dict[str, Any]]) -> list[str]:
    """The language of the answer, when it is not the one expected (`reply_lang:`)."""
    if expect.get("reply_lang") and rendered and reply_language(text).value != expect["reply_lang"]:
        return [f"answered in {reply_language(text).value}, expected {expect['reply_lang']}"]
    return []


def _pressed(buttons: dict[str, str], label: str) -> str | None:
    """The payload of the button with this label (or, failing that, the only one whose label contains it)."""
    if label in buttons:
        return buttons[label]
    matches = [payload for shown, payload in buttons.items() if label in shown]
    return matches[0] if len(matches) == 1 else None


def report(results: list[StoryResult]) -> str:
    """A plain-text report: totals, then each failed story with its failed steps."""
    turns = [step for result in results for step in result.steps]
    passed_turns = sum(not step.failures for step in turns)
    total_steps = sum(len(result.story.steps) for result in results)
    lines = [f"conversations passed {sum(r.passed for r in results)}/{len(results)}, "
             f"turns passed {passed_turns}/{total_steps}"]
    for result in results:
        if result.passed:
            continue
        lines.append(f"\nFAILED {result.story.source}: {result.story.name}")
        for number, step in enumerate(result.steps, start=1):
            if step.failures:
                lines.append(f"  step {number}: {step.said}")
                lines += [f"    - {failure}" for failure in step.failures]
                lines.append("    replied: " + step.shown.replace("\n", " / ")[:400])
    return "\n".join(lines)


def fresh_start(core: Core) -> None:
    """Empty every table of the core's database and load the demo students: where each story starts.

    Only for a database of stories' own (a test's, or the temporary one of `madoguchi dialogue eval`).
    """
    from core.db import Base
    from core.students import load_demo_students

    with core.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    with core.transaction() as session:
        load_demo_students(session, core.profile, core.now())
