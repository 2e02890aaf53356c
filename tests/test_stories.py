"""Conversation stories (tests/stories/*.yaml) played through the same pipeline as /api/chat and `madoguchi chat`.

Each story is a list of steps: the student says something, taps a button's payload or presses a button by its
label, and the replies must contain (or must not contain) texts, offer buttons, answer given intents and leave
a given form in progress. The clock is set per story; each starts afresh with the demo students
(core/data/demo_students.csv) in the database. The format and the player are bot/stories.py's, shared with
`madoguchi dialogue eval`.
"""

from pathlib import Path

import pytest

from bot.stories import StoryPlayer, fresh_start, load_stories, report

STORIES = Path(__file__).parent / "stories"
ALL_STORIES = [story for path in sorted(STORIES.glob("*.yaml")) for story in load_stories(path)]


def test_there_are_enough_stories_in_both_languages():
    assert len(ALL_STORIES) >= 80
    assert len({story.name for story in ALL_STORIES}) == len(ALL_STORIES), "story names must be unique"
    japanese = [s for s in ALL_STORIES if any("\u3040" <= ch <= "\u9fff" for st in s.steps for ch in st.get("say", ""))]
    assert len(japanese) >= 30 and len(ALL_STORIES) - len(japanese) >= 30


@pytest.mark.parametrize("story", ALL_STORIES, ids=[f"{s.source}:{s.name}" for s in ALL_STORIES])
def test_story(story, core, clock, pipeline_for):
    result = StoryPlayer(pipeline_for(core), clock, fresh_start).play(story)
    assert result.passed, report([result])
