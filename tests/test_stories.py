"""Conversation stories (tests/stories/*.yaml) run through the same pipeline as /api/chat and `madoguchi chat`.

Each story is a list of steps: the student says something or taps a button, and the replies must contain
(or must not contain) texts and must offer buttons. The clock is set per story; each starts afresh with the
demo students (core/data/demo_students.csv) in the database.
"""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from bot.channels import web
from core.enums import Language
from core.models import TranscriptEntry
from core.students import load_demo_students
from handlers.turn import Channel, IncomingMessage

STORIES = Path(__file__).parent / "stories"
STEP_KEYS = {"say", "tap", "lang", "expect"}
EXPECT_KEYS = {"silent", "contains", "not_contains", "offers", "not_offers", "transcript_not_contains"}


@dataclass(frozen=True)
class Story:
    """One scripted conversation from a story file."""

    name: str
    source: str
    now: datetime | None
    steps: list[dict[str, Any]]
    user: str


def load_stories() -> list[Story]:
    """Every story of every file, checked for shape so a typo fails loudly instead of testing nothing."""
    stories = []
    for path in sorted(STORIES.glob("*.yaml")):
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            steps = raw["steps"]
            for step in steps:
                assert set(step) <= STEP_KEYS and ("say" in step) != ("tap" in step), f"{path.name}: {step}"
                assert set(step.get("expect") or {}) <= EXPECT_KEYS, f"{path.name}: {step['expect']}"
            now = datetime.fromisoformat(raw["now"]) if raw.get("now") else None
            stories.append(Story(raw["name"], path.name, now, steps, raw.get("user", "story-student")))
    names = [story.name for story in stories]
    assert len(names) == len(set(names)), "story names must be unique"
    return stories


ALL_STORIES = load_stories()


def test_there_are_enough_stories_in_both_languages():
    assert len(ALL_STORIES) >= 80
    japanese = [s for s in ALL_STORIES if any("\u3040" <= ch <= "\u9fff" for st in s.steps for ch in st.get("say", ""))]
    assert len(japanese) >= 30 and len(ALL_STORIES) - len(japanese) >= 30


def visible_text(rendered: list[dict[str, Any]]) -> str:
    parts = []
    for reply in rendered:
        parts.append(reply["text"])
        if "link" in reply:
            parts += [reply["link"]["label"], reply["link"]["url"]]
    return "\n".join(parts)


def offered(rendered: list[dict[str, Any]]) -> list[str]:
    return [value for reply in rendered for button in reply["quick_replies"]
            for value in (button["payload"], button["label"])]


@pytest.mark.parametrize("story", ALL_STORIES, ids=[f"{s.source}:{s.name}" for s in ALL_STORIES])
def test_story(story: Story, core, clock, pipeline_for):
    if story.now:
        clock.set(story.now)
    with core.transaction() as session:  # the demo students, as `make run` has them
        load_demo_students(session, core.profile, core.now())
    pipeline = pipeline_for(core)
    for number, step in enumerate(story.steps, start=1):
        message = IncomingMessage(
            channel=Channel.WEB, user_id=story.user, conversation_id=f"web:{story.user}", text=step.get("say"),
            payload=step.get("tap"), lang_hint=Language(step["lang"]) if step.get("lang") else None,
        )
        rendered = web.render(pipeline.handle(message))
        text, buttons = visible_text(rendered), offered(rendered)
        where = f"step {number} ({step.get('say') or step.get('tap')}) replied:\n{text}\nbuttons: {buttons}"
        expect = step.get("expect") or {}
        if expect.get("silent"):
            assert rendered == [], f"{where}\nthe bot should stay silent (a person has the conversation)"
        for wanted in expect.get("contains", []):
            assert str(wanted) in text, f"{where}\nmissing: {wanted}"
        for unwanted in expect.get("not_contains", []):
            assert str(unwanted) not in text, f"{where}\nshould not contain: {unwanted}"
        for button in expect.get("offers", []):
            assert any(str(button) in value for value in buttons), f"{where}\nnot offered: {button}"
        for button in expect.get("not_offers", []):
            assert not any(str(button) in value for value in buttons), f"{where}\nshould not offer: {button}"
        secrets = expect.get("transcript_not_contains", [])
        if secrets:
            with core.transaction() as session:
                stored = "\n".join(session.scalars(select(TranscriptEntry.text)))
            for secret in secrets:
                assert str(secret) not in stored, f"{where}\nthe transcript holds: {secret}"
